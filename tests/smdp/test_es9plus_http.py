"""ES9+ over real HTTPS (issue 16 items 1, 4, 6, 7): an eSIM ordered through the order service is
downloaded by simsmith's LPA into the virtual eUICC from simsmith's SM-DP+ listener, on SQLite
and PostgreSQL; the profile state follows SGP.22 §3.1.3 with audit records and outbox events;
the wire rules (X-Admin-Protocol, content type, body size, strict JSON with JSON paths);
confirmation-code and re-download limits; the session sweeper."""

from __future__ import annotations

import base64
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.x509.oid import NameOID
from sqlalchemy import Engine, func, select, update
from sqlmodel import Session, col

from esim import rsp_pki
from esim.euicc.card import VirtualEuicc
from esim.euicc.es10 import EuiccCore
from esim.euicc.identity import default_eid
from esim.lpa.download import Es9Refused, download, process_notifications
from esim.rsp_pki import DevRspPki
from esim.sgp22 import es9plus as wire
from esim.sgp22 import schema
from esim.sgp22 import signatures as sig
from esim.sgp22.authentication import EuiccCredentials
from esim.sgp22.certificates import RspRole, TrustedCis
from hsm_sim.soft import SoftHsm
from simcore.euicc import virtual_euicc
from simcore.models import Sim
from simcore.smdp.download_service import sweep_sessions
from simcore.smdp.es9plus_models import SmdpDownloadSession
from simcore.smdp.models import Es2PlusOrder
from tests.smdp.es9_http import Smdp, lpa, post, running_smdp, status_code
from tests.wiring.conftest import hsm  # noqa: F401  (fixture)

pytestmark = [pytest.mark.storage, pytest.mark.slow]


@pytest.fixture
def smdp(engine: Engine, hsm: SoftHsm, tmp_path: Path) -> Smdp:  # noqa: F811
    with running_smdp(engine, hsm, tmp_path / "home", count=6) as s:
        yield s  # type: ignore[misc]


def test_order_download_install_enable(smdp: Smdp, tmp_path: Path) -> None:
    profile = smdp.order()
    assert smdp.state(profile.iccid) == "released"
    card = smdp.euicc(tmp_path)
    with lpa(card) as functions, smdp.es9() as es9:
        result = download(functions, es9, profile.activation_code.to_uri())
        assert result.success and result.iccid == profile.iccid and result.notification_sent
        assert smdp.state(profile.iccid) == "installed"
        functions.enable(profile.iccid)
        sent = process_notifications(functions, lambda address: smdp.es9())
        assert [ok for _, ok in sent] == [True]
    assert smdp.state(profile.iccid) == "enabled"
    actions = smdp.actions(profile.iccid)
    assert actions[-3:] == ["esim_profile.downloaded", "esim_profile.installed",
                            "esim_profile.enabled"]
    assert smdp.events(profile.iccid)[-3:] == [("esim_profile.state_changed", "downloaded"),
                                               ("esim_profile.state_changed", "installed"),
                                               ("esim_profile.state_changed", "enabled")]
    with Session(smdp.engine) as s:  # the session ended with the installation result
        assert s.execute(select(func.count()).select_from(SmdpDownloadSession)).scalar_one() == 0


def test_answers_carry_the_es9plus_headers(smdp: Smdp) -> None:
    with smdp.http() as client:
        r = post(client, "authenticateClient", {"transactionId": "00"})
        assert r.status_code == 200
        assert r.headers[wire.ADMIN_PROTOCOL_HEADER] == wire.ADMIN_PROTOCOL
        assert r.headers["content-type"] == "application/json;charset=UTF-8"
        assert status_code(r.json()) == ("1.6", "2.2")
        assert r.json()["header"]["functionExecutionStatus"]["statusCodeData"]["message"] \
            .startswith("$.authenticateServerResponse")
        r = post(client, "handleNotification", {"pendingNotification": "AAAA"})
        assert r.status_code == 204 and r.content == b""
        assert r.headers[wire.ADMIN_PROTOCOL_HEADER] == wire.ADMIN_PROTOCOL
        for path in ("/gsma/rsp2/es9plus/nothing", "/v1/sims"):
            r = client.post(path, json={})
            assert r.status_code == 404
            assert r.headers[wire.ADMIN_PROTOCOL_HEADER] == wire.ADMIN_PROTOCOL
        r = client.get(f"{wire.PATH_PREFIX}/initiateAuthentication")
        assert r.status_code == 405 and wire.ADMIN_PROTOCOL_HEADER in r.headers


