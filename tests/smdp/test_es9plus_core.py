"""The SM-DP+'s ES9+ core (issue 16 item 1): the recorded pySim download's requests replay
through it — every answer equals the recorded one where SGP.22 fixes the bytes, the BPP opens to
upp.der, the installation result is taken — and every refusal gives its subject/reason code and
closes the session. Each test runs twice: on the core, and through the ES9+ HTTP routes
(api.routers.es9plus, httpx on the ASGI app; tests/smdp/test_es9plus_http.py has real TLS)."""

from __future__ import annotations

import base64
import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, ClassVar

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from fastapi.testclient import TestClient

from api.es9plus_listener import es9plus_app
from esim.confirmation_code import hash_confirmation_code
from esim.sgp22 import authentication as auth
from esim.sgp22 import bpp, schema
from esim.sgp22 import es9plus as wire
from esim.sgp22 import signatures as sig
from esim.sgp22.cancel_session import CancelSessionReason, cancel_session_response
from esim.sgp22.certificates import TrustedCis
from esim.sgp22.notifications import NotificationEvent, other_signed_notification
from simcore.smdp.es9plus import (
    Answer,
    Es9PlusCore,
    InMemorySessions,
    ReleasedOrder,
    SmdpIdentity,
)
from tests.esim.sgp22_vectors import cert_pem, data, exchange, h, session
from tests.esim.sgp22_vectors import field as wire_field

NOW = datetime(2026, 12, 7, 6, 2, tzinfo=UTC)
ICCID = "8949449999999990163"


def _cert(name: str) -> x509.Certificate:
    return x509.load_pem_x509_certificate(cert_pem(name))


def _key(name: str) -> ec.EllipticCurvePrivateKey:
    key = serialization.load_pem_private_key(cert_pem(name), None)
    assert isinstance(key, ec.EllipticCurvePrivateKey)
    return key


def _scalar(name: str) -> ec.EllipticCurvePrivateKey:
    return ec.derive_private_key(int(session()["ephemeral_keys"][name], 16), ec.SECP256R1())


def _replaying(key_file: str, recorded: dict[bytes, bytes]) -> sig.Signer:
    """A DPpb signer that gives the recorded (random) signature for a recorded input — so the
    recorded eUICC's euiccSignature2, which covers smdpSignature2, still verifies — and signs
    anything else afresh."""
    fresh = sig.software_signer(_key(key_file))

    def sign(message: bytes) -> bytes:
        return recorded[message] if message in recorded else fresh(message)

    return sign


def _recorded_dppb_signatures() -> dict[bytes, bytes]:
    asr = sig.authenticate_server_response_parts(
        wire_field("AuthenticateClient", "request.authenticateServerResponse"))
    smdp_input = sig.smdp_signature2_input(wire_field("AuthenticateClient",
                                                      "response.smdpSigned2"), asr.signature_tlv)
    return {smdp_input: wire_field("AuthenticateClient", "response.smdpSignature2")[3:]}


@dataclass
class Orders:
    """DownloadOrders in memory, recording what the core reports."""

    orders: dict[str, ReleasedOrder] = field(default_factory=dict)
    cc_attempts: int = 3
    events: list[tuple[Any, ...]] = field(default_factory=list)

    def released(self, matching_id: str) -> ReleasedOrder | None:
        return self.orders.get(matching_id)

    def confirmation_code_failed(self, order: ReleasedOrder) -> int:
        self.cc_attempts -= 1
        self.events.append(("cc-failed", order.iccid))
        return self.cc_attempts

    def expired(self, order: ReleasedOrder) -> None:
        self.events.append(("expired", order.iccid))

    def delivered(self, order: ReleasedOrder, eid: str, transaction_id: bytes) -> None:
        self.events.append(("delivered", order.iccid, eid))

    def installed(self, iccid: str, eid: str | None) -> None:
        self.events.append(("installed", iccid, eid))

    def install_failed(self, iccid: str, eid: str | None, reason: str) -> None:
        self.events.append(("install-failed", iccid, reason))

    def cancelled(self, iccid: str, eid: str | None, reason: str) -> None:
        self.events.append(("cancelled", iccid, reason))

    def notified(self, iccid: str | None, eid: str, event: NotificationEvent) -> None:
        self.events.append(("notified", iccid, eid, event))


