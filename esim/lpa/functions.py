"""The ES10b/ES10c functions an LPAd calls (GSMA SGP.22 v2.x §5.7), over any
`call(command) -> response` — an `Es10Session` to a card, or a virtual eUICC's core directly
(sans I/O). Builds each command's DER and decodes the answers the LPA needs.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from esim.errors import EsimError
from esim.lpa.bpp_segments import segment_bpp
from esim.saip.coding import iccid_from_ef, iccid_to_ef
from esim.sgp22 import schema
from esim.sgp22.errors import Asn1Error
from esim.sgp22.tlv import children, encode_tlv, read_tlv

Call = Callable[[bytes], bytes]


class LpaError(EsimError):
    """The eUICC answered an ES10 function with an error: `function`, `code` (SGP.22 name or
    number)."""

    def __init__(self, function: str, code: object, message: str = "") -> None:
        super().__init__(f"{function}: {code}" + (f" ({message})" if message else ""))
        self.function = function
        self.code = code


class Es10Functions:
    def __init__(self, call: Call) -> None:
        self.call = call
        self.commands = 0

    def _call(self, command: bytes) -> bytes:
        self.commands += 1
        return self.call(command)

    def eid(self) -> str:
        answer = self._call(bytes.fromhex("BF3E035C015A"))
        # BF3E { 5A len EID }
        if answer[:2] != b"\xbf\x3e" or len(answer) < 5 or answer[3] != 0x5A:
            raise LpaError("GetEID", "malformed", answer[:4].hex())
        return answer[5:5 + answer[4]].hex().upper()

    def euicc_info1(self) -> bytes:
        return self._call(bytes.fromhex("BF2000"))

    def euicc_info2(self) -> bytes:
        return self._call(bytes.fromhex("BF2200"))

    def challenge(self) -> bytes:
        answer = schema.decode("GetEuiccChallengeResponse", self._call(bytes.fromhex("BF2E00")))
        return bytes(answer["euiccChallenge"])

    def authenticate_server(self, *, server_signed1: bytes, server_signature1: bytes,
                            ci_pkid: bytes, server_certificate: bytes,
                            ctx_params1: dict[str, Any]) -> bytes:
        """ES10b.AuthenticateServer: the DER parts from ES9+.InitiateAuthentication as received;
        returns AuthenticateServerResponse (to forward to ES9+.AuthenticateClient)."""
        command = encode_tlv(b"\xbf\x38", server_signed1 + server_signature1 + ci_pkid
                             + server_certificate
                             + schema.encode("CtxParams1",
                                             ("ctxParamsForCommonAuthentication", ctx_params1)))
        answer = self._call(command)
        kind, value = schema.decode("AuthenticateServerResponse", answer)
        if kind != "authenticateResponseOk":
            raise LpaError("AuthenticateServer", _name(_AUTH_CODES,
                                                       value["authenticateErrorCode"]))
        return answer

    def prepare_download(self, *, smdp_signed2: bytes, smdp_signature2: bytes,
                         smdp_certificate: bytes, hash_cc: bytes | None = None) -> bytes:
        command = encode_tlv(b"\xbf\x21", smdp_signed2 + smdp_signature2
                             + (encode_tlv(b"\x04", hash_cc) if hash_cc else b"")
                             + smdp_certificate)
        answer = self._call(command)
        kind, value = schema.decode("PrepareDownloadResponse", answer)
        if kind != "downloadResponseOk":
            raise LpaError("PrepareDownload", _name(_DOWNLOAD_CODES, value["downloadErrorCode"]))
        return answer

    def load_bpp(self, bpp: bytes, progress: Callable[[int, int], None] | None = None) -> bytes:
        """ES10b.LoadBoundProfilePackage segment by segment (§2.5.5); returns the eUICC's
        ProfileInstallationResult (success or error: the caller reads and forwards it)."""
        commands = segment_bpp(bpp)
        for i, command in enumerate(commands):
            answer = self._call(command)
            if progress is not None:
                progress(i + 1, len(commands))
            if answer:
                return answer  # the PIR: after the last segment, or an early error
        raise LpaError("LoadBoundProfilePackage", "noResult",
                       "the eUICC gave no ProfileInstallationResult")

    def list_notifications(self) -> list[dict[str, Any]]:
        kind, value = schema.decode("ListNotificationResponse",
                                    self._call(bytes.fromhex("BF2800")))
        if kind != "notificationMetadataList":
            raise LpaError("ListNotification", value)
        return list(value)

    def retrieve_notifications(self, seq_number: int | None = None) -> bytes:
        """RetrieveNotificationsList's answer (BF2B DER; its PendingNotifications are forwarded
        to ES9+.HandleNotification as they are)."""
        criteria = b"" if seq_number is None else encode_tlv(
            b"\xa0", encode_tlv(b"\x80", _int(seq_number)))
        return self._call(encode_tlv(b"\xbf\x2b", criteria))

    def remove_notification(self, seq_number: int) -> int:
        answer = schema.decode("NotificationSentResponse", self._call(
            encode_tlv(b"\xbf\x30", encode_tlv(b"\x80", _int(seq_number)))))
        return int(answer["deleteNotificationStatus"])

    # -- ES10c --------------------------------------------------------------------------------
    def profiles(self) -> list[dict[str, Any]]:
        """GetProfilesInfo (BF2D): every profile with ICCID, AID, state, names, class."""
        return read_profiles_info(self._call(bytes.fromhex("BF2D00")))

    def _result(self, function: str, command: bytes, names: dict[int, str]) -> None:
        answer = self._call(command)
        if len(answer) < 6 or answer[3] != 0x80:
            raise LpaError(function, "malformed", answer[:6].hex())
        code = answer[5]
        if code != 0:
            raise LpaError(function, names.get(code, str(code)))

    def enable(self, iccid: str, refresh: bool = True) -> None:
        body = encode_tlv(b"\xa0", encode_tlv(b"\x5a", iccid_to_ef(iccid)))
        body += encode_tlv(b"\x81", b"\xff" if refresh else b"\x00")
        self._result("EnableProfile", encode_tlv(b"\xbf\x31", body), {
            1: "iccidOrAidNotFound", 2: "profileNotInDisabledState", 3: "disallowedByPolicy",
            4: "wrongProfileReenabling", 5: "catBusy", 127: "undefinedError"})

    def disable(self, iccid: str, refresh: bool = True) -> None:
        body = encode_tlv(b"\xa0", encode_tlv(b"\x5a", iccid_to_ef(iccid)))
        body += encode_tlv(b"\x81", b"\xff" if refresh else b"\x00")
        self._result("DisableProfile", encode_tlv(b"\xbf\x32", body), {
            1: "iccidOrAidNotFound", 2: "profileNotInEnabledState", 3: "disallowedByPolicy",
            5: "catBusy", 127: "undefinedError"})

    def delete(self, iccid: str) -> None:
        self._result("DeleteProfile",
                     encode_tlv(b"\xbf\x33", encode_tlv(b"\x5a", iccid_to_ef(iccid))), {
                         1: "iccidOrAidNotFound", 2: "profileNotInDisabledState",
                         3: "disallowedByPolicy", 127: "undefinedError"})

    def set_nickname(self, iccid: str, nickname: str) -> None:
        self._result("SetNickname", encode_tlv(b"\xbf\x29", encode_tlv(
            b"\x5a", iccid_to_ef(iccid)) + encode_tlv(b"\x90", nickname.encode())), {
                1: "iccidNotFound", 127: "undefinedError"})

    def cancel_session(self, transaction_id: bytes, reason: int) -> bytes:
        return self._call(schema.encode("CancelSessionRequest",
                                        {"transactionId": transaction_id, "reason": reason}))


_AUTH_CODES = {1: "invalidCertificate", 2: "invalidSignature", 3: "unsupportedCurve",
               4: "noSessionContext", 5: "invalidOid", 6: "euiccChallengeMismatch",
               7: "ciPKUnknown", 127: "undefinedError"}
_DOWNLOAD_CODES = {1: "invalidCertificate", 2: "invalidSignature", 3: "unsupportedCurve",
                   4: "noSessionContext", 5: "invalidTransactionId", 127: "undefinedError"}


def _name(names: dict[int, str], value: object) -> str:
    return names.get(value, str(value)) if isinstance(value, int) else str(value)


def _int(value: int) -> bytes:
    return value.to_bytes((value.bit_length() + 8) // 8 or 1, "big")


def read_profiles_info(data: bytes) -> list[dict[str, Any]]:
    """ProfileInfoListResponse (BF2D { A0 { E3 … } }, SGP.22 §5.7.15) -> one dict a profile."""
    try:
        root = read_tlv(data, where="ProfileInfoListResponse")
        kids = children(data, root, "ProfileInfoListResponse")
        if root.tag != b"\xbf\x2d" or not kids or kids[0].tag != b"\xa0":
            raise LpaError("GetProfilesInfo", "profileInfoListError", data[:8].hex())
        out: list[dict[str, Any]] = []
        for info in children(data, kids[0], "profileInfoListOk"):
            fields = {k.tag: k.value(data) for k in children(data, info, "ProfileInfo")}
            iccid = fields.get(b"\x5a")
            out.append({
                "iccid": iccid_from_ef(iccid) if iccid else None,
                "isdp_aid": fields.get(b"\x4f", b"").hex().upper(),
                "state": "enabled" if fields.get(b"\x9f\x70") == b"\x01" else "disabled",
                "nickname": fields.get(b"\x90", b"").decode(errors="replace"),
                "service_provider_name": fields.get(b"\x91", b"").decode(errors="replace"),
                "profile_name": fields.get(b"\x92", b"").decode(errors="replace"),
                "profile_class": {0: "test", 1: "provisioning", 2: "operational"}.get(
                    int.from_bytes(fields.get(b"\x95", b"\x02"), "big"), "unknown")})
        return out
    except Asn1Error as exc:
        raise LpaError("GetProfilesInfo", "malformed", str(exc)) from None