@pytest.mark.parametrize(("headers", "status", "code"), [
    ({wire.ADMIN_PROTOCOL_HEADER: ""}, 400, ("1.6", "2.1")),
    ({wire.ADMIN_PROTOCOL_HEADER: "gsma/rsp/v3.0.0"}, 400, ("1.6", "2.1")),
    ({"Content-Type": "text/plain"}, 415, ("1.6", "2.1")),
    ({"Content-Type": "application/json;charset=ISO-8859-1"}, 415, ("1.6", "2.1")),
])
def test_request_headers_checked(smdp: Smdp, headers: dict[str, str], status: int,
                                 code: tuple[str, str]) -> None:
    with smdp.http() as client:
        r = post(client, "initiateAuthentication", {}, **headers)
        assert r.status_code == status and status_code(r.json()) == code
        r = client.post(f"{wire.PATH_PREFIX}/initiateAuthentication", content=b"{}",
                        headers={"Content-Type": "application/json"})
        assert r.status_code == 400 and status_code(r.json()) == ("1.6", "2.2")
        assert wire.ADMIN_PROTOCOL_HEADER in r.json()["header"]["functionExecutionStatus"][
            "statusCodeData"]["message"]


@pytest.mark.parametrize(("raw", "where"), [
    (b"[1, 2]", "the body is not a JSON object"),
    (b'{"transactionId": "00", "transactionId": "01"}', "$.transactionId: appears twice"),
    (b'{"x": NaN}', "NaN is not JSON"),
    (b'{"x": ', "$: not JSON"),
    (b'{"x": "\xff"}', "$: not UTF-8 at byte 7"),
    (b'{"transactionId": "XYZ", "authenticateServerResponse": "AA=="}',
     "$.transactionId: not hexadecimal"),
    (b'{"transactionId": 7, "authenticateServerResponse": "AA=="}', "$.transactionId"),
    (b'{"transactionId": "0011", "authenticateServerResponse": "***"}',
     "$.authenticateServerResponse: not valid base64"),
    (b'{"x": ' + b"9" * 5000 + b"}", "$: not acceptable JSON"),
    (b"[" * 5000 + b"]" * 5000, "$: nested too deeply"),
])
def test_malformed_bodies_named_by_json_path(smdp: Smdp, raw: bytes, where: str) -> None:
    with smdp.http() as client:
        r = post(client, "authenticateClient", raw)
    assert r.status_code == 200
    assert status_code(r.json()) == ("1.6", "2.1")
    assert where in r.json()["header"]["functionExecutionStatus"]["statusCodeData"]["message"]


def test_body_size_bounded(engine: Engine, hsm: SoftHsm, tmp_path: Path) -> None:  # noqa: F811
    with running_smdp(engine, hsm, tmp_path / "home", count=1, max_body_bytes=4096) as smdp, \
            smdp.http() as client:
        r = post(client, "authenticateClient", {"transactionId": "00",
                                                "authenticateServerResponse": "A" * 5000})
        assert r.status_code == 413 and status_code(r.json()) == ("1.6", "2.1")

        def chunks():  # no Content-Length: the limit holds while reading
            for _ in range(10):
                yield b" " * 1000
        r = client.post(f"{wire.PATH_PREFIX}/authenticateClient", content=chunks(), headers={
            wire.ADMIN_PROTOCOL_HEADER: wire.ADMIN_PROTOCOL, "Content-Type": "application/json"})
        assert r.status_code == 413


