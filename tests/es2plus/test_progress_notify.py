"""HandleDownloadProgressInfo sent by simsmith's SM-DP+ (issue 12 item 5, SGP.22 §5.3.5): every
profile state change the SM-DP+ side makes goes through the outbox to the ordering operator's
receiver over HTTPS with mutual TLS — exactly once after a receiver outage, nothing lost when
the sender dies between sending and recording. Receivers: a raw HTTPS receiver asserting the
exact JSON, and simsmith's own ES2+ operator listener on a store of its own. The SM-DP+'s store
runs on SQLite and PostgreSQL."""

from __future__ import annotations

import json
import shutil
import socket
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, func, select, update
from sqlmodel import Session, col
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from api.es2plus_listener import MtlsServer, es2plus_app
from simcore import db, events
from simcore.lifecycle import PROFILE_LIFECYCLE, apply_transition
from simcore.models import AuditEvent, OutboxCursor, OutboxEvent, Sim, utcnow
from simcore.smdp import progress_notify as pn
from simcore.smdp.access import Role
from simcore.smdp.es2plus import Es2PlusEndpoint
from simcore.smdp.models import Es2PlusCall, Es2PlusNotification
from tests.es2plus.conftest import PROFILE_TYPE, REQUESTER, SMDP_ADDRESS, Pki, add_profiles

pytestmark = pytest.mark.storage

EID = "89049032123451234512345678901235"
PATH = "/gsma/rsp2/es2plus/handleDownloadProgressInfo"


@dataclass
class RawReceiver:
    """An operator's receiver written from the spec, not from simsmith: records each request's
    headers and JSON; `down` answers 503 (an outage)."""

    down: bool = False
    received: list[dict[str, Any]] = field(default_factory=list)
    headers: list[dict[str, str]] = field(default_factory=list)
    url: str = ""

    def app(self) -> Starlette:
        async def handle(request: Request) -> Response:
            if self.down:
                return Response("down for maintenance", status_code=503)
            self.received.append(json.loads(await request.body()))
            self.headers.append(dict(request.headers))
            return Response(status_code=204)

        return Starlette(routes=[Route(PATH, handle, methods=["POST"])])


@pytest.fixture
def raw(pki: Pki) -> Iterator[RawReceiver]:
    r = RawReceiver()
    server = MtlsServer(r.app(), cert=pki.dev.server_cert, key=pki.dev.server_key,
                        ca=pki.dev.ca).start()
    r.url = server.url
    yield r
    server.stop()


def notifier(engine: Engine, pki: Pki) -> pn.Notifier:
    # A first retry due at once: the test says when time passes, never waits for it.
    return pn.Notifier(engine, pn.NotifySettings(max_attempts=5, backoff_seconds=1e-6,
                                                 backoff_max_seconds=1e-6, timeout_seconds=5,
                                                 dev_pki=pki.directory))


def ordered(engine: Engine, n: int) -> list[str]:
    """`n` profiles ordered by REQUESTER and released at simsmith's SM-DP+ (ES2+)."""
    iccids = add_profiles(engine, n)
    ep = Es2PlusEndpoint(engine, SMDP_ADDRESS)
    for i, iccid in enumerate(iccids):
        for fn, extra in (("DownloadOrder", {}), ("ConfirmOrder", {"releaseFlag": True})):
            body = {"header": {"functionRequesterIdentifier": REQUESTER,
                               "functionCallIdentifier": f"{fn}-{i}"}, "iccid": iccid, **extra}
            answer = ep.handle(fn, body, principal=REQUESTER)
            assert answer.header.function_execution_status.status.executed
    return iccids


def smdp_moves(engine: Engine, iccid: str, target: str, **details: Any) -> None:
    """A state change as the SM-DP+'s download side makes it (ES9+: simcore.lifecycle)."""
    with db.transaction(engine) as s:
        sim = s.get(Sim, iccid)
        assert sim is not None
        apply_transition(s, sim, target, actor="es9plus", machine=PROFILE_LIFECYCLE,
                         reason=details.pop("reason", None), details=details)


