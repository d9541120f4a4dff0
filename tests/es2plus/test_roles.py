"""ES2+ roles and authorisation (issue 12 item 4): the SM-DP+ functions and the
HandleDownloadProgressInfo receiver are separate roles on separate listeners; each client
certificate is authorised for roles and operators (simcore.smdp.access); operator B's valid
certificate cannot touch operator A's profiles; a notification-only peer cannot order; ES2+
never answers plain HTTP unless the lab flag says so. On SQLite and PostgreSQL."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, select
from sqlmodel import Session, col

from api.es2plus_listener import MtlsServer, es2plus_app
from esim.es2plus import Es2PlusFunctionFailed, FunctionExecutionStatus, StatusCode
from esim.es2plus.messages import ExecutionStatus
from simcore.models import Batch
from simcore.smdp.access import (
    AccessPolicy,
    AccessTableError,
    Role,
    load_access_table,
    parse_access_table,
)
from simcore.smdp.es2plus import Es2PlusEndpoint
from simcore.smdp.stock import assign_stock
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

OK = ExecutionStatus(status=FunctionExecutionStatus.EXECUTED_SUCCESS)
NOT_ALLOWED = StatusCode("1.1", "1.2")

TABLE = {"peer": [
    {"identity": REQUESTER, "roles": ["order"]},
    {"identity": "intruder", "roles": ["order"]},  # operator B: a valid certificate of its own
    {"identity": "smdp-vendor", "roles": ["notify"]},
]}


@pytest.fixture
def policy(https_server: Server, engine: Engine) -> Iterator[AccessPolicy]:
    p = parse_access_table(TABLE)
    https_server.app.state.es2plus = Es2PlusEndpoint(engine, SMDP_ADDRESS,
                                                     authorize=p.may_act_as)
    https_server.app.state.es2plus_policy = p
    yield p
    del https_server.app.state.es2plus_policy


def refused(code: StatusCode, fn: object, **kw: object) -> Es2PlusFunctionFailed:
    with pytest.raises(Es2PlusFunctionFailed) as ei:
        fn(**kw)  # type: ignore[operator]
    assert ei.value.code == code, str(ei.value)
    return ei.value


def stock_for(engine: Engine, batch: str, operator: str) -> None:
    with Session(engine) as s:
        batch_id = s.execute(select(col(Batch.id)).where(col(Batch.name) == batch)).scalar_one()
        assign_stock(s, [batch_id], operator)
        s.commit()


def test_operator_b_cannot_take_or_change_operator_a_profiles(
        engine: Engine, https_server: Server, pki: Pki, policy: AccessPolicy) -> None:
    a_profiles = add_profiles(engine, 2, batch="op-a")
    stock_for(engine, "op-a", REQUESTER)
    with make_client(https_server, pki, "intruder", requester="intruder") as b:
        e = refused(StatusCode("8.2.1", "1.2"), b.download_order, iccid=a_profiles[0])
        assert "another operator" in str(e)
        # By Profile Type, A's stock is not B's to see.
        refused(StatusCode("8.2.5", "3.9"), b.download_order, profile_type=PROFILE_TYPE)
        # B's certificate may not speak for A either.
        with make_client(https_server, pki, "intruder", requester=REQUESTER) as spoof:
            refused(NOT_ALLOWED, spoof.download_order, iccid=a_profiles[0])
    assert [profile(engine, i).profile_state for i in a_profiles] == ["available"] * 2
    # A's own order runs, and B can neither confirm nor cancel it.
    with make_client(https_server, pki) as a:
        a.download_order(iccid=a_profiles[0])
        with make_client(https_server, pki, "intruder", requester="intruder") as b:
            refused(StatusCode("8.2.1", "1.2"), b.confirm_order, iccid=a_profiles[0],
                    release_flag=True)
            refused(StatusCode("8.2.1", "1.2"), b.cancel_order, iccid=a_profiles[0],
                    final_profile_status="Available")
        assert profile(engine, a_profiles[0]).profile_state == "allocated"
        assert a.download_order(profile_type=PROFILE_TYPE).response.iccid == a_profiles[1]


def test_unassigned_stock_is_open_to_every_operator(
        engine: Engine, https_server: Server, pki: Pki, policy: AccessPolicy) -> None:
    iccid = add_profiles(engine, 1, batch="shared")[0]
    with make_client(https_server, pki, "intruder", requester="intruder") as b:
        assert b.download_order(iccid=iccid).response.iccid == iccid


def test_notification_only_peer_cannot_order(engine: Engine, https_server: Server, pki: Pki,
                                             policy: AccessPolicy) -> None:
    iccid = add_profiles(engine, 1)[0]
    with make_client(https_server, pki, "smdp-vendor", requester="smdp-vendor") as vendor:
        e = refused(NOT_ALLOWED, vendor.download_order, iccid=iccid)
        assert "may not call DownloadOrder" in str(e)
        refused(NOT_ALLOWED, vendor.download_order, profile_type=PROFILE_TYPE)
    assert profile(engine, iccid).profile_state == "available"


def test_an_operator_cannot_send_notifications(engine: Engine, https_server: Server, pki: Pki,
                                               policy: AccessPolicy) -> None:
    iccid = add_profiles(engine, 1, state="released")[0]
    with make_client(https_server, pki) as operator:
        refused(NOT_ALLOWED, operator.handle_download_progress_info, iccid=iccid,
                notification_point_id=3, status=OK, timestamp="2026-12-07T07:00:00Z")
    assert profile(engine, iccid).profile_state == "released"
    with make_client(https_server, pki, "smdp-vendor", requester="smdp-vendor") as vendor:
        vendor.handle_download_progress_info(iccid=iccid, notification_point_id=3, status=OK,
                                             timestamp="2026-12-07T07:00:00Z",
                                             profile_type=PROFILE_TYPE)
    assert profile(engine, iccid).profile_state == "downloaded"


def test_identity_not_in_the_table_is_refused(engine: Engine, https_server: Server, pki: Pki
                                              ) -> None:
    p = parse_access_table({"peer": [{"identity": "smdp-vendor", "roles": ["notify"]}]})
    https_server.app.state.es2plus = Es2PlusEndpoint(engine, SMDP_ADDRESS,
                                                     authorize=p.may_act_as)
    https_server.app.state.es2plus_policy = p
    try:
        iccid = add_profiles(engine, 1)[0]
        with make_client(https_server, pki) as c:
            e = refused(NOT_ALLOWED, c.download_order, iccid=iccid)
        assert "not in the ES2+ access table" in str(e)
        assert profile(engine, iccid).profile_state == "available"
    finally:
        del https_server.app.state.es2plus_policy


def test_operators_a_certificate_may_speak_for(engine: Engine, https_server: Server, pki: Pki
                                               ) -> None:
    p = parse_access_table({"peer": [{"identity": REQUESTER, "roles": ["order"],
                                      "operators": ["1.3.6.1.4.1.99999.1"]}]})
    https_server.app.state.es2plus = Es2PlusEndpoint(engine, SMDP_ADDRESS,
                                                     authorize=p.may_act_as)
    https_server.app.state.es2plus_policy = p
    try:
        a, b = add_profiles(engine, 2)
        with make_client(https_server, pki, requester="1.3.6.1.4.1.99999.1") as c:
            assert c.download_order(iccid=a).response.iccid == a
        with make_client(https_server, pki) as c:  # its CN is not among its operators
            refused(NOT_ALLOWED, c.download_order, iccid=b)
        assert profile(engine, b).profile_state == "available"
    finally:
        del https_server.app.state.es2plus_policy


def test_each_role_on_its_own_listener(engine: Engine, pki: Pki) -> None:
    endpoint = Es2PlusEndpoint(engine, SMDP_ADDRESS)
    iccid = add_profiles(engine, 1)[0]
    servers = {role: MtlsServer(es2plus_app(endpoint, roles={role}), cert=pki.dev.server_cert,
                                key=pki.dev.server_key, ca=pki.dev.ca).start()
               for role in Role}
    try:
        tls = pki.dev
        with httpx.Client(verify=_tls(tls.ca, tls.client_cert, tls.client_key)) as h:
            order = servers[Role.ORDER].url + "/gsma/rsp2/es2plus/"
            notify = servers[Role.NOTIFY].url + "/gsma/rsp2/es2plus/"
            body = {"header": {"functionRequesterIdentifier": REQUESTER,
                               "functionCallIdentifier": "c1"}, "iccid": iccid}
            assert h.post(notify + "downloadOrder", json=body).status_code == 404
            assert h.post(order + "handleDownloadProgressInfo", json={
                **body, "notificationPointId": 3, "timestamp": "2026-12-07T07:00:00Z",
                "notificationPointStatus": {"status": "Executed-Success"}}).status_code == 404
            r = h.post(order + "downloadOrder", json=body)
            assert r.json()["header"]["functionExecutionStatus"]["status"] == "Executed-Success"
    finally:
        for server in servers.values():
            server.stop()
    assert profile(engine, iccid).profile_state == "allocated"


def _tls(ca: Path, cert: Path, key: Path) -> object:
    import ssl

    ctx = ssl.create_default_context(cafile=str(ca))
    ctx.load_cert_chain(str(cert), str(key))
    return ctx


def test_plain_http_is_refused_credentials_included(
        engine: Engine, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.delenv("SIMSMITH_ES2PLUS_ALLOW_PLAIN_HTTP", raising=False)
    iccid = add_profiles(engine, 1)[0]
    body = {"header": {"functionRequesterIdentifier": "proxy-op",
                       "functionCallIdentifier": "p1"}, "iccid": iccid}
    url = "/gsma/rsp2/es2plus/downloadOrder"
    app = es2plus_app(Es2PlusEndpoint(engine, SMDP_ADDRESS), {"proxy-op": "s3cret-pass"})
    with TestClient(app) as plain:
        r = plain.post(url, json=body, auth=("proxy-op", "s3cret-pass"))
    assert r.status_code == 403 and "HTTPS only" in r.json()["detail"]
    assert profile(engine, iccid).profile_state == "available"
    # Behind a TLS-terminating proxy (the scheme is https) the credential is accepted.
    with TestClient(app, base_url="https://smdp.test") as proxied:
        r = proxied.post(url, json=body, auth=("proxy-op", "s3cret-pass"))
    assert r.json()["header"]["functionExecutionStatus"]["status"] == "Executed-Success"
    # The lab flag lets plain HTTP through, loudly.
    monkeypatch.setenv("SIMSMITH_ES2PLUS_ALLOW_PLAIN_HTTP", "1")
    lab = es2plus_app(Es2PlusEndpoint(engine, SMDP_ADDRESS), {"proxy-op": "s3cret-pass"})
    other = add_profiles(engine, 1, batch="lab")[0]
    with caplog.at_level(logging.WARNING), TestClient(lab) as plain:
        r = plain.post(url, json={**body, "iccid": other,
                                  "header": {**body["header"], "functionCallIdentifier": "p2"}},
                       auth=("proxy-op", "s3cret-pass"))
    assert r.json()["iccid"] == other
    assert any("LAB FLAG" in rec.getMessage() for rec in caplog.records)


def test_the_api_app_serves_only_the_receiver(engine: Engine, tmp_path: Path,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    from api.main import create_app
    from tests.api.conftest import settings

    monkeypatch.delenv("SIMSMITH_SMDP_URL", raising=False)
    app = create_app(settings(tmp_path), engine=engine)
    paths = {getattr(r, "path", "") for r in app.state.api_routes}
    assert "/gsma/rsp2/es2plus/handleDownloadProgressInfo" in paths
    assert not {"/gsma/rsp2/es2plus/downloadOrder", "/gsma/rsp2/es2plus/confirmOrder",
                "/gsma/rsp2/es2plus/cancelOrder", "/gsma/rsp2/es2plus/releaseProfile"} & paths


def test_access_table_file(tmp_path: Path) -> None:
    f = tmp_path / "access.toml"
    f.write_text('[[peer]]\nidentity = "crm.a"\nroles = ["order"]\n'
                 'operators = ["1.3.6.1.4.1.99999.1"]\n\n'
                 '[[peer]]\nidentity = "smdp.v"\nroles = ["notify"]\n')
    p = load_access_table(f)
    assert p.may_act_as("crm.a", "1.3.6.1.4.1.99999.1") and not p.may_act_as("crm.a", "crm.a")
    assert p.may_act_as("smdp.v", "smdp.v") and not p.may_act_as("nobody", "nobody")
    p.check_role("smdp.v", "HandleDownloadProgressInfo")


@pytest.mark.parametrize(("text", "where"), [
    ('[[peer]]\nidentity = "a"\nroles = ["order", "admin"]\n', "peer #1.roles"),
    ('[[peer]]\nidentity = "a"\nroles = ["order"]\n[[peer]]\nroles = ["notify"]\n',
     "peer #2.identity"),
    ('[[peer]]\nidentity = "a"\nroles = []\n', "peer #1.roles"),
    ('[[peer]]\nidentity = "a"\nroles = ["order"]\nopertors = ["x"]\n', "peer #1.opertors"),
    ('[[peer]]\nidentity = "a"\nroles = "order" x\n', "line 3"),
])
def test_access_table_faults_name_the_entry(tmp_path: Path, text: str, where: str) -> None:
    f = tmp_path / "access.toml"
    f.write_text(text)
    with pytest.raises(AccessTableError) as ei:
        load_access_table(f)
    assert str(f) in str(ei.value) and where in str(ei.value)