def test_openapi_documents_the_five_functions(smdp: Smdp) -> None:
    with smdp.http() as client:
        spec = client.get("/openapi.json").json()
    paths = spec["paths"]
    assert sorted(paths) == sorted(f"{wire.PATH_PREFIX}/{f}" for f in wire.FUNCTIONS)
    for path, item in paths.items():
        op = item["post"]
        body = op["requestBody"]["content"]["application/json;charset=UTF-8"]["schema"]
        assert body["required"], path
        assert any(p["name"] == wire.ADMIN_PROTOCOL_HEADER for p in op["parameters"])
        assert {"400", "413", "415"} <= set(op["responses"])
    assert "204" in paths[f"{wire.PATH_PREFIX}/handleNotification"]["post"]["responses"]
    assert "boundProfilePackage" in spec["components"]["schemas"][
        "GetBoundProfilePackageResponse"]["properties"]


def test_confirmation_code_limit_ends_the_order(engine: Engine, hsm: SoftHsm,  # noqa: F811
                                                tmp_path: Path) -> None:
    with running_smdp(engine, hsm, tmp_path / "home", count=1, cc_attempts=2) as smdp:
        profile = smdp.order(confirmation_code=True)
        assert profile.confirmation_code
        card = smdp.euicc(tmp_path)
        with lpa(card) as functions, smdp.es9() as es9:
            with pytest.raises(Es9Refused) as first:
                download(functions, es9, profile.activation_code.to_uri(),
                         confirmation_code="00000000")
            assert (first.value.subject, first.value.reason) == ("8.2.7", "3.8")
            assert smdp.state(profile.iccid) == "released"
            with pytest.raises(Es9Refused) as last:
                download(functions, es9, profile.activation_code.to_uri(),
                         confirmation_code="00000001")
            assert (last.value.subject, last.value.reason) == ("8.2.7", "6.4")
            assert smdp.state(profile.iccid) == "error"
            with pytest.raises(Es9Refused) as after:  # the right code comes too late
                download(functions, es9, profile.activation_code.to_uri(),
                         confirmation_code=profile.confirmation_code)
            assert (after.value.subject, after.value.reason) == ("8.2.6", "3.8")
        assert card.core.state.profiles == []
        assert smdp.actions(profile.iccid).count("esim_profile.confirmation_code_failed") == 1
        assert ("esim_profile.state_changed", "error") in smdp.events(profile.iccid)


def test_right_confirmation_code_downloads(smdp: Smdp, tmp_path: Path) -> None:
    profile = smdp.order(confirmation_code=True)
    with lpa(smdp.euicc(tmp_path)) as functions, smdp.es9() as es9:
        assert download(functions, es9, profile.activation_code.to_uri(),
                        confirmation_code=profile.confirmation_code).success
    assert smdp.state(profile.iccid) == "installed"


def test_redownload_limit(engine: Engine, hsm: SoftHsm, tmp_path: Path) -> None:  # noqa: F811
    """A BPP delivered but never reported installed (the LPA lost it) may be downloaded again
    by the same eUICC, up to the limit of BPPs per order; another eUICC may not."""
    with running_smdp(engine, hsm, tmp_path / "home", count=1, downloads=2) as smdp:
        profile = smdp.order()
        card = smdp.euicc(tmp_path)
        with lpa(card) as functions, smdp.es9() as es9:
            lost = _bpp_without_installing(functions, es9, profile.activation_code.to_uri())
            assert lost and smdp.state(profile.iccid) == "downloaded"
            other = smdp.euicc(tmp_path, "other", eid="89049032000000000000000000000214")
            with lpa(other) as functions2, pytest.raises(Es9Refused) as refused:
                download(functions2, es9, profile.activation_code.to_uri())
            assert (refused.value.subject, refused.value.reason) == ("8.1.1", "3.8")
            assert _bpp_without_installing(functions, es9, profile.activation_code.to_uri())
            with pytest.raises(Es9Refused) as spent:
                download(functions, es9, profile.activation_code.to_uri())
            assert (spent.value.subject, spent.value.reason) == ("8.8.5", "6.4")
        assert smdp.state(profile.iccid) == "downloaded"
        assert smdp.actions(profile.iccid).count("esim_profile.redownloaded") == 1