def event_time(engine: Engine, iccid: str, to: str) -> str:
    with Session(engine) as s:
        rows = s.execute(select(OutboxEvent.created_at, OutboxEvent.payload)  # type: ignore[call-overload]
                         .where(col(OutboxEvent.subject_id) == iccid)).all()
    at = next(t for t, p in rows if json.loads(p).get("to") == to)
    return str(at.strftime("%Y-%m-%dT%H:%M:%SZ"))


def notes(engine: Engine) -> list[Es2PlusNotification]:
    return pn.list_notifications(engine, limit=1000)


def time_passes(engine: Engine) -> None:
    """Every lease and backoff over (instead of sleeping)."""
    with engine.begin() as c:
        c.execute(update(Es2PlusNotification).where(col(Es2PlusNotification.state) == "pending")
                  .values(next_attempt_at=utcnow() - timedelta(seconds=1)))


@pytest.mark.slow  # an HTTPS receiver per test
def test_each_state_change_reaches_the_receiver_as_exact_json(
        engine: Engine, pki: Pki, raw: RawReceiver) -> None:
    a, b = ordered(engine, 2)
    pn.set_receiver(engine, REQUESTER, raw.url)  # the development PKI's client certificate
    smdp_moves(engine, a, "downloaded", eid=EID)
    smdp_moves(engine, a, "installed", eid=EID)
    smdp_moves(engine, a, "enabled")
    smdp_moves(engine, a, "disabled")
    smdp_moves(engine, a, "deleted")
    smdp_moves(engine, b, "error", reason="BPP installation refused by the eUICC",
               subject_code="8.1", reason_code="4.8")
    n = notifier(engine, pki)
    try:
        done = n.run_once()
    finally:
        n.close()
    assert done["sent"] == done["delivered"] == 6
    calls = {row.call_id: row for row in notes(engine)}
    assert {h["x-admin-protocol"] for h in raw.headers} == {"gsma/rsp/v2.5.0"}
    assert all(h["content-type"].startswith("application/json") for h in raw.headers)
    for got in raw.received:
        assert got["header"]["functionRequesterIdentifier"] == REQUESTER  # the client's CN
        assert got["header"]["functionCallIdentifier"] in calls
    bodies = [{k: v for k, v in got.items() if k != "header"} for got in raw.received]

    def ok(iccid: str, to: str, point: int, eid: str | None = EID) -> dict[str, Any]:
        return {**({"eid": eid} if eid else {}), "iccid": iccid, "profileType": PROFILE_TYPE,
                "timestamp": event_time(engine, iccid, to), "notificationPointId": point,
                "notificationPointStatus": {"status": "Executed-Success"}}

    assert bodies == [  # the EID when the change or the profile's row names one
        ok(a, "downloaded", 3), ok(a, "installed", 4), ok(a, "enabled", 101, None),
        ok(a, "disabled", 102, None), ok(a, "deleted", 5, None),
        {"iccid": b, "profileType": PROFILE_TYPE, "timestamp": event_time(engine, b, "error"),
         "notificationPointId": 3, "notificationPointStatus": {
             "status": "Failed", "statusCodeData": {
                 "subjectCode": "8.1", "reasonCode": "4.8",
                 "message": "BPP installation refused by the eUICC"}}},
    ]
    assert list(raw.received[0]) == ["header", "eid", "iccid", "profileType", "timestamp",
                                     "notificationPointId", "notificationPointStatus"]


@pytest.mark.slow  # an HTTPS receiver per test
def test_order_states_and_mirrored_progress_are_not_sent(
        engine: Engine, pki: Pki, raw: RawReceiver) -> None:
    pn.set_receiver(engine, REQUESTER, raw.url)
    a, = ordered(engine, 1)  # allocated, released: the operator's own calls, never notified
    # A change mirrored from another SM-DP+'s notification: simsmith is the operator there.
    smdp_moves(engine, a, "downloaded", function="HandleDownloadProgressInfo")
    # A profile nobody ordered (stocked for no operator): no operator to tell.
    lone = add_profiles(engine, 1, batch="lone", state="released")[0]
    smdp_moves(engine, lone, "downloaded")
    n = notifier(engine, pki)
    try:
        assert n.run_once()["sent"] == 0
    finally:
        n.close()
    assert raw.received == [] and notes(engine) == []


