"""The SM-DP+ side of ES9+ (SM-DP+ ⇄ LPA), without I/O.

GSMA SGP.22 v2.x §3.1.2–3.1.3 (the download: common mutual authentication, download
preparation, BPP, notification), §5.6 (ES9+ functions and their status codes), §6.5 (JSON
binding). `Es9PlusCore.handle(function, body)` takes a decoded JSON request and returns the
answer (HTTP status and JSON body); sessions live in a `SessionStore`, released orders come from
`DownloadOrders`, the clear profile package from an `UppSource` (the HSM boundary in
production). The HTTP adapter only parses JSON, calls `handle` and writes the answer with
`X-Admin-Protocol`.

Every refusal answers with its SGP.22 subject/reason pair (esim.sgp22.es9plus) and closes the
session; `docs/sgp22.md` lists them. Randomness (transactionId, serverChallenge) and the one-time
key otSK.DP.ECKA come from injectable callables so a recorded session can be replayed.

Curves and CIs (§2.6.7, §5.6.1; the rule in esim.sgp22.curves): the identity may hold a
CERT.DPauth / CERT.DPpb set per CI — a NIST P-256 CI and a brainpoolP256r1 CI, say.
InitiateAuthentication picks the session's CI (euiccCiPKIdToBeUsed): the first of the eUICC's
euiccCiPKIdListForVerification, in the eUICC's order, for which a set is held and which the
eUICC can also sign with (euiccCiPKIdListForSigning ∩ the trusted CIs). The session keeps that
CI's key identifier; the later steps sign with its set, and otSK.DP.ECKA is made on its
CERT.DPpb's curve.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol, runtime_checkable

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from sqlalchemy import Connection, Engine, Table, bindparam, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from esim.confirmation_code import verify_confirmation_code
from esim.errors import ConfirmationCodeMismatch
from esim.es2plus.codes import StatusCode
from esim.sgp22 import authentication as auth
from esim.sgp22 import bpp as bpp_mod
from esim.sgp22 import es9plus as wire
from esim.sgp22 import schema, signatures
from esim.sgp22.cancel_session import check_cancel_session_response
from esim.sgp22.certificates import RspRole, TrustedCis, certificate_curve
from esim.sgp22.errors import (
    Asn1Error,
    AuthenticationError,
    BppError,
    CertificateError,
    KeyAgreementError,
    SignatureError,
    UnsupportedCurveError,
)
from esim.sgp22.es9plus import Es9PlusFieldError
from esim.sgp22.notifications import (
    InstallationResult,
    NotificationEvent,
    read_pending_notification,
)
from esim.sgp22.signatures import Signer
from simcore import db
from simcore.smdp.es9plus_models import SmdpDownloadSession

SUPPORTED_SVN_MAJOR = 2
DEFAULT_SESSION_TTL = timedelta(minutes=10)
DEFAULT_CC_ATTEMPTS = 3


@dataclass(frozen=True)
class DpCredentials:
    """CERT.DPauth / CERT.DPpb issued by one CI (so on one curve) and their Signers."""

    dpauth_certificate: x509.Certificate
    dpauth_signer: Signer
    dppb_certificate: x509.Certificate
    dppb_signer: Signer

    def __repr__(self) -> str:
        return f"DpCredentials(ci={self.ci_key_id.hex()}, curve={self.curve.name})"

    @property
    def ci_key_id(self) -> bytes:
        """The issuing CI's key identifier (CERT.DPauth's authorityKeyIdentifier)."""
        return _authority_key_id(self.dpauth_certificate)

    @property
    def curve(self) -> ec.EllipticCurve:
        """The session curve of this set: CERT.DPpb's (esim.sgp22.curves)."""
        return certificate_curve(self.dppb_certificate, RspRole.DP_PB.certificate_name)


