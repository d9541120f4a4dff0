from __future__ import annotations

from pathlib import Path

import pytest

from hsm_sim.soft import SoftHsm

from .helpers import make_hsm


@pytest.fixture
def hsm(tmp_path: Path) -> SoftHsm:
    return make_hsm(tmp_path / "hsm")
