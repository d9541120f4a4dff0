"""GET /v1/suci/{suci}: de-concealment for a UDM, its scope, audit and exact problems, on the
soft HSM and SoftHSM2, SQLite and PostgreSQL."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine

from api.main import create_app
from hsm_sim.eki import EkiScheme, encrypt_eki
from hsm_sim.hsm import KekPurpose
from hsm_sim.soft import SoftHsm
from simcore import suci_keys as sk
from simcore.suci import Suci
from tests.api.conftest import make_keys, settings
from tests.hsm.conftest import p11hsm  # noqa: F401  (SoftHSM2 token, skipped without its env)
from tests.hsm.vectors import h
from tests.suci.test_service import C4, events

ANNEX_A = f"suci-0-274-012-678-1-27-{C4['C.4.3.1']['scheme_output']}"
ANNEX_B = f"suci-0-274-012-678-2-28-{C4['C.4.4.1']['scheme_output'].lower()}"


@pytest.fixture(params=["soft", "pkcs11"])
def udm(request: pytest.FixtureRequest, engine: Engine, tmp_path: Path
        ) -> Iterator[tuple[TestClient, dict[str, str], Engine]]:
    if request.param == "soft":
        hsm: Any = SoftHsm.init(tmp_path / "hsm", components=[b"\x11" * 32, b"\x2c" * 32])
    else:
        hsm = request.getfixturevalue("p11hsm")
    name = f"suci-api-{tmp_path.name[-20:]}".replace("_", "-")[:60]
    hsm.kek_add(name, KekPurpose.TRANSPORT, [b"\x42" * 16])
    for key_id, setname in ((27, "C.4.3.1"), (28, "C.4.4.1")):
        data = encrypt_eki(EkiScheme.AES128_ECB, b"\x42" * 16, h(C4[setname], "hn_private"))
        sk.import_key(engine, hsm, key_id, C4[setname]["scheme"], data, name, actor="ops")
    app = create_app(settings(tmp_path), engine=engine, hsm=hsm)
    with TestClient(app) as client:
        yield client, make_keys(engine), engine


def auth(keys: dict[str, str], scope: str = "suci:deconceal") -> dict[str, str]:
    return {"Authorization": f"Bearer {keys[scope]}"}


@pytest.mark.storage
def test_deconceal_the_annex_sucis(udm: Any) -> None:
    client, keys, engine = udm
    for text, key_id in ((ANNEX_A, 27), (ANNEX_B, 28)):
        r = client.get(f"/v1/suci/{text}", headers=auth(keys))
        assert r.status_code == 200, r.text
        assert r.json() == {"supi": "imsi-274012001002086", "imsi": "274012001002086",
                            "scheme": key_id - 26, "key_id": key_id, "routing_indicator": "678"}
        assert r.headers["cache-control"] == "no-store"
    binary = "0x" + Suci.parse(ANNEX_B).to_bytes().hex()
    assert client.get(f"/v1/suci/{binary}", headers=auth(keys)).json()["key_id"] == 28
    assert client.get(f"/v1/suci/{ANNEX_A}", headers=auth(keys, "admin")).status_code == 200
    ev = events(engine, "suci.deconcealed")
    assert len(ev) == 4 and ev[0].actor.startswith("api:k-suci:deconceal#")
    assert json.loads(ev[0].details)["imsi"] == "274012001002086"


@pytest.mark.storage
def test_scope_and_problems(udm: Any) -> None:
    client, keys, engine = udm
    r = client.get(f"/v1/suci/{ANNEX_A}", headers=auth(keys, "sims:read"))
    assert r.status_code == 403
    assert client.get(f"/v1/suci/{ANNEX_A}").status_code == 401
    out = C4["C.4.3.1"]["scheme_output"]
    bad_mac = out[:-1] + ("0" if out[-1] != "0" else "1")
    for path, status, slug, text in [
        (f"suci-0-274-012-0-1-27-{bad_mac}", 422, "suci-mac-failure", "MAC tag"),
        (f"suci-0-274-012-0-1-9-{out}", 404, "not-found", "key id 9"),
        (f"suci-0-274-012-0-1-28-{out}", 422, "invalid-input", "Profile A with key id 28"),
        (f"suci-0-274-012-0-3-27-{out}", 422, "invalid-input", "scheme 3 is reserved"),
        ("suci-0-274-012-0-1-27-" + "00" * 41, 422, "invalid-input", "low-order"),
        ("not-a-suci", 422, "invalid-input", "dash-separated"),
    ]:
        r = client.get(f"/v1/suci/{path}", headers=auth(keys))
        assert r.status_code == status, r.text
        body = r.json()
        assert body["type"] == f"urn:simsmith:problem:{slug}" and text in body["detail"]
        assert r.headers["content-type"].startswith("application/problem+json")
        assert "supi" not in body and "imsi" not in body
    sk.retire_key(engine, 27, actor="ops")
    r = client.get(f"/v1/suci/{ANNEX_A}", headers=auth(keys))
    assert r.status_code == 409 and "retired" in r.json()["detail"]
    assert [json.loads(e.details)["error"] for e in events(engine, "suci.deconceal_failed")] == [
        "MacFailure", "MalformedSchemeOutput"]