@dataclass
class Smdp:
    core: Es9PlusCore
    orders: Orders
    sessions: Any
    via: ClassVar[str] = "core"
    _client: Any = None

    def handle(self, function: str, body: Any) -> Answer:
        """`function` answered by the core itself, or through the HTTP routes."""
        if self.via == "core":
            return self.core.handle(function, body)
        if self._client is None:
            self._client = TestClient(es9plus_app(self.core), base_url="https://smdp.test")
        r = self._client.post(f"{wire.PATH_PREFIX}/{function}", content=json.dumps(body),
                              headers={wire.ADMIN_PROTOCOL_HEADER: wire.ADMIN_PROTOCOL,
                                       "Content-Type": "application/json"})
        assert r.headers[wire.ADMIN_PROTOCOL_HEADER] == wire.ADMIN_PROTOCOL
        if r.status_code == 200:
            assert r.headers["content-type"] == "application/json;charset=UTF-8"
        return Answer(r.status_code, r.json() if r.content and r.status_code != 404 else None)


@pytest.fixture(autouse=True, params=["core", "http"])
def _via(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(Smdp, "via", request.param)


def _smdp(*, order: dict[str, Any] | None = None, host_id: bytes = b"mahlzeit",
          random: Callable[[int], bytes] | None = None, now: datetime = NOW,
          sessions: Any = None) -> Smdp:
    s = session()
    recorded_random = [h(s["transactionId"]), h(s["serverChallenge"])]
    identity = SmdpIdentity(
        address=s["smdp_address"], oid="2.999.10",
        dpauth_certificate=_cert("CERT_S_SM_DPauth_ECDSA_NIST.pem"),
        dpauth_signer=sig.software_signer(_key("SK_S_SM_DPauth_ECDSA_NIST.pem")),
        dppb_certificate=_cert("CERT_S_SM_DPpb_ECDSA_NIST.pem"),
        dppb_signer=_replaying("SK_S_SM_DPpb_ECDSA_NIST.pem", _recorded_dppb_signatures()),
        cis=TrustedCis([_cert("CERT_CI_ECDSA_NIST.pem")]), host_id=host_id)
    released = ReleasedOrder(matching_id=s["matchingId"], iccid=ICCID,
                             profile_metadata=wire_field("AuthenticateClient",
                                                         "response.profileMetadata"),
                             **(order or {}))
    orders = Orders({released.matching_id: released})
    sessions = sessions if sessions is not None else InMemorySessions()
    core = Es9PlusCore(identity, sessions, orders, lambda o: data("upp.der"),
                       now=lambda: now,
                       random_bytes=random or (lambda n: recorded_random.pop(0)),
                       one_time_key=lambda: _scalar("otSK.DP.ECKA"))
    return Smdp(core, orders, sessions)


def _request(function: str) -> dict[str, Any]:
    return json.loads(exchange(function)["request_body"])


def _response(function: str) -> dict[str, Any]:
    return json.loads(exchange(function)["response_body"])


def _call(smdp: Smdp, function: str, body: dict[str, Any] | None = None) -> dict[str, Any]:
    name = function[0].lower() + function[1:]
    answer = smdp.handle(name, body if body is not None else _request(function))
    assert answer.status == 200 and answer.body is not None
    return answer.body


def _code(body: dict[str, Any]) -> tuple[str, str]:
    status, code = wire.status_of(body)
    assert status == "Failed" and code is not None
    return code.subject, code.reason


def test_recorded_download_replays_through_the_core() -> None:
    smdp = _smdp()
    first = _call(smdp, "InitiateAuthentication")
    recorded = _response("InitiateAuthentication")
    for name in ("transactionId", "serverSigned1", "euiccCiPKIdToBeUsed", "serverCertificate"):
        assert first[name] == recorded[name], name
    sig.verify(_cert("CERT_S_SM_DPauth_ECDSA_NIST.pem"),
               base64.b64decode(first["serverSigned1"]),
               base64.b64decode(first["serverSignature1"]), "serverSignature1")

    second = _call(smdp, "AuthenticateClient")
    recorded = _response("AuthenticateClient")
    for name in ("transactionId", "profileMetadata", "smdpSigned2", "smdpSignature2",
                 "smdpCertificate"):
        assert second[name] == recorded[name], name

    third = _call(smdp, "GetBoundProfilePackage")
    ours = base64.b64decode(third["boundProfilePackage"])
    opened = bpp.open_bpp(ours, otsk_euicc=_scalar("otSK.EUICC.ECKA"), eid=h(session()["eid"]),
                          dppb_public_key=_cert("CERT_S_SM_DPpb_ECDSA_NIST.pem"),
                          transaction_id=h(session()["transactionId"]))
    assert opened.upp == data("upp.der")
    assert max(len(s) for s in schema.decode("BoundProfilePackage", ours)["sequenceOf86"]) <= 1016
    # up to the profile segments the recorded BPP is reproduced (its smdpSign is random)
    recorded_bpp = data("bpp.der")
    a2 = recorded_bpp.index(b"\xa2\x4a")
    span = recorded_bpp.index(b"\x5f\x37\x40")
    assert ours[5:span] == recorded_bpp[5:span]  # after BF36 and its (other) length
    assert ours[span + 67:a2] == recorded_bpp[span + 67:a2]
    assert smdp.orders.events == [("delivered", ICCID, session()["eid"])]

    answer = smdp.handle("handleNotification", _request("HandleNotification"))
    assert (answer.status, answer.body) == (204, None)
    assert smdp.orders.events[-1] == ("installed", ICCID, session()["eid"])
    assert smdp.sessions.get(h(session()["transactionId"])) is None


def _authenticated() -> Smdp:
    smdp = _smdp()
    _call(smdp, "InitiateAuthentication")
    _call(smdp, "AuthenticateClient")
    return smdp


def _b64_flip(body: dict[str, Any], name: str, needle: bytes, delta: int = 0) -> dict[str, Any]:
    raw = bytearray(base64.b64decode(body[name]))
    raw[raw.index(needle) + delta] ^= 0x01
    return {**body, name: base64.b64encode(bytes(raw)).decode()}


def _tid_session_closed(smdp: Smdp) -> bool:
    return smdp.sessions.get(h(session()["transactionId"])) is None


@pytest.mark.parametrize(("change", "code"), [
    (lambda b: {**b, "smdpAddress": "other.example.com"}, ("8.8.1", "3.8")),
    (lambda b: {k: v for k, v in b.items() if k != "euiccInfo1"}, ("1.6", "2.2")),
    (lambda b: {**b, "euiccChallenge": "!!"}, ("1.6", "2.1")),
    (lambda b: {**b, "euiccInfo1": wire.b64(schema.encode("EUICCInfo1", {
        "svn": b"\x03\x00\x00", "euiccCiPKIdListForVerification": [bytes(20)],
        "euiccCiPKIdListForSigning": [bytes(20)]}))}, ("8.8.3", "3.1")),
    (lambda b: {**b, "euiccInfo1": wire.b64(schema.encode("EUICCInfo1", {
        "svn": b"\x02\x02\x00", "euiccCiPKIdListForVerification": [bytes(20)],
        "euiccCiPKIdListForSigning": [bytes(20)]}))}, ("8.8.4", "3.7")),
    (lambda b: {**b, "euiccInfo1": wire.b64(schema.encode("EUICCInfo1", {
        "svn": b"\x02\x02\x00",
        "euiccCiPKIdListForVerification": [h("c528f01fcb51330014799f97493782829e1e55f5")],
        "euiccCiPKIdListForSigning": [bytes(20)]}))}, ("8.8.2", "3.1")),
])
def test_initiate_authentication_refusals(change: Callable[[dict[str, Any]], dict[str, Any]],
                                          code: tuple[str, str]) -> None:
    smdp = _smdp()
    assert _code(_call(smdp, "InitiateAuthentication", change(_request(
        "InitiateAuthentication")))) == code


def _asr_body(**changes: Any) -> dict[str, Any]:
    return {**_request("AuthenticateClient"), **changes}


@pytest.mark.parametrize(("body", "order", "code"), [
    (lambda: _asr_body(transactionId="00" * 16), None, ("8.10.1", "3.9")),
    (lambda: _b64_flip(_asr_body(), "authenticateServerResponse",
                       bytes.fromhex("800435230145"), 3), None, ("8.1", "6.1")),
    (lambda: _b64_flip(_asr_body(), "authenticateServerResponse", b"\x5f\x37\x40", 9), None,
     ("8.1", "6.1")),
    # a byte inside the eUICC certificate's signature (its last byte before the EUM one)
    (lambda: _b64_flip(_asr_body(), "authenticateServerResponse",
                       bytes.fromhex("3082027930"), -1), None, ("8.1.3", "6.1")),
    (lambda: _asr_body(), {"eid": "89049032123451234512345678901243"}, ("8.1.1", "3.8")),
    (lambda: _asr_body(), {"expires_at": NOW - timedelta(seconds=1)}, ("8.8.5", "4.10")),
    (lambda: _asr_body(), {"downloads_left": 0}, ("8.8.5", "6.4")),
    (lambda: _asr_body(), {"released": False}, ("8.2", "1.2")),
    (lambda: _asr_body(authenticateServerResponse="AAAA"), None, ("1.6", "2.1")),
])
def test_authenticate_client_refusals(body: Callable[[], dict[str, Any]],
                                      order: dict[str, Any] | None,
                                      code: tuple[str, str]) -> None:
    smdp = _smdp(order=order)
    _call(smdp, "InitiateAuthentication")
    request = body()
    assert _code(_call(smdp, "AuthenticateClient", request)) == code
    # only an expired order is ended by the refusal (the store moves it to error)
    assert [e for e in smdp.orders.events if e[0] == "expired"] == (
        [("expired", smdp.orders.orders[session()["matchingId"]].iccid)]
        if code == ("8.8.5", "4.10") else [])
    if request["transactionId"] == session()["transactionId"]:
        # the refused session is closed and cannot go on
        assert _tid_session_closed(smdp)
        assert _code(_call(smdp, "AuthenticateClient")) == ("8.10.1", "3.9")
    else:
        # an unknown transactionId closes nobody else's session
        assert not _tid_session_closed(smdp)


def test_unknown_matching_id_and_expired_session() -> None:
    smdp = _smdp()
    smdp.orders.orders.clear()
    _call(smdp, "InitiateAuthentication")
    assert _code(_call(smdp, "AuthenticateClient")) == ("8.2.6", "3.8")
    late = _smdp(now=NOW)
    _call(late, "InitiateAuthentication")
    late.core.now = lambda: NOW + timedelta(hours=1)
    assert _code(_call(late, "AuthenticateClient")) == ("8.10.1", "3.9")
    assert _tid_session_closed(late)
    swept = _smdp(now=NOW)
    _call(swept, "InitiateAuthentication")
    assert swept.sessions.sweep(NOW + timedelta(minutes=9)) == 0
    assert swept.sessions.sweep(NOW + timedelta(minutes=10)) == 1


def test_get_bound_profile_package_refusals() -> None:
    smdp = _authenticated()
    assert _code(_call(smdp, "GetBoundProfilePackage", _b64_flip(
        _request("GetBoundProfilePackage"), "prepareDownloadResponse",
        b"\x5f\x49\x41", 20))) == ("8.1", "6.1")
    assert _tid_session_closed(smdp)
    assert smdp.orders.events == []
    # the order withdrawn (cancelled) between AuthenticateClient and GetBoundProfilePackage
    gone = _authenticated()
    gone.orders.orders.clear()
    assert _code(_call(gone, "GetBoundProfilePackage")) == ("8.2", "3.7")
    assert _tid_session_closed(gone)
    # out of order: BPP before AuthenticateClient
    early = _smdp()
    _call(early, "InitiateAuthentication")
    assert _code(_call(early, "GetBoundProfilePackage")) == ("8.10.1", "3.9")


def _cc_smdp(attempts: int = 3) -> tuple[Smdp, dict[str, Any], bytes]:
    """An order with a confirmation code, authenticated by the recorded eUICC key (the
    recorded PrepareDownloadResponse has no hashCc, so the test's eUICC answers afresh)."""
    code_hash = hash_confirmation_code("12345678")
    smdp = _smdp(order={"confirmation_code_hash": code_hash},
                 random=_recorded_random())
    smdp.orders.cc_attempts = attempts
    _call(smdp, "InitiateAuthentication")
    second = _call(smdp, "AuthenticateClient")
    assert base64.b64decode(second["smdpSigned2"]).endswith(b"\x01\x01\xff")  # ccRequiredFlag
    return smdp, second, code_hash


def _recorded_random() -> Callable[[int], bytes]:
    values = [h(session()["transactionId"]), h(session()["serverChallenge"])]
    return lambda n: values.pop(0)


def _prepare(second: dict[str, Any], hash_cc: bytes | None) -> dict[str, Any]:
    """The eUICC's PrepareDownload for the SM-DP+'s AuthenticateClient answer."""
    credentials = auth.EuiccCredentials(
        signer=sig.software_signer(_key("SK_EUICC_ECDSA_NIST.pem")),
        certificate=_cert("CERT_EUICC_ECDSA_NIST.pem"),
        eum_certificate=_cert("CERT_EUM_ECDSA_NIST.pem"),
        cis=TrustedCis([_cert("CERT_CI_ECDSA_NIST.pem")]))
    asr = sig.authenticate_server_response_parts(
        wire_field("AuthenticateClient", "request.authenticateServerResponse"))
    state = auth.ServerAuthenticated(response=b"", transaction_id=h(session()["transactionId"]),
                                     server_address=session()["smdp_address"],
                                     dpauth=_cert("CERT_S_SM_DPauth_ECDSA_NIST.pem"),
                                     euicc_signature1=asr.signature_tlv)
    request = (base64.b64decode(second["smdpSigned2"])
               + base64.b64decode(second["smdpSignature2"])
               + (b"\x04\x20" + hash_cc if hash_cc else b"")
               + base64.b64decode(second["smdpCertificate"]))
    from esim.sgp22.tlv import encode_tlv
    if hash_cc is None:  # an eUICC that ignores ccRequiredFlag: euiccSigned2 without hashCc
        otpk = h(session()["ephemeral_keys"]["otPK.EUICC.ECKA"])
        signed = schema.encode("EUICCSigned2", {"transactionId": state.transaction_id,
                                                "euiccOtpk": otpk})
        signature = sig.sign(credentials.signer, sig.euicc_signature2_input(
            signed, base64.b64decode(second["smdpSignature2"])), "euiccSignature2")
        return {"transactionId": session()["transactionId"], "prepareDownloadResponse":
                wire.b64(encode_tlv(b"\xbf\x21", encode_tlv(b"\xa0", signed + signature)))}
    prepared = auth.prepare_download(encode_tlv(b"\xbf\x21", request), credentials=credentials,
                                     session=state, hash_cc=hash_cc, now=NOW)
    return {"transactionId": session()["transactionId"],
            "prepareDownloadResponse": wire.b64(prepared.response)}


def test_confirmation_code_accepted() -> None:
    smdp, second, code_hash = _cc_smdp()
    good = hashlib.sha256(code_hash + h(session()["transactionId"])).digest()
    third = _call(smdp, "GetBoundProfilePackage", _prepare(second, good))
    assert "boundProfilePackage" in third
    assert smdp.orders.events[-1][0] == "delivered"


def test_confirmation_code_missing_wrong_and_exhausted() -> None:
    smdp, second, _ = _cc_smdp()
    assert _code(_call(smdp, "GetBoundProfilePackage", _prepare(second, None))) == (
        "8.2.7", "2.2")
    smdp, second, _ = _cc_smdp(attempts=3)
    assert _code(_call(smdp, "GetBoundProfilePackage", _prepare(second, bytes(32)))) == (
        "8.2.7", "3.8")
    assert smdp.orders.events == [("cc-failed", ICCID)]
    smdp, second, _ = _cc_smdp(attempts=1)
    assert _code(_call(smdp, "GetBoundProfilePackage", _prepare(second, bytes(32)))) == (
        "8.2.7", "6.4")
    assert _tid_session_closed(smdp)


def test_installation_result_needs_the_session_and_a_good_signature() -> None:
    smdp = _authenticated()
    _call(smdp, "GetBoundProfilePackage")
    tampered = _b64_flip(_request("HandleNotification"), "pendingNotification",
                         h(session()["pir"]["isdp_aid"]), 10)
    assert smdp.handle("handleNotification", tampered).status == 204
    assert smdp.orders.events[-1][0] == "delivered"  # not taken
    assert smdp.handle("handleNotification", {"pendingNotification": "??"}).status == 204
    unknown = _smdp()  # no session for that transaction
    assert unknown.handle("handleNotification", _request("HandleNotification")).status == 204
    assert unknown.orders.events == []


def test_other_notification_updates_the_order_side() -> None:
    smdp = _smdp()
    der = other_signed_notification(
        signer=sig.software_signer(_key("SK_EUICC_ECDSA_NIST.pem")),
        euicc_certificate=_cert("CERT_EUICC_ECDSA_NIST.pem"),
        eum_certificate=_cert("CERT_EUM_ECDSA_NIST.pem"), seq_number=2,
        event=NotificationEvent.ENABLE, notification_address=session()["smdp_address"],
        iccid=h("989444999999990961f3"))
    answer = smdp.handle("handleNotification", {"pendingNotification": wire.b64(der)})
    assert answer.status == 204
    assert smdp.orders.events == [("notified", ICCID, session()["eid"], NotificationEvent.ENABLE)]


def _cancel_body(smdp_oid: str = "2.999.10", key: str = "SK_EUICC_ECDSA_NIST.pem",
                 tid: bytes | None = None) -> dict[str, Any]:
    der = cancel_session_response(signer=sig.software_signer(_key(key)),
                                  transaction_id=tid or h(session()["transactionId"]),
                                  smdp_oid=smdp_oid, reason=CancelSessionReason.POSTPONED)
    return {"transactionId": session()["transactionId"], "cancelSessionResponse": wire.b64(der)}


def test_cancel_session() -> None:
    smdp = _authenticated()
    assert wire.status_of(_call(smdp, "CancelSession", _cancel_body()))[0] == "Executed-Success"
    assert smdp.orders.events == [("cancelled", ICCID, "postponed")]
    assert _tid_session_closed(smdp)


@pytest.mark.parametrize(("body", "code"), [
    (lambda: _cancel_body(smdp_oid="2.999.11"), ("8.8", "3.10")),
    (lambda: _cancel_body(key="SK_S_SM_DPpb_ECDSA_NIST.pem"), ("8.1", "6.1")),
    (lambda: _cancel_body(tid=bytes(16)), ("8.10.1", "3.9")),
    (lambda: {**_cancel_body(), "transactionId": "00" * 16}, ("8.10.1", "3.9")),
])
def test_cancel_session_refusals(body: Callable[[], dict[str, Any]],
                                 code: tuple[str, str]) -> None:
    smdp = _authenticated()
    assert _code(_call(smdp, "CancelSession", body())) == code
    assert ("cancelled", ICCID, "postponed") not in smdp.orders.events


def test_not_json_objects_and_unknown_functions() -> None:
    smdp = _smdp()
    assert _code(smdp.handle("initiateAuthentication", [1, 2]).body or {}) == ("1.6", "2.1")
    assert smdp.handle("noSuchFunction", {}).status == 404