@pytest.mark.slow  # an HTTPS receiver per test
def test_exactly_once_after_a_receiver_outage(engine: Engine, pki: Pki,
                                              raw: RawReceiver) -> None:
    a, b = ordered(engine, 2)
    pn.set_receiver(engine, REQUESTER, raw.url)
    raw.down = True
    smdp_moves(engine, a, "downloaded")
    smdp_moves(engine, b, "downloaded")
    n = notifier(engine, pki)
    try:
        assert {k: v for k, v in n.run_once().items() if k != "events"} == {
            "sent": 2, "delivered": 0, "failed": 2}
        failed = notes(engine)
        assert {(x.state, x.attempts, x.last_status) for x in failed} == {("pending", 1, 503)}
        assert all("503" in (x.last_error or "") for x in failed)
        smdp_moves(engine, a, "installed")  # more progress while the receiver is down
        time_passes(engine)
        assert n.run_once()["failed"] == 3
        raw.down = False
        time_passes(engine)
        assert n.run_once()["delivered"] == 3
        time_passes(engine)
        assert n.run_once() == {"events": 0, "sent": 0, "delivered": 0, "failed": 0}
    finally:
        n.close()
    got = [(r["iccid"], r["notificationPointId"], r["header"]["functionCallIdentifier"])
           for r in raw.received]
    assert sorted(got[:2]) == sorted([(a, 3, got[0][2] if got[0][0] == a else got[1][2]),
                                      (b, 3, got[1][2] if got[0][0] == a else got[0][2])])
    assert got[2][:2] == (a, 4)
    assert len({c for _, _, c in got}) == 3  # each notification once, each its own call
    assert {x.state for x in notes(engine)} == {"delivered"}


@pytest.mark.slow  # an HTTPS receiver per test
def test_a_disabled_receiver_keeps_its_notifications_queued(
        engine: Engine, pki: Pki, raw: RawReceiver) -> None:
    a, = ordered(engine, 1)
    pn.set_receiver(engine, REQUESTER, raw.url, enabled=False)
    smdp_moves(engine, a, "downloaded")
    n = notifier(engine, pki)
    try:
        assert n.run_once()["sent"] == 0
        assert [x.state for x in notes(engine)] == ["pending"]
        pn.enable_receiver(engine, REQUESTER, True)
        assert n.run_once()["delivered"] == 1
    finally:
        n.close()
    assert [r["iccid"] for r in raw.received] == [a]


@pytest.mark.slow  # an HTTPS receiver per test
def test_dead_after_the_last_attempt_then_redelivered(
        engine: Engine, pki: Pki, raw: RawReceiver) -> None:
    a, = ordered(engine, 1)
    pn.set_receiver(engine, REQUESTER, raw.url)
    raw.down = True
    smdp_moves(engine, a, "downloaded")
    n = notifier(engine, pki)
    try:
        for _ in range(5):
            n.run_once()
            time_passes(engine)
        dead, = notes(engine)
        assert (dead.state, dead.attempts) == ("dead", 5)
        assert n.run_once()["sent"] == 0
        raw.down = False
        pn.redeliver(engine, int(dead.id or 0))
        assert n.run_once()["delivered"] == 1
    finally:
        n.close()
    assert len(raw.received) == 1


@pytest.fixture
def operator_store(tmp_path: Path, sqlite_template: Path) -> Iterator[Engine]:
    """The operator's own simsmith, a store of its own."""
    path = tmp_path / "operator.db"
    shutil.copy(sqlite_template, path)
    eng = db.make_engine(f"sqlite:///{path}")
    yield eng
    eng.dispose()


@pytest.fixture
def operator_listener(operator_store: Engine, pki: Pki) -> Iterator[str]:
    """simsmith's ES2+ operator listener (role notify) on the operator's store."""
    app = es2plus_app(Es2PlusEndpoint(operator_store, SMDP_ADDRESS), roles={Role.NOTIFY})
    server = MtlsServer(app, cert=pki.dev.server_cert, key=pki.dev.server_key,
                        ca=pki.dev.ca).start()
    yield server.url
    server.stop()


def audit_actions(engine: Engine, iccid: str) -> list[str]:
    with Session(engine) as s:
        return list(s.execute(select(col(AuditEvent.action))
                              .where(col(AuditEvent.subject_id) == iccid)
                              .order_by(col(AuditEvent.seq))).scalars())


