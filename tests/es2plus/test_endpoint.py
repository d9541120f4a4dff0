"""simsmith's ES2+ endpoint over real HTTPS with mutual TLS (uvicorn on loopback), driven by the
ES2+ client: every function, every documented refusal with its SGP.22 codes, the profile state
machine, replays of a repeated functionCallIdentifier. Runs on SQLite and PostgreSQL."""

from __future__ import annotations

import json
import ssl

import pytest
from sqlalchemy import Engine, func, select
from sqlalchemy.exc import OperationalError
from sqlmodel import Session, col

from esim.confirmation_code import hash_confirmation_code
from esim.es2plus import Es2PlusClient, Es2PlusFunctionFailed, StatusCode
from simcore.identifiers import Eid
from simcore.models import AuditEvent, OutboxEvent
from simcore.smdp.models import Es2PlusOrder
from tests.es2plus.conftest import (
    PROFILE_TYPE,
    REQUESTER,
    SMDP_ADDRESS,
    Pki,
    Server,
    add_profiles,
    make_client,
    profile,
)

pytestmark = pytest.mark.storage

EID = Eid.from_body("890490320000000000000000000012").digits
OTHER_EID = Eid.from_body("890490320000000000000000000099").digits


def refused(code: tuple[str, str], fn: object, **kw: object) -> Es2PlusFunctionFailed:
    with pytest.raises(Es2PlusFunctionFailed) as ei:
        fn(**kw)  # type: ignore[operator]
    assert ei.value.code == StatusCode(*code), str(ei.value)
    return ei.value


def events(engine: Engine) -> int:
    with Session(engine) as s:
        return s.execute(select(func.count()).select_from(OutboxEvent)).scalar_one()


def test_order_confirm_release_by_iccid(engine: Engine, client: Es2PlusClient) -> None:
    iccid = add_profiles(engine)[0]
    r = client.download_order(iccid=iccid)
    assert r.response.iccid == iccid and profile(engine, iccid).profile_state == "allocated"
    c = client.confirm_order(iccid=iccid, release_flag=False, eid=EID, confirmation_code="1234")
    assert c.response.smdp_address == SMDP_ADDRESS and c.response.eid == EID
    mid = c.response.matching_id
    assert mid and all(ch in "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ-" for ch in mid)
    sim = profile(engine, iccid)
    assert (sim.profile_state, sim.eid) == ("confirmed", EID)
    with Session(engine) as s:
        order = s.get(Es2PlusOrder, iccid)
        assert order is not None and order.matching_id == mid
        assert order.cc_hash == hash_confirmation_code("1234").hex()
        assert "1234" not in repr(order)
    client.release_profile(iccid=iccid)
    assert profile(engine, iccid).profile_state == "released"
    with Session(engine) as s:
        actions = list(s.execute(select(col(AuditEvent.action)).where(
            col(AuditEvent.subject_id) == iccid).order_by(col(AuditEvent.seq))).scalars())
        details = s.execute(select(col(AuditEvent.details)).where(
            col(AuditEvent.subject_id) == iccid)).scalars().all()
    assert actions == ["esim_profile.allocated", "esim_profile.confirmed", "esim_profile.released"]
    assert not any("1234" in d for d in details)


def test_order_by_profile_type_with_eid_links(engine: Engine, client: Es2PlusClient) -> None:
    iccids = add_profiles(engine, 2)
    r = client.download_order(profile_type=PROFILE_TYPE, eid=EID)
    assert r.response.iccid == iccids[0]
    sim = profile(engine, iccids[0])
    assert (sim.profile_state, sim.eid) == ("linked", EID)
    c = client.confirm_order(iccid=iccids[0], release_flag=True, matching_id="SHOP-0001")
    assert c.response.matching_id == "SHOP-0001" and c.response.eid == EID
    assert profile(engine, iccids[0]).profile_state == "released"
    assert client.download_order(profile_type=PROFILE_TYPE).response.iccid == iccids[1]
    refused(("8.2.5", "3.7"), client.download_order, profile_type=PROFILE_TYPE)


