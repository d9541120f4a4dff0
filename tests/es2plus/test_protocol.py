"""SGP.22 §6.5.1 details of simsmith's ES2+ answers (issue 12 item 6), over real HTTPS with
mutual TLS: `X-Admin-Protocol` on every answer including 404 and 405 (on the ES2+ listener and on
the API app's receiver path), a malformed ICCID reported as invalid (8.2.1 / 2.1) and not as
unknown, strict booleans, and malformed JSON answered in ES2+ with SGP.22 codes."""

from __future__ import annotations

import ssl
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine

from api.es2plus_listener import MtlsServer, es2plus_app
from esim.es2plus.messages import ADMIN_PROTOCOL, ADMIN_PROTOCOL_HEADER
from simcore.smdp.access import Role
from simcore.smdp.es2plus import Es2PlusEndpoint
from tests.es2plus.conftest import REQUESTER, SMDP_ADDRESS, Pki, Server, add_profiles, profile

pytestmark = pytest.mark.storage

PREFIX = "/gsma/rsp2/es2plus"


def header(call_id: str = "c-1") -> dict[str, str]:
    return {"functionRequesterIdentifier": REQUESTER, "functionCallIdentifier": call_id}


@pytest.fixture
def tls(pki: Pki) -> ssl.SSLContext:
    ctx = ssl.create_default_context(cafile=str(pki.dev.ca))
    ctx.load_cert_chain(str(pki.dev.client_cert), str(pki.dev.client_key))
    return ctx


@pytest.fixture
def order_listener(engine: Engine, pki: Pki) -> Iterator[str]:
    """A listener of the `order` role only, as `simsmith smdp serve` runs it."""
    server = MtlsServer(es2plus_app(Es2PlusEndpoint(engine, SMDP_ADDRESS), roles={Role.ORDER}),
                        cert=pki.dev.server_cert, key=pki.dev.server_key,
                        ca=pki.dev.ca).start()
    yield server.url
    server.stop()


def failed_code(r: httpx.Response) -> tuple[str, str]:
    status = r.json()["header"]["functionExecutionStatus"]
    assert status["status"] == "Failed", r.text
    return status["statusCodeData"]["subjectCode"], status["statusCodeData"]["reasonCode"]


def test_admin_protocol_on_404_and_405_of_the_listener(order_listener: str,
                                                      tls: ssl.SSLContext) -> None:
    with httpx.Client(verify=tls) as h:
        answers = [
            h.post(order_listener + PREFIX + "/noSuchFunction", json={}),  # 404
            h.post(order_listener + PREFIX + "/handleDownloadProgressInfo", json={}),  # other role
            h.get(order_listener + PREFIX + "/downloadOrder"),  # 405
            h.post(order_listener + "/elsewhere", json={}),  # 404 off the ES2+ paths
        ]
    assert [r.status_code for r in answers] == [404, 404, 405, 404]
    for r in answers:
        assert r.headers.get(ADMIN_PROTOCOL_HEADER) == ADMIN_PROTOCOL, r.url
        assert r.json()["type"].startswith("urn:simsmith:problem:")


@pytest.mark.slow
def test_admin_protocol_on_404_and_405_of_the_api_receiver(engine: Engine,
                                                          tmp_path: Path) -> None:
    """The API app serves the operator's receiver (HandleDownloadProgressInfo): its ES2+ paths
    answer 404 / 405 with the header too; its other paths do not claim to be ES2+."""
    from api.main import create_app
    from api.settings import ApiSettings

    app = create_app(ApiSettings(home=tmp_path, webhooks_enabled=False,
                                 smdp_mode="in-process"), engine=engine)
    with TestClient(app, base_url="https://testserver") as tc:
        missing = tc.post(PREFIX + "/noSuchFunction", json={})
        wrong_method = tc.get(PREFIX + "/handleDownloadProgressInfo")
        not_es2plus = tc.get("/v1/no-such-resource")
    assert (missing.status_code, wrong_method.status_code) == (404, 405)
    for r in (missing, wrong_method):
        assert r.headers.get(ADMIN_PROTOCOL_HEADER) == ADMIN_PROTOCOL
        assert r.json()["type"].startswith("urn:simsmith:problem:")
    assert not_es2plus.status_code == 404 and ADMIN_PROTOCOL_HEADER not in not_es2plus.headers


@pytest.mark.parametrize("iccid", ["8" * 30, "89882800000009999x9", "123", "8988280000000999999"])
def test_malformed_iccid_is_invalid_not_unknown(engine: Engine, https_server: Server,
                                                endpoint: object, tls: ssl.SSLContext,
                                                iccid: str) -> None:
    """Too long, not digits, too short, a wrong Luhn check digit: 8.2.1 / 2.1 (invalid)."""
    with httpx.Client(verify=tls) as h:
        for path, body in (("/downloadOrder", {"iccid": iccid}),
                           ("/confirmOrder", {"iccid": iccid, "releaseFlag": True}),
                           ("/releaseProfile", {"iccid": iccid})):
            r = h.post(https_server.url + PREFIX + path, json={"header": header(path), **body})
            assert r.status_code == 200
            assert failed_code(r) == ("8.2.1", "2.1"), (path, r.text)
            assert r.headers[ADMIN_PROTOCOL_HEADER] == ADMIN_PROTOCOL
    with httpx.Client(verify=tls) as h:  # a well-formed ICCID that is not here: unknown
        r = h.post(https_server.url + PREFIX + "/releaseProfile",
                   json={"header": header("known-form"), "iccid": "8988280000000999994"})
    assert failed_code(r) == ("8.2.1", "3.9")


@pytest.mark.parametrize("flag", ["yes", "true", 1, "1", None])
def test_release_flag_is_a_strict_boolean(engine: Engine, https_server: Server, endpoint: object,
                                          tls: ssl.SSLContext, flag: Any) -> None:
    iccid = add_profiles(engine, 1)[0]
    with httpx.Client(verify=tls) as h:
        h.post(https_server.url + PREFIX + "/downloadOrder",
               json={"header": header("d"), "iccid": iccid}).raise_for_status()
        r = h.post(https_server.url + PREFIX + "/confirmOrder",
                   json={"header": header("c"), "iccid": iccid, "releaseFlag": flag})
    assert failed_code(r) == ("1.6", "2.1")
    assert r.json()["header"]["functionExecutionStatus"]["statusCodeData"][
        "subjectIdentifier"] == "releaseFlag"
    assert profile(engine, iccid).profile_state == "allocated"  # nothing released


@pytest.mark.parametrize("body", [b"{oops", b"", b"\xff\xfe", b'{"header": '])
def test_malformed_json_gets_an_es2plus_answer(engine: Engine, https_server: Server,
                                               endpoint: object, tls: ssl.SSLContext,
                                               body: bytes) -> None:
    with httpx.Client(verify=tls) as h:
        r = h.post(https_server.url + PREFIX + "/downloadOrder", content=body,
                   headers={"Content-Type": "application/json"})
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("application/json")
    assert r.headers[ADMIN_PROTOCOL_HEADER] == ADMIN_PROTOCOL
    assert failed_code(r) == ("1.6", "2.1")