@dataclass(frozen=True)
class SmdpIdentity:
    """Who this SM-DP+ is: its address, OID, certificates and signing keys (Signers: HSM keys).
    `more_credentials` are CERT.DPauth / CERT.DPpb sets of further CIs (another curve)."""

    address: str
    oid: str
    dpauth_certificate: x509.Certificate
    dpauth_signer: Signer
    dppb_certificate: x509.Certificate
    dppb_signer: Signer
    cis: TrustedCis
    host_id: bytes = bpp_mod.DEFAULT_HOST_ID
    more_credentials: tuple[DpCredentials, ...] = ()

    def __repr__(self) -> str:
        return f"SmdpIdentity({self.address!r}, oid={self.oid})"

    @property
    def credentials(self) -> list[DpCredentials]:
        """Every CERT.DPauth / CERT.DPpb set, the first one's first."""
        return [DpCredentials(self.dpauth_certificate, self.dpauth_signer,
                              self.dppb_certificate, self.dppb_signer),
                *self.more_credentials]


@dataclass(frozen=True)
class DownloadSession:
    """One RSP session (SGP.22 §3.1.2), keyed by transactionId. No secret in it."""

    transaction_id: bytes
    euicc_challenge: bytes
    server_challenge: bytes
    ci_key_id: bytes
    expires_at: datetime
    stage: str = "initiated"  # initiated → authenticated → delivered
    matching_id: str | None = None
    eid: str | None = None
    iccid: str | None = None
    euicc_certificate: bytes | None = None  # DER, kept for euiccSignature2 / PIR / cancel
    smdp_signature2: bytes | None = None  # '5F37' TLV, covered by euiccSignature2
    cc_required: bool = False


class SessionStore(Protocol):
    def get(self, transaction_id: bytes) -> DownloadSession | None: ...
    def put(self, session: DownloadSession) -> None: ...
    def delete(self, transaction_id: bytes) -> None: ...


class InMemorySessions:
    """A SessionStore in a dict (tests, one process); expired sessions are swept on access."""

    def __init__(self) -> None:
        self._sessions: dict[bytes, DownloadSession] = {}

    def get(self, transaction_id: bytes) -> DownloadSession | None:
        return self._sessions.get(transaction_id)

    def put(self, session: DownloadSession) -> None:
        self._sessions[session.transaction_id] = session

    def delete(self, transaction_id: bytes) -> None:
        self._sessions.pop(transaction_id, None)

    def sweep(self, now: datetime) -> int:
        expired = [t for t, s in self._sessions.items() if s.expires_at <= now]
        for tid in expired:
            del self._sessions[tid]
        return len(expired)


@dataclass(frozen=True)
class ReleasedOrder:
    """A profile released for download under a matching ID (SGP.22 §3.1.1, ES2+)."""

    matching_id: str
    iccid: str
    profile_metadata: bytes  # StoreMetadataRequest (BF25) DER
    eid: str | None = None
    confirmation_code_hash: bytes | None = None  # SHA-256(CC); a secret at rest
    expires_at: datetime | None = None
    downloads_left: int | None = None
    released: bool = True  # False: ordered under this matching ID, not released yet
    # What the UppSource needs of the store, read with the order when the store can (the SIM's
    # identities and key references for HsmUppSource: no read of its own); opaque here.
    upp_record: Any = field(default=None, repr=False, compare=False)

    def __repr__(self) -> str:
        return f"ReleasedOrder({self.matching_id!r}, iccid={self.iccid})"


class DownloadOrders(Protocol):
    """The order side the ES9+ core reads and reports to (simcore's store in production)."""

    def released(self, matching_id: str) -> ReleasedOrder | None: ...
    def confirmation_code_failed(self, order: ReleasedOrder) -> int:
        """Count a wrong confirmation code; return the attempts left."""
        ...
    def expired(self, order: ReleasedOrder) -> None:
        """The order was found expired (refused 8.8.5 / 4.10): end it."""
        ...
    def delivered(self, order: ReleasedOrder, eid: str, transaction_id: bytes) -> None: ...
    def installed(self, iccid: str, eid: str | None) -> None: ...
    def install_failed(self, iccid: str, eid: str | None, reason: str) -> None: ...
    def cancelled(self, iccid: str, eid: str | None, reason: str) -> None: ...
    def notified(self, iccid: str | None, eid: str, event: NotificationEvent) -> None: ...