def _bpp_without_installing(functions: object, es9: object, ac: str) -> bool:
    """Run a download up to the BPP and drop it (the eUICC never loads it)."""
    from esim.lpa import download as lpa_download

    class Dropping:
        def __init__(self, inner: object) -> None:
            self.inner = inner

        def load_bpp(self, *args: object, **kwargs: object) -> bytes:
            raise _Dropped

        def __getattr__(self, name: str) -> object:
            return getattr(self.inner, name)

    try:
        lpa_download.download(Dropping(functions), es9, ac)  # type: ignore[arg-type]
    except _Dropped:
        return True
    return False


class _Dropped(Exception):
    pass


def test_sessions_swept(smdp: Smdp, tmp_path: Path) -> None:
    profile = smdp.order()
    card = smdp.euicc(tmp_path)
    with lpa(card) as functions, smdp.es9() as es9:
        challenge, info1 = functions.challenge(), functions.euicc_info1()
        answer = es9.post("initiateAuthentication", {
            "euiccChallenge": wire.b64(challenge), "euiccInfo1": wire.b64(info1),
            "smdpAddress": profile.smdp_address})
        assert answer is not None and status_code(answer) is None
    assert sweep_sessions(smdp.engine) == 0  # not expired yet
    later = datetime.now(UTC) + timedelta(hours=1)
    assert sweep_sessions(smdp.engine, later) == 1
    assert smdp.listener.sweeper.sweep_once() == 0


def test_sweep_command(smdp: Smdp, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import json

    from tests.helpers.cli import ok

    monkeypatch.setenv("SIMSMITH_HOME", str(smdp.home))
    monkeypatch.setenv("SIMSMITH_DATABASE_URL",
                       smdp.engine.url.render_as_string(hide_password=False))
    with smdp.http() as client:
        r = post(client, "initiateAuthentication", {"euiccChallenge": "AA==",
                                                    "euiccInfo1": "AA==", "smdpAddress": "x"})
        assert status_code(r.json()) == ("1.6", "2.1")  # a 1-byte challenge: nothing kept
    with Session(smdp.engine) as s:
        s.add(SmdpDownloadSession(transaction_id="AB" * 16, stage="initiated",
                                  euicc_challenge=b"c" * 16, server_challenge=b"s" * 16,
                                  ci_key_id=b"k" * 20,
                                  expires_at=datetime.now(UTC) - timedelta(seconds=1)))
        s.commit()
    assert json.loads(ok("smdp", "sweep", "--json")) == {"deleted": 1, "orders_expired": 0}
    assert "0 expired ES9+ session(s) deleted" in ok("smdp", "sweep")


def _card_with(smdp: Smdp, *, euicc_days: int = 3650, eum_days: int = 3650,
               eum_role: RspRole = RspRole.EUM, other_eum_key: bool = False,
               other_ci: bool = False) -> VirtualEuicc:
    """A virtual eUICC whose certificate chain is broken in one way (the SM-DP+ trusts the
    development CI of its home; the eUICC trusts it too, so the SM-DP+ passes its checks)."""
    ci = DevRspPki(smdp.home / "pki" / "rsp").ci()
    issuer = rsp_pki.make_ci() if other_ci else ci  # same name, another key
    eum = rsp_pki._issue(
        x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "simsmith development EUM"),
                   x509.NameAttribute(NameOID.ORGANIZATION_NAME, rsp_pki.EUM_ORG)]),
        eum_role, issuer, ca=True, days=eum_days,
        name_constraints=x509.Name([
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, rsp_pki.EUM_ORG),
            x509.NameAttribute(NameOID.SERIAL_NUMBER, rsp_pki.EUM_EID_PREFIX)]))
    signer_eum = rsp_pki.issue_eum(ci) if other_eum_key else eum  # same name, another key
    eid = default_eid()
    me = rsp_pki.issue_euicc(signer_eum, eid, days=euicc_days)
    credentials = EuiccCredentials(signer=sig.software_signer(me.key), certificate=me.cert,
                                   eum_certificate=eum.cert, cis=TrustedCis([ci.cert]))
    return virtual_euicc(EuiccCore(credentials=credentials, eid=eid))