def test_download_order_refusals(engine: Engine, client: Es2PlusClient) -> None:
    iccid = add_profiles(engine, 1)[0]
    other = add_profiles(engine, 1, batch="esim-2", profile_type="other-type")[0]
    physical = add_profiles(engine, 1, batch="phys", profile_type=None)[0]
    refused(("8.2.1", "3.9"), client.download_order, iccid="8988280000000999994")
    refused(("8.2.5", "3.9"), client.download_order, profile_type="no-such-type")
    refused(("8.2.5", "3.8"), client.download_order, iccid=other, profile_type=PROFILE_TYPE)
    refused(("8.1.1", "2.1"), client.download_order, iccid=iccid, eid="89" + "0" * 30)
    client.download_order(iccid=iccid)
    e = refused(("8.2.1", "3.7"), client.download_order, iccid=iccid)
    assert e.subject_identifier == iccid and "allocated" in (e.peer_message or "")
    assert physical  # a profile-less batch is still orderable by ICCID
    client.download_order(iccid=physical)


def test_download_order_without_iccid_or_type_is_refused(engine: Engine,
                                                         client: Es2PlusClient) -> None:
    from esim.es2plus.messages import DownloadOrderResponse

    with pytest.raises(Es2PlusFunctionFailed) as ei:
        client.call("DownloadOrder", {}, DownloadOrderResponse)
    assert ei.value.code == StatusCode("8.2.5", "2.3")


def test_confirm_order_refusals(engine: Engine, client: Es2PlusClient, https_server: Server,
                                pki: Pki) -> None:
    a, b, c = add_profiles(engine, 3)
    refused(("8.2.1", "3.9"), client.confirm_order, iccid="8988280000000999994",
            release_flag=True)
    refused(("8.2.1", "3.5"), client.confirm_order, iccid=a, release_flag=True)  # available
    client.download_order(iccid=a, eid=EID)
    refused(("8.1.1", "3.10"), client.confirm_order, iccid=a, eid=OTHER_EID, release_flag=True)
    refused(("8.9", "5.1"), client.confirm_order, iccid=a, smds_address="smds.example.com",
            release_flag=True)
    refused(("8.2.6", "2.1"), client.confirm_order, iccid=a, matching_id="lower-case",
            release_flag=True)
    client.confirm_order(iccid=a, matching_id="MID-1", release_flag=True)
    client.download_order(iccid=b)
    e = refused(("8.2.6", "3.3"), client.confirm_order, iccid=b, matching_id="MID-1",
                release_flag=True)
    assert "Matching ID – Already in Use" in str(e)
    # Another requester's order: not allowed.
    client.download_order(iccid=c)
    with make_client(https_server, pki, "intruder", requester="intruder") as other:
        refused(("8.2.1", "1.2"), other.confirm_order, iccid=c, release_flag=True)
        refused(("8.2.1", "1.2"), other.cancel_order, iccid=c, final_profile_status="Available")
        refused(("8.2.1", "1.2"), other.release_profile, iccid=c)
    assert profile(engine, c).profile_state == "allocated"