@pytest.mark.slow  # an HTTPS receiver per test
def test_simsmiths_operator_listener_mirrors_each_change_once_across_outage_and_crash(
        engine: Engine, pki: Pki, operator_store: Engine, operator_listener: str,
        monkeypatch: pytest.MonkeyPatch) -> None:
    a, b = ordered(engine, 2)
    # The operator's inventory holds the same profiles, released (its side of the order).
    assert add_profiles(operator_store, 2, state="released") == [a, b]
    # First the operator's listener is out (nothing listens where it should be).
    with socket.socket() as free:
        free.bind(("127.0.0.1", 0))
        dead = f"https://127.0.0.1:{free.getsockname()[1]}"
    pn.set_receiver(engine, REQUESTER, dead)
    smdp_moves(engine, a, "downloaded")
    smdp_moves(engine, b, "downloaded")
    out = notifier(engine, pki)
    try:
        assert out.run_once()["failed"] == 2
    finally:
        out.close()
    assert all("refused" in (x.last_error or "").lower() or "connect" in
               (x.last_error or "").lower() for x in notes(engine))
    time_passes(engine)
    pn.set_receiver(engine, REQUESTER, operator_listener + PATH)  # the full URL works too

    # The sender dies after the receiver took the first notification, before recording it.
    real = pn.record_result
    crashed: list[int] = []

    def crash(*args: Any, **kw: Any) -> str:
        if not crashed:
            crashed.append(1)
            raise SystemExit("killed between send and mark")
        return real(*args, **kw)

    monkeypatch.setattr(pn, "record_result", crash)
    n = notifier(engine, pki)
    with pytest.raises(SystemExit):
        n.run_once()
    n.close()
    monkeypatch.setattr(pn, "record_result", real)
    # The operator has it; the SM-DP+'s record says pending (its lease runs out).
    assert {(x.state, x.attempts) for x in notes(engine)} == {("pending", 1)}
    smdp_moves(engine, a, "installed")

    restarted = notifier(engine, pki)
    try:
        time_passes(engine)
        assert restarted.run_once()["delivered"] == 3
        time_passes(engine)
        assert restarted.run_once()["sent"] == 0
    finally:
        restarted.close()
    assert {x.state for x in notes(engine)} == {"delivered"}
    with Session(operator_store) as s:
        states = {i: s.get(Sim, i).profile_state for i in (a, b)}  # type: ignore[union-attr]
        calls = s.execute(select(func.count()).select_from(Es2PlusCall)).scalar_one()
    assert states == {a: "installed", b: "downloaded"}
    assert calls == 3  # one per notification: the resent one was answered from the log
    assert audit_actions(operator_store, a) == ["esim_profile.downloaded",
                                                "esim_profile.installed"]
    assert audit_actions(operator_store, b) == ["esim_profile.downloaded"]


def test_the_cursor_reads_every_event_once_and_waits_for_late_ones(engine: Engine) -> None:
    """events.consume: events handed over once; an id that becomes visible after a higher one
    (a transaction committing late, as PostgreSQL shows it) is still read; a gap that never
    fills is given up after GAP_WAIT."""
    seen: list[int] = []

    def handle(conn: Any, rows: Any) -> None:
        seen.extend(int(r.id) for r in rows)

    def put(event_id: int) -> None:
        with engine.begin() as c:
            c.execute(OutboxEvent.__table__.insert().values(  # type: ignore[attr-defined]
                id=event_id, created_at=utcnow(), topic="t.x", subject_type="x",
                subject_id="1", payload="{}", attempts=0))

    for i in (1, 2, 3):
        put(i)
    assert events.consume(engine, "test", handle) == 3
    assert events.consume(engine, "test", handle) == 0
    put(5)  # 4 is still in flight
    assert events.consume(engine, "test", handle) == 1
    put(4)
    assert events.consume(engine, "test", handle) == 1
    assert seen == [1, 2, 3, 5, 4]
    assert events.consume(engine, "test", handle, topics=("t.y",)) == 0
    put(8)  # 6 and 7 never come (rolled back)
    assert events.consume(engine, "test", handle) == 1

    def gaps() -> dict[str, str]:
        with engine.begin() as c:
            return dict(json.loads(c.execute(select(col(OutboxCursor.gaps)).where(
                col(OutboxCursor.consumer) == "test")).scalar_one()))

    assert sorted(gaps()) == ["6", "7"]
    later = utcnow() + events.GAP_WAIT + timedelta(seconds=1)
    events.consume(engine, "test", handle, now=later)
    assert gaps() == {} and seen == [1, 2, 3, 5, 4, 8]
    # Pruning never takes what a cursor has not passed, nor the newest event.
    with engine.begin() as c:
        c.execute(update(OutboxEvent).values(published_at=utcnow() - timedelta(days=30)))
    put(9)
    pn.collect(engine)  # every consumer past them (the notifier's cursor, once it has run)
    with engine.begin() as c:
        c.execute(update(OutboxEvent).values(published_at=utcnow() - timedelta(days=30)))
    assert events.prune(engine, older_than=timedelta(days=1)) == 6  # 1-5 and 8, not 9
    with engine.begin() as c:
        left = sorted(c.execute(select(col(OutboxEvent.id))).scalars())
    assert left == [9]


