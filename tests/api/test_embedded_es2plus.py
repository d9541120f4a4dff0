"""The embedded default of `simsmith serve`: an eSIM order through the API runs DownloadOrder
and ConfirmOrder over HTTPS with mutual TLS against simsmith's own ES2+ endpoint (issue 8)."""

from __future__ import annotations

from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, select
from sqlmodel import col

from api.main import create_app
from simcore.db import read_session
from simcore.smdp.es2plus_port import Es2PlusSmdp
from simcore.smdp.models import Es2PlusCall

from .conftest import make_keys, seed_inventory, settings

pytestmark = pytest.mark.storage


@pytest.mark.slow
def test_order_goes_over_es2plus_https(engine: Engine, tmp_path: Path,
                                       monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("SIMSMITH_SMDP_URL", raising=False)
    seed_inventory(engine, physical=1, esims=3)
    key = make_keys(engine)["admin"]
    app = create_app(settings(tmp_path, smdp_mode="es2plus"), engine=engine)
    with TestClient(app) as client:
        smdp = app.state.ctx.smdp
        assert isinstance(smdp, Es2PlusSmdp)
        assert "https://127.0.0.1:" in repr(smdp)
        r = client.post("/v1/esim-profiles", json={"external_ref": "cust-es2"},
                        headers={"Authorization": f"Bearer {key}", "Idempotency-Key": "o-1"})
        assert r.status_code in (200, 201), r.text
        order = r.json()
        assert order["activation_code"].startswith("1$" + order["smdp_address"] + "$")
        with read_session(engine) as s:
            functions = sorted(s.execute(select(col(Es2PlusCall.function)).where(
                col(Es2PlusCall.iccid) == order["iccid"])).scalars())
    # The endpoint's own call log: both functions arrived over the mTLS listener.
    assert {"DownloadOrder", "ConfirmOrder"} <= set(functions)
    assert (tmp_path / "pki").is_dir()