def test_cancel_order(engine: Engine, client: Es2PlusClient) -> None:
    a, b = add_profiles(engine, 2)
    refused(("8.2.1", "3.5"), client.cancel_order, iccid=a, final_profile_status="Available")
    client.download_order(iccid=a, eid=EID)
    client.confirm_order(iccid=a, release_flag=True, matching_id="CANCEL-ME")
    refused(("8.1.1", "3.10"), client.cancel_order, iccid=a, eid=OTHER_EID,
            final_profile_status="Available")
    refused(("8.2.6", "3.10"), client.cancel_order, iccid=a, matching_id="NOT-IT",
            final_profile_status="Available")
    client.cancel_order(iccid=a, eid=EID, matching_id="CANCEL-ME",
                        final_profile_status="Available")
    sim = profile(engine, a)
    assert (sim.profile_state, sim.eid) == ("available", None)
    with Session(engine) as s:
        assert s.get(Es2PlusOrder, a) is None  # the Matching ID is free again
    client.download_order(iccid=b)
    client.cancel_order(iccid=b, final_profile_status="Unavailable")
    assert profile(engine, b).profile_state == "unavailable"
    refused(("8.2.1", "3.7"), client.download_order, iccid=b)
    # A malformed finalProfileStatusIndicator is a Failed answer naming the field.
    from esim.es2plus.messages import CancelOrderResponse

    e = refused(("1.6", "2.1"), client.call, function="CancelOrder",
                body={"iccid": a, "finalProfileStatusIndicator": "Gone"},
                response_model=CancelOrderResponse)
    assert e.subject_identifier == "finalProfileStatusIndicator"


def test_release_profile_refusals(engine: Engine, client: Es2PlusClient) -> None:
    a = add_profiles(engine, 1)[0]
    refused(("8.2.1", "3.9"), client.release_profile, iccid="8988280000000999994")
    refused(("8.2.1", "3.5"), client.release_profile, iccid=a)
    client.download_order(iccid=a)
    refused(("8.2.1", "3.5"), client.release_profile, iccid=a)  # allocated, not confirmed
    client.confirm_order(iccid=a, release_flag=True)
    refused(("8.2.1", "3.5"), client.release_profile, iccid=a)  # already released


def test_repeated_call_identifier_replays_the_answer(engine: Engine, client: Es2PlusClient,
                                                     https_server: Server, pki: Pki) -> None:
    a, b = add_profiles(engine, 2)
    ids = iter(["call-1", "call-1", "call-1", "call-2"])
    with make_client(https_server, pki, call_ids=lambda: next(ids)) as fixed:
        first = fixed.download_order(iccid=a)
        before = events(engine)
        again = fixed.download_order(iccid=a)  # a retry after a lost answer
        assert again.response == first.response and events(engine) == before
        e = refused(("1.6", "2.1"), fixed.release_profile, iccid=a)  # same id, other function
        assert "already used" in (e.peer_message or "")
        fixed.download_order(iccid=b)


def test_requester_must_match_the_certificate(engine: Engine, client: Es2PlusClient,
                                              https_server: Server, pki: Pki) -> None:
    a = add_profiles(engine, 1)[0]
    with make_client(https_server, pki, "intruder", requester=REQUESTER) as spoof:
        e = refused(("1.1", "1.2"), spoof.download_order, iccid=a)
    assert "intruder" in str(e)
    assert profile(engine, a).profile_state == "available"


def test_basic_credentials_instead_of_a_certificate(engine: Engine, endpoint: object,
                                                    https_server: Server, pki: Pki) -> None:
    import httpx

    a = add_profiles(engine, 1)[0]
    body = {"header": {"functionRequesterIdentifier": "proxy-op",
                       "functionCallIdentifier": "x1"}, "iccid": a}
    tls = ssl.create_default_context(cafile=str(pki.dev.ca))
    tls.load_cert_chain(str(pki.dev.client_cert), str(pki.dev.client_key))
    with httpx.Client(verify=tls) as h:
        url = https_server.url + "/gsma/rsp2/es2plus/downloadOrder"
        # The certificate names simsmith-operator: requester proxy-op is refused ...
        r = h.post(url, json=body)
        assert r.json()["header"]["functionExecutionStatus"]["status"] == "Failed"
        assert r.headers["X-Admin-Protocol"].startswith("gsma/rsp/v2.")
    # ... and the credential path is for deployments where a proxy terminates TLS (and forwards
    # the scheme: https); the route logic is the same, so it is driven through the ASGI app.
    from fastapi.testclient import TestClient

    with TestClient(https_server.app, base_url="https://testserver") as tc:
        url = "/gsma/rsp2/es2plus/downloadOrder"
        assert tc.post(url, json=body).status_code == 401
        assert tc.post(url, json=body, auth=("proxy-op", "wrong")).status_code == 401
        r = tc.post(url, json=body, auth=("proxy-op", "s3cret-pass"))
        assert r.status_code == 200, r.text
        assert json.loads(r.text)["iccid"] == a
        assert "s3cret" not in r.text
        bad = tc.post(url, content=b"{oops", auth=("proxy-op", "s3cret-pass"))
        # Malformed JSON is still answered in ES2+ (1.6 / 2.1), not with problem+json.
        assert bad.status_code == 200
        assert bad.headers["content-type"].startswith("application/json")
        scd = bad.json()["header"]["functionExecutionStatus"]["statusCodeData"]
        assert (scd["subjectCode"], scd["reasonCode"]) == ("1.6", "2.1")


