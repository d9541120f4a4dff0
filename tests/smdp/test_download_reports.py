"""GetBoundProfilePackage's and HandleNotification's reports as one statement each on PostgreSQL
(simcore.smdp.download_reports) write what the transaction path of
simcore.smdp.download_orders writes — the profile's state, version and EID, the order's
counters, the RSP session's step, the audit records (action, details byte for byte) and their
outbox events — in every branch: a first delivery, a re-download, a delivery to a profile that
already has its EID, an installation, a failed one, a result for a profile already installed or
in a state the result cannot move, and a profile with no state. The audit log verifies after.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import Engine, insert, select, update

from simcore import audit
from simcore.db import connection_transaction
from simcore.models import AuditEvent, OutboxEvent, Sim, utcnow
from simcore.smdp.download_orders import StoreDownloadOrders
from simcore.smdp.es9plus import DownloadSession, ReleasedOrder, StoreSessions
from simcore.smdp.es9plus_models import SmdpDownloadCounter, SmdpDownloadSession

pytestmark = pytest.mark.storage

ICCID = "8988211000000000011"
EID = "89049032123451234512345678901235"
TID = bytes.fromhex("0102030405060708090a0b0c0d0e0f10")


def _orders(engine: Engine, *, one_statement: bool) -> StoreDownloadOrders:
    # A progress hook keeps a report in its transaction (the hook runs inside it)
    return StoreDownloadOrders(engine, "smdp.example", sessions=StoreSessions(engine),
                               progress=None if one_statement else (lambda conn, r: None))


def _profile(engine: Engine, state: str | None, eid: str | None = None,
             counted: int | None = None) -> None:
    now = utcnow()
    with connection_transaction(engine) as conn:
        conn.execute(insert(Sim).values(iccid=ICCID, kind="esim", state="allocated",
                                        profile_state=state, eid=eid, version=3,
                                        created_at=now, updated_at=now))
        if counted is not None:
            conn.execute(insert(SmdpDownloadCounter).values(
                iccid=ICCID, matching_id="MATCH-1", downloads=counted, cc_failures=1,
                last_transaction_id="00" * 16, updated_at=now,
                expires_at=now + timedelta(days=1)))


def _session(stage: str) -> DownloadSession:
    return DownloadSession(transaction_id=TID, euicc_challenge=b"\x01" * 16,
                           server_challenge=b"\x02" * 16, ci_key_id=b"\x03" * 20,
                           expires_at=utcnow() + timedelta(minutes=10), stage=stage,
                           matching_id="MATCH-1", eid=EID, iccid=ICCID,
                           euicc_certificate=b"\x30\x00", smdp_signature2=b"\x5f\x37\x00",
                           cc_required=True)


def _order() -> ReleasedOrder:
    return ReleasedOrder(matching_id="MATCH-1", iccid=ICCID, profile_metadata=b"\xbf\x25\x00")


def _store(engine: Engine) -> dict[str, Any]:
    """What the reports leave: the profile, the counters, the sessions, the records."""
    with engine.connect() as conn:
        sim = conn.execute(select(Sim.profile_state, Sim.eid, Sim.version)  # type: ignore[call-overload]
                           .where(Sim.iccid == ICCID)).one()
        counter = conn.execute(select(
            SmdpDownloadCounter.matching_id, SmdpDownloadCounter.downloads,  # type: ignore[call-overload]
            SmdpDownloadCounter.cc_failures, SmdpDownloadCounter.last_transaction_id,
            SmdpDownloadCounter.expires_at.is_not(None))).all()  # type: ignore[union-attr]
        sessions = conn.execute(select(SmdpDownloadSession.transaction_id,  # type: ignore[call-overload]
                                       SmdpDownloadSession.stage)).all()
        events = conn.execute(select(AuditEvent.actor, AuditEvent.action,  # type: ignore[call-overload]
                                     AuditEvent.subject_type, AuditEvent.subject_id,
                                     AuditEvent.details, AuditEvent.lane, AuditEvent.lane_seq)
                              .order_by(AuditEvent.seq)).all()
        outbox = conn.execute(select(OutboxEvent.topic, OutboxEvent.subject_type,  # type: ignore[call-overload]
                                     OutboxEvent.subject_id, OutboxEvent.payload)
                              .order_by(OutboxEvent.id)).all()
    audit.verify(engine)
    return {"sim": tuple(sim), "counter": [tuple(r) for r in counter],
            "sessions": [tuple(r) for r in sessions], "events": [tuple(r) for r in events],
            "outbox": [tuple(r) for r in outbox]}


Report = Callable[[StoreDownloadOrders], None]


def _delivered(orders: StoreDownloadOrders) -> None:
    orders.delivered(_order(), EID, TID, _session("delivered"))


def _installed(orders: StoreDownloadOrders) -> None:
    orders.installed(ICCID, EID, TID)


def _failed(orders: StoreDownloadOrders) -> None:
    orders.install_failed(ICCID, EID, "loadProfileElements: installFailedDueToDataMismatch", TID)


def _installed_no_eid(orders: StoreDownloadOrders) -> None:
    orders.installed(ICCID, None, TID)


CASES: dict[str, tuple[Report, dict[str, Any]]] = {
    "first delivery": (_delivered, {"state": "released"}),
    "first delivery, EID already bound": (_delivered, {"state": "released", "eid": EID}),
    "first delivery, counted before": (_delivered, {"state": "released", "counted": 0}),
    "re-download": (_delivered, {"state": "downloaded", "eid": EID, "counted": 1}),
    "delivery, no profile state": (_delivered, {"state": None}),
    "installed": (_installed, {"state": "downloaded", "eid": EID, "counted": 1}),
    "installed from released": (_installed, {"state": "released"}),
    "installed, no EID known": (_installed_no_eid, {"state": "downloaded"}),
    "installation failed": (_failed, {"state": "downloaded", "eid": EID}),
    "installed again": (_installed, {"state": "installed", "eid": EID}),
    "failed after installed": (_failed, {"state": "installed", "eid": EID}),
    "installed when enabled": (_installed, {"state": "enabled", "eid": EID}),
    "failed when deleted": (_failed, {"state": "deleted", "eid": EID}),
    "installed, no profile state": (_installed, {"state": None}),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_one_statement_writes_what_the_transaction_writes(pg_engine: Engine, case: str) -> None:
    from tests.conftest import reset_pg

    report, profile = CASES[case]
    after = []
    for one_statement in (False, True):
        reset_pg(pg_engine)
        _profile(pg_engine, **profile)
        StoreSessions(pg_engine).put(_session("authenticated"))
        orders = _orders(pg_engine, one_statement=one_statement)
        assert (orders._one is not None) is one_statement
        report(orders)
        after.append(_store(pg_engine))
    transaction, statement = after
    assert statement == transaction
    assert statement["events"]  # something was recorded


def test_reports_keep_the_lane_in_order(pg_engine: Engine) -> None:
    """Several reports of one profile chain on its lane one after the other (one statement
    each), and the log verifies."""
    from tests.conftest import reset_pg

    reset_pg(pg_engine)
    _profile(pg_engine, "released")
    orders = _orders(pg_engine, one_statement=True)
    StoreSessions(pg_engine).put(_session("authenticated"))
    _delivered(orders)
    _delivered(orders)  # a re-download
    _installed(orders)
    got = _store(pg_engine)
    assert [e[1] for e in got["events"]] == ["esim_profile.downloaded",
                                             "esim_profile.redownloaded",
                                             "esim_profile.installed"]
    assert [e[6] for e in got["events"]] == [1, 2, 3]
    assert got["sim"] == ("installed", EID, 5)
    assert got["counter"] == [("MATCH-1", 2, 0, TID.hex().upper(), False)]
    assert got["sessions"] == []


def test_no_lane_head_no_report(pg_engine: Engine) -> None:
    """Without its audit lane's head the report fails as a whole: nothing moved, counted or
    stepped without its record."""
    from tests.conftest import reset_pg

    reset_pg(pg_engine)
    _profile(pg_engine, "released")
    StoreSessions(pg_engine).put(_session("authenticated"))
    with connection_transaction(pg_engine) as conn:
        conn.execute(update(audit.AuditHead).where(audit.AuditHead.id == audit.lane_of(ICCID))  # type: ignore[arg-type]
                     .values(id=99))
    try:
        with pytest.raises(Exception, match="not-null"):
            _delivered(_orders(pg_engine, one_statement=True))
        with pg_engine.connect() as conn:
            assert conn.execute(select(Sim.profile_state)  # type: ignore[call-overload]
                                .where(Sim.iccid == ICCID)).scalar_one() == "released"
            assert conn.execute(select(SmdpDownloadCounter.iccid)).all() == []  # type: ignore[call-overload]
            assert conn.execute(select(SmdpDownloadSession.stage)  # type: ignore[call-overload]
                                ).scalar_one() == "authenticated"
    finally:
        with connection_transaction(pg_engine) as conn:
            conn.execute(update(audit.AuditHead).where(audit.AuditHead.id == 99)  # type: ignore[arg-type]
                         .values(id=audit.lane_of(ICCID)))


def test_session_with_order_reads_both_at_once(engine: Engine) -> None:
    """GetBoundProfilePackage's one read: the session and what `released` says of its
    matching ID (SQLite and PostgreSQL)."""
    from simcore.smdp.models import Es2PlusOrder

    _profile(engine, "released", counted=1)
    orders = _orders(engine, one_statement=engine.dialect.name == "postgresql")
    assert orders.session_with_order(TID) == (None, None)
    StoreSessions(engine).put(_session("authenticated"))
    found, order = orders.session_with_order(TID)
    assert found == StoreSessions(engine).get(TID) and order is None  # no order under MATCH-1
    now = utcnow()
    with connection_transaction(engine) as conn:
        conn.execute(insert(Es2PlusOrder).values(iccid=ICCID, requester="t", matching_id="MATCH-1",
                                                 cc_hash="ab" * 32, created_at=now,
                                                 updated_at=now))
    found, order = orders.session_with_order(TID)
    assert found == _session("authenticated").__class__(**{**found.__dict__})  # type: ignore[union-attr]
    assert order == orders.released("MATCH-1")
    assert order is not None and order.downloads_left == orders.limits.downloads - 1
    assert order.confirmation_code_hash == bytes.fromhex("ab" * 32) and order.released
    StoreSessions(engine).put(DownloadSession(**{**_session("authenticated").__dict__,
                                                 "matching_id": None}))
    found, order = orders.session_with_order(TID)
    assert found is not None and found.matching_id is None and order is None


def test_the_orders_reads_carry_the_upp_record_and_the_euiccs_matching_id(
        engine: Engine) -> None:
    """GetBoundProfilePackage's read brings what the UPP needs of the SIM (its identities and
    key references: the UPP source reads nothing more); AuthenticateClient's reads the session
    with the order of the matching ID the eUICC sent, not the session's (SQLite and
    PostgreSQL)."""
    from simcore.models import SimCredential
    from simcore.smdp.models import Es2PlusOrder
    from simcore.smdp.upp_source import UppRecord

    _profile(engine, "released")
    now = utcnow()
    with connection_transaction(engine) as conn:
        conn.execute(update(Sim).where(Sim.iccid == ICCID).values(  # type: ignore[arg-type]
            imsi="001010000000001", ki_ref="ki-token", opc_ref="opc-token"))
        conn.execute(insert(SimCredential), [{"iccid": ICCID, "name": n, "ref": f"{n}-token"}
                                             for n in ("adm1", "pin1")])
        conn.execute(insert(Es2PlusOrder).values(iccid=ICCID, requester="t",
                                                 matching_id="MATCH-1", created_at=now,
                                                 updated_at=now))
    orders = _orders(engine, one_statement=engine.dialect.name == "postgresql")
    StoreSessions(engine).put(_session("authenticated"))
    _, order = orders.session_with_order(TID)
    assert order is not None and order.upp_record == UppRecord(
        imsi="001010000000001", msisdn=None, ki_ref="ki-token", opc_ref="opc-token",
        profile=None, credentials={"adm1": "adm1-token", "pin1": "pin1-token"})
    assert "token" not in repr(order) + repr(order.upp_record)
    # AuthenticateClient: the session (still at `initiated`, no matching ID yet) and the order
    StoreSessions(engine).put(DownloadSession(**{**_session("initiated").__dict__,
                                                 "matching_id": None, "iccid": None}))
    found, order = orders.session_with_released(TID, "MATCH-1")
    assert found == StoreSessions(engine).get(TID) and found is not None
    assert order == orders.released("MATCH-1") and order is not None
    assert order.iccid == ICCID and order.released
    found, order = orders.session_with_released(TID, "MATCH-2")
    assert found is not None and order is None
    assert orders.session_with_released(bytes(16), "MATCH-1") == (None, None)
