"""The eSIM order saga against an SM-DP+ stand-in that fails at each step (issue 12 items 2 and 3),
on SQLite and PostgreSQL: the SM-DP+'s ConfirmOrder answer is the truth (Matching ID, address);
any failure after the SM-DP+ executed a call — including simsmith's own check of the answer —
sends CancelOrder (finalProfileStatusIndicator Available) and puts the profile back in stock
with the order `failed`; a CancelOrder that fails leaves the order `cancel_failed`, recorded,
never a dangling reservation; DownloadOrder answering another ICCID cancels that reservation;
an SM-DP+ address no LPA could use is refused at start-up."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import Engine, select
from sqlmodel import Session, col

from esim.es2plus import Es2PlusClient
from simcore import esim_orders
from simcore.models import AuditEvent, OutboxEvent, Sim
from simcore.smdp.address import SmdpAddressInvalid, check_smdp_address
from simcore.smdp.port import (
    SmdpAnswerInvalid,
    SmdpError,
    SmdpRefused,
    SmdpUnavailable,
)
from tests.es2plus.conftest import add_profiles
from tests.es2plus.standin import ADDRESS, StandIn

pytestmark = pytest.mark.storage


def sims(engine: Engine) -> list[tuple[str, str | None, str | None]]:
    with Session(engine) as s:
        return [(x.state, x.profile_state, x.subscriber_ref) for x in s.execute(
            select(Sim).order_by(col(Sim.iccid))).scalars()]


FAILURES: list[tuple[str, dict[str, Any], type[SmdpError], bool]] = [
    # (fail, ConfirmOrder answer overrides, error raised, CancelOrder expected)
    ("download-refused", {}, SmdpRefused, False),
    ("download-timeout", {}, SmdpUnavailable, True),
    ("confirm-refused", {}, SmdpRefused, True),
    ("confirm-timeout", {}, SmdpUnavailable, True),
    ("", {"matching_id": "not a matching id"}, SmdpAnswerInvalid, True),
    ("", {"smdp_address": "127.0.0.1"}, SmdpAnswerInvalid, True),
    ("", {"smdp_address": "localhost"}, SmdpAnswerInvalid, True),
    ("", {"iccid": "89882800000000000999"}, SmdpAnswerInvalid, True),
]


@pytest.mark.slow
@pytest.mark.parametrize(("fail", "answer", "error", "cancelled"), FAILURES)
def test_failure_at_each_step_is_compensated(engine: Engine, fail: str, answer: dict[str, Any],
                                             error: type[SmdpError], cancelled: bool) -> None:
    add_profiles(engine, 2)
    before = sims(engine)
    smdp = StandIn(engine, fail, answer=answer)
    with pytest.raises(error):
        esim_orders.order(engine, smdp, "cust-1", actor="t")
    # The profile is back in stock, available at the SM-DP+; nothing held, nothing dangling.
    assert sims(engine) == before
    [order] = esim_orders.list_orders(engine)
    assert (order.order_status, order.sim_state, order.profile_state) == (
        "failed", "in_stock", "available")
    cancels = [kw for name, kw in smdp.calls if name == "CancelOrder"]
    assert cancels == ([{"iccid": order.iccid, "final_status": "available"}] if cancelled
                       else [])
    # The next order takes the same profile: none was used up.
    ok = esim_orders.order(engine, StandIn(engine), "cust-2", actor="t")
    assert ok.iccid == order.iccid and ok.profile_state == "released"


def test_own_fault_after_the_answer_is_compensated(engine: Engine,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    add_profiles(engine, 1)
    smdp = StandIn(engine)

    def broken(*_: object) -> None:
        raise RuntimeError("the store went away")

    monkeypatch.setattr(esim_orders, "_record_confirmation", broken)
    with pytest.raises(RuntimeError):
        esim_orders.order(engine, smdp, "cust-1", actor="t")
    assert sims(engine) == [("in_stock", "available", None)]
    assert [name for name, _ in smdp.calls] == ["DownloadOrder", "ConfirmOrder", "CancelOrder"]


@pytest.mark.slow
def test_cancel_that_fails_is_recorded_and_settled_later(engine: Engine) -> None:
    add_profiles(engine, 2)
    smdp = StandIn(engine, "confirm-timeout", cancel_fails=True)
    with pytest.raises(SmdpUnavailable):
        esim_orders.order(engine, smdp, "cust-1", actor="t")
    [order] = esim_orders.list_orders(engine)
    # The SM-DP+ holds the profile: the order says so, the SIM is not handed out again.
    assert (order.order_status, order.sim_state, order.profile_state) == (
        "cancel_failed", "allocated", "released")
    with Session(engine) as s:
        actions = list(s.execute(select(col(AuditEvent.action)).where(
            col(AuditEvent.subject_id) == order.iccid)).scalars())
        topics = list(s.execute(select(col(OutboxEvent.topic)).where(
            col(OutboxEvent.subject_id) == order.iccid)).scalars())
    assert "esim_order.cancel_failed" in actions and "esim_order.cancel_failed" in topics
    nxt = esim_orders.order(engine, StandIn(engine), "cust-2", actor="t")
    assert nxt.iccid != order.iccid
    # Once the SM-DP+ is back, cancel settles it: profile and SIM back in stock, order failed.
    settled = esim_orders.cancel(engine, StandIn(engine), order.iccid, actor="t")
    assert (settled.order_status, settled.sim_state, settled.profile_state) == (
        "failed", "in_stock", "available")


def test_the_smdp_answer_is_the_truth(engine: Engine) -> None:
    add_profiles(engine, 1)
    smdp = StandIn(engine, answer={"matching_id": "SMDP-CHOSEN-1",
                                   "smdp_address": "rsp.vendor.example"})
    p = esim_orders.order(engine, smdp, "cust-1", actor="t")
    assert (p.matching_id, p.smdp_address) == ("SMDP-CHOSEN-1", "rsp.vendor.example")
    assert str(p.activation_code) == "1$rsp.vendor.example$SMDP-CHOSEN-1"
    again = esim_orders.get(engine, p.iccid)
    assert str(again.activation_code) == "1$rsp.vendor.example$SMDP-CHOSEN-1"


# --- over ES2+: the port's checks of the SM-DP+'s answers ------------------------------------

def _ok(**fields: Any) -> httpx.Response:
    return httpx.Response(200, json={"header": {"functionExecutionStatus": {
        "status": "Executed-Success"}}, **fields})


def _port(engine: Engine, handler: Any) -> Any:
    from simcore.smdp.es2plus_port import Es2PlusSmdp

    client = Es2PlusClient("https://smdp.vendor.example", "op-1", retry_backoff=0,
                           transport=httpx.MockTransport(handler))
    return Es2PlusSmdp(engine, client, "fallback.example")


def test_download_order_reserving_another_iccid_is_cancelled(engine: Engine) -> None:
    _asked, other = add_profiles(engine, 2)
    seen: list[tuple[str, dict[str, Any]]] = []

    def handler(req: httpx.Request) -> httpx.Response:
        body = json.loads(req.content)
        seen.append((req.url.path.rsplit("/", 1)[1], body))
        if seen[-1][0] == "downloadOrder":
            return _ok(iccid=other)
        return _ok()

    port = _port(engine, handler)
    with pytest.raises(SmdpAnswerInvalid, match=r"reserved .* instead; that reservation was "
                       r"cancelled") as ei:
        esim_orders.order(engine, port, "cust-1", actor="t")
    assert "cannot be reached" not in str(ei.value)
    cancels = [b for f, b in seen if f == "cancelOrder"]
    assert {"iccid": other, "finalProfileStatusIndicator": "Available"}.items() <= \
        cancels[0].items()
    assert sims(engine) == [("in_stock", "available", None)] * 2
    with Session(engine) as s:
        details = s.execute(select(col(AuditEvent.details)).where(
            col(AuditEvent.action) == "esim_profile.foreign_reservation")).scalar_one()
    assert json.loads(details) if isinstance(details, str) else details


def test_confirm_order_answer_fills_only_what_is_missing(engine: Engine) -> None:
    iccid = add_profiles(engine, 1)[0]

    def handler(req: httpx.Request) -> httpx.Response:
        body = json.loads(req.content)
        if req.url.path.endswith("confirmOrder"):
            return _ok(matchingId="VENDOR-MID-7")  # no smdpAddress: ours fills it
        return _ok(iccid=body.get("iccid"))

    p = esim_orders.order(engine, _port(engine, handler), "cust-1", actor="t")
    assert (p.iccid, p.matching_id, p.smdp_address) == (iccid, "VENDOR-MID-7",
                                                         "fallback.example")


def test_confirm_order_with_unusable_address_is_cancelled(engine: Engine) -> None:
    add_profiles(engine, 1)
    seen: list[str] = []

    def handler(req: httpx.Request) -> httpx.Response:
        body = json.loads(req.content)
        seen.append(req.url.path.rsplit("/", 1)[1])
        if seen[-1] == "confirmOrder":
            return _ok(matchingId=body["matchingId"], smdpAddress="10.0.0.7")
        return _ok(iccid=body.get("iccid"))

    with pytest.raises(SmdpAnswerInvalid, match="IP address"):
        esim_orders.order(engine, _port(engine, handler), "cust-1", actor="t")
    assert seen == ["downloadOrder", "confirmOrder", "cancelOrder"]
    assert sims(engine) == [("in_stock", "available", None)]


# --- the address an LPA is given ---------------------------------------------------------------

@pytest.mark.parametrize("address", ["localhost", "127.0.0.1", "::1", "[::1]", "smdp",
                                     "smdp.example.com:8443", "https://smdp.example.com",
                                     "smdp..example.com", "a$b.example.com", "smdp.123", "",
                                     "bücher.example"])
def test_address_an_lpa_cannot_use_is_refused(address: str) -> None:
    with pytest.raises(SmdpAddressInvalid) as ei:
        check_smdp_address(address)
    assert ei.value.field == "SIMSMITH_SMDP_ADDRESS"


@pytest.mark.parametrize("address", ["smdp.example.com", "rsp.vendor.example.",
                                     "smdp.simsmith.test", "xn--bcher-kva.example"])
def test_fqdn_is_accepted(address: str) -> None:
    assert check_smdp_address(address) == address.rstrip(".")


def test_lab_override_allows_localhost_only_explicitly(caplog: pytest.LogCaptureFixture) -> None:
    assert check_smdp_address("127.0.0.1", allow_lab=True) == "127.0.0.1"
    assert "SIMSMITH_SMDP_ALLOW_LAB_ADDRESS" in caplog.text
    with pytest.raises(SmdpAddressInvalid):
        check_smdp_address("a$b", allow_lab=True)  # malformed stays refused


def test_lab_host_and_port_only_with_the_override() -> None:
    """A lab SM-DP+ on a port of its own (the ES9+ listener of `simsmith serve`): `host:port`
    passes only with the override, the host still checked."""
    for address in ("127.0.0.1:8443", "smdp.lab.test:8443", "localhost:8443"):
        with pytest.raises(SmdpAddressInvalid, match="names a port"):
            check_smdp_address(address)
        assert check_smdp_address(address, allow_lab=True) == address
    for bad in ("127.0.0.1:0", "a$b:8443", "[::1]:8443", "lab:99999"):
        with pytest.raises(SmdpAddressInvalid):
            check_smdp_address(bad, allow_lab=True)


def test_start_up_refuses_an_address_an_lpa_cannot_use(engine: Engine, tmp_path: Path,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    from api.main import create_app
    from api.settings import ApiSettings

    monkeypatch.delenv("SIMSMITH_SMDP_URL", raising=False)
    monkeypatch.delenv("SIMSMITH_SMDP_ALLOW_LAB_ADDRESS", raising=False)
    settings = ApiSettings(home=tmp_path, webhooks_enabled=False, smdp_mode="in-process",
                           smdp_address="localhost")
    with pytest.raises(SmdpAddressInvalid, match=r"SIMSMITH_SMDP_ADDRESS: 'localhost'"):
        create_app(settings, engine=engine)
    monkeypatch.setenv("SIMSMITH_SMDP_ALLOW_LAB_ADDRESS", "1")
    create_app(settings, engine=engine)
    # An external SM-DP+ named by an IP address, without an address of its own: refused too.
    monkeypatch.delenv("SIMSMITH_SMDP_ALLOW_LAB_ADDRESS")
    monkeypatch.setenv("SIMSMITH_SMDP_URL", "https://10.1.2.3:8443")
    with pytest.raises(SmdpAddressInvalid, match="SIMSMITH_SMDP_URL's host"):
        create_app(replace_settings(settings, smdp_address=ADDRESS), engine=engine)


def replace_settings(settings: Any, **changes: Any) -> Any:
    return settings.model_copy(update=changes)
