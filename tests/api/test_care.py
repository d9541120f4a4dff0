"""GET /v1/sims/{iccid}/access-codes: PIN1/PUK1 for a customer-care key only (not admin), equal
to what the HSM holds, audited with the caller and no value, never cached, never logged. On
SQLite and PostgreSQL, with the soft HSM and SoftHSM2."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine
from structlog.testing import capture_logs

from api.main import create_app
from hsm_sim.soft import SoftHsm
from simcore import apikeys, audit, inventory, keys
from simcore.identifiers import Iccid
from tests.api.conftest import make_keys, seed_inventory, settings
from tests.helpers.codes_api import CodesApi, codes_api, held
from tests.hsm.conftest import p11hsm  # noqa: F401  (SoftHSM2 token, skipped without its env)

CARE = "care:access-codes"


CareApi = CodesApi


@pytest.fixture(params=["soft", "pkcs11"])
def care_api(request: pytest.FixtureRequest, engine: Engine, tmp_path: Path
             ) -> Iterator[CodesApi]:
    with codes_api(request, engine, tmp_path, CARE) as api:
        yield api


@pytest.mark.storage
def test_care_key_reads_the_codes_the_hsm_holds(care_api: CareApi,
                                                caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    iccid = care_api.iccids[0]
    with capture_logs() as logs:
        r = care_api.client.get(f"/v1/sims/{iccid}/access-codes",
                                params={"reason": "ticket 4711"}, headers=care_api.h())
        other = care_api.client.get(f"/v1/sims/{care_api.iccids[1]}/access-codes",
                                    headers=care_api.h()).json()
    assert r.status_code == 200, r.text
    assert r.headers["cache-control"] == "no-store"
    body = r.json()
    stored = keys.load_keys(care_api.engine, iccid).credentials
    assert body == {"iccid": iccid, "pin1": held(care_api.hsm, stored["PIN1"]),
                    "puk1": held(care_api.hsm, stored["PUK1"])}
    assert len(body["pin1"]) == 4 and len(body["puk1"]) == 8
    assert (other["pin1"], other["puk1"]) != (body["pin1"], body["puk1"])  # its own codes

    events = audit.query(care_api.engine, subject_id=iccid, action="sim.access_codes_revealed")
    assert len(events) == 1
    key_row = apikeys.authenticate(care_api.engine, care_api.keys[CARE])
    assert events[0].actor == f"api:{key_row.name}#{key_row.id}"
    assert json.loads(events[0].details) == {"codes": ["PIN1", "PUK1"], "reason": "ticket 4711",
                                             "state": "in_stock"}
    # The access log names the route template; no PUK in logs or in the audit trail.
    assert [e["route"] for e in logs if e.get("event") == "request"] == [
        "/v1/sims/{iccid}/access-codes"] * 2
    trail = care_api.client.get(f"/v1/audit?subject_id={iccid}", headers=care_api.h("audit:read"))
    assert "sim.access_codes_revealed" in trail.text
    everywhere = trail.text + str(logs) + caplog.text
    assert body["puk1"] not in everywhere and other["puk1"] not in everywhere


@pytest.mark.slow
@pytest.mark.storage
def test_other_keys_are_refused_and_errors_are_problems(care_api: CareApi) -> None:
    c, iccid = care_api.client, care_api.iccids[0]
    path = f"/v1/sims/{iccid}/access-codes"
    for scope in ("admin", "sims:read", "sims:write", "audit:read"):
        r = c.get(path, headers=care_api.h(scope))
        assert r.status_code == 403, scope
        assert r.headers["content-type"] == "application/problem+json"
        assert r.json()["type"] == "urn:simsmith:problem:insufficient-scope"
    assert c.get(path).status_code == 401
    assert audit.query(care_api.engine, action="sim.access_codes_revealed") == []

    unknown = Iccid.from_body("8988289999999999999").digits  # outside the seeded range
    r = c.get(f"/v1/sims/{unknown}/access-codes", headers=care_api.h())
    assert r.status_code == 404 and r.json()["type"] == "urn:simsmith:problem:not-found"
    assert r.headers["content-type"] == "application/problem+json"

    no_codes = inventory.list_sims(care_api.engine, batch="phys")[-1].iccid
    r = c.get(f"/v1/sims/{no_codes}/access-codes", headers=care_api.h())
    assert r.status_code == 404 and "no PIN1" in r.json()["detail"]

    r = c.get("/v1/sims/1234/access-codes", headers=care_api.h())
    assert r.status_code == 422 and r.json()["type"] == "urn:simsmith:problem:invalid-input"
    r = c.get(path, params={"reason": "x" * 201}, headers=care_api.h())
    assert r.status_code == 422

    inventory.terminate(care_api.engine, iccid, reason="lost", actor="t")
    r = c.get(path, headers=care_api.h())
    assert r.status_code == 409 and "terminated" in r.json()["detail"]
    assert audit.query(care_api.engine, action="sim.access_codes_revealed") == []


def test_openapi_documents_the_scope(care_api: CareApi) -> None:
    op = care_api.client.get("/openapi.json").json()["paths"][
        "/v1/sims/{iccid}/access-codes"]["get"]
    assert op["x-required-scope"] == CARE
    assert "not implied by `admin`" in op["description"]
    assert {"200", "401", "403", "404", "409", "422", "503"} <= set(op["responses"])


@pytest.mark.storage
def test_unknown_sim_is_404_even_when_the_hsm_cannot_be_opened(engine: Engine,
                                                              tmp_path: Path) -> None:
    """The SIM is looked up before the HSM is opened: an unknown ICCID (or a SIM without codes)
    is 404 on a server whose HSM is down; only a SIM whose codes exist gets the 503."""
    seed_inventory(engine, physical=3, esims=1)
    iccid = inventory.list_sims(engine, batch="phys")[0].iccid
    elsewhere = SoftHsm.init(tmp_path / "elsewhere", components=[b"\x11" * 32, b"\x2c" * 32])
    keys.generate_keys(engine, elsewhere, actor="t", iccids=[iccid])
    home = tmp_path / "home"  # no HSM keystore here: open_hsm raises HsmUnavailable
    app = create_app(settings(home), engine=engine)
    with TestClient(app) as client:
        h = {"Authorization": f"Bearer {make_keys(engine)[CARE]}"}
        unknown = Iccid.from_body("8988289999999999999").digits
        r = client.get(f"/v1/sims/{unknown}/access-codes", headers=h)
        assert r.status_code == 404, r.text
        assert r.json()["type"] == "urn:simsmith:problem:not-found"
        no_codes = inventory.list_sims(engine, batch="phys")[-1].iccid
        assert client.get(f"/v1/sims/{no_codes}/access-codes", headers=h).status_code == 404
        r = client.get(f"/v1/sims/{iccid}/access-codes", headers=h)
        assert r.status_code == 503, r.text
        assert r.json()["type"] == "urn:simsmith:problem:service-unavailable"
        assert app.state.ctx.hsm is None
    assert audit.query(engine, action="sim.access_codes_revealed") == []
