"""Profile download as the LPAd runs it (GSMA SGP.22 v2.x §3.1.3 "Profile Download and
Installation"; ES9+ §5.6, ES10b §5.7), sans I/O: the eUICC through `Es10Functions`, the SM-DP+
through any `Es9Transport` (`post(function, body) -> body`; esim.lpa.es9_client is the HTTPS
one, tests plug an SM-DP+ in process).

Order: GetEUICCChallenge + GetEUICCInfo1 → ES9+.InitiateAuthentication → (LPA checks the
serverAddress echo) → ES10b.AuthenticateServer → ES9+.AuthenticateClient → (confirmation code
hashed with the transactionId when required) → ES10b.PrepareDownload →
ES9+.GetBoundProfilePackage → ES10b.LoadBoundProfilePackage → ES9+.HandleNotification with the
ProfileInstallationResult → ES10b.RemoveNotificationFromList. When the eUICC refuses a step
after the session started, the LPA cancels the session on both sides (ES10b/ES9+
CancelSession) before reporting the error; when the SM-DP+ refuses one (it closes its session
as it does), only the eUICC's is cancelled (ES10b.CancelSession).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

from esim.activation_code import ActivationCode
from esim.confirmation_code import hash_confirmation_code, hashed_confirmation_code
from esim.errors import EsimError
from esim.es2plus.codes import FunctionExecutionStatus
from esim.lpa.functions import Es10Functions, LpaError
from esim.saip.coding import iccid_from_ef
from esim.sgp22 import schema
from esim.sgp22.es9plus import b64, field_b64, field_transaction_id, status_of
from esim.sgp22.notifications import InstallationResult, read_pending_notification
from esim.sgp22.tlv import children, read_tlv

Progress = Callable[[str], None]
# CancelSessionReason (Annex H): loadBppExecutionError(5), undefinedReason(127)
_CANCEL_UNDEFINED = 127


class Es9Transport(Protocol):
    def post(self, function: str, body: dict[str, Any]) -> dict[str, Any] | None:
        """POST one ES9+ function; its JSON answer (None for 204 No Content)."""
        ...


class Es9Refused(EsimError):
    """The SM-DP+ answered an ES9+ function with a failure: `function`, subject/reason."""

    def __init__(self, function: str, subject: str, reason: str, message: str = "") -> None:
        super().__init__(f"ES9+.{function} refused: subject {subject}, reason {reason}"
                         + (f" ({message})" if message else ""))
        self.function = function
        self.subject = subject
        self.reason = reason


@dataclass(frozen=True)
class DownloadResult:
    iccid: str | None
    transaction_id: str
    success: bool
    error: str | None  # "bppCommandId/errorReason" when the eUICC refused the BPP
    notification_sent: bool
    apdu_commands: int


def _call(es9: Es9Transport, function: str, body: dict[str, Any]) -> dict[str, Any]:
    answer = es9.post(function, body)
    if answer is None:
        return {}
    status, code = status_of(answer)
    if status != FunctionExecutionStatus.EXECUTED_SUCCESS:
        message = ""
        data = answer.get("header", {}).get("functionExecutionStatus", {}).get(
            "statusCodeData") or {}
        if isinstance(data, dict):
            message = str(data.get("message", ""))
        raise Es9Refused(function, code.subject if code else "?", code.reason if code else "?",
                         message)
    return answer


def _b64(answer: dict[str, Any], name: str) -> bytes:
    value = field_b64(answer, name)
    assert value is not None
    return value


def download(functions: Es10Functions, es9: Es9Transport, activation_code: str, *,
             confirmation_code: str | None = None, imei_tac: bytes = b"\x35\x29\x06\x11",
             progress: Progress | None = None) -> DownloadResult:
    """Download and install the profile `activation_code` points at ('LPA:1$…' or the bare
'1$…' form)."""
    say = progress or (lambda _step: None)
    # lab=True: like other LPAs, take a lab SM-DP+'s `host:port` too
    ac = (ActivationCode.from_uri(activation_code, lab=True)
          if activation_code[:4].upper() == "LPA:"
          else ActivationCode.parse(activation_code, lab=True))
    say("GetEUICCChallenge, GetEUICCInfo1")
    challenge = functions.challenge()
    info1 = functions.euicc_info1()
    say(f"ES9+.InitiateAuthentication at {ac.smdp_address}")
    init = _call(es9, "initiateAuthentication", {
        "euiccChallenge": b64(challenge), "euiccInfo1": b64(info1),
        "smdpAddress": ac.smdp_address})
    tid = field_transaction_id(init)
    signed1_der = _b64(init, "serverSigned1")
    signed1 = schema.decode("ServerSigned1", signed1_der)
    if signed1["serverAddress"] != ac.smdp_address:
        raise LpaError("InitiateAuthentication", "serverAddressMismatch",
                       "the SM-DP+ signed another address than the activation code's")
    say("ES10b.AuthenticateServer")
    asr = functions.authenticate_server(
        server_signed1=signed1_der, server_signature1=_b64(init, "serverSignature1"),
        ci_pkid=_b64(init, "euiccCiPKIdToBeUsed"),
        server_certificate=_b64(init, "serverCertificate"),
        ctx_params1={"matchingId": ac.matching_id,
                     "deviceInfo": {"tac": imei_tac, "deviceCapabilities": {}}})
    try:
        say("ES9+.AuthenticateClient")
        client = _call(es9, "authenticateClient", {
            "transactionId": tid.hex().upper(), "authenticateServerResponse": b64(asr)})
        signed2_der = _b64(client, "smdpSigned2")
        signed2 = schema.decode("SmdpSigned2", signed2_der)
        hash_cc = None
        if signed2["ccRequiredFlag"]:
            if not confirmation_code:
                raise LpaError("AuthenticateClient", "confirmationCodeRequired",
                               "the SM-DP+ requires a confirmation code (--confirmation-code)")
            hash_cc = hashed_confirmation_code(hash_confirmation_code(confirmation_code), tid)
        say("ES10b.PrepareDownload")
        pdr = functions.prepare_download(
            smdp_signed2=signed2_der, smdp_signature2=_b64(client, "smdpSignature2"),
            smdp_certificate=_b64(client, "smdpCertificate"), hash_cc=hash_cc)
        say("ES9+.GetBoundProfilePackage")
        bpp_answer = _call(es9, "getBoundProfilePackage", {
            "transactionId": tid.hex().upper(), "prepareDownloadResponse": b64(pdr)})
    except LpaError:
        _cancel(functions, es9, tid)
        raise
    except Es9Refused:
        # the SM-DP+ closed its session when it refused (an expired transaction, a wrong
        # confirmation code…): only the eUICC's session is left to end
        _cancel(functions, None, tid)
        raise
    bpp = _b64(bpp_answer, "boundProfilePackage")
    say(f"ES10b.LoadBoundProfilePackage ({len(bpp)} bytes)")
    pir = functions.load_bpp(bpp, lambda done, total: say(f"segment {done}/{total}"))
    result = read_pending_notification(pir)
    if not isinstance(result, InstallationResult):
        raise LpaError("LoadBoundProfilePackage", "malformed", "not a ProfileInstallationResult")
    say("ES9+.HandleNotification")
    sent = True
    try:
        _call(es9, "handleNotification", {"pendingNotification": b64(pir)})
    except EsimError:  # refused or unreachable
        sent = False  # stays pending on the eUICC; `lpa notifications --process` retries
    if sent:
        functions.remove_notification(result.seq_number)
    error = None if result.success else f"{result.bpp_command}/{result.error_reason}"
    return DownloadResult(iccid=iccid_from_ef(result.iccid) if result.iccid else None,
                          transaction_id=tid.hex().upper(),
                          success=result.success, error=error, notification_sent=sent,
                          apdu_commands=functions.commands)


def _cancel(functions: Es10Functions, es9: Es9Transport | None, tid: bytes) -> None:
    """Best effort: the eUICC signs the cancellation, the SM-DP+ (when its session is still
    open) gets it."""
    try:
        answer = functions.cancel_session(tid, _CANCEL_UNDEFINED)
        if es9 is not None and answer[:2] == b"\xbf\x41" and answer[3:4] == b"\xa0":
            _call(es9, "cancelSession", {"transactionId": tid.hex().upper(),
                                         "cancelSessionResponse": b64(answer)})
    except EsimError:
        pass


def process_notifications(functions: Es10Functions, es9_for: Callable[[str], Es9Transport],
                          progress: Progress | None = None) -> list[tuple[int, bool]]:
    """Send every pending notification to its SM-DP+ (ES9+.HandleNotification) and remove the
    delivered ones from the eUICC; returns (seqNumber, delivered) pairs."""
    say = progress or (lambda _step: None)
    out: list[tuple[int, bool]] = []
    data = functions.retrieve_notifications()
    kind, items = schema.decode("RetrieveNotificationsListResponse", data)
    if kind != "notificationList":
        return out
    root = read_tlv(data)
    ders = [k.raw(data) for k in children(data, children(data, root)[0])]
    for der, item in zip(ders, items, strict=True):
        meta = (item[1]["profileInstallationResultData"]["notificationMetadata"]
                if item[0] == "profileInstallationResult" else item[1]["tbsOtherNotification"])
        seq, address = int(meta["seqNumber"]), meta["notificationAddress"]
        say(f"notification {seq} to {address}")
        try:
            _call(es9_for(address), "handleNotification", {"pendingNotification": b64(der)})
        except EsimError:
            out.append((seq, False))
            continue
        functions.remove_notification(seq)
        out.append((seq, True))
    return out
