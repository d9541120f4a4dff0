"""The virtual eUICC's ES10 functions, sans I/O (GSMA SGP.22 v2.x §5.7): one command's data
(the reassembled STORE DATA payload) in, the response data out.

ES10a: GetEuiccConfiguredAddresses (BF3C), SetDefaultDpAddress (BF3F).
ES10b: GetEUICCChallenge (BF2E), GetEUICCInfo1 (BF20) / 2 (BF22), AuthenticateServer (BF38),
PrepareDownload (BF21), LoadBoundProfilePackage (BF36 and its parts, §5.7.6), CancelSession
(BF41), ListNotification (BF28), RetrieveNotificationsList (BF2B),
RemoveNotificationFromList (BF30).
ES10c: GetEID (BF3E).

Curves (SGP.22 §2.6.7, §4.5.2.0; the rule in esim.sgp22.curves): the eUICC may hold a
certificate chain per CI — CERT.EUICC / CERT.EUM under a NIST P-256 CI and another under a
brainpoolP256r1 CI. EUICCInfo1/2 list every trusted CI for verification and the CIs it has a
chain to for signing; AuthenticateServer answers with the chain of euiccCiPKIdToBeUsed and the
session keeps it (PrepareDownload's signature, the ProfileInstallationResult, CancelSession);
otSK.EUICC.ECKA is made on CERT.DPpb's curve.

The checks (certificate chains, signatures, challenge echo, transaction continuity, BSP) are
esim.sgp22's; their refusals are answered with the SGP.22 error code of the function
(AuthenticateErrorCode, DownloadErrorCode, ProfileInstallationResult's ErrorReason). Refusals
that have no coded answer (unknown function, no download session) raise `Es10Refused`, which a
transport maps to a status word.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from functools import partial
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec

from esim.euicc import es10c
from esim.euicc.errors import Es10Refused
from esim.euicc.loader import LoadError, ProfileLoader
from esim.euicc.store import EuiccState, InstalledProfile, PendingNotification, StateFile
from esim.saip.coding import iccid_from_ef, iccid_to_ef
from esim.sgp22 import authentication, schema
from esim.sgp22.authentication import EuiccCredentials, ServerAuthenticated
from esim.sgp22.cancel_session import CancelSessionReason, cancel_session_response
from esim.sgp22.certificates import TrustedCis, subject_key_id
from esim.sgp22.errors import Asn1Error, AuthenticationError, CertificateError
from esim.sgp22.notifications import (
    NotificationEvent,
    other_signed_notification,
    profile_installation_result,
)
from esim.sgp22.tlv import encode_tlv

log = logging.getLogger(__name__)

ISD_R_AID = bytes.fromhex("A0000005591010FFFFFFFF8900000100")
# EUICCResponse with one PEStatus ok (SAIP §8.11), the simaResponse of a clean install
SIMA_OK = bytes.fromhex("3007A0053003800100")
# Annex H named INTEGER values (asn1tools encodes named INTEGERs from their numbers)
AUTHENTICATE_ERROR_CODES = {"invalidCertificate": 1, "invalidSignature": 2,
                            "unsupportedCurve": 3, "noSessionContext": 4, "invalidOid": 5,
                            "euiccChallengeMismatch": 6, "ciPKUnknown": 7, "undefinedError": 127}
DOWNLOAD_ERROR_CODES = {"invalidCertificate": 1, "invalidSignature": 2, "unsupportedCurve": 3,
                        "noSessionContext": 4, "invalidTransactionId": 5, "undefinedError": 127}


@dataclass(frozen=True)
class _ErrorAnswer:
    """The coded refusal of an ES10b function: the response's error alternative, with the
    transactionId and the code named by esim.sgp22's reason (undefinedError when unnamed)."""

    response_type: str
    alternative: str
    code_field: str
    codes: dict[str, int]

    def encode(self, transaction_id: bytes, reason: str) -> bytes:
        return schema.encode(self.response_type, (self.alternative, {
            "transactionId": transaction_id, self.code_field: self.codes.get(reason, 127)}))


