"""An API app over a seeded store whose first two physical SIMs have keys and codes, on the
soft HSM or SoftHSM2: shared by the care (PIN1/PUK1) and service-centre (PIN2/PUK2/ADM1)
route tests."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine

from api.main import create_app
from hsm_sim.hsm import Hsm
from hsm_sim.keyref import KeyRef
from hsm_sim.soft import SoftHsm
from simcore import inventory, keys
from tests.api.conftest import make_keys, seed_inventory, settings


@dataclass
class CodesApi:
    client: TestClient
    engine: Engine
    hsm: Hsm
    keys: dict[str, str]  # scope -> API key holding only it
    iccids: list[str]  # SIMs with keys and codes
    scope: str  # the scope h() uses when given none: the route's own

    def h(self, scope: str | None = None) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.keys[scope or self.scope]}"}


class _Slot:
    def __init__(self, offset: int, length: int) -> None:
        self.offset, self.length = offset, length


def held(hsm: Hsm, ref: KeyRef) -> str:
    """The code as the HSM writes it into a card or package (patch_keys), as digits."""
    buf = bytearray(8)
    hsm.patch_keys(buf, [_Slot(0, 8)], [ref], owner=ref.owner)
    return bytes(buf).rstrip(b"\xff").decode()


@contextmanager
def codes_api(request: pytest.FixtureRequest, engine: Engine, tmp_path: Path, scope: str
              ) -> Iterator[CodesApi]:
    """`request.param` names the HSM: "soft" or "pkcs11" (the p11hsm fixture)."""
    if request.param == "soft":
        hsm: Any = SoftHsm.init(tmp_path / "hsm", components=[b"\x11" * 32, b"\x2c" * 32])
    else:
        hsm = request.getfixturevalue("p11hsm")
    seed_inventory(engine, physical=4, esims=2)
    iccids = [s.iccid for s in inventory.list_sims(engine, batch="phys")][:2]
    keys.generate_keys(engine, hsm, actor="t", iccids=iccids)
    app = create_app(settings(tmp_path), engine=engine, hsm=hsm)
    with TestClient(app) as client:
        yield CodesApi(client, engine, hsm, make_keys(engine), iccids, scope)