@pytest.mark.parametrize("function, body, code, field", [
    ("ConfirmOrder", {"releaseFlag": True}, ("8.2.1", "2.2"), "iccid"),
    ("ConfirmOrder", {"iccid": "8988280000000999994"}, ("1.6", "2.2"), "releaseFlag"),
    ("ReleaseProfile", {"iccid": 42}, ("1.6", "2.1"), "iccid"),
    ("HandleDownloadProgressInfo", {"iccid": "8988280000000999994", "timestamp": "x",
                                    "notificationPointId": 3}, ("1.6", "2.2"),
     "notificationPointStatus"),
])
def test_malformed_requests_name_the_field(engine: Engine, client: Es2PlusClient, function: str,
                                           body: dict[str, object], code: tuple[str, str],
                                           field: str) -> None:
    from esim.es2plus.messages import Response

    e = refused(code, client.call, function=function, body=body, response_model=Response)
    assert e.subject_identifier == field


def test_empty_confirmation_code_is_refused(engine: Engine, client: Es2PlusClient) -> None:
    a = add_profiles(engine, 1)[0]
    client.download_order(iccid=a)
    refused(("8.2.7", "2.1"), client.confirm_order, iccid=a, confirmation_code="",
            release_flag=True)
    assert profile(engine, a).profile_state == "allocated"


def test_request_without_header(engine: Engine, endpoint: object, https_server: Server,
                                pki: Pki) -> None:
    import httpx

    tls = ssl.create_default_context(cafile=str(pki.dev.ca))
    tls.load_cert_chain(str(pki.dev.client_cert), str(pki.dev.client_key))
    with httpx.Client(verify=tls) as h:
        r = h.post(https_server.url + "/gsma/rsp2/es2plus/releaseProfile",
                   json={"iccid": "8988280000000999994"})
    status = r.json()["header"]["functionExecutionStatus"]
    assert status["status"] == "Failed"
    assert (status["statusCodeData"]["subjectCode"], status["statusCodeData"]["reasonCode"],
            status["statusCodeData"]["subjectIdentifier"]) == ("1.6", "2.2", "header")


def test_purge_forgets_old_calls(engine: Engine, client: Es2PlusClient) -> None:
    from datetime import timedelta

    from simcore.smdp.es2plus import purge_calls

    a = add_profiles(engine, 1)[0]
    client.download_order(iccid=a)
    assert purge_calls(engine, timedelta(hours=1)) == 0
    assert purge_calls(engine, timedelta(seconds=-1)) == 1


def test_oversized_identifiers_are_refused_not_crashed(engine: Engine, https_server: Server,
                                                       pki: Pki, endpoint: object) -> None:
    with make_client(https_server, pki, call_ids=lambda: "c" * 129) as long_ids:
        refused(("1.6", "2.1"), long_ids.release_profile, iccid="8988280000000999994")
    with make_client(https_server, pki) as c:
        # Not an ICCID at all: invalid (2.1), not looked up and called unknown (3.9).
        refused(("8.2.1", "2.1"), c.release_profile, iccid="8" * 30)