AUTHENTICATE_ERROR = _ErrorAnswer("AuthenticateServerResponse", "authenticateResponseError",
                                  "authenticateErrorCode", AUTHENTICATE_ERROR_CODES)
DOWNLOAD_ERROR = _ErrorAnswer("PrepareDownloadResponse", "downloadResponseError",
                              "downloadErrorCode", DOWNLOAD_ERROR_CODES)


@dataclass(frozen=True)
class _ProfileOperation:
    """EnableProfile / DisableProfile / DeleteProfile (SGP.22 §5.7.16–5.7.18) share one shape:
    find the profile (iccidOrAidNotFound), check its state (profileNotIn…State), change it,
    notify as its metadata asks, answer `BFxx { 80 result }`."""

    tag: bytes
    parse: Callable[[bytes], es10c.ProfileRef]
    required_state: str
    event: str  # the NotificationEvent, also the name of the change


_PROFILE_OPERATIONS = (
    _ProfileOperation(b"\xbf\x31", lambda d: es10c.enable_disable_request(d, b"\xbf\x31")[0],
                      "disabled", "enable"),
    _ProfileOperation(b"\xbf\x32", lambda d: es10c.enable_disable_request(d, b"\xbf\x32")[0],
                      "enabled", "disable"),
    _ProfileOperation(b"\xbf\x33", es10c.delete_request, "disabled", "delete"),
)
_BPP_TAGS = {0xBF36, 0xA0, 0xA1, 0xA2, 0xA3, 0x86, 0x87, 0x88, 0xBF23}


def default_euicc_info2(cis: TrustedCis, signing: list[bytes] | None = None
                        ) -> dict[str, Any]:
    """EUICCInfo2 (§5.7.8) of the virtual eUICC: SGP.22 v2.2.0, USIM/ISIM with Milenage and
    TUAK, the CIs it trusts for verification and those it has a chain to for signing (`signing`;
    default: the same list)."""
    ids = cis.key_ids
    return {
        "profileVersion": b"\x02\x03\x01", "svn": b"\x02\x02\x00",
        "euiccFirmwareVer": b"\x01\x00\x00",
        # TS 102 226 §8.2.1.3.2: installed applications 0, free NVM 1 MiB, free RAM 8 kB
        "extCardResource": bytes.fromhex("810100820400100000830220 00".replace(" ", "")),
        "uiccCapability": (bytes.fromhex("6B000000"), 32),  # usim, isim, milenage, tuak
        "ts102241Version": b"\x0c\x01\x00", "globalplatformVersion": b"\x02\x03\x00",
        "rspCapability": (b"\x90", 4),  # additionalProfile, testProfileSupport
        "euiccCiPKIdListForVerification": list(ids),
        "euiccCiPKIdListForSigning": list(ids if signing is None else signing),
        "ppVersion": b"\x01\x00\x00", "sasAcreditationNumber": "SIMSMITH-VIRTUAL"}


def _smdp_oid(cert: x509.Certificate) -> str | None:
    """The SM-DP+ OID: the registeredID in CERT.DPauth/DPpb's subjectAltName (§4.5.2.1)."""
    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return None
    oids = san.get_values_for_type(x509.RegisteredID)
    return oids[0].dotted_string if oids else None


