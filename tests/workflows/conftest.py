"""Workflow tests: a store with SIMs that have keys, an MSISDN pool, a soft HSM, the fake HLR
and the in-process SM-DP+ (PostgreSQL and SQLite through the `engine` fixture)."""

from __future__ import annotations

import warnings
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine

from api.main import create_app
from api.settings import ApiSettings
from hsm_sim.hsm import KekPurpose
from hsm_sim.soft import SoftHsm
from simcore import apikeys, keys, msisdn_pool
from simcore.smdp.in_process import InProcessSmdp
from simcore.smdp.stock import stock_profiles
from simcore.workflows.engine import RetryPolicy
from simcore.workflows.steps import Deps
from tests.helpers.fake_hlr import FakeHlr
from tests.simcore.helpers import seed

PASSPHRASE = "workflow tests only"
FAST = RetryPolicy(initial=0.0, maximum=0.0, jitter=0.0, max_attempts=3, max_undo_attempts=3)


@pytest.fixture
def hsm(tmp_path: Path) -> SoftHsm:
    warnings.simplefilter("ignore")
    # A dev-mode HSM at $SIMSMITH_HOME/hsm, so the CLI opens the same one (SIMSMITH_HSM_PASSPHRASE)
    h = SoftHsm.init(tmp_path / "hsm", passphrase=PASSPHRASE, scrypt_n=2**10)
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
def cli_env(stocked: Engine, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Engine:
    """The CLI on this test's store and HSM; the embedded HLR unless the test sets
    SIMSMITH_HLR_HOST."""
    monkeypatch.setenv("SIMSMITH_HOME", str(tmp_path))
    monkeypatch.setenv("SIMSMITH_DATABASE_URL",
                       stocked.url.render_as_string(hide_password=False))
    monkeypatch.setenv("SIMSMITH_HSM_PASSPHRASE", PASSPHRASE)
    monkeypatch.setenv("SIMSMITH_HSM_BACKEND", "soft")
    monkeypatch.setenv("SIMSMITH_WORKFLOW_RETRY_INITIAL_SECONDS", "0")
    monkeypatch.setenv("SIMSMITH_WORKFLOW_MAX_ATTEMPTS", "2")
    for name in ("SIMSMITH_HLR_HOST", "SIMSMITH_HLR", "SIMSMITH_MODE",
                 "SIMSMITH_HLR_ALLOW_EMBEDDED"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.delenv("SIMSMITH_SMDP_URL", raising=False)
    return stocked


@pytest.fixture
def fake_hlr() -> FakeHlr:
    return FakeHlr()


@pytest.fixture
def deps(stocked: Engine, hsm: SoftHsm, fake_hlr: FakeHlr) -> Deps:
    return Deps(stocked, fake_hlr, InProcessSmdp(stocked, "smdp.simsmith.test"), hsm)


@pytest.fixture
def client(stocked: Engine, tmp_path: Path) -> Iterator[tuple[TestClient, dict[str, str]]]:
    """The API on the stocked store, with a key per scope the workflow routes need."""
    keys = {s: apikeys.create(stocked, f"k-{s}", [s], actor="t")[1]
            for s in ("sims:read", "sims:write")}
    settings = ApiSettings(home=tmp_path, webhooks_enabled=False,  # type: ignore[call-arg]
                           api_key_cache_seconds=0)
    with TestClient(create_app(settings, engine=stocked)) as c:
        yield c, {s: f"Bearer {k}" for s, k in keys.items()}