@pytest.mark.slow  # an HTTPS receiver per test
def test_the_command_line_configures_and_sends(engine: Engine, pki: Pki, raw: RawReceiver,
                                               tmp_path: Path) -> None:
    """`simsmith smdp receiver-set / receivers / notify --once / notifications`, --json."""
    from typer.testing import CliRunner

    from tools.cli import app

    runner = CliRunner()
    shutil.copytree(pki.directory, tmp_path / "pki")  # the dev PKI of $SIMSMITH_HOME
    env = {"SIMSMITH_HOME": str(tmp_path),
           "SIMSMITH_DATABASE_URL": engine.url.render_as_string(hide_password=False)}
    for command in ("receiver-set", "receiver-enable", "receivers", "notifications", "notify"):
        r = runner.invoke(app, ["smdp", command, "--help"])
        assert r.exit_code == 0 and "--json" in r.output
    r = runner.invoke(app, ["smdp", "receiver-set", "--operator", REQUESTER, "--url",
                            raw.url.replace("https:", "http:"), "--json"], env=env)
    assert r.exit_code == 1 and "url" in r.output and "https" in r.output
    r = runner.invoke(app, ["smdp", "receiver-set", "--operator", REQUESTER, "--url", raw.url,
                            "--json"], env=env)
    assert r.exit_code == 0, r.output
    assert json.loads(r.stdout)["enabled"] is True
    assert [x["operator"] for x in json.loads(runner.invoke(
        app, ["smdp", "receivers", "--json"], env=env).stdout)] == [REQUESTER]
    a, = ordered(engine, 1)
    smdp_moves(engine, a, "downloaded")
    r = runner.invoke(app, ["smdp", "notify", "--once", "--json"], env=env)
    assert r.exit_code == 0, r.output
    assert json.loads(r.stdout)["delivered"] == 1
    listed = json.loads(runner.invoke(app, ["smdp", "notifications", "--json"], env=env).stdout)
    assert [(x["iccid"], x["state"], x["body"]["notificationPointId"]) for x in listed] == [
        (a, "delivered", 3)]
    assert [x["iccid"] for x in raw.received] == [a]


@pytest.mark.slow  # an HTTPS receiver per test
def test_serve_sends_in_the_background(engine: Engine, pki: Pki, raw: RawReceiver,
                                       tmp_path: Path) -> None:
    """The API process (`simsmith serve`) runs the sender loop."""
    import time

    from fastapi.testclient import TestClient

    from api.main import create_app
    from api.settings import ApiSettings

    shutil.copytree(pki.directory, tmp_path / "pki")
    a, = ordered(engine, 1)
    pn.set_receiver(engine, REQUESTER, raw.url)
    settings = ApiSettings(home=tmp_path, webhooks_enabled=False,
                           es2plus_notify_poll_seconds=0.05)
    with TestClient(create_app(settings, engine=engine)):
        smdp_moves(engine, a, "downloaded")
        deadline = time.monotonic() + 30  # a bound on waiting, not a timing assertion
        while not raw.received and time.monotonic() < deadline:
            time.sleep(0.05)
    assert [(x["iccid"], x["notificationPointId"]) for x in raw.received] == [(a, 3)]