@runtime_checkable
class SessionJoiningOrders(DownloadOrders, Protocol):
    """DownloadOrders over the same store as the sessions (`sessions`): a report and the
    session's step are written in one transaction — the BPP's delivery with the session now at
    `delivered`, the installation result with the session's end. Half the transactions of those
    two steps, and no window in which one is written without the other."""

    sessions: SessionStore

    def session_with_order(self, transaction_id: bytes
                           ) -> tuple[DownloadSession | None, ReleasedOrder | None]:
        """The session and `released(session.matching_id)` in one read."""
        ...

    def session_with_released(self, transaction_id: bytes, matching_id: str
                              ) -> tuple[DownloadSession | None, ReleasedOrder | None]:
        """The session and `released(matching_id)` in one read (AuthenticateClient: the
        matching ID is the eUICC's, not yet the session's)."""
        ...

    def delivered(self, order: ReleasedOrder, eid: str, transaction_id: bytes,
                  session: DownloadSession | None = None) -> None: ...
    def installed(self, iccid: str, eid: str | None,
                  transaction_id: bytes | None = None) -> None: ...
    def install_failed(self, iccid: str, eid: str | None, reason: str,
                       transaction_id: bytes | None = None) -> None: ...


UppSource = Callable[[ReleasedOrder], bytes]


@dataclass(frozen=True)
class Answer:
    """What to send back: HTTP status and JSON body (None for 204)."""

    status: int
    body: dict[str, Any] | None


class Refusal(Exception):
    def __init__(self, code: StatusCode, message: str) -> None:
        self.code = code
        self.message = message
        super().__init__(f"{code}: {message}")


def _iccid_text(iccid: bytes | None) -> str | None:
    if iccid is None:
        return None
    digits = "".join(f"{b & 0x0F:x}{b >> 4:x}" for b in iccid)
    return digits.rstrip("f").upper()


def _certificate_refusal(exc: CertificateError) -> Refusal:
    if exc.reason == "unknown-ci":
        return Refusal(wire.CI_PUBLIC_KEY_UNKNOWN, str(exc))
    eum = exc.certificate == RspRole.EUM.certificate_name
    if exc.reason in ("expired", "not-yet-valid"):
        return Refusal(wire.EUM_CERTIFICATE_EXPIRED if eum else wire.EUICC_CERTIFICATE_EXPIRED,
                       str(exc))
    if exc.reason == "eid-mismatch":
        return Refusal(wire.EID_REFUSED, str(exc))
    return Refusal(wire.EUM_CERTIFICATE_INVALID if eum else wire.EUICC_CERTIFICATE_INVALID,
                   str(exc))


