"""Against a real multi-worker server: 64 concurrent eSIM orders never hand out a profile twice,
and after a full tour no Ki/OPc (clear hex or stored reference) appears in any response body or
log line."""

from __future__ import annotations

import asyncio
import warnings
from pathlib import Path

import httpx
import pytest
from sqlalchemy import Engine, func, select
from sqlmodel import col

from hsm_sim.keyref import KeyRef, KeyType
from hsm_sim.soft import SoftHsm
from simcore import apikeys, keys
from simcore.db import read_session
from simcore.models import Sim, SimCredential
from simcore.models_api import EsimOrder
from tests.api.conftest import seed_inventory
from tests.api.live import LiveServer


def _secrets(engine: Engine, hsm: SoftHsm) -> set[str]:
    """Every stored Ki/OPc as clear hex (both cases) and every stored key reference."""
    out: set[str] = set()
    with read_session(engine) as s:
        sims = list(s.execute(select(Sim).where(col(Sim.ki_ref).is_not(None))).scalars())
        creds = list(s.execute(select(col(SimCredential.ref))).scalars())
    for sim in sims:
        for token, kind in ((sim.ki_ref, KeyType.KI), (sim.opc_ref, KeyType.OPC)):
            assert token
            clear = hsm._unwrap(KeyRef.from_token(token), kind, sim.iccid).hex()
            out |= {clear, clear.upper(), token}
    out |= set(creds)
    assert len(sims) >= 100
    return out


async def _tour(url: str, key: str, n_orders: int) -> tuple[list[httpx.Response], list[str]]:
    h = {"Authorization": f"Bearer {key}"}
    seen: list[httpx.Response] = []
    async with httpx.AsyncClient(base_url=url, headers=h, timeout=60) as c:
        orders = await asyncio.gather(*(
            c.post("/v1/esim-profiles", json={"external_ref": f"c{i}"},
                   headers={"Idempotency-Key": f"o-{i}"}) for i in range(n_orders)))
        seen += orders
        cursor: str | None = None
        while True:
            r = await c.get("/v1/sims", params={"limit": 50} | ({"cursor": cursor} if cursor
                                                               else {}))
            seen.append(r)
            cursor = r.json()["next_cursor"]
            if not cursor:
                break
        sims = [s for page in seen[n_orders:] for s in page.json()["items"]]
        seen += await asyncio.gather(*(c.get(f"/v1/sims/{s['iccid']}") for s in sims[:40]))
        phys = await c.post("/v1/sims/allocate", json={"subscriber_ref": "tour"})
        seen.append(phys)
        seen.append(await c.post(f"/v1/sims/{phys.json()['iccid']}/activate",
                                 json={"msisdn": "auto"}))
        for path in ("/v1/audit?limit=1000", "/v1/audit/verify", "/v1/msisdns",
                     "/v1/esim-profiles?limit=1000", "/metrics", "/v1/webhooks/deliveries",
                     "/v1/sims/0000", "/openapi.json"):
            seen.append(await c.get(path))
    return seen, [o.json()["iccid"] for o in orders if o.status_code == 201]


@pytest.mark.slow
@pytest.mark.storage
def test_concurrent_orders_and_no_secret_anywhere(engine: Engine, tmp_path: Path) -> None:
    seed_inventory(engine, physical=60, esims=80)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        hsm = SoftHsm.dev(tmp_path / "hsm")
    for batch in ("phys", "esim"):
        keys.generate_keys(engine, hsm, actor="t", batch=batch)
    secrets = _secrets(engine, hsm)
    _, key = apikeys.create(engine, "tour", ["admin"], actor="t")
    url = engine.url.render_as_string(hide_password=False)
    server = LiveServer(url, tmp_path, workers=2)
    try:
        responses, iccids = asyncio.run(_tour(server.url, key, 64))
    finally:
        server.stop()
    orders = responses[:64]
    assert [r.status_code for r in orders] == [201] * 64, orders[0].text
    assert len(set(iccids)) == 64
    assert len({r.json()["matching_id"] for r in orders}) == 64
    with read_session(engine) as s:
        per_iccid = s.execute(select(col(EsimOrder.iccid), func.count())
                              .group_by(col(EsimOrder.iccid))).all()
    assert len(per_iccid) == 64 and all(n == 1 for _, n in per_iccid)
    assert all(r.status_code < 500 for r in responses)
    log = server.log()
    assert '"request_id"' in log and '"route": "/v1/esim-profiles"' in log
    bodies = [r.text for r in responses] + [str(dict(r.headers)) for r in responses]
    for secret in secrets:
        assert not any(secret in b for b in bodies), "a key appeared in a response"
        assert secret not in log, "a key appeared in the log"