def test_certificate_chain_refusals(smdp: Smdp) -> None:
    """AuthenticateClient refuses a broken eUICC chain with its own code; the order stays
    released (the eUICC, not the order, was wrong)."""
    for broken, code in (
        ({"euicc_days": 0}, ("8.1.3", "6.3")),  # CERT.EUICC expired
        ({"other_eum_key": True}, ("8.1.3", "6.1")),  # CERT.EUICC not signed by CERT.EUM
        ({"eum_days": 0}, ("8.1.2", "6.3")),  # CERT.EUM expired
        ({"eum_role": RspRole.EUICC}, ("8.1.2", "6.1")),  # CERT.EUM without the EUM role
        ({"other_ci": True}, ("8.11.1", "3.9")),  # CERT.EUM from a CI not trusted
    ):
        profile = smdp.order()
        with lpa(_card_with(smdp, **broken)) as functions, smdp.es9() as es9, \
                pytest.raises(Es9Refused) as refused:
            download(functions, es9, profile.activation_code.to_uri())
        assert (refused.value.function, refused.value.subject, refused.value.reason) == (
            "authenticateClient", *code), broken
        assert smdp.state(profile.iccid) == "released"


def test_matching_id_of_an_order_not_released(smdp: Smdp, tmp_path: Path) -> None:
    """An ES2+ order confirmed without releaseFlag: its matching ID is known, the profile is
    not released yet (8.2 / 1.2); once released it downloads."""
    iccid = smdp.iccids[0]
    with Session(smdp.engine) as s:
        s.add(Es2PlusOrder(iccid=iccid, requester="op", matching_id="NOT-YET-1"))
        s.execute(update(Sim).where(col(Sim.iccid) == iccid).values(profile_state="confirmed"))
        s.commit()
    code = f"LPA:1${smdp.address}$NOT-YET-1"
    with lpa(smdp.euicc(tmp_path)) as functions, smdp.es9() as es9:
        with pytest.raises(Es9Refused) as refused:
            download(functions, es9, code)
        assert (refused.value.subject, refused.value.reason) == ("8.2", "1.2")
        with Session(smdp.engine) as s:
            s.execute(update(Sim).where(col(Sim.iccid) == iccid).values(
                profile_state="released"))
            s.commit()
        assert download(functions, es9, code).success
    assert smdp.state(iccid) == "installed"