class Es9PlusCore:
    """ES9+ for one SM-DP+ identity."""

    def __init__(self, identity: SmdpIdentity, sessions: SessionStore, orders: DownloadOrders,
                 upp_source: UppSource, *, session_ttl: timedelta = DEFAULT_SESSION_TTL,
                 now: Callable[[], datetime] = lambda: datetime.now(UTC),
                 random_bytes: Callable[[int], bytes] = os.urandom,
                 one_time_key: Callable[[], ec.EllipticCurvePrivateKey] | None = None) -> None:
        self.identity = identity
        self.sessions = sessions
        self.orders = orders
        self.upp_source = upp_source
        self.session_ttl = session_ttl
        self.now = now
        self.random_bytes = random_bytes
        # otSK.DP.ECKA: made fresh on the session's curve, unless a replay injects it
        self.one_time_key = one_time_key
        # CI key identifier -> its set, the DER of its certificates (the first set wins a tie)
        self._sets: dict[bytes, tuple[DpCredentials, bytes, bytes]] = {}
        for creds in identity.credentials:
            self._sets.setdefault(creds.ci_key_id, (
                creds, creds.dpauth_certificate.public_bytes(serialization.Encoding.DER),
                creds.dppb_certificate.public_bytes(serialization.Encoding.DER)))
        self._first = next(iter(self._sets.values()))
        # Orders that write the sessions' steps with their reports (StoreDownloadOrders over
        # the sessions' store): one transaction per step instead of two.
        self._joined: SessionJoiningOrders | None = (
            orders if isinstance(orders, SessionJoiningOrders) and orders.sessions is sessions
            else None)

    def __repr__(self) -> str:
        return f"Es9PlusCore({self.identity.address!r})"

    # ------------------------------------------------------------------ dispatch

    def handle(self, function: str, body: Any) -> Answer:
        """Answer one ES9+ request (`function` as in the path, e.g. 'authenticateClient')."""
        handler = {
            "initiateAuthentication": self._initiate_authentication,
            "authenticateClient": self._authenticate_client,
            "getBoundProfilePackage": self._get_bound_profile_package,
            "handleNotification": self._handle_notification,
            "cancelSession": self._cancel_session,
        }.get(function)
        if handler is None:
            return Answer(404, None)
        if not isinstance(body, dict):
            return Answer(200, wire.failure(wire.FUNCTION_INVALID, "the body is not a JSON object"))
        try:
            _check_fields(function, body)  # the form of every field before any lookup
            return handler(body)
        except Es9PlusFieldError as exc:
            code = wire.FUNCTION_MISSING_ELEMENT if exc.missing else wire.FUNCTION_INVALID
            self._close(body)
            return Answer(200, wire.failure(code, f"$.{exc}"))  # a JSON path: $.field: why
        except Refusal as refusal:
            self._close(body)
            return Answer(200, wire.failure(refusal.code, refusal.message))

    def _close(self, body: dict[str, Any]) -> None:
        with contextlib.suppress(Es9PlusFieldError):
            self.sessions.delete(wire.field_transaction_id(body))

    def _set(self, session: DownloadSession) -> tuple[DpCredentials, bytes, bytes]:
        """The CERT.DPauth / DPpb set of the session's CI (the first set for a session
        started before this identity held several)."""
        return self._sets.get(session.ci_key_id, self._first)

    def _session(self, body: dict[str, Any], stage: str | None) -> DownloadSession:
        return self._checked(self.sessions.get(wire.field_transaction_id(body)), stage)

    def _checked(self, session: DownloadSession | None, stage: str | None) -> DownloadSession:
        if session is None or session.expires_at <= self.now():
            raise Refusal(wire.TRANSACTION_ID_UNKNOWN, "no such RSP session (or it expired)")
        if stage is not None and session.stage != stage:
            raise Refusal(wire.TRANSACTION_ID_UNKNOWN,
                          f"the session is at {session.stage}, not {stage}")
        return session

    # ------------------------------------------------------------------ functions

    def _initiate_authentication(self, body: dict[str, Any]) -> Answer:
        euicc_challenge = wire.field_b64(body, "euiccChallenge")
        info1_der = wire.field_b64(body, "euiccInfo1")
        address = wire.field_text(body, "smdpAddress")
        assert euicc_challenge is not None and info1_der is not None
        if len(euicc_challenge) != auth.CHALLENGE_LENGTH:
            raise Es9PlusFieldError("euiccChallenge", "not 16 bytes")
        if address.lower() != self.identity.address.lower():  # §5.6.1: case-insensitive
            raise Refusal(wire.SMDP_ADDRESS_REFUSED, f"{address!r} is not this SM-DP+")
        try:
            info1 = schema.decode("EUICCInfo1", info1_der)
        except Asn1Error as exc:
            raise Es9PlusFieldError("euiccInfo1", str(exc)) from None
        if info1["svn"][0] != SUPPORTED_SVN_MAJOR:
            raise Refusal(wire.SVN_UNSUPPORTED, f"SGP.22 v{info1['svn'][0]} is not supported")
        # the session's CI (module docstring; esim.sgp22.curves): the eUICC's order
        verification = [bytes(k) for k in info1["euiccCiPKIdListForVerification"]]
        held = [k for k in verification if k in self._sets]
        if not held:
            raise Refusal(wire.CERTIFICATE_UNAVAILABLE,
                          "no CERT.DPauth from a CI the eUICC can verify")
        trusted = set(self.identity.cis.key_ids)
        signing = [bytes(k) for k in info1["euiccCiPKIdListForSigning"] if bytes(k) in trusted]
        if not signing:
            raise Refusal(wire.SECURITY_CONFIGURATION_UNSUPPORTED,
                          "none of the eUICC's CIs for signing is trusted here")
        common = [k for k in held if k in signing]
        if not common:
            raise Refusal(wire.CERTIFICATE_UNAVAILABLE,
                          "no CERT.DPauth from a CI the eUICC both verifies and signs with")
        ci_key_id = common[0]
        creds, dpauth_der, _ = self._sets[ci_key_id]
        tid = self.random_bytes(16)
        server_challenge = self.random_bytes(auth.CHALLENGE_LENGTH)
        signed1 = auth.server_signed1(transaction_id=tid, euicc_challenge=euicc_challenge,
                                      server_address=self.identity.address,
                                      server_challenge=server_challenge)
        signature1 = signatures.sign(creds.dpauth_signer,
                                     signatures.server_signature1_input(signed1),
                                     "serverSignature1")
        self.sessions.put(DownloadSession(
            transaction_id=tid, euicc_challenge=euicc_challenge,
            server_challenge=server_challenge, ci_key_id=ci_key_id,
            expires_at=self.now() + self.session_ttl))
        return Answer(200, wire.success(
            transactionId=wire.transaction_id_text(tid), serverSigned1=wire.b64(signed1),
            serverSignature1=wire.b64(signature1),
            euiccCiPKIdToBeUsed=wire.b64(schema.encode("SubjectKeyIdentifier", ci_key_id)),
            serverCertificate=wire.b64(dpauth_der)))

    def _authenticate_client(self, body: dict[str, Any]) -> Answer:
        asr = wire.field_b64(body, "authenticateServerResponse")
        assert asr is not None
        decoded: auth.DecodedAuthenticateServerResponse | None = None
        order: ReleasedOrder | None = None
        if self._joined is not None:
            # The session and the order of the matching ID the eUICC sent, in one read; the
            # checks below run on them as before, in the same order (a malformed response is
            # still refused after the session is found: decoded again there).
            with contextlib.suppress(AuthenticationError):
                decoded = auth.decode_authenticate_server_response(asr)
        read_with_session = decoded is not None and bool(decoded.matching_id)
        if read_with_session:
            assert self._joined is not None and decoded is not None and decoded.matching_id
            found, order = self._joined.session_with_released(wire.field_transaction_id(body),
                                                              decoded.matching_id)
            session = self._checked(found, "initiated")
        else:
            session = self._session(body, "initiated")
        try:
            euicc = auth.check_authenticate_server_response(
                asr, cis=self.identity.cis, transaction_id=session.transaction_id,
                server_address=self.identity.address, server_challenge=session.server_challenge,
                ci_key_id=session.ci_key_id, now=self.now(), decoded=decoded)
        except AuthenticationError as exc:
            if exc.reason == "malformed":
                raise Es9PlusFieldError("authenticateServerResponse", str(exc)) from None
            if exc.check == "euiccSigned1.transactionId":
                raise Refusal(wire.TRANSACTION_ID_UNKNOWN, str(exc)) from None
            if exc.check == "euiccSigned1.serverAddress":
                raise Refusal(wire.SMDP_ADDRESS_REFUSED, str(exc)) from None
            raise Refusal(wire.EUICC_VERIFICATION_FAILED, str(exc)) from None
        except CertificateError as exc:
            raise _certificate_refusal(exc) from None
        except SignatureError as exc:
            raise Refusal(wire.EUICC_VERIFICATION_FAILED, str(exc)) from None
        if not euicc.matching_id:
            raise Refusal(wire.MATCHING_ID_REFUSED, "no matching ID (activation code) given")
        if not read_with_session:
            order = self.orders.released(euicc.matching_id)
        if order is None:
            raise Refusal(wire.MATCHING_ID_REFUSED, "no released order for this matching ID")
        if not order.released:
            raise Refusal(wire.PROFILE_NOT_RELEASED, "the profile is not released yet")
        if order.eid is not None and order.eid != euicc.eid:
            raise Refusal(wire.EID_REFUSED, "the order is for another eUICC")
        if order.expires_at is not None and order.expires_at <= self.now():
            self.orders.expired(order)
            raise Refusal(wire.DOWNLOAD_ORDER_EXPIRED, "the download order has expired")
        if order.downloads_left is not None and order.downloads_left <= 0:
            raise Refusal(wire.DOWNLOAD_ORDER_RETRIES_EXCEEDED,
                          "no download attempts left for this order")
        cc_required = order.confirmation_code_hash is not None
        creds, _, dppb_der = self._set(session)
        signed2 = auth.smdp_signed2(transaction_id=session.transaction_id,
                                    cc_required=cc_required)
        signature2 = signatures.sign(
            creds.dppb_signer,
            signatures.smdp_signature2_input(signed2, euicc.euicc_signature1), "smdpSignature2")
        self.sessions.put(replace(
            session, stage="authenticated", matching_id=order.matching_id, eid=euicc.eid,
            iccid=order.iccid, euicc_certificate=euicc.identity.certificate.public_bytes(
                serialization.Encoding.DER),
            smdp_signature2=signature2, cc_required=cc_required))
        return Answer(200, wire.success(
            transactionId=wire.transaction_id_text(session.transaction_id),
            profileMetadata=wire.b64(order.profile_metadata), smdpSigned2=wire.b64(signed2),
            smdpSignature2=wire.b64(signature2), smdpCertificate=wire.b64(dppb_der)))

    def _get_bound_profile_package(self, body: dict[str, Any]) -> Answer:
        order: ReleasedOrder | None = None
        if self._joined is not None:  # the session and its order in one read
            found, order = self._joined.session_with_order(wire.field_transaction_id(body))
            session = self._checked(found, "authenticated")
        else:
            session = self._session(body, "authenticated")
        pdr = wire.field_b64(body, "prepareDownloadResponse")
        assert pdr is not None and session.euicc_certificate and session.smdp_signature2
        euicc_cert = x509.load_der_x509_certificate(session.euicc_certificate)
        try:
            prepared = auth.check_prepare_download_response(
                pdr, euicc=euicc_cert, transaction_id=session.transaction_id,
                smdp_signature2=session.smdp_signature2)
        except AuthenticationError as exc:
            if exc.reason == "malformed":
                raise Es9PlusFieldError("prepareDownloadResponse", str(exc)) from None
            if exc.check == "euiccSigned2.transactionId":
                raise Refusal(wire.TRANSACTION_ID_UNKNOWN, str(exc)) from None
            raise Refusal(wire.EUICC_VERIFICATION_FAILED, str(exc)) from None
        except SignatureError as exc:
            raise Refusal(wire.EUICC_VERIFICATION_FAILED, str(exc)) from None
        assert session.matching_id is not None and session.eid is not None
        if self._joined is None:
            order = self.orders.released(session.matching_id)
        if order is None or not order.released or order.iccid != session.iccid:
            raise Refusal(wire.PROFILE_UNAVAILABLE, "the order is no longer released")
        if order.confirmation_code_hash is not None:
            if prepared.hash_cc is None:
                raise Refusal(wire.CONFIRMATION_CODE_MISSING, "a confirmation code is required")
            try:
                verify_confirmation_code(order.confirmation_code_hash, session.transaction_id,
                                         prepared.hash_cc)
            except ConfirmationCodeMismatch:
                left = self.orders.confirmation_code_failed(order)
                raise Refusal(wire.CONFIRMATION_CODE_RETRIES_EXCEEDED if left <= 0
                              else wire.CONFIRMATION_CODE_REFUSED,
                              f"wrong confirmation code ({max(left, 0)} attempts left)") from None
        creds = self._set(session)[0]
        upp = self.upp_source(order)
        try:
            built = bpp_mod.build_bpp(
                upp=upp, store_metadata=order.profile_metadata,
                transaction_id=session.transaction_id, eid=bytes.fromhex(session.eid),
                otpk_euicc=prepared.otpk_euicc, dppb_signer=creds.dppb_signer,
                otsk_dp=self.one_time_key() if self.one_time_key else None,
                host_id=self.identity.host_id, curve=creds.curve)
        except (BppError, KeyAgreementError, UnsupportedCurveError) as exc:
            raise Refusal(wire.EUICC_VERIFICATION_FAILED, str(exc)) from None
        del upp
        delivered = replace(session, stage="delivered")
        if self._joined is not None:
            self._joined.delivered(order, session.eid, session.transaction_id, delivered)
        else:
            self.orders.delivered(order, session.eid, session.transaction_id)
            self.sessions.put(delivered)
        return Answer(200, wire.success(
            transactionId=wire.transaction_id_text(session.transaction_id),
            boundProfilePackage=wire.b64(built.der)))

    def _handle_notification(self, body: dict[str, Any]) -> Answer:
        # HandleNotification has no answer body: whatever is wrong is only not acted upon.
        try:
            der = wire.field_b64(body, "pendingNotification")
            assert der is not None
            notification = read_pending_notification(der)
        except (Es9PlusFieldError, AuthenticationError, Asn1Error, SignatureError):
            return Answer(204, None)
        if isinstance(notification, InstallationResult):
            session = self.sessions.get(notification.transaction_id)
            if session is None or session.euicc_certificate is None or session.iccid is None:
                return Answer(204, None)
            try:
                notification.verify(x509.load_der_x509_certificate(session.euicc_certificate))
            except SignatureError:
                return Answer(204, None)
            reason = f"{notification.bpp_command}: {notification.error_reason}"
            if self._joined is not None:  # the session ends with the report
                if notification.success:
                    self._joined.installed(session.iccid, session.eid, session.transaction_id)
                else:
                    self._joined.install_failed(session.iccid, session.eid, reason,
                                                session.transaction_id)
                return Answer(204, None)
            if notification.success:
                self.orders.installed(session.iccid, session.eid)
            else:
                self.orders.install_failed(session.iccid, session.eid, reason)
            self.sessions.delete(session.transaction_id)
            return Answer(204, None)
        try:
            identity = notification.verify(self.identity.cis, now=self.now())
        except (CertificateError, SignatureError):
            return Answer(204, None)
        self.orders.notified(_iccid_text(notification.iccid), identity.eid, notification.event)
        return Answer(204, None)

    def _cancel_session(self, body: dict[str, Any]) -> Answer:
        session = self._session(body, None)
        response = wire.field_b64(body, "cancelSessionResponse")
        assert response is not None
        if session.euicc_certificate is None:
            raise Refusal(wire.TRANSACTION_ID_UNKNOWN, "the eUICC is not authenticated yet")
        try:
            cancelled = check_cancel_session_response(
                response, euicc_key=x509.load_der_x509_certificate(session.euicc_certificate),
                transaction_id=session.transaction_id, smdp_oid=self.identity.oid)
        except AuthenticationError as exc:
            if exc.reason == "malformed":
                raise Es9PlusFieldError("cancelSessionResponse", str(exc)) from None
            if exc.check.endswith("smdpOid"):
                raise Refusal(wire.SMDP_INVALID_ASSOCIATION, str(exc)) from None
            if exc.check.endswith("transactionId"):
                raise Refusal(wire.TRANSACTION_ID_UNKNOWN, str(exc)) from None
            raise Refusal(wire.EUICC_VERIFICATION_FAILED, str(exc)) from None
        except SignatureError as exc:
            raise Refusal(wire.EUICC_VERIFICATION_FAILED, str(exc)) from None
        if session.iccid is not None:
            self.orders.cancelled(session.iccid, session.eid, cancelled.reason.name.lower())
        self.sessions.delete(session.transaction_id)
        return Answer(200, wire.success())


