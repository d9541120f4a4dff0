"""ES9+ sessions in the store (issue 16 item 7): the recorded download replays with its session
kept in SQLite / PostgreSQL between steps (as several workers would share it); expired sessions
are swept."""

from __future__ import annotations

import base64
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine

from esim.lpa.download import Es9Refused, download
from esim.sgp22 import bpp
from hsm_sim.soft import SoftHsm
from simcore.smdp.download_reports import OneStatementReports
from simcore.smdp.es9plus import DownloadSession, StoreSessions
from tests.esim.sgp22_vectors import data, h, session
from tests.smdp.es9_http import lpa, running_smdp
from tests.smdp.test_es9plus_core import NOW, _call, _cert, _request, _scalar, _smdp
from tests.wiring.conftest import hsm  # noqa: F401  (fixture)

pytestmark = pytest.mark.storage


def test_recorded_download_with_sessions_in_the_store(engine: Engine) -> None:
    smdp = _smdp(sessions=StoreSessions(engine))
    _call(smdp, "InitiateAuthentication")
    # a second core on the same store (another worker) takes the next step
    other = _smdp(sessions=StoreSessions(engine))
    other.orders = smdp.orders
    other.core.orders = smdp.orders
    _call(other, "AuthenticateClient")
    third = _call(smdp, "GetBoundProfilePackage")
    opened = bpp.open_bpp(base64.b64decode(third["boundProfilePackage"]),
                          otsk_euicc=_scalar("otSK.EUICC.ECKA"), eid=h(session()["eid"]),
                          dppb_public_key=_cert("CERT_S_SM_DPpb_ECDSA_NIST.pem"))
    assert opened.upp == data("upp.der")
    assert other.core.handle("handleNotification", _request("HandleNotification")).status == 204
    assert smdp.orders.events[-1][0] == "installed"
    assert StoreSessions(engine).get(h(session()["transactionId"])) is None


def test_store_round_trip_and_sweep(engine: Engine) -> None:
    store = StoreSessions(engine)
    one = DownloadSession(transaction_id=bytes.fromhex("0a" * 16), euicc_challenge=bytes(16),
                          server_challenge=b"\x01" * 16, ci_key_id=b"\x02" * 20,
                          expires_at=NOW + timedelta(minutes=10))
    store.put(one)
    assert store.get(one.transaction_id) == one
    later = DownloadSession(**{**one.__dict__, "stage": "authenticated", "eid": "8904" + "0" * 28,
                               "iccid": "8949449999999990163",
                               "euicc_certificate": b"\x30\x00", "smdp_signature2": b"\x5f",
                               "cc_required": True})
    store.put(later)
    assert store.get(one.transaction_id) == later
    two = DownloadSession(**{**one.__dict__, "transaction_id": b"\x0b",
                             "expires_at": NOW + timedelta(minutes=1)})
    store.put(two)
    assert store.sweep(NOW + timedelta(minutes=5)) == 1
    assert store.get(b"\x0b") is None and store.get(one.transaction_id) is not None
    store.delete(one.transaction_id)
    assert store.get(one.transaction_id) is None
    assert "StoreSessions(" in repr(store)


def test_a_delivery_and_its_session_step_commit_together(
        engine: Engine, hsm: SoftHsm, tmp_path: Path,  # noqa: F811
        monkeypatch: pytest.MonkeyPatch) -> None:
    """GetBoundProfilePackage's report (profile → downloaded, audited) and the session's move to
    `delivered` are one transaction: when the session's write fails, the profile is not left
    downloaded behind a session that never got there."""
    def failing(write: Any) -> Any:
        def step(self: StoreSessions, *args: Any) -> None:
            if args[-1].stage == "delivered":
                raise OSError("the store went away")
            write(self, *args)
        return step

    monkeypatch.setattr(StoreSessions, "put", failing(StoreSessions.put))
    monkeypatch.setattr(StoreSessions, "put_in", failing(getattr(StoreSessions, "put_in", None)),
                        raising=False)
    # PostgreSQL: the report is one statement (simcore.smdp.download_reports); it fails at its
    # very end, after the session, counters and state change were written by its earlier parts
    monkeypatch.setattr(OneStatementReports, "delivered",
                        _failing_at_the_end(OneStatementReports.delivered))
    with running_smdp(engine, hsm, tmp_path / "home", count=1) as smdp:
        profile = smdp.order()
        card = smdp.euicc(tmp_path)
        with lpa(card) as functions, smdp.es9() as es9, pytest.raises(Es9Refused) as refused:
            download(functions, es9, profile.activation_code.to_uri())
        assert refused.value.function == "getBoundProfilePackage"
        assert smdp.state(profile.iccid) == "released"
        assert "esim_profile.downloaded" not in smdp.actions(profile.iccid)
        # with the store back, the next attempt downloads and installs
        monkeypatch.undo()
        with lpa(card) as functions, smdp.es9() as es9:
            assert download(functions, es9, profile.activation_code.to_uri()).success
        assert smdp.state(profile.iccid) == "installed"
        assert _sessions_left(engine) == 1  # the failed attempt's, until it expires (swept)


def _failing_at_the_end(delivered: Any) -> Any:
    def step(self: OneStatementReports, *args: Any) -> None:
        statement = self._delivered
        good = statement.sql
        assert good.count("SELECT h.id, h.seq,") == 1
        statement.sql = good.replace("SELECT h.id, h.seq,", "SELECT h.id, h.seq / 0,")
        try:
            delivered(self, *args)
        finally:
            statement.sql = good
    return step


def test_one_statement_reports_are_postgresql_only(engine: Engine) -> None:
    if engine.dialect.name == "postgresql":
        assert OneStatementReports(engine, "t")
    else:
        with pytest.raises(ValueError, match="PostgreSQL"):
            OneStatementReports(engine, "t")


def _sessions_left(engine: Engine) -> int:
    from sqlalchemy import func, select

    from simcore.smdp.es9plus_models import SmdpDownloadSession

    with engine.connect() as conn:
        return int(conn.execute(select(func.count()).select_from(
            SmdpDownloadSession.__table__)).scalar_one())  # type: ignore[attr-defined]


def test_session_writes_do_not_wait_for_the_flush_reports_do(pg_engine: Engine) -> None:
    """On PostgreSQL an RSP session's own writes commit without waiting for the WAL flush (a
    session lost in a crash only restarts the download); a report's statement — the order's
    state, counters, audit — waits as every other write does."""
    from sqlalchemy import func, select

    from simcore import db
    from simcore.smdp.download_orders import StoreDownloadOrders

    sessions = StoreSessions(pg_engine)
    orders = StoreDownloadOrders(pg_engine, "smdp.example", sessions=sessions)
    assert orders._one is not None
    setting = select(func.current_setting("synchronous_commit"))
    assert not sessions._put._synchronous and not sessions._get._synchronous \
        and not sessions._delete._synchronous
    assert orders._one._delivered._synchronous
    assert db.DirectStatement(pg_engine, setting, keep=True, synchronous=False).rows() == [("off",)]
    assert db.DirectStatement(pg_engine, setting, keep=True).rows() == [("on",)]
