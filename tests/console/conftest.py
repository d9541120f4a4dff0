"""Console test fixtures: an app over a seeded store (physical SIMs with known keys and codes
from a vendor file, eSIM profiles in stock), console users per role, and a logged-in client."""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine

from api.main import create_app
from hsm_sim.soft import SoftHsm
from simcore import esim_orders, import_jobs, inventory, msisdn_pool
from simcore.console import users
from simcore.vendor_import import ImportOptions, import_file
from tests.api.conftest import make_keys, settings
from tests.simcore.helpers import seed
from tests.vendor_import.helpers import Card, cards, make_hsm, out_text, write

PASSWORD = "correct horse battery"
ROLES = {
    "ops": ["admin"],  # everything but care's codes
    "agent": ["sims:read", "sims:write", "esim:order"],
    "care": ["sims:read", "care:access-codes"],
    "viewer": ["sims:read"],
}
MSISDNS = ("447700900100", "447700900199")
PIN1 = "97318642"  # distinctive: a scan for it finds nothing by chance


def known_cards(n: int = 3, offset: int = 0) -> list[Card]:
    """Vendor rows whose Ki, OPc, PIN1 and PUK1 the tests know (and scan pages for)."""
    out = cards(n, offset=offset)
    for j, c in enumerate(out, start=offset):
        c.values["PIN1"] = PIN1
        c.values["PUK1"] = f"{52719384 + j:08d}"
    return out


def secrets_of(rows: list[Card]) -> list[str]:
    out = []
    for c in rows:
        out += [c.ki.hex(), c.opc.hex(), c.values["PUK1"], c.values["PIN1"],
                c.values["PUK2"], c.values["ADM1"], c.values["EKI"], c.values["EOPC"]]
    return out


@dataclass
class Console:
    client: TestClient
    engine: Engine
    hsm: SoftHsm
    cards: list[Card]
    keys: dict[str, str]
    tmp: Path

    def login(self, username: str = "ops", password: str = PASSWORD) -> TestClient:
        c = self.client
        c.cookies.clear()
        page = c.get("/console/login")
        pre = re.search(r'name="pre" value="([^"]+)"', page.text)
        assert pre is not None
        r = c.post("/console/login", data={"pre": pre.group(1), "username": username,
                                           "password": password, "next": "/console/"},
                   follow_redirects=False)
        assert r.status_code == 303, r.text
        return c

    def csrf(self, path: str = "/console/") -> str:
        m = re.search(r'name="csrf_token" value="([^"]+)"', self.client.get(path).text)
        assert m is not None
        return m.group(1)


def import_page(console: Console, location: str) -> str:
    """The import job's page at `location` once the job has ended (at most 30 s)."""
    job_id = int(location.rsplit("/", 1)[1])
    for _ in range(600):
        if import_jobs.get(console.engine, job_id).status in import_jobs.DONE:
            break
        time.sleep(0.05)
    return console.client.get(location).text


def seed_console(engine: Engine, hsm: SoftHsm, tmp: Path) -> list[Card]:
    seed(engine, 20, batch="phys", form_factor="3FF")
    seed(engine, 6, batch="esim", kind="esim")
    esim_orders.stock_profiles(engine, actor="t")
    msisdn_pool.add_msisdn_range(engine, *MSISDNS, name="m1", actor="t")
    rows = known_cards(3)
    import_file(engine, hsm, write(tmp / "seed.out", out_text(rows)),
                ImportOptions(batch="vendor-1", actor="t"))
    for c in rows[:2]:
        sim = inventory.allocate(engine, f"cust-{c.iccid[-4:]}", actor="t", batch="vendor-1")
        inventory.activate(engine, sim.iccid, actor="t", msisdn="auto")
    for name, scopes in ROLES.items():
        users.create(engine, name, PASSWORD, scopes, actor="t")
    return rows


@pytest.fixture
def console(engine: Engine, tmp_path: Path) -> Iterator[Console]:
    hsm = make_hsm(tmp_path / "hsm")
    rows = seed_console(engine, hsm, tmp_path)
    app = create_app(settings(tmp_path), engine=engine, hsm=hsm)
    with TestClient(app) as client:
        yield Console(client, engine, hsm, rows, make_keys(engine), tmp_path)
