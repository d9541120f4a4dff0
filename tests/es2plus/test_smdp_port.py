"""simcore.smdp.es2plus_port: the SmdpPort over ES2+. Against simsmith's own endpoint over real
HTTPS (the eSIM order service end to end), against a remote SM-DP+ (state mirrored into the
inventory), and against peers that refuse, time out or answer garbage (typed errors, nothing
half-written)."""

from __future__ import annotations

import http.server
import json
import socket
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import Engine, func, select
from sqlmodel import Session

from esim.es2plus import Es2PlusClient
from simcore import esim_orders
from simcore.identifiers import Eid
from simcore.models import AuditEvent, OutboxEvent, Sim
from simcore.smdp.es2plus_port import Es2PlusSmdp, SmdpSettings, configured_smdp, es2plus_smdp
from simcore.smdp.in_process import InProcessSmdp
from simcore.smdp.port import SmdpRefused, SmdpUnavailable
from tests.es2plus.conftest import SMDP_ADDRESS, Pki, Server, add_profiles, profile

pytestmark = pytest.mark.storage

EID = Eid.from_body("890490320000000000000000000012").digits


def counts(engine: Engine) -> tuple[int, int]:
    with Session(engine) as s:
        return (s.execute(select(func.count()).select_from(AuditEvent)).scalar_one(),
                s.execute(select(func.count()).select_from(OutboxEvent)).scalar_one())


@pytest.fixture
def port_over_https(engine: Engine, https_server: Server, pki: Pki,
                    endpoint: object) -> Iterator[Es2PlusSmdp]:
    port = es2plus_smdp(engine, SmdpSettings(
        url=https_server.url, cert=pki.dev.client_cert, key=pki.dev.client_key, ca=pki.dev.ca,
        address=SMDP_ADDRESS, timeout=5))
    yield port
    port.close()


def test_esim_order_runs_download_and_confirm_over_https(engine: Engine,
                                                        port_over_https: Es2PlusSmdp) -> None:
    add_profiles(engine, 2)
    p = esim_orders.order(engine, port_over_https, "customer-42", actor="t", eid=EID,
                          confirmation_code=True)
    assert p.profile_state == "released" and p.eid == EID
    assert str(p.activation_code).startswith(f"1${SMDP_ADDRESS}${p.matching_id}")
    with Session(engine) as s:
        actions = list(s.execute(select(AuditEvent.action).where(  # type: ignore[call-overload]
            AuditEvent.subject_id == p.iccid).order_by(AuditEvent.seq)).scalars())  # type: ignore[arg-type]
    # The endpoint moved the state; the port's mirror found it done (no double transitions).
    assert actions.count("esim_profile.linked") == 1
    assert actions.count("esim_profile.released") == 1
    esim_orders.cancel(engine, port_over_https, p.iccid, actor="t")
    assert profile(engine, p.iccid).profile_state == "available"


def _remote(handler: Any) -> Es2PlusClient:
    return Es2PlusClient("https://smdp.vendor.example", "op-1", retry_backoff=0,
                         transport=httpx.MockTransport(handler))


def _ok(**fields: Any) -> httpx.Response:
    return httpx.Response(200, json={"header": {"functionExecutionStatus": {
        "status": "Executed-Success"}}, **fields})


def test_remote_smdp_state_is_mirrored(engine: Engine) -> None:
    iccid = add_profiles(engine, 1)[0]
    seen: list[str] = []

    def handler(req: httpx.Request) -> httpx.Response:
        seen.append(req.url.path.rsplit("/", 1)[1])
        body = json.loads(req.content)
        if seen[-1] == "confirmOrder":
            return _ok(matchingId=body["matchingId"], smdpAddress="rsp.vendor.example")
        return _ok(iccid=body.get("iccid"))

    port = Es2PlusSmdp(engine, _remote(handler), "fallback.example")
    port.download_order(iccid=iccid)
    assert profile(engine, iccid).profile_state == "allocated"
    r = port.confirm_order(iccid=iccid, matching_id="M-1", eid=EID, release=False)
    assert (r.smdp_address, r.matching_id, r.eid) == ("rsp.vendor.example", "M-1", EID)
    sim = profile(engine, iccid)
    assert (sim.profile_state, sim.eid) == ("confirmed", EID)
    port.release_profile(iccid=iccid)
    port.cancel_order(iccid=iccid, final_status="unavailable")
    assert profile(engine, iccid).profile_state == "unavailable"
    assert seen == ["downloadOrder", "confirmOrder", "releaseProfile", "cancelOrder"]


def test_refusal_carries_the_codes_and_changes_nothing(engine: Engine) -> None:
    iccid = add_profiles(engine, 1)[0]

    def handler(req: httpx.Request) -> httpx.Response:
        return httpx.Response(200, json={"header": {"functionExecutionStatus": {
            "status": "Failed", "statusCodeData": {"subjectCode": "8.2.1", "reasonCode": "3.7",
                                                   "message": "not available"}}}})

    before = counts(engine)
    with pytest.raises(SmdpRefused) as ei:
        Es2PlusSmdp(engine, _remote(handler), "x.example").download_order(iccid=iccid)
    assert (ei.value.subject_code, ei.value.reason_code) == ("8.2.1", "3.7")
    assert profile(engine, iccid).profile_state == "available" and counts(engine) == before


def test_local_state_refuses_before_calling_out(engine: Engine) -> None:
    iccid = add_profiles(engine, 1, state="released")[0]
    calls: list[httpx.Request] = []
    port = Es2PlusSmdp(engine, _remote(lambda r: calls.append(r) or _ok()), "x.example")
    with pytest.raises(SmdpRefused) as ei:
        port.download_order(iccid=iccid)
    assert ei.value.reason_code == "3.5" and not calls
    with pytest.raises(SmdpRefused) as ei:
        port.release_profile(iccid="8988280000000999999")
    assert ei.value.reason_code == "3.9"


