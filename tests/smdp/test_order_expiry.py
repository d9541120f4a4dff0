"""Download order expiry (SGP.22 §3.1.3; issue 16): SIMSMITH_SMDP_ORDER_VALIDITY starts when an
order is released — by the order service's in-process SM-DP+, by ES2+ ConfirmOrder with
releaseFlag or by ReleaseProfile — and is shown with the order; an expired order is refused at
ES9+ with 8.8.5 / 4.10 over real HTTPS, its profile moved to error with an audit record and an
outbox event whose HandleDownloadProgressInfo is Failed at notification point 1 with that code;
the sweeper ends the orders nobody came for. SQLite and PostgreSQL."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path

import pytest
from pydantic import ValidationError
from sqlalchemy import Engine, select, update
from sqlmodel import Session, col

from esim.lpa.download import Es9Refused, download
from hsm_sim.soft import SoftHsm
from simcore import esim_orders
from simcore.config import Settings
from simcore.db import connection_transaction
from simcore.models import OutboxEvent, utcnow
from simcore.smdp.download_orders import StoreDownloadOrders
from simcore.smdp.download_service import sweep_orders
from simcore.smdp.es2plus import Es2PlusEndpoint
from simcore.smdp.es9plus_models import SmdpDownloadCounter
from simcore.smdp.in_process import InProcessSmdp
from simcore.smdp.progress_notify import progress_body
from simcore.smdp.stock import list_orders
from tests.smdp.es9_http import Smdp, lpa, running_smdp
from tests.wiring.conftest import hsm  # noqa: F401  (fixture)

pytestmark = [pytest.mark.storage]


@pytest.mark.parametrize(("text", "expected"), [
    ("7d", timedelta(days=7)), ("48h", timedelta(hours=48)), ("90m", timedelta(minutes=90)),
    ("3600s", timedelta(hours=1)), ("1.5d", timedelta(hours=36)), ("P2D", timedelta(days=2)),
    ("none", None), ("", None),
])
def test_validity_setting(monkeypatch: pytest.MonkeyPatch, text: str,
                          expected: timedelta | None) -> None:
    monkeypatch.setenv("SIMSMITH_SMDP_ORDER_VALIDITY", text)
    assert Settings().smdp_order_validity == expected


@pytest.mark.parametrize("text", ["7x", "0h", "-1d", "soon"])
def test_validity_setting_refused(monkeypatch: pytest.MonkeyPatch, text: str) -> None:
    monkeypatch.setenv("SIMSMITH_SMDP_ORDER_VALIDITY", text)
    with pytest.raises(ValidationError, match="smdp_order_validity"):
        Settings()


def _order(smdp: Smdp, validity: timedelta | None) -> esim_orders.EsimProfile:
    port = InProcessSmdp(smdp.engine, smdp.address, order_validity=validity)
    return esim_orders.order(smdp.engine, port, "cust", actor="t")


def _expire(engine: Engine, iccid: str) -> None:
    with Session(engine) as s:
        s.execute(update(SmdpDownloadCounter).where(col(SmdpDownloadCounter.iccid) == iccid)
                  .values(expires_at=utcnow() - timedelta(seconds=1)))
        s.commit()


def _error_change(engine: Engine, iccid: str) -> dict[str, object]:
    with Session(engine) as s:
        payloads = s.execute(select(col(OutboxEvent.payload)).where(
            col(OutboxEvent.subject_id) == iccid,
            col(OutboxEvent.topic) == "esim_profile.state_changed")
            .order_by(col(OutboxEvent.id))).scalars().all()
    changes = [json.loads(p) for p in payloads if json.loads(p).get("to") == "error"]
    assert len(changes) == 1
    return changes[0]  # type: ignore[no-any-return]


def test_expired_order_refused_at_es9plus_and_ended(engine: Engine, hsm: SoftHsm,  # noqa: F811
                                                    tmp_path: Path) -> None:
    with running_smdp(engine, hsm, tmp_path / "home", count=2) as smdp:
        before = utcnow()
        profile = _order(smdp, timedelta(hours=2))
        assert profile.download_expires_at is not None
        assert before + timedelta(hours=2) <= profile.download_expires_at \
            <= utcnow() + timedelta(hours=2)
        assert esim_orders.get(engine, profile.iccid).download_expires_at \
            == profile.download_expires_at  # shown with the order (API: download_expires_at)
        _expire(engine, profile.iccid)
        card = smdp.euicc(tmp_path)
        with lpa(card) as functions, smdp.es9() as es9, pytest.raises(Es9Refused) as refused:
            download(functions, es9, profile.activation_code.to_uri())
        assert (refused.value.subject, refused.value.reason) == ("8.8.5", "4.10")
        assert card.core.state.profiles == []
        assert smdp.state(profile.iccid) == "error"
        assert smdp.actions(profile.iccid)[-1] == "esim_profile.error"
        change = _error_change(engine, profile.iccid)
        assert change["reason"] == "download order expired"
        assert change["function"] == "AuthenticateClient"
        # what the operator is told (ES2+ HandleDownloadProgressInfo, SGP.22 §5.3.5)
        body = progress_body(change, iccid=profile.iccid, at=utcnow(), profile_type="t",
                             eid=None)
        assert body is not None and body["notificationPointId"] == 1
        assert body["notificationPointStatus"]["status"] == "Failed"
        scd = body["notificationPointStatus"]["statusCodeData"]
        assert (scd["subjectCode"], scd["reasonCode"]) == ("8.8.5", "4.10")
        # the order is over: the same activation code is refused as unknown from now on
        with lpa(card) as functions, smdp.es9() as es9, pytest.raises(Es9Refused) as again:
            download(functions, es9, profile.activation_code.to_uri())
        assert (again.value.subject, again.value.reason) == ("8.2.6", "3.8")


def test_order_without_validity_never_expires(engine: Engine, hsm: SoftHsm,  # noqa: F811
                                              tmp_path: Path) -> None:
    with running_smdp(engine, hsm, tmp_path / "home", count=1) as smdp:
        profile = _order(smdp, None)
        assert profile.download_expires_at is None
        assert sweep_orders(engine, utcnow() + timedelta(days=3650)) == 0
        with lpa(smdp.euicc(tmp_path)) as functions, smdp.es9() as es9:
            assert download(functions, es9, profile.activation_code.to_uri()).success
        assert smdp.state(profile.iccid) == "installed"


def test_sweeper_ends_the_orders_nobody_came_for(engine: Engine, hsm: SoftHsm,  # noqa: F811
                                                 tmp_path: Path,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    from tests.helpers.cli import ok

    with running_smdp(engine, hsm, tmp_path / "home", count=3) as smdp:
        waiting, later, installed = (_order(smdp, timedelta(hours=1)) for _ in range(3))
        with lpa(smdp.euicc(tmp_path)) as functions, smdp.es9() as es9:
            assert download(functions, es9, installed.activation_code.to_uri()).success
        assert later.download_expires_at is not None
        assert sweep_orders(engine, later.download_expires_at - timedelta(minutes=1)) == 0
        for profile in (waiting, installed):
            _expire(engine, profile.iccid)
        listener_sweeper = smdp.listener.sweeper
        assert listener_sweeper.sweep_once() == 0  # no session to delete; one order ended
        assert listener_sweeper.orders_expired == 1
        assert smdp.state(waiting.iccid) == "error"
        assert _error_change(engine, waiting.iccid)["function"] == "sweep"
        # another worker's sweeper, which read the same due order before the first ended it,
        # ends nothing and records nothing
        actions = smdp.actions(waiting.iccid)
        with connection_transaction(engine) as conn:
            assert not StoreDownloadOrders(engine, "")._expire(
                conn, waiting.iccid, waiting.matching_id, waiting.download_expires_at, "sweep",
                now=utcnow())
        assert smdp.actions(waiting.iccid) == actions
        assert smdp.state(later.iccid) == "released"
        assert smdp.state(installed.iccid) == "installed"  # delivered and installed: done
        monkeypatch.setenv("SIMSMITH_HOME", str(smdp.home))
        monkeypatch.setenv("SIMSMITH_DATABASE_URL",
                           engine.url.render_as_string(hide_password=False))
        assert json.loads(ok("smdp", "sweep", "--json")) == {"deleted": 0, "orders_expired": 0}


def test_es2plus_release_starts_the_validity(engine: Engine) -> None:
    from tests.es2plus.conftest import REQUESTER, SMDP_ADDRESS, add_profiles

    endpoint = Es2PlusEndpoint(engine, SMDP_ADDRESS, order_validity=timedelta(days=7))
    released, confirmed = add_profiles(engine, 2)
    calls = iter(range(100))

    def call(function: str, **fields: object) -> None:
        answer = endpoint.handle(function, {"header": {
            "functionRequesterIdentifier": REQUESTER,
            "functionCallIdentifier": f"c-{next(calls)}"}, **fields}, principal=REQUESTER)
        assert answer.header.function_execution_status.status == "Executed-Success"

    before = utcnow()
    for iccid in (released, confirmed):
        call("DownloadOrder", iccid=iccid)
    call("ConfirmOrder", iccid=released, releaseFlag=True)
    call("ConfirmOrder", iccid=confirmed, releaseFlag=False)
    shown = {o.iccid: o for o in list_orders(engine)}
    assert shown[confirmed].expires_at is None  # not released: no validity yet
    expires = shown[released].expires_at
    assert expires is not None and before + timedelta(days=7) <= expires
    call("ReleaseProfile", iccid=confirmed)
    expires = {o.iccid: o for o in list_orders(engine)}[confirmed].expires_at
    assert expires is not None and before + timedelta(days=7) <= expires
