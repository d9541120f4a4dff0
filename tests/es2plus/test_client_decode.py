"""The ES2+ client's answer handling, against an in-memory transport (no network): status
mapping to typed results and errors, headers, call identifiers, retries only where safe."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import httpx
import pytest

from esim.es2plus import (
    Es2PlusClient,
    Es2PlusExpired,
    Es2PlusFunctionFailed,
    Es2PlusProtocolError,
    Es2PlusTimeout,
    Es2PlusTransportError,
    FunctionExecutionStatus,
    StatusCode,
)
from esim.es2plus.messages import ExecutionStatus

ICCID = "8949990000000000019"


def ok(**fields: Any) -> dict[str, Any]:
    return {"header": {"functionExecutionStatus": {"status": "Executed-Success"}}, **fields}


def failed(subject: str, reason: str, status: str = "Failed") -> dict[str, Any]:
    return {"header": {"functionExecutionStatus": {"status": status, "statusCodeData": {
        "subjectCode": subject, "reasonCode": reason, "message": "nope"}}}}


def client(handler: Callable[[httpx.Request], httpx.Response], **kw: Any) -> Es2PlusClient:
    kw.setdefault("retry_backoff", 0)
    return Es2PlusClient("http://smdp.test", "1.3.6.1.4.1.99999",
                         transport=httpx.MockTransport(handler), **kw)


def answer(body: Any, status: int = 200, **headers: str) -> httpx.Response:
    h = {"Content-Type": "application/json", "X-Admin-Protocol": "gsma/rsp/v2.5.0", **headers}
    return httpx.Response(status, content=json.dumps(body).encode(), headers=h)


def test_request_carries_header_protocol_and_unique_call_ids() -> None:
    seen: list[httpx.Request] = []

    def handler(req: httpx.Request) -> httpx.Response:
        seen.append(req)
        return answer(ok(iccid=ICCID))

    c = client(handler)
    r1 = c.download_order(iccid=ICCID)
    r2 = c.download_order(profile_type="generic")
    bodies = [json.loads(r.content) for r in seen]
    assert seen[0].url.path == "/gsma/rsp2/es2plus/downloadOrder"
    assert seen[0].headers["X-Admin-Protocol"].startswith("gsma/rsp/v2.")
    assert seen[0].headers["Content-Type"] == "application/json"
    assert bodies[0]["header"]["functionRequesterIdentifier"] == "1.3.6.1.4.1.99999"
    ids = {b["header"]["functionCallIdentifier"] for b in bodies}
    assert len(ids) == 2 and {r1.call_id, r2.call_id} == ids
    assert bodies[0] == {"header": bodies[0]["header"], "iccid": ICCID}  # no nulls sent
    assert r1.status is FunctionExecutionStatus.EXECUTED_SUCCESS and r1.response.iccid == ICCID


def test_failed_carries_subject_and_reason() -> None:
    c = client(lambda req: answer(failed("8.2.6", "3.3")))
    with pytest.raises(Es2PlusFunctionFailed) as ei:
        c.confirm_order(iccid=ICCID, matching_id="ABC", release_flag=True)
    e = ei.value
    assert e.code == StatusCode("8.2.6", "3.3")
    assert (e.subject_code, e.reason_code) == ("8.2.6", "3.3")
    assert "Matching ID – Already in Use" in str(e) and e.call_id and e.call_id in str(e)


def test_expired_is_its_own_type() -> None:
    c = client(lambda req: answer(failed("8.2.1", "3.9", status="Expired")))
    with pytest.raises(Es2PlusExpired):
        c.release_profile(iccid=ICCID)


def test_with_warning_is_a_result() -> None:
    body = {"header": {"functionExecutionStatus": {"status": "Executed-WithWarning",
            "statusCodeData": {"subjectCode": "8.9", "reasonCode": "5.1"}}}, "matchingId": "X-1"}
    r = client(lambda req: answer(body)).confirm_order(iccid=ICCID, release_flag=True)
    assert r.status is FunctionExecutionStatus.EXECUTED_WITH_WARNING
    assert r.warning is not None and r.warning.code == StatusCode("8.9", "5.1")


@pytest.mark.parametrize("reply, message", [
    (httpx.Response(200, content=b"<html>oops</html>", headers={"Content-Type": "text/html"}),
     "not application/json"),
    (httpx.Response(200, content=b"{not json", headers={"Content-Type": "application/json"}),
     "not JSON"),
    (answer({"iccid": ICCID}), "no header"),
    (answer({"header": {"functionExecutionStatus": {"status": "Done"}}}), "does not match"),
    (answer(ok()), "without an iccid"),
    (answer(ok(iccid=ICCID), status=500), "HTTP 500"),
    (answer(ok(iccid=ICCID), **{"X-Admin-Protocol": "gsma/rsp/v3.0.0"}), "X-Admin-Protocol"),
])
def test_garbage_is_a_protocol_error(reply: httpx.Response, message: str) -> None:
    with pytest.raises(Es2PlusProtocolError, match=message):
        client(lambda req: reply).download_order(iccid=ICCID)


def test_connect_failures_are_retried_for_every_function() -> None:
    calls = []

    def handler(req: httpx.Request) -> httpx.Response:
        calls.append(req)
        if len(calls) < 3:
            raise httpx.ConnectError("connection refused", request=req)
        return answer(ok(iccid=ICCID))

    assert client(handler, retries=2).download_order(iccid=ICCID).response.iccid == ICCID
    ids = {json.loads(r.content)["header"]["functionCallIdentifier"] for r in calls}
    assert len(calls) == 3 and len(ids) == 1


def test_ambiguous_failures_are_not_retried_for_orders() -> None:
    calls = []

    def handler(req: httpx.Request) -> httpx.Response:
        calls.append(req)
        raise httpx.ReadTimeout("slow", request=req)

    with pytest.raises(Es2PlusTimeout):
        client(handler, retries=3).download_order(iccid=ICCID)
    assert len(calls) == 1


def test_notifications_are_retried_after_ambiguous_failures() -> None:
    calls = []

    def handler(req: httpx.Request) -> httpx.Response:
        calls.append(req)
        if len(calls) == 1:
            raise httpx.ReadError("reset", request=req)
        if len(calls) == 2:
            return httpx.Response(503)
        return httpx.Response(204)

    r = client(handler, retries=3).handle_download_progress_info(
        iccid=ICCID, notification_point_id=3, timestamp="2026-11-22T05:00:00Z",
        status=ExecutionStatus(status=FunctionExecutionStatus.EXECUTED_SUCCESS))
    assert r.status is FunctionExecutionStatus.EXECUTED_SUCCESS and len(calls) == 3
    assert len({json.loads(c.content)["header"]["functionCallIdentifier"] for c in calls}) == 1


def test_transport_error_after_retries() -> None:
    def handler(req: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("connection refused", request=req)

    with pytest.raises(Es2PlusTransportError, match="no answer"):
        client(handler, retries=1).release_profile(iccid=ICCID)


def test_confirmation_code_never_in_repr_or_errors() -> None:
    from esim.es2plus.messages import ConfirmOrderRequest

    req = ConfirmOrderRequest.model_validate({
        "header": {"functionRequesterIdentifier": "r", "functionCallIdentifier": "c"},
        "iccid": ICCID, "confirmationCode": "12345678", "releaseFlag": True})
    assert "12345678" not in repr(req)
    assert req.dump()["confirmationCode"] == "12345678"
    with pytest.raises(Exception) as ei:
        ConfirmOrderRequest.model_validate({
            "header": {"functionRequesterIdentifier": "r", "functionCallIdentifier": "c"},
            "iccid": ICCID, "confirmationCode": "87654321", "releaseFlag": "maybe"})
    assert "87654321" not in str(ei.value)
