"""Workflow tests: a store with SIMs that have keys, an MSISDN pool, a soft HSM, the fake HLR
and the in-process SM-DP+ (PostgreSQL and SQLite through the `engine` fixture)."""

from __future__ import annotations

import warnings
from pathlib import Path

import pytest
from sqlalchemy import Engine

from hsm_sim.hsm import KekPurpose
from hsm_sim.soft import SoftHsm
from simcore import keys, msisdn_pool
from simcore.smdp.in_process import InProcessSmdp
from simcore.smdp.stock import stock_profiles
from simcore.workflows.engine import RetryPolicy
from simcore.workflows.steps import Deps
from tests.helpers.fake_hlr import FakeHlr
from tests.simcore.helpers import seed

FAST = RetryPolicy(initial=0.0, maximum=0.0, jitter=0.0, max_attempts=3, max_undo_attempts=3)


@pytest.fixture
def hsm(tmp_path: Path) -> SoftHsm:
    warnings.simplefilter("ignore")
    h = SoftHsm.init(tmp_path / "hsm", components=[bytes(range(1, 33)), bytes(range(7, 39))])
    h.kek_add("hlr-test", KekPurpose.EXPORT, insecure_clear=True)
    return h


@pytest.fixture
def stocked(engine: Engine, hsm: SoftHsm) -> Engine:
    """4 physical SIMs with keys, 3 eSIM profiles available at the SM-DP+ (no keys yet: the
    workflow has the HSM make them), 5 MSISDNs."""
    seed(engine, 4, batch="phys")
    keys.generate_keys(engine, hsm, actor="t", batch="phys", codes=())
    seed(engine, 3, batch="esims", kind="esim")
    stock_profiles(engine, actor="t", batch="esims")
    msisdn_pool.add_msisdn_range(engine, "+447700900000", "+447700900004", name="n", actor="t")
    return engine


@pytest.fixture
def fake_hlr() -> FakeHlr:
    return FakeHlr()


@pytest.fixture
def deps(stocked: Engine, hsm: SoftHsm, fake_hlr: FakeHlr) -> Deps:
    return Deps(stocked, fake_hlr, InProcessSmdp(stocked, "smdp.simsmith.test"), hsm)
