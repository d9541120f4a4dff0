"""An eSIM order retried with the same Idempotency-Key never consumes a second profile (issue 12
item 3), whatever step the SM-DP+ failed at: when compensation gave the profile back the retry
may run again (one profile in use in the end); when the SM-DP+ still holds it (CancelOrder
failed) the retry replays the failure. SQLite and PostgreSQL."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select
from sqlmodel import Session, col

from simcore.models import Sim
from tests.api.conftest import Api
from tests.es2plus.standin import StandIn

P = "urn:simsmith:problem:"
ORDER = "/v1/esim-profiles?qr_data_uri=false"


def in_use(api: Api) -> int:
    """eSIM profiles not back in stock as available: what orders consumed or hold."""
    with Session(api.engine) as s:
        return int(s.execute(select(func.count()).select_from(Sim).where(
            col(Sim.kind) == "esim",
            (col(Sim.state) != "in_stock") | (col(Sim.profile_state) != "available"),
        )).scalar_one())


@pytest.mark.slow
@pytest.mark.storage
@pytest.mark.parametrize("fail", ["download-timeout", "confirm-refused", "confirm-timeout"])
def test_retry_after_compensated_failure_takes_one_profile(api: Api, fail: str) -> None:
    ctx = api.client.app.state.ctx  # type: ignore[attr-defined]
    h = api.h("esim:order", **{"Idempotency-Key": f"retry-{fail}"})
    body = {"external_ref": "cust-r"}
    ctx.smdp = StandIn(api.engine, fail)
    first = api.client.post(ORDER, json=body, headers=h)
    assert first.status_code in (409, 503), first.text
    assert in_use(api) == 0
    ctx.smdp = StandIn(api.engine)
    second = api.client.post(ORDER, json=body, headers=h)
    assert second.status_code == 201, second.text
    third = api.client.post(ORDER, json=body, headers=h)
    assert third.headers["idempotent-replayed"] == "true" and third.json() == second.json()
    assert in_use(api) == 1


@pytest.mark.storage
def test_retry_while_the_smdp_holds_the_profile_replays_the_failure(api: Api) -> None:
    ctx = api.client.app.state.ctx  # type: ignore[attr-defined]
    h = api.h("esim:order", **{"Idempotency-Key": "held-1"})
    body = {"external_ref": "cust-h"}
    ctx.smdp = StandIn(api.engine, "confirm-timeout", cancel_fails=True)
    first = api.client.post(ORDER, json=body, headers=h)
    assert first.status_code == 503 and first.json()["type"] == P + "smdp-unavailable"
    assert in_use(api) == 1  # held at the SM-DP+, order cancel_failed
    ctx.smdp = StandIn(api.engine)  # the SM-DP+ is fine again
    again = api.client.post(ORDER, json=body, headers=h)
    assert again.status_code == 503 and again.headers["idempotent-replayed"] == "true"
    assert in_use(api) == 1  # no second profile