@pytest.fixture
def silent_peer() -> Iterator[str]:
    """Accepts connections and never answers."""
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(8)
    conns: list[socket.socket] = []
    stop = threading.Event()

    def run() -> None:
        srv.settimeout(0.1)
        while not stop.is_set():
            try:
                conns.append(srv.accept()[0])
            except OSError:
                continue

    t = threading.Thread(target=run, daemon=True)
    t.start()
    yield f"http://127.0.0.1:{srv.getsockname()[1]}"
    stop.set()
    t.join(2)
    for c in conns:
        c.close()
    srv.close()


@pytest.fixture
def garbage_peer() -> Iterator[str]:
    """Answers every POST with an HTML error page (a proxy in the way)."""

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            self.rfile.read(int(self.headers.get("Content-Length", 0)))
            body = b"<html><body>502 Bad Gateway</body></html>"
            self.send_response(200)
            self.send_header("Content-Type", "text/html")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    t = threading.Thread(target=srv.serve_forever, daemon=True)
    t.start()
    yield f"http://127.0.0.1:{srv.server_address[1]}"
    srv.shutdown()
    srv.server_close()


@pytest.mark.parametrize("peer, message", [("silent_peer", "timed out"),
                                           ("garbage_peer", "not application/json")])
@pytest.mark.slow
def test_unusable_peer_is_a_typed_error_and_nothing_half_written(
    engine: Engine, request: pytest.FixtureRequest, peer: str, message: str,
) -> None:
    url = request.getfixturevalue(peer)
    add_profiles(engine, 1)
    port = es2plus_smdp(engine, SmdpSettings(url=url, timeout=0.3, address="x.example"))
    before = counts(engine)
    with pytest.raises(SmdpUnavailable, match=message):
        esim_orders.order(engine, port, "customer-7", actor="t")
    # The request reached the peer: whether it executed DownloadOrder is unknown, and its
    # CancelOrder got no answer either. The profile is not handed out again (the SIM stays
    # allocated) and the order says so (issue 12 item 3: never a dangling reservation).
    with Session(engine) as s:
        sims = list(s.execute(select(Sim)).scalars())
    assert [(x.state, x.profile_state, x.subscriber_ref) for x in sims] == \
        [("allocated", "available", "customer-7")]
    assert esim_orders.list_orders(engine)[0].order_status == "cancel_failed"
    assert counts(engine)[0] >= before[0]
    port.close()


@pytest.mark.slow
def test_unreachable_peer_executed_nothing_and_the_claim_is_undone(engine: Engine) -> None:
    add_profiles(engine, 1)
    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        url = f"http://127.0.0.1:{probe.getsockname()[1]}"
    port = es2plus_smdp(engine, SmdpSettings(url=url, timeout=0.3, address="x.example"))
    with pytest.raises(SmdpUnavailable):
        esim_orders.order(engine, port, "customer-8", actor="t")
    with Session(engine) as s:
        sims = list(s.execute(select(Sim)).scalars())
    assert [(x.state, x.profile_state, x.subscriber_ref) for x in sims] == \
        [("in_stock", "available", None)]
    assert esim_orders.list_orders(engine)[0].order_status == "failed"
    port.close()


def test_configured_smdp_by_environment(engine: Engine, monkeypatch: pytest.MonkeyPatch,
                                        pki: Pki) -> None:
    monkeypatch.delenv("SIMSMITH_SMDP_URL", raising=False)
    assert isinstance(configured_smdp(engine, SMDP_ADDRESS), InProcessSmdp)
    monkeypatch.setenv("SIMSMITH_SMDP_URL", "https://rsp.vendor.example:8443")
    monkeypatch.setenv("SIMSMITH_SMDP_CERT", str(pki.dev.client_cert))
    monkeypatch.setenv("SIMSMITH_SMDP_KEY", str(pki.dev.client_key))
    monkeypatch.setenv("SIMSMITH_SMDP_CA", str(pki.dev.ca))
    monkeypatch.setenv("SIMSMITH_SMDP_REQUESTER_ID", "1.3.6.1.4.1.99999.1")
    monkeypatch.delenv("SIMSMITH_SMDP_ADDRESS", raising=False)
    port = configured_smdp(engine, SMDP_ADDRESS)
    assert isinstance(port, Es2PlusSmdp)
    assert port.smdp_address == "rsp.vendor.example"
    assert "1.3.6.1.4.1.99999.1" in repr(port) and "PRIVATE" not in repr(port)
    port.close()
    monkeypatch.delenv("SIMSMITH_SMDP_KEY")
    with pytest.raises(ValueError, match="go together"):
        configured_smdp(engine, SMDP_ADDRESS)


def test_embedded_es2plus_listener(engine: Engine, tmp_path: Path) -> None:
    from api.es2plus_listener import start_embedded_es2plus
    from simcore.smdp.models import Es2PlusCall

    add_profiles(engine, 1)
    embedded = start_embedded_es2plus(engine, SMDP_ADDRESS, tmp_path / "pki")
    try:
        assert embedded.server.url.startswith("https://127.0.0.1:")
        p = esim_orders.order(engine, embedded.smdp, "customer-1", actor="t")
        assert p.profile_state == "released" and p.smdp_address == SMDP_ADDRESS
        with Session(engine) as s:
            calls = s.execute(select(func.count()).select_from(Es2PlusCall)).scalar_one()
        assert calls == 2
    finally:
        embedded.close()
    assert (tmp_path / "pki" / "client.pem").exists()