@pytest.mark.parametrize(("change", "code"), [
    ({"serverAddress": "smdp.elsewhere.example"}, ("8.8.1", "3.8")),
    ({"serverChallenge": bytes(16)}, ("8.1", "6.1")),
])
def test_euicc_signed_another_address_or_challenge(smdp: Smdp, tmp_path: Path,
                                                   change: dict[str, object],
                                                   code: tuple[str, str]) -> None:
    """The eUICC signs what serverSigned1 said: a serverSigned1 for another address or with
    another challenge (signed here with the SM-DP+'s own SK.DPauth, so the eUICC takes it) makes
    an euiccSigned1 the SM-DP+ refuses; the session is closed."""
    profile = smdp.order()
    dpauth_signer = smdp.listener.core.identity.dpauth_signer  # SK.DPauth, in the HSM
    with lpa(smdp.euicc(tmp_path)) as functions, smdp.http() as client:
        challenge = functions.challenge()
        init = post(client, "initiateAuthentication", {
            "euiccChallenge": wire.b64(challenge),
            "euiccInfo1": wire.b64(functions.euicc_info1()),
            "smdpAddress": smdp.address}).json()
        signed1 = schema.decode("ServerSigned1", base64.b64decode(init["serverSigned1"]))
        forged = schema.encode("ServerSigned1", {**signed1, **change})
        asr = functions.authenticate_server(
            server_signed1=forged,
            server_signature1=sig.sign(dpauth_signer, forged, "serverSignature1"),
            ci_pkid=base64.b64decode(init["euiccCiPKIdToBeUsed"]),
            server_certificate=base64.b64decode(init["serverCertificate"]),
            ctx_params1={"matchingId": profile.matching_id,
                         "deviceInfo": {"tac": b"\x35\x29\x06\x11", "deviceCapabilities": {}}})
        body = {"transactionId": init["transactionId"],
                "authenticateServerResponse": wire.b64(asr)}
        assert status_code(post(client, "authenticateClient", body).json()) == code
        assert status_code(post(client, "authenticateClient", body).json()) == (
            "8.10.1", "3.9")  # closed
    assert smdp.state(profile.iccid) == "released"


def test_internal_failure_is_an_execution_error(caplog: pytest.LogCaptureFixture) -> None:
    """The store or the HSM failing is ES9+'s Failed 1.2 / 4.2, logged without the request."""
    from fastapi.testclient import TestClient

    from api.es9plus_listener import es9plus_app

    class Broken:
        def handle(self, function: str, body: object) -> object:
            raise RuntimeError("database is away")

    client = TestClient(es9plus_app(Broken()))  # type: ignore[arg-type]
    body = {"transactionId": "0A" * 16, "prepareDownloadResponse": "c2VjcmV0"}
    r = post(client, "getBoundProfilePackage", body)  # type: ignore[arg-type]
    assert r.status_code == 200 and status_code(r.json()) == ("1.2", "4.2")
    assert r.headers[wire.ADMIN_PROTOCOL_HEADER] == wire.ADMIN_PROTOCOL
    assert post(client, "handleNotification",  # type: ignore[arg-type]
                {"pendingNotification": "AAAA"}).status_code == 204
    assert "c2VjcmV0" not in caplog.text


@pytest.mark.parametrize("threads", [0, 2])
def test_the_core_runs_in_the_listeners_thread_or_its_pool(threads: int) -> None:
    """SIMSMITH_ES9PLUS_THREADS: 0 (the default with the soft HSM) answers in the listener's
    event-loop thread, without a hand-over per request; n in a pool of n threads (by default
    PKCS11_THREADS with a PKCS#11 HSM, whose signatures are waits; a value set is kept)."""
    import asyncio

    from fastapi.testclient import TestClient

    from api.es9plus_listener import es9plus_app
    from simcore.smdp.es9plus import Answer
    from simcore.smdp.es9plus_settings import PKCS11_THREADS, Es9PlusSettings

    assert Es9PlusSettings().resolved_threads("soft") == 0
    assert Es9PlusSettings().resolved_threads("pkcs11") == PKCS11_THREADS > 0
    assert Es9PlusSettings(threads=0).resolved_threads("pkcs11") == 0
    assert Es9PlusSettings(threads=3).resolved_threads("soft") == 3

    class InLoop:
        def handle(self, function: str, body: object) -> Answer:
            try:
                asyncio.get_running_loop()
                where = "loop"
            except RuntimeError:
                where = "thread"
            return Answer(200, wire.success(transactionId=where))

    client = TestClient(es9plus_app(InLoop(), threads=threads))  # type: ignore[arg-type]
    r = post(client, "cancelSession",  # type: ignore[arg-type]
             {"transactionId": "0A" * 16, "cancelSessionResponse": "AAAA"})
    assert r.status_code == 200
    assert r.json()["transactionId"] == ("loop" if threads == 0 else "thread")