@pytest.mark.slow  # an HTTPS receiver per test
def test_the_es9plus_download_side_is_heard(engine: Engine, pki: Pki,
                                            raw: RawReceiver) -> None:
    """The ES9+ service's store adapter (simcore.smdp.download_orders) moves the profile:
    delivered → 3, installation result → 4, confirmation code attempts exhausted → 2."""
    from simcore.smdp.download_orders import DownloadLimits, StoreDownloadOrders
    from simcore.smdp.models import Es2PlusOrder

    a, b = ordered(engine, 2)
    pn.set_receiver(engine, REQUESTER, raw.url)
    with Session(engine) as s:
        mid = {i: s.get(Es2PlusOrder, i).matching_id for i in (a, b)}  # type: ignore[union-attr]
    orders = StoreDownloadOrders(engine, SMDP_ADDRESS, limits=DownloadLimits(cc_attempts=1))
    order_a = orders.released(str(mid[a]))
    assert order_a is not None
    orders.delivered(order_a, EID, b"\x01" * 16)
    orders.installed(a, EID)
    order_b = orders.released(str(mid[b]))
    assert order_b is not None
    assert orders.confirmation_code_failed(order_b) == 0
    n = notifier(engine, pki)
    try:
        assert n.run_once()["delivered"] == 3
    finally:
        n.close()
    got = [(r["iccid"], r.get("eid"), r["notificationPointId"],
            r["notificationPointStatus"]["status"]) for r in raw.received]
    assert got == [(a, EID, 3, "Executed-Success"), (a, EID, 4, "Executed-Success"),
                   (b, None, 2, "Failed")]
    assert raw.received[2]["notificationPointStatus"]["statusCodeData"] == {
        "subjectCode": "8.2.7", "reasonCode": "6.4",
        "message": "confirmation code attempts exhausted"}


def test_other_notification_points_follow_the_setting(engine: Engine, pki: Pki) -> None:
    """SGP.22 defines points 1-4 only; enable/disable/delete go out under the configured
    numbers (here another commercial SM-DP+'s 6/7/8), and a state left out is not sent."""
    a, = ordered(engine, 1)
    pn.set_receiver(engine, REQUESTER, "https://operator.example/gsma/rsp2/es2plus")
    for to in ("downloaded", "installed", "enabled", "disabled", "deleted"):
        smdp_moves(engine, a, to, eid=EID)
    points = pn.parse_other_points("enabled=6, deleted=8")
    pn.collect(engine, other_points=points)
    sent = [json.loads(n.body)["notificationPointId"] for n in
            sorted(notes(engine), key=lambda n: n.event_id)]
    assert sent == [3, 4, 6, 8]  # disabled: not in the mapping, not sent


def test_only_sgp22_points_with_an_empty_setting(engine: Engine, pki: Pki) -> None:
    a, = ordered(engine, 1)
    pn.set_receiver(engine, REQUESTER, "https://operator.example/gsma/rsp2/es2plus")
    for to in ("downloaded", "installed", "enabled", "deleted"):
        smdp_moves(engine, a, to, eid=EID)
    pn.collect(engine, other_points=pn.parse_other_points(""))
    assert sorted(json.loads(n.body)["notificationPointId"] for n in notes(engine)) == [3, 4]


@pytest.mark.parametrize(("text", "where", "problem"), [
    ("enabled", "[0]", "not state=point"),
    ("deleted=5,installed=9", "[1]", "not state=point"),
    ("enabled=3", "[0]", "not a point number"),  # SGP.22's BPP download
    ("enabled=x", "[0]", "not a point number"),
    ("enabled=6,enabled=7", "[1]", "state given twice"),
])
def test_a_bad_points_setting_names_the_item(text: str, where: str, problem: str) -> None:
    from simcore.errors import InvalidInput

    with pytest.raises(InvalidInput) as e:
        pn.parse_other_points(text)
    assert f"es2plus_notify_other_points{where}" in str(e.value)
    assert problem in str(e.value)


def test_the_setting_reaches_the_notifier(tmp_path: Path) -> None:
    from simcore.config import Settings

    s = Settings(home=tmp_path, es2plus_notify_other_points="deleted=8,enabled=6,disabled=7")
    got = pn.NotifySettings.from_settings(s).other_points
    assert got is not None
    assert {str(k): v for k, v in got.items()} == {"deleted": 8, "enabled": 6, "disabled": 7}
