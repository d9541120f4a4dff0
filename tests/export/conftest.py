"""osmo-hlr tests need scripts/services/osmohlr.sh's environment: they skip without it, unless
SIMSMITH_REQUIRE_SERVICES=1 (the full suite), where they fail instead."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from sqlalchemy import Engine

from hsm_sim.soft import SoftHsm
from simcore.vendor_import import import_file
from tests.helpers.services import services_required
from tests.vendor_import.helpers import cards, make_hsm, out_text, write

_VARS = ("SIMSMITH_TEST_OSMOHLR_HOST", "SIMSMITH_TEST_OSMOHLR_CTRL_PORT",
         "SIMSMITH_TEST_OSMOHLR_GSUP_PORT")


@pytest.fixture
def osmohlr() -> tuple[str, int, int]:
    missing = [v for v in _VARS if not os.environ.get(v)]
    if missing:
        msg = (f"osmo-hlr not configured ({', '.join(missing)} unset): run "
               "scripts/services/osmohlr.sh start and source build/services/osmohlr.env")
        if services_required():
            pytest.fail(msg)
        pytest.skip(msg)
    return (os.environ[_VARS[0]], int(os.environ[_VARS[1]]), int(os.environ[_VARS[2]]))


@pytest.fixture
def hsm(tmp_path: Path) -> SoftHsm:
    return make_hsm(tmp_path / "hsm")


@pytest.fixture
def stocked(engine: Engine, hsm: SoftHsm, tmp_path: Path) -> list:  # type: ignore[type-arg]
    """Six imported SIMs (keys known to the test through `cards`)."""
    cs = cards(6, offset=500)
    text = out_text(cs, var_in=False)
    import_file(engine, hsm, write(tmp_path / "b.out", text))
    return cs