def test_straight_and_routed_answers_are_the_same() -> None:
    """The ES9+ listener answers the five functions straight from the server (Es9PlusApp);
    the FastAPI routes (es9plus_router, what OpenAPI describes) run the same exchange: status,
    headers and body alike for a success, a 204 and every wire refusal."""
    from fastapi.testclient import TestClient

    from api.es9plus_listener import es9plus_app
    from simcore.smdp.es9plus import Answer

    class Echo:
        def handle(self, function: str, body: dict[str, object]) -> Answer:
            if function == "handleNotification":
                return Answer(204, None)
            return Answer(200, wire.success(transactionId="0A", got=sorted(body)))

    app = es9plus_app(Echo(), max_body=64)  # type: ignore[arg-type]
    ok = {wire.ADMIN_PROTOCOL_HEADER: wire.ADMIN_PROTOCOL, "Content-Type": "application/json"}
    cases: list[tuple[str, bytes, dict[str, str]]] = [
        ("cancelSession", b'{"transactionId": "0A"}', ok),
        ("handleNotification", b'{"pendingNotification": "AAAA"}', ok),
        ("cancelSession", b"{}", {"Content-Type": "application/json"}),
        ("cancelSession", b"{}", {**ok, wire.ADMIN_PROTOCOL_HEADER: "gsma/rsp/v3.0.0"}),
        ("cancelSession", b"{}", {**ok, "Content-Type": "text/plain"}),
        ("cancelSession", b"{" + b" " * 100 + b"}", ok),
        ("cancelSession", b'{"a": 1, "a": 2}', ok),
    ]
    answers = []
    for served in (app, app.docs):
        with TestClient(served) as client:  # type: ignore[arg-type]
            answers.append([
                (r.status_code, r.content, {k: v for k, v in r.headers.items()
                                            if k in ("content-type", "content-length",
                                                     wire.ADMIN_PROTOCOL_HEADER.lower())})
                for r in (client.post(f"{wire.PATH_PREFIX}/{f}", content=raw, headers=h)
                          for f, raw, h in cases)])
    straight, routed = answers
    assert straight == routed
    assert [status for status, _, _ in straight] == [200, 204, 400, 400, 415, 413, 200]
    assert straight[0][1] == b'{"header":{"functionExecutionStatus":{"status":' \
        b'"Executed-Success"}},"transactionId":"0A","got":["transactionId"]}'
    assert all(h[wire.ADMIN_PROTOCOL_HEADER.lower()] == wire.ADMIN_PROTOCOL
               for _, _, h in straight)
    assert straight[1][2] == {wire.ADMIN_PROTOCOL_HEADER.lower(): wire.ADMIN_PROTOCOL}


def test_brainpool_download_over_https(engine: Engine, hsm: SoftHsm,  # noqa: F811
                                       tmp_path: Path) -> None:
    """The listener's SM-DP+ with a P-256 and a brainpoolP256r1 CI (`pki sgp26-init
    --brainpool`); an eUICC with a brainpool chain only downloads, installs and enables over
    HTTPS (CERT.DP.TLS stays P-256), every RSP signature and both one-time keys on brainpool."""
    with running_smdp(engine, hsm, tmp_path / "home", count=2, brainpool=True) as smdp:
        profile = smdp.order()
        card = smdp.euicc(tmp_path, curves=[rsp_pki.BRAINPOOL_P256R1])
        assert card.core.credentials.certificate.public_key().curve.name == "brainpoolP256r1"
        with lpa(card) as functions, smdp.es9() as es9:
            result = download(functions, es9, profile.activation_code.to_uri())
            assert result.success and result.iccid == profile.iccid
            assert smdp.state(profile.iccid) == "installed"
            functions.enable(profile.iccid)
            sent = process_notifications(functions, lambda address: smdp.es9())
            assert [ok for _, ok in sent] == [True]
        assert smdp.state(profile.iccid) == "enabled"
