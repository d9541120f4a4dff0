"""HandleDownloadProgressInfo in (SGP.22 §5.3.5): an SM-DP+ with its own client certificate
reports download and installation; the inventory's profile state follows, with audit and
outbox events; repeats change nothing; failures land in `error` with their reason."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine, select
from sqlmodel import Session, col

from esim.es2plus import Es2PlusClient, Es2PlusFunctionFailed, FunctionExecutionStatus
from esim.es2plus.messages import ExecutionStatus, StatusCodeData
from simcore.config import Settings
from simcore.errors import InvalidInput
from simcore.models import AuditEvent, OutboxEvent
from simcore.smdp.download_progress import parse_received_points
from simcore.smdp.es2plus import Es2PlusEndpoint, Es2PlusEndpointSettings
from tests.es2plus.conftest import Pki, Server, add_profiles, make_client, profile

pytestmark = pytest.mark.storage

TS = "2026-11-22T06:00:00Z"
OK = ExecutionStatus(status=FunctionExecutionStatus.EXECUTED_SUCCESS)


@pytest.fixture
def smdp(https_server: Server, pki: Pki, endpoint: object) -> Iterator[Es2PlusClient]:
    c = make_client(https_server, pki, "smdp-vendor", requester="smdp-vendor")
    yield c
    c.close()


def outbox(engine: Engine, iccid: str) -> list[tuple[str, dict[str, object]]]:
    with Session(engine) as s:
        rows = s.execute(select(OutboxEvent.topic, OutboxEvent.payload)  # type: ignore[call-overload]
                         .where(col(OutboxEvent.subject_id) == iccid)
                         .order_by(col(OutboxEvent.id))).all()
    return [(t, json.loads(p)) for t, p in rows]


def notify(c: Es2PlusClient, iccid: str, point: int, status: ExecutionStatus = OK,
           call_id: str | None = None) -> None:
    c.handle_download_progress_info(iccid=iccid, notification_point_id=point, status=status,
                                    timestamp=TS, profile_type="generic-v1", call_id=call_id)


def test_download_then_installation(engine: Engine, smdp: Es2PlusClient) -> None:
    iccid = add_profiles(engine, 1, state="released")[0]
    notify(smdp, iccid, 1)  # eligibility check: no state change, but recorded
    assert profile(engine, iccid).profile_state == "released"
    notify(smdp, iccid, 3)
    assert profile(engine, iccid).profile_state == "downloaded"
    notify(smdp, iccid, 4)
    assert profile(engine, iccid).profile_state == "installed"
    events = outbox(engine, iccid)
    assert [t for t, _ in events] == ["esim_profile.download_progress",
                                      "esim_profile.state_changed",
                                      "esim_profile.state_changed"]
    assert events[1][1]["to"] == "downloaded" and events[1][1]["smdp"] == "smdp-vendor"
    assert events[2][1]["notification_point_name"] == "BPP installation"


def test_repeats_and_late_notifications_change_nothing(engine: Engine,
                                                       smdp: Es2PlusClient) -> None:
    iccid = add_profiles(engine, 1, state="released")[0]
    notify(smdp, iccid, 4, call_id="n-1")
    assert profile(engine, iccid).profile_state == "installed"
    n = len(outbox(engine, iccid))
    notify(smdp, iccid, 4, call_id="n-1")  # the same notification resent
    notify(smdp, iccid, 4, call_id="n-2")  # the same fact, new call identifier
    assert len(outbox(engine, iccid)) == n
    notify(smdp, iccid, 3, call_id="n-3")  # "downloaded" arriving after "installed"
    assert profile(engine, iccid).profile_state == "installed"
    topic, payload = outbox(engine, iccid)[-1]
    assert topic == "esim_profile.download_progress" and payload["applied"] is False


def test_failure_goes_to_error_with_its_reason(engine: Engine, smdp: Es2PlusClient) -> None:
    iccid = add_profiles(engine, 1, state="downloaded")[0]
    failed = ExecutionStatus(status=FunctionExecutionStatus.FAILED,
                             status_code_data=StatusCodeData(
                                 subject_code="8.1", reason_code="4.8",
                                 message="insufficient memory"))
    notify(smdp, iccid, 4, failed)
    assert profile(engine, iccid).profile_state == "error"
    with Session(engine) as s:
        details = json.loads(s.execute(select(col(AuditEvent.details)).where(
            col(AuditEvent.subject_id) == iccid, col(AuditEvent.action) == "esim_profile.error")
        ).scalar_one())
    assert details["reason"] == ("BPP installation Failed 8.1/4.8 (eUICC – reason 4.8): "
                                 "insufficient memory")
    assert (details["subject_code"], details["reason_code"]) == ("8.1", "4.8")


def test_unknown_profile_is_refused(engine: Engine, smdp: Es2PlusClient) -> None:
    with pytest.raises(Es2PlusFunctionFailed) as ei:
        notify(smdp, "8988280000000999994", 3)
    assert (ei.value.subject_code, ei.value.reason_code) == ("8.2.1", "3.9")


def test_notification_needs_a_trusted_sender(engine: Engine, https_server: Server,
                                             pki: Pki, endpoint: object) -> None:
    iccid = add_profiles(engine, 1, state="released")[0]
    with make_client(https_server, pki, "intruder", requester="smdp-vendor") as spoof, \
            pytest.raises(Es2PlusFunctionFailed) as ei:
        notify(spoof, iccid, 4)
    assert ei.value.code is not None and ei.value.code.subject == "1.1"
    assert profile(engine, iccid).profile_state == "released"


def test_deletion_and_enable_disable_points_move_the_profile(
        engine: Engine, smdp: Es2PlusClient) -> None:
    """Point 5 (deletion), and 101 / 102 as commercial SM-DP+s (and simsmith's own,
    simcore.smdp.progress_notify) send enable / disable."""
    iccid = add_profiles(engine, 1, state="installed")[0]
    for point, state in ((101, "enabled"), (102, "disabled"), (101, "enabled"), (5, "deleted")):
        notify(smdp, iccid, point)
        assert profile(engine, iccid).profile_state == state
    assert [p["to"] for t, p in outbox(engine, iccid) if t == "esim_profile.state_changed"] == [
        "enabled", "disabled", "enabled", "deleted"]


def test_deletion_reported_for_a_terminated_profile_still_on_the_device(
        engine: Engine, smdp: Es2PlusClient) -> None:
    """A terminated eSIM whose profile was already installed is `unavailable` (SGP.22 v2 gives
    no way to delete it remotely); when the user deletes it, an external SM-DP+ reports the
    deletion (point 5) and the profile becomes deleted — nothing else moves it."""
    iccid = add_profiles(engine, 1, state="unavailable")[0]
    for point in (3, 4, 101, 102):  # download progress after termination: recorded, not applied
        notify(smdp, iccid, point)
        assert profile(engine, iccid).profile_state == "unavailable"
    notify(smdp, iccid, 5)
    assert profile(engine, iccid).profile_state == "deleted"
    changes = [p for t, p in outbox(engine, iccid) if t == "esim_profile.state_changed"]
    assert [(p["from"], p["to"]) for p in changes] == [("unavailable", "deleted")]


def test_another_smdps_points_move_the_profile_when_configured(
        engine: Engine, smdp: Es2PlusClient, endpoint: Es2PlusEndpoint) -> None:
    """An SM-DP+ that forwards enable / disable / delete as 6 / 7 / 8: with those numbers in
    SIMSMITH_ES2PLUS_RECEIVE_OTHER_POINTS (beside the default's) they move the profile, and the
    audit names them; without, they are recorded and move nothing."""
    iccid = add_profiles(engine, 1, state="installed")[0]
    for point in (6, 7, 8):
        notify(smdp, iccid, point)
        assert profile(engine, iccid).profile_state == "installed"
    object.__setattr__(endpoint, "received_points", parse_received_points(
        "5=deleted,101=enabled,102=disabled,8=deleted,6=enabled,7=disabled"))
    for point, state in ((6, "enabled"), (7, "disabled"), (101, "enabled"), (102, "disabled"),
                         (8, "deleted")):
        notify(smdp, iccid, point)
        assert profile(engine, iccid).profile_state == state
    changes = [p for t, p in outbox(engine, iccid) if t == "esim_profile.state_changed"]
    assert [(p["notification_point"], p["notification_point_name"]) for p in changes] == [
        (6, "profile enabled"), (7, "profile disabled"), (101, "profile enabled"),
        (102, "profile disabled"), (8, "deletion")]


@pytest.mark.parametrize(("text", "where", "problem"), [
    ("deleted=5", "[0]", "not a point number"),
    ("5=deleted,8", "[1]", "not point=state"),
    ("3=enabled", "[0]", "not a point number"),  # SGP.22's BPP download
    ("6=installed", "[0]", "not a state"),
    ("6=enabled,6=disabled", "[1]", "point given twice"),
])
def test_a_bad_receive_points_setting_names_the_item(text: str, where: str,
                                                     problem: str) -> None:
    with pytest.raises(InvalidInput) as e:
        parse_received_points(text)
    assert f"es2plus_receive_other_points{where}" in str(e.value)
    assert problem in str(e.value)


def test_the_receive_setting_reaches_the_endpoint(tmp_path: Path) -> None:
    s = Settings(home=tmp_path, es2plus_receive_other_points="8=deleted, 6=enabled")
    got = Es2PlusEndpointSettings.from_settings(s).received_points()
    assert {k: str(v) for k, v in got.items()} == {8: "deleted", 6: "enabled"}
    empty = Settings(home=tmp_path, es2plus_receive_other_points="")
    assert Es2PlusEndpointSettings.from_settings(empty).received_points() == {}