def _notify_addresses(metadata: dict[str, Any]) -> dict[str, str]:
    """StoreMetadata's notificationConfigurationInfo: which events notify which SM-DP+."""
    out: dict[str, str] = {}
    for entry in metadata.get("notificationConfigurationInfo", []) or []:
        bits, nbits = entry["profileManagementOperation"]
        for event in NotificationEvent:
            if event.value < nbits and bits[event.value // 8] & (0x80 >> (event.value % 8)):
                out[event.name.lower()] = entry["notificationAddress"]
    return out


@dataclass
class _Session:
    challenge: bytes | None = None
    authenticated: ServerAuthenticated | None = None
    ci_key_id: bytes = b""
    loader: ProfileLoader | None = None
    smdp_oid: str | None = None
    dppb: x509.Certificate | None = field(default=None, repr=False)
    chain: EuiccCredentials | None = field(default=None, repr=False)  # the session CI's chain


def _chain_ci(chain: EuiccCredentials) -> bytes | None:
    """The key identifier of the trusted CI a chain leads to (None: none of its CIs)."""
    try:
        return subject_key_id(chain.cis.issuer_of(chain.eum_certificate, "CERT.EUM.ECDSA"))
    except CertificateError:
        return None


class EuiccCore:
    """The ISD-R's ES10 functions over an EuiccState (saved after every change)."""

    def __init__(self, *, credentials: EuiccCredentials | Sequence[EuiccCredentials], eid: str,
                 state_file: StateFile | None = None,
                 euicc_info2: dict[str, Any] | None = None,
                 random: Callable[[int], bytes] = os.urandom,
                 ecka_key: Callable[[], ec.EllipticCurvePrivateKey] | None = None,
                 now: Callable[[], datetime | None] = lambda: None) -> None:
        # one chain per CI (module docstring); the first is the default
        chains = ([credentials] if isinstance(credentials, EuiccCredentials)
                  else list(credentials))
        if not chains:
            raise ValueError("an eUICC needs at least one certificate chain")
        self.chains = chains
        self.credentials = chains[0]
        seen: dict[bytes, x509.Certificate] = {}
        for chain in chains:
            for key_id, ci in zip(chain.cis.key_ids, chain.cis.certificates, strict=True):
                seen.setdefault(key_id, ci)
        self.cis = TrustedCis(seen.values())
        self._chain_by_ci: dict[bytes, EuiccCredentials] = {}
        for chain in chains:
            ci_id = _chain_ci(chain)
            if ci_id is not None:
                self._chain_by_ci.setdefault(ci_id, chain)
        self.eid = eid.upper()
        self._eid_bytes = bytes.fromhex(eid)
        self._file = state_file or StateFile(None)
        self.state: EuiccState = self._file.load()
        self.euicc_info2 = euicc_info2 or default_euicc_info2(
            self.cis, list(self._chain_by_ci) if len(chains) > 1 else None)
        self._random = random
        self._ecka_key = ecka_key
        self._now = now
        self._session = _Session()
        # called after a profile is enabled, disabled or deleted (the card layer switches the
        # USIM it presents)
        self.profile_listeners: list[Callable[[], None]] = []
        self._handlers: dict[int, Callable[[bytes], bytes]] = {
            0xBF2E: self._get_challenge, 0xBF20: self._get_info1, 0xBF22: self._get_info2,
            0xBF38: self._authenticate_server, 0xBF21: self._prepare_download,
            0xBF41: self._cancel_session, 0xBF28: self._list_notification,
            0xBF2B: self._retrieve_notifications, 0xBF30: self._remove_notification,
            0xBF3E: self._get_eid, 0xBF3C: self._configured_addresses,
            0xBF3F: self._set_default_dp_address,
            0xBF2D: self._get_profiles_info, 0xBF34: self._memory_reset,
            0xBF29: self._set_nickname,
        }
        for operation in _PROFILE_OPERATIONS:
            self._handlers[int.from_bytes(operation.tag, "big")] = partial(
                self._profile_operation, operation)

    def __repr__(self) -> str:
        return f"EuiccCore(eid={self.eid}, profiles={len(self.state.profiles)})"

    @property
    def state_path(self) -> Path | None:
        return self._file.path

    def save(self) -> None:
        self._file.save(self.state)

    # -- dispatch ---------------------------------------------------------------------------
    def handle(self, data: bytes) -> bytes:
        """One ES10 command (complete STORE DATA payload) -> its response (maybe empty)."""
        if not data:
            raise Es10Refused(0x6A80, "empty command data")
        tag = data[0]
        if tag & 0x1F == 0x1F and len(data) > 1:
            tag = tag << 8 | data[1]
        if tag in _BPP_TAGS:
            return self._load_bpp(data)
        handler = self._handlers.get(tag)
        if handler is None:
            raise Es10Refused(0x6A88, f"no ES10 function with tag {tag:X}")
        return handler(data)

    def _decode(self, type_name: str, data: bytes) -> Any:
        try:
            return schema.decode(type_name, data)
        except Asn1Error as exc:
            raise Es10Refused(0x6A80, str(exc)) from None

    # -- ES10b: information -----------------------------------------------------------------
    def _get_challenge(self, data: bytes) -> bytes:
        self._decode("GetEuiccChallengeRequest", data)
        # a new challenge starts a new session: whatever was pending is abandoned
        self._session = _Session(challenge=self._random(16))
        return schema.encode("GetEuiccChallengeResponse",
                             {"euiccChallenge": self._session.challenge})

    def _get_info1(self, data: bytes) -> bytes:
        self._decode("GetEuiccInfo1Request", data)
        info = self.euicc_info2
        return schema.encode("EUICCInfo1", {
            "svn": info["svn"],
            "euiccCiPKIdListForVerification": info["euiccCiPKIdListForVerification"],
            "euiccCiPKIdListForSigning": info["euiccCiPKIdListForSigning"]})

    def _get_info2(self, data: bytes) -> bytes:
        self._decode("GetEuiccInfo2Request", data)
        return schema.encode("EUICCInfo2", self.euicc_info2)

    def _get_eid(self, data: bytes) -> bytes:
        return encode_tlv(b"\xbf\x3e", encode_tlv(b"\x5a", self._eid_bytes))

    # -- ES10a --------------------------------------------------------------------------------
    def _configured_addresses(self, data: bytes) -> bytes:
        body = b""
        if self.state.default_dp_address:
            body += encode_tlv(b"\x80", self.state.default_dp_address.encode())
        body += encode_tlv(b"\x81", self.state.root_ds_address.encode())
        return encode_tlv(b"\xbf\x3c", body)

    def _set_default_dp_address(self, data: bytes) -> bytes:
        if len(data) < 5 or data[3] != 0x80 or data[4] + 5 > len(data):
            raise Es10Refused(0x6A80, "SetDefaultDpAddressRequest: no defaultDpAddress [0]")
        try:
            self.state.default_dp_address = data[5:5 + data[4]].decode()
        except UnicodeDecodeError:
            return encode_tlv(b"\xbf\x3f", b"\x80\x01\x7f")  # undefinedError
        self.save()
        return encode_tlv(b"\xbf\x3f", b"\x80\x01\x00")  # ok

    # -- ES10b: download --------------------------------------------------------------------
    def _authenticate_server(self, data: bytes) -> bytes:
        session = self._session
        try:
            request = schema.decode("AuthenticateServerRequest", data)
            tid = bytes(request["serverSigned1"]["transactionId"])
        except Asn1Error as exc:
            raise Es10Refused(0x6A80, str(exc)) from None
        if session.challenge is None:
            return AUTHENTICATE_ERROR.encode(tid, "noSessionContext")
        ci_key_id = bytes(request["euiccCiPKIdToBeUsed"])
        chain = self._chain_by_ci.get(ci_key_id, self.credentials)
        credentials = EuiccCredentials(signer=chain.signer, certificate=chain.certificate,
                                       eum_certificate=chain.eum_certificate, cis=self.cis)
        try:
            answer = authentication.authenticate_server(
                data, credentials=credentials, euicc_challenge=session.challenge,
                euicc_info2=self.euicc_info2, now=self._now())
        except AuthenticationError as exc:
            return self._refused("AuthenticateServer", AUTHENTICATE_ERROR, tid, exc)
        session.challenge = None  # one use
        session.authenticated = answer
        session.ci_key_id = ci_key_id
        session.chain = chain
        return answer.response

    def _refused(self, function: str, answer: _ErrorAnswer, tid: bytes,
                 exc: AuthenticationError) -> bytes:
        """A refused check ends the session (a new GetEUICCChallenge starts over)."""
        log.info("%s refused: %s (%s)", function, exc.reason, exc.check)
        self._session = _Session()
        return answer.encode(tid, exc.reason)

    def _prepare_download(self, data: bytes) -> bytes:
        session = self._session
        request = self._decode("PrepareDownloadRequest", data)
        tid = bytes(request["smdpSigned2"]["transactionId"])
        if session.authenticated is None:
            return DOWNLOAD_ERROR.encode(tid, "noSessionContext")
        # CERT.DPpb must chain to the CI this session authenticated with (§5.7.5)
        chain = session.chain or self.credentials
        credentials = EuiccCredentials(
            signer=chain.signer, certificate=chain.certificate,
            eum_certificate=chain.eum_certificate,
            cis=TrustedCis([self.cis.by_key_id(session.ci_key_id)]))
        hash_cc = request.get("hashCc")
        try:
            # otSK.EUICC.ECKA: made on CERT.DPpb's curve unless a replay injects it
            prepared = authentication.prepare_download(
                data, credentials=credentials, session=session.authenticated,
                hash_cc=bytes(hash_cc) if hash_cc is not None else None,
                otsk_euicc=self._ecka_key() if self._ecka_key else None, now=self._now())
        except AuthenticationError as exc:
            return self._refused("PrepareDownload", DOWNLOAD_ERROR, tid, exc)
        session.dppb = prepared.dppb
        session.smdp_oid = _smdp_oid(prepared.dppb)
        session.loader = ProfileLoader(otsk_euicc=prepared.otsk_euicc, eid=self._eid_bytes,
                                       dppb_public_key=prepared.dppb,
                                       transaction_id=session.authenticated.transaction_id)
        return prepared.response

    def _load_bpp(self, data: bytes) -> bytes:
        session = self._session
        loader = session.loader
        if loader is None or session.authenticated is None:
            raise Es10Refused(0x6985, "LoadBoundProfilePackage without PrepareDownload")
        try:
            loaded = loader.feed(data)
            if loaded is None:
                return b""
            iccid = iccid_from_ef(loaded.iccid)
            if self.state.profile(iccid) is not None:
                raise LoadError("loadProfileElements",
                                "installFailedDueToIccidAlreadyExistsOnEuicc",
                                "storeMetadata.iccid", "a profile with this ICCID is installed")
        except LoadError as exc:
            log.warning("LoadBoundProfilePackage refused: %s", exc)
            self._session = _Session()
            return self._installation_result(loader.transaction_id, None, error=exc)
        meta = loaded.store_metadata
        aid = self.state.allocate_isdp()
        self.state.profiles.append(InstalledProfile(
            iccid=iccid, isdp_aid=aid.hex().upper(), state="disabled",
            service_provider_name=meta.get("serviceProviderName", ""),
            profile_name=meta.get("profileName", ""),
            profile_class=int(meta.get("profileClass", 2)), nickname="",
            notification_address=session.authenticated.server_address,
            upp=loaded.upp.hex(), notify=_notify_addresses(meta),
            ci_key_id=session.ci_key_id.hex() if session.ci_key_id else ""))
        self._session = _Session()
        log.info("profile %s installed in ISD-P %s", iccid, aid.hex().upper())
        return self._installation_result(loader.transaction_id, loaded.iccid, aid=aid,
                                         session=session)

    def _installation_result(self, tid: bytes, iccid: bytes | None, *,
                             error: LoadError | None = None, aid: bytes | None = None,
                             session: _Session | None = None) -> bytes:
        """The ProfileInstallationResult, also kept as a pending notification (§5.7.6)."""
        session = session or self._session
        authenticated = session.authenticated
        address = authenticated.server_address if authenticated else ""
        seq = self.state.allocate_seq_number()
        pir = profile_installation_result(
            signer=(session.chain or self.credentials).signer, transaction_id=tid, seq_number=seq,
            notification_address=address, iccid=iccid, smdp_oid=session.smdp_oid,
            isdp_aid=aid, sima_response=SIMA_OK if error is None else None,
            error=(error.command, error.reason) if error else None)
        self.state.notifications.append(PendingNotification(
            seq_number=seq, event="install", notification_address=address,
            iccid=iccid.hex() if iccid else None, der=pir.hex()))
        self.save()
        return pir

    def _cancel_session(self, data: bytes) -> bytes:
        request = self._decode("CancelSessionRequest", data)
        session = self._session
        authenticated = session.authenticated
        if authenticated is None or bytes(request["transactionId"]) != \
                authenticated.transaction_id:
            return schema.encode("CancelSessionResponse",
                                 ("cancelSessionResponseError", 5))
        self._session = _Session()
        oid = _smdp_oid(authenticated.dpauth) or ""
        return cancel_session_response(signer=(session.chain or self.credentials).signer,
                                       transaction_id=authenticated.transaction_id,
                                       smdp_oid=oid,
                                       reason=CancelSessionReason(int(request["reason"])))

    # -- ES10b: notifications ---------------------------------------------------------------
    def _metadata(self, n: PendingNotification) -> dict[str, Any]:
        meta: dict[str, Any] = {
            "seqNumber": n.seq_number,
            "profileManagementOperation": NotificationEvent[n.event.upper()].encode(),
            "notificationAddress": n.notification_address}
        if n.iccid:
            meta["iccid"] = bytes.fromhex(n.iccid)
        return meta

    def _list_notification(self, data: bytes) -> bytes:
        request = self._decode("ListNotificationRequest", data)
        wanted = request.get("profileManagementOperation")
        event = None
        if wanted is not None:
            event = NotificationEvent.decode(wanted, "profileManagementOperation").name.lower()
        items = [self._metadata(n) for n in self.state.notifications
                 if event is None or n.event == event]
        return schema.encode("ListNotificationResponse", ("notificationMetadataList", items))

    def _retrieve_notifications(self, data: bytes) -> bytes:
        request = self._decode("RetrieveNotificationsListRequest", data)
        criteria = request.get("searchCriteria")
        chosen = self.state.notifications
        if criteria is not None and criteria[0] == "seqNumber":
            chosen = [n for n in chosen if n.seq_number == criteria[1]]
        elif criteria is not None:
            event = NotificationEvent.decode(criteria[1], "searchCriteria").name.lower()
            chosen = [n for n in chosen if n.event == event]
        if criteria is not None and not chosen:
            return schema.encode("RetrieveNotificationsListResponse",
                                 ("notificationsListResultError", 1))
        # the stored DER as signed, not re-encoded (signatures cover the exact bytes)
        body = b"".join(bytes.fromhex(n.der) for n in chosen)
        return encode_tlv(b"\xbf\x2b", encode_tlv(b"\xa0", body))

    def _remove_notification(self, data: bytes) -> bytes:
        seq = self._decode("NotificationSentRequest", data)["seqNumber"]
        before = len(self.state.notifications)
        self.state.notifications = [n for n in self.state.notifications if n.seq_number != seq]
        if len(self.state.notifications) == before:
            status = 1  # nothingToDelete
        else:
            status = 0  # ok
            self.save()
        return schema.encode("NotificationSentResponse", {"deleteNotificationStatus": status})

    # -- ES10c: local profile management ----------------------------------------------------
    def _find(self, ref: es10c.ProfileRef) -> InstalledProfile | None:
        for p in self.state.profiles:
            if ref.iccid is not None and iccid_from_ef(ref.iccid) == p.iccid:
                return p
            if ref.aid is not None and ref.aid.hex().upper() == p.isdp_aid:
                return p
        return None

    def _other_notification(self, profile: InstalledProfile, event: str) -> None:
        """OtherSignedNotification for enable/disable/delete when the profile's metadata asks
        for it (§5.7.3 notificationConfigurationInfo); kept until removed. Signed with the
        chain of the CI the profile was downloaded under: the SM-DP+ that gets it verified
        that chain, and may trust no other CI of a mixed eUICC."""
        address = profile.notify.get(event)
        if not address:
            return
        seq = self.state.allocate_seq_number()
        iccid = iccid_to_ef(profile.iccid)
        chain = self.credentials
        if profile.ci_key_id:
            chain = self._chain_by_ci.get(bytes.fromhex(profile.ci_key_id), chain)
        der = other_signed_notification(
            signer=chain.signer, euicc_certificate=chain.certificate,
            eum_certificate=chain.eum_certificate, seq_number=seq,
            event=NotificationEvent[event.upper()], notification_address=address, iccid=iccid)
        self.state.notifications.append(PendingNotification(
            seq_number=seq, event=event, notification_address=address, iccid=iccid.hex(),
            der=der.hex()))

    def _changed_profiles(self) -> None:
        self.save()
        for listener in self.profile_listeners:
            listener()

    def _get_profiles_info(self, data: bytes) -> bytes:
        # searchCriteria / tagList are accepted; every profile is listed with every field
        return es10c.profiles_info([es10c.ProfileInfo(
            iccid=iccid_to_ef(p.iccid), isdp_aid=bytes.fromhex(p.isdp_aid),
            enabled=p.state == "enabled", nickname=p.nickname,
            service_provider_name=p.service_provider_name, profile_name=p.profile_name,
            profile_class=p.profile_class) for p in self.state.profiles])

    def _profile_operation(self, operation: _ProfileOperation, data: bytes) -> bytes:
        profile = self._find(operation.parse(data))
        if profile is None:
            return es10c.result(operation.tag, es10c.NOT_FOUND)
        if profile.state != operation.required_state:
            return es10c.result(operation.tag, es10c.WRONG_STATE)
        if operation.event == "enable":
            current = self.state.enabled()
            if current is not None:  # one enabled profile at a time (§2.4.1)
                current.state = "disabled"
                self._other_notification(current, "disable")
            profile.state = "enabled"
        elif operation.event == "disable":
            profile.state = "disabled"
        else:
            self.state.profiles.remove(profile)
        self._other_notification(profile, operation.event)
        self._changed_profiles()
        return es10c.result(operation.tag, es10c.OK)

    def _memory_reset(self, data: bytes) -> bytes:
        options = es10c.memory_reset_request(data)
        # deleteOperationalProfiles (0x80), deleteFieldLoadedTestProfiles (0x40)
        keep = [p for p in self.state.profiles
                if not ((p.profile_class != 0 and options & 0x80)
                        or (p.profile_class == 0 and options & 0x40))]
        changed = len(keep) != len(self.state.profiles)
        self.state.profiles = keep
        if options & 0x20 and self.state.default_dp_address:
            self.state.default_dp_address = ""
            changed = True
        if not changed:
            return es10c.result(b"\xbf\x34", es10c.NOT_FOUND)
        self._changed_profiles()
        return es10c.result(b"\xbf\x34", es10c.OK)

    def _set_nickname(self, data: bytes) -> bytes:
        iccid, nickname = es10c.nickname_request(data)
        profile = self._find(es10c.ProfileRef(iccid=iccid))
        if profile is None:
            return es10c.result(b"\xbf\x29", es10c.NOT_FOUND)
        profile.nickname = nickname
        self.save()
        return es10c.result(b"\xbf\x29", es10c.OK)