def test_concurrent_orders_by_profile_type_never_share_a_profile(
    engine: Engine, client: Es2PlusClient,
) -> None:
    from concurrent.futures import ThreadPoolExecutor

    iccids = add_profiles(engine, 8)

    def order(_: int) -> str:
        try:
            return client.download_order(profile_type=PROFILE_TYPE).response.iccid or ""
        except Es2PlusFunctionFailed as e:
            return str(e.code)

    with ThreadPoolExecutor(10) as pool:
        got = list(pool.map(order, range(10)))
    taken = sorted(g for g in got if g.isdigit())
    assert taken == iccids
    assert sorted(g for g in got if not g.isdigit()) == [str(StatusCode("8.2.5", "3.7"))] * 2


def test_endpoint_settings_parse_without_echoing_secrets(monkeypatch: pytest.MonkeyPatch) -> None:
    from simcore.smdp.es2plus import Es2PlusEndpointSettings

    monkeypatch.setenv("SIMSMITH_ES2PLUS_CREDENTIALS", "op-1=pa=ss; op-2=x")
    monkeypatch.setenv("SIMSMITH_ES2PLUS_REQUESTERS", "op-1=1.2.3|1.2.4")
    st = Es2PlusEndpointSettings.from_settings()
    assert st.credential_map() == {"op-1": "pa=ss", "op-2": "x"}
    assert st.requester_map() == {"op-1": frozenset({"1.2.3", "1.2.4"})}
    assert "pa=ss" not in repr(st)
    monkeypatch.setenv("SIMSMITH_ES2PLUS_CREDENTIALS", "op-1=a;topsecretvalue")
    with pytest.raises(ValueError) as ei:
        Es2PlusEndpointSettings.from_settings().credential_map()
    assert "topsecret" not in str(ei.value) and "entry 2" in str(ei.value)


@pytest.mark.parametrize(("fault", "code"), [
    (RuntimeError("boom"), ("1.2", "4.2")),  # Function Provider – Execution Error
    (OperationalError("UPDATE sim", {}, Exception("database is locked")), ("1.2", "4.4")),
])
def test_a_fault_inside_the_provider_is_a_failed_answer_not_recorded(
    engine: Engine, monkeypatch: pytest.MonkeyPatch, fault: Exception, code: tuple[str, str],
) -> None:
    """SGP.22 common codes: a fault of the SM-DP+ itself answers Failed with subject 1.2
    (Function Provider), not an HTTP 500; it is not recorded, so the same functionCallIdentifier
    succeeds once the fault is gone."""
    from simcore.smdp import es2plus
    from simcore.smdp.es2plus import Es2PlusEndpoint

    iccid = add_profiles(engine, 1)[0]
    endpoint = Es2PlusEndpoint(engine, SMDP_ADDRESS)
    body = {"header": {"functionRequesterIdentifier": REQUESTER,
                       "functionCallIdentifier": "fault-1"}, "iccid": iccid}

    def broken(*_: object, **__: object) -> None:
        raise fault

    with monkeypatch.context() as m:
        m.setitem(es2plus._HANDLERS, "DownloadOrder", broken)
        answer = endpoint.handle("DownloadOrder", body, principal=REQUESTER)
    status = answer.header.function_execution_status
    assert status.status == "Failed"
    assert status.status_code_data is not None
    assert (status.status_code_data.subject_code, status.status_code_data.reason_code) == code
    assert profile(engine, iccid).profile_state == "available"
    again = endpoint.handle("DownloadOrder", body, principal=REQUESTER)
    assert again.header.function_execution_status.status == "Executed-Success"
    assert profile(engine, iccid).profile_state == "allocated"