# The members of each request (SGP.22 §6.5.2.x), checked for presence and form first, so a
# malformed request is answered 1.6 whatever else is wrong with it.
_REQUEST_FIELDS: dict[str, tuple[tuple[str, str], ...]] = {
    "initiateAuthentication": (("euiccChallenge", "b64"), ("euiccInfo1", "b64"),
                               ("smdpAddress", "text")),
    "authenticateClient": (("transactionId", "tid"), ("authenticateServerResponse", "b64")),
    "getBoundProfilePackage": (("transactionId", "tid"), ("prepareDownloadResponse", "b64")),
    "handleNotification": (),  # answered 204 whatever it holds
    "cancelSession": (("transactionId", "tid"), ("cancelSessionResponse", "b64")),
}


def _check_fields(function: str, body: dict[str, Any]) -> None:
    for name, kind in _REQUEST_FIELDS[function]:
        if kind == "tid":
            wire.field_transaction_id(body)
        elif kind == "b64":
            wire.field_b64(body, name)
        else:
            wire.field_text(body, name)


def _authority_key_id(cert: x509.Certificate) -> bytes:
    try:
        return bytes(cert.extensions.get_extension_for_class(
            x509.AuthorityKeyIdentifier).value.key_identifier or b"")
    except x509.ExtensionNotFound:
        return b""



