"""Fixtures for the wiring tests: a store (the `engine` fixture: SQLite, then PostgreSQL), a soft
HSM, SIM records with keys, and the real pcscd + vpcd of tests/cards (skipped without its
environment unless SIMSMITH_REQUIRE_SERVICES=1, where it fails)."""

from __future__ import annotations

import warnings
from pathlib import Path

import pytest
from sqlalchemy import Engine

from hsm_sim.errors import DevModeWarning
from hsm_sim.soft import SoftHsm
from simcore import inventory, keys, ranges
from simcore.identifiers import Iccid
from tests.cards.conftest import insert, pcsc  # noqa: F401  (fixtures shared with the card tests)
from tests.export.conftest import osmohlr  # noqa: F401  (osmo-hlr of scripts/services/osmohlr.sh)
from tests.helpers.cli import cli_env  # noqa: F401  (fixture: the CLI on the test's store)
from tests.hsm.conftest import p11hsm  # noqa: F401  (SoftHSM2 token, skipped without its env)

ICCID_FIRST = Iccid.from_body("898821100000000001").digits
ICCID_LAST = Iccid.from_body("898821100000009999").digits
IMSI_FIRST, IMSI_LAST = "001010000000001", "001010000009999"
PASSPHRASE = "wiring tests only"


@pytest.fixture
def hsm(tmp_path: Path) -> SoftHsm:
    with warnings.catch_warnings():  # dev mode warns loudly, by design
        warnings.simplefilter("ignore", DevModeWarning)
        return SoftHsm.init(tmp_path / "hsm", passphrase=PASSPHRASE, scrypt_n=2**10)


def seed(engine: Engine, hsm: object, count: int, *, batch: str = "b1", kind: str = "physical",
         state: str = "blank", with_keys: bool = True) -> list[str]:
    """Ranges (once) and `count` SIMs of a new batch, with keys; returns their ICCIDs."""
    if not ranges.list_ranges(engine):
        ranges.add_range(engine, "iccid", ICCID_FIRST, ICCID_LAST, name="iccid-1", actor="t")
        ranges.add_range(engine, "imsi", IMSI_FIRST, IMSI_LAST, name="imsi-1",
                         mnc_length=2, actor="t")
    inventory.generate_sims(engine, count, batch=batch, actor="t", kind=kind, state=state)
    if with_keys:
        keys.generate_keys(engine, hsm, actor="t", batch=batch, ota=kind == "esim")
    return [s.iccid for s in inventory.list_sims(engine, batch=batch)]
