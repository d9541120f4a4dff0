"""Fixtures for hsm_sim tests. SoftHSM2 tests need scripts/services/softhsm.sh's environment:
they skip without it, unless SIMSMITH_REQUIRE_SERVICES=1 (the full suite), where they fail
instead."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.helpers.services import services_required

_PKCS11_VARS = (
    "SOFTHSM2_CONF",
    "SIMSMITH_TEST_PKCS11_MODULE",
    "SIMSMITH_TEST_PKCS11_TOKEN",
    "SIMSMITH_TEST_PKCS11_PIN",
)


def pkcs11_env() -> dict[str, str]:
    missing = [v for v in _PKCS11_VARS if not os.environ.get(v)]
    if missing:
        msg = (f"SoftHSM2 not configured ({', '.join(missing)} unset): "
               "run scripts/services/softhsm.sh start and source build/services/softhsm.env")
        if services_required():
            pytest.fail(msg)
        pytest.skip(msg)
    return {v: os.environ[v] for v in _PKCS11_VARS}


@pytest.fixture(scope="session")
def p11hsm() -> Iterator[Any]:
    """One logged-in Pkcs11Hsm per test process (SoftHSM2 refuses a second login)."""
    env = pkcs11_env()
    from hsm_sim.pkcs11 import Pkcs11Hsm

    hsm = Pkcs11Hsm(
        env["SIMSMITH_TEST_PKCS11_MODULE"],
        env["SIMSMITH_TEST_PKCS11_TOKEN"],
        env["SIMSMITH_TEST_PKCS11_PIN"],
        prefix=f"simsmith-test-{os.getpid()}",
    )
    yield hsm
    hsm.close()


@pytest.fixture(params=["soft", "pkcs11"])
def hsm(request: pytest.FixtureRequest, tmp_path: Path) -> Any:
    """The soft HSM and SoftHSM2 in turn (test files that need another `hsm` define their own)."""
    if request.param == "soft":
        from hsm_sim.soft import SoftHsm
        from tests.helpers.hsm import Recorder

        return SoftHsm.init(tmp_path / "hsm", components=[b"\x11" * 32, b"\x2c" * 32],
                            audit=Recorder())
    return request.getfixturevalue("p11hsm")