_SESSIONS: Table = SmdpDownloadSession.__table__  # type: ignore[attr-defined]
SESSION_COLUMNS = ("stage", "euicc_challenge", "server_challenge", "ci_key_id", "expires_at",
                   "matching_id", "eid", "iccid", "euicc_certificate", "smdp_signature2",
                   "cc_required")
_GET_SESSION = select(*(_SESSIONS.c[name] for name in SESSION_COLUMNS)).where(
    _SESSIONS.c.transaction_id == bindparam("tid"))
_DELETE_SESSION = _SESSIONS.delete().where(_SESSIONS.c.transaction_id == bindparam("tid"))
_SWEEP_SESSIONS = _SESSIONS.delete().where(_SESSIONS.c.expires_at <= bindparam("now"))


def _upsert_session(dialect: str) -> Any:
    """INSERT … ON CONFLICT (transactionId) DO UPDATE: `put` in one statement."""
    statement = (pg_insert(_SESSIONS) if dialect == "postgresql"
                 else sqlite_insert(_SESSIONS))
    return statement.on_conflict_do_update(
        index_elements=[_SESSIONS.c.transaction_id],
        set_={name: statement.excluded[name] for name in SESSION_COLUMNS})


def session_row(session: DownloadSession) -> dict[str, Any]:
    """The session's row in `smdp_download_session` (column → value)."""
    return {"transaction_id": wire.transaction_id_text(session.transaction_id),
            **{name: getattr(session, name) for name in SESSION_COLUMNS}}


