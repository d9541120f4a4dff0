"""functionCallIdentifier replays (SGP.22 §6.5.1.3; issue 12 item 1): a recorded answer is given
again only for the same requester, identifier, function *and* request body; the same identifier
with another body is refused (never answered with the earlier result); identifiers are scoped
per requester and free again after the documented window. SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import Engine, update
from sqlmodel import Session, select

from esim.es2plus import Es2PlusFunctionFailed, StatusCode
from simcore.models import utcnow
from simcore.smdp.es2plus import Es2PlusEndpoint
from simcore.smdp.models import Es2PlusCall, Es2PlusOrder
from tests.es2plus.conftest import (
    REQUESTER,
    SMDP_ADDRESS,
    Pki,
    Server,
    add_profiles,
    make_client,
    profile,
)

pytestmark = pytest.mark.storage


def body(call_id: str, requester: str = REQUESTER, **fields: Any) -> dict[str, Any]:
    return {"header": {"functionRequesterIdentifier": requester,
                       "functionCallIdentifier": call_id}, **fields}


def code(answer: Any) -> tuple[str, str] | None:
    scd = answer.header.function_execution_status.status_code_data
    return (scd.subject_code, scd.reason_code) if scd else None


@pytest.mark.slow
def test_one_identifier_two_confirm_orders_over_https(engine: Engine, https_server: Server,
                                                      pki: Pki, endpoint: object) -> None:
    """Clients build identifiers from seconds + a counter: two runs collide. The second
    ConfirmOrder (another ICCID) must never get the first's matching ID back."""
    a, b = add_profiles(engine, 2)
    with make_client(https_server, pki) as c:
        c.download_order(iccid=a)
        c.download_order(iccid=b)
    with make_client(https_server, pki, call_ids=lambda: "20261207T1300-0001") as same:
        first = same.confirm_order(iccid=a, release_flag=True).response
        assert first.matching_id
        with pytest.raises(Es2PlusFunctionFailed) as ei:
            same.confirm_order(iccid=b, release_flag=True)
    assert ei.value.code == StatusCode("1.6", "2.1")
    assert ei.value.subject_identifier == "header.functionCallIdentifier"
    assert first.matching_id not in str(ei.value)
    assert profile(engine, a).profile_state == "released"
    assert profile(engine, b).profile_state == "allocated"  # untouched: not confirmed
    with Session(engine) as s:
        order_b = s.get(Es2PlusOrder, b)
        assert order_b is not None and order_b.matching_id is None


def test_the_same_call_again_is_replayed(engine: Engine) -> None:
    ep = Es2PlusEndpoint(engine, SMDP_ADDRESS)
    a = add_profiles(engine, 1)[0]
    first = ep.handle("DownloadOrder", body("r-1", iccid=a), principal=REQUESTER)
    assert code(first) is None
    # The same request re-sent, members in another order and with a vendor extension: same call.
    again = ep.handle("DownloadOrder", {"iccid": a, "x-vendor": 1, **body("r-1")},
                      principal=REQUESTER)
    assert again == first
    assert profile(engine, a).profile_state == "allocated"
    # Another function under the identifier: refused, nothing done.
    other = ep.handle("ReleaseProfile", body("r-1", iccid=a), principal=REQUESTER)
    assert code(other) == ("1.6", "2.1")


def test_same_identifier_other_body_is_refused_for_every_function(engine: Engine) -> None:
    ep = Es2PlusEndpoint(engine, SMDP_ADDRESS)
    a, b = add_profiles(engine, 2)
    assert code(ep.handle("DownloadOrder", body("d", iccid=a), principal=REQUESTER)) is None
    refused = ep.handle("DownloadOrder", body("d", iccid=b), principal=REQUESTER)
    assert code(refused) == ("1.6", "2.1")
    assert refused.iccid is None  # type: ignore[attr-defined]
    assert profile(engine, b).profile_state == "available"
    # An earlier refusal is a recorded answer too: the identifier stays taken by that request.
    bad = ep.handle("CancelOrder", body("x", iccid=b, finalProfileStatusIndicator="Available"),
                    principal=REQUESTER)
    assert code(bad) == ("8.2.1", "3.5")
    after = ep.handle("CancelOrder", body("x", iccid=a, finalProfileStatusIndicator="Available"),
                      principal=REQUESTER)
    assert code(after) == ("1.6", "2.1")
    assert profile(engine, a).profile_state == "allocated"


def test_identifiers_are_scoped_per_requester(engine: Engine) -> None:
    ep = Es2PlusEndpoint(engine, SMDP_ADDRESS, authorize=lambda principal, requester: True)
    a, b = add_profiles(engine, 2)
    first = ep.handle("DownloadOrder", body("shared", iccid=a), principal=REQUESTER)
    second = ep.handle("DownloadOrder", body("shared", "operator-b", iccid=b),
                       principal="operator-b")
    assert code(first) is None and code(second) is None
    assert second.iccid == b  # type: ignore[attr-defined]
    assert profile(engine, b).profile_state == "allocated"


def test_identifier_is_free_again_after_the_window(engine: Engine) -> None:
    ep = Es2PlusEndpoint(engine, SMDP_ADDRESS, call_window=timedelta(hours=24))
    a, b = add_profiles(engine, 2)
    assert code(ep.handle("DownloadOrder", body("old", iccid=a), principal=REQUESTER)) is None
    with Session(engine) as s:
        s.execute(update(Es2PlusCall).values(created_at=utcnow() - timedelta(hours=25)))
        s.commit()
    fresh = ep.handle("DownloadOrder", body("old", iccid=b), principal=REQUESTER)
    assert code(fresh) is None and fresh.iccid == b  # type: ignore[attr-defined]
    with Session(engine) as s:
        rows = list(s.execute(select(Es2PlusCall)).scalars())
    assert [(r.call_id, r.iccid) for r in rows] == [("old", b)]  # the expired record replaced


def test_window_comes_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    from simcore.smdp.es2plus import Es2PlusEndpointSettings

    assert Es2PlusEndpointSettings.from_settings().call_window == timedelta(hours=24)
    monkeypatch.setenv("SIMSMITH_ES2PLUS_CALL_WINDOW_HOURS", "2")
    assert Es2PlusEndpointSettings.from_settings().call_window == timedelta(hours=2)


def test_client_retry_after_lost_answer_is_still_one_call(engine: Engine, https_server: Server,
                                                           pki: Pki, endpoint: object) -> None:
    a = add_profiles(engine, 1)[0]
    with make_client(https_server, pki, call_ids=lambda: "lost-1") as c:
        one = c.download_order(iccid=a).response
        two = c.download_order(iccid=a).response
    assert one == two and profile(engine, a).profile_state == "allocated"
