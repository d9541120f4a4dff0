"""GET /v1/sims/{iccid}/service-codes and `simsmith inventory service-codes` (issue 13 item 1):
PIN2/PUK2/ADM1 for a service centre's key only (not admin, not care), equal to what the HSM
holds, a reason required, audited with the caller and no value, never cached. The care path
still never reaches an ADM code. On SQLite and PostgreSQL, with the soft HSM and SoftHSM2."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine

from hsm_sim.errors import WrongKeyType
from simcore import audit, inventory, keys, service_codes
from tests.helpers.codes_api import CodesApi, codes_api, held
from tests.hsm.conftest import p11hsm  # noqa: F401  (SoftHSM2 token, skipped without its env)

SERVICE = "service:card-codes"


@pytest.fixture(params=["soft", "pkcs11"])
def service_api(request: pytest.FixtureRequest, engine: Engine, tmp_path: Path
                ) -> Iterator[CodesApi]:
    with codes_api(request, engine, tmp_path, SERVICE) as api:
        yield api


@pytest.mark.slow
@pytest.mark.storage
def test_service_key_reads_pin2_puk2_adm1_the_hsm_holds(service_api: CodesApi) -> None:
    api, iccid = service_api, service_api.iccids[0]
    r = api.client.get(f"/v1/sims/{iccid}/service-codes", params={"reason": "SO-981"},
                       headers=api.h(SERVICE))
    assert r.status_code == 200, r.text
    assert r.headers["cache-control"] == "no-store"
    stored = keys.load_keys(api.engine, iccid).credentials
    body = r.json()
    assert body == {"iccid": iccid, "pin2": held(api.hsm, stored["PIN2"]),
                    "puk2": held(api.hsm, stored["PUK2"]), "adm1": held(api.hsm, stored["ADM1"])}
    events = audit.query(api.engine, subject_id=iccid, action="sim.service_codes_revealed")
    assert len(events) == 1
    assert json.loads(events[0].details) == {"codes": ["PIN2", "PUK2", "ADM1"],
                                             "reason": "SO-981", "state": "in_stock"}
    trail = api.client.get(f"/v1/audit?subject_id={iccid}", headers=api.h("audit:read")).text
    assert body["adm1"] not in trail and body["puk2"] not in trail


@pytest.mark.storage
def test_other_keys_and_missing_reasons_are_refused(service_api: CodesApi) -> None:
    api, iccid = service_api, service_api.iccids[0]
    path = f"/v1/sims/{iccid}/service-codes"
    for scope in ("admin", "care:access-codes", "sims:write"):
        r = api.client.get(path, params={"reason": "x"}, headers=api.h(scope))
        assert r.status_code == 403, scope
        assert r.json()["type"] == "urn:simsmith:problem:insufficient-scope"
    assert api.client.get(path, headers=api.h(SERVICE)).status_code == 422  # no reason
    with pytest.raises(Exception, match="reason"):
        service_codes.reveal_service_codes(api.engine, api.hsm, iccid, actor="t", reason="  ")
    inventory.terminate(api.engine, iccid, reason="lost", actor="t")
    r = api.client.get(path, params={"reason": "x"}, headers=api.h(SERVICE))
    assert r.status_code == 409
    assert audit.query(api.engine, action="sim.service_codes_revealed") == []


@pytest.mark.storage
def test_the_care_path_still_never_reveals_an_adm_code(service_api: CodesApi) -> None:
    api = service_api
    adm = keys.load_keys(api.engine, api.iccids[0]).credentials["ADM1"]
    with pytest.raises(WrongKeyType):
        api.hsm.reveal_code(adm, owner=api.iccids[0])
    ki = keys.load_keys(api.engine, api.iccids[0]).ki
    with pytest.raises(WrongKeyType):  # a cryptographic key never leaves by this path
        api.hsm.reveal_service_code(ki, owner=api.iccids[0])
    codes = service_codes.reveal_service_codes(api.engine, api.hsm, api.iccids[0], actor="t",
                                               reason="SO-1")
    assert "ADM1=<hidden>" in repr(codes) and codes.codes["ADM1"] not in repr(codes)