class StoreSessions:
    """A SessionStore in the database (SQLite or PostgreSQL), shared by every worker.

    Each call is one statement on a pooled connection (db.DirectStatement): a read alone, a
    write committed at once — `put` is an upsert. Through the ORM (a session, an identity map,
    a flush and a transaction per call) the seven calls of a download cost three quarters of
    the SM-DP+'s CPU; through Core Connections still half of it (docs/benchmarks.md, smdp)."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self._upsert = _upsert_session(engine.dialect.name)
        # On PostgreSQL on this thread's kept connection (db.KeptConnections) whose commits do
        # not wait for the WAL flush: a session a database crash loses only makes the LPA
        # start its download again (the reports, which write the session with the order's
        # state, stay synchronous: simcore.smdp.download_reports).
        self._get = db.DirectStatement(engine, _GET_SESSION, keep=True, synchronous=False)
        self._put = db.DirectStatement(engine, self._upsert, write=True, keep=True,
                                       synchronous=False)
        self._delete = db.DirectStatement(engine, _DELETE_SESSION, write=True, keep=True,
                                          synchronous=False)

    def __repr__(self) -> str:
        return f"StoreSessions({self.engine.url.render_as_string(hide_password=True)})"

    def get(self, transaction_id: bytes) -> DownloadSession | None:
        rows = self._get.rows(tid=wire.transaction_id_text(transaction_id))
        if not rows:
            return None
        return DownloadSession(transaction_id, **dict(zip(SESSION_COLUMNS, rows[0], strict=True)))

    def put(self, session: DownloadSession) -> None:
        self._put.count(**session_row(session))

    def delete(self, transaction_id: bytes) -> None:
        self._delete.count(tid=wire.transaction_id_text(transaction_id))

    def put_in(self, conn: Connection, session: DownloadSession) -> None:
        """`put` inside the caller's transaction (a report's: simcore.smdp.download_orders)."""
        conn.execute(self._upsert, session_row(session))

    def delete_in(self, conn: Connection, transaction_id: bytes) -> None:
        """`delete` inside the caller's transaction."""
        conn.execute(_DELETE_SESSION, {"tid": wire.transaction_id_text(transaction_id)})

    def sweep(self, now: datetime) -> int:
        """Delete the sessions expired at `now`; how many."""
        with db.connection_transaction(self.engine) as conn:
            return int(conn.execute(_SWEEP_SESSIONS, {"now": now}).rowcount or 0)
