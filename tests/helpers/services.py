"""Whether the real services (PostgreSQL, SoftHSM2, pcscd + vpcd, osmo-hlr) are required."""

from __future__ import annotations

import os

REQUIRE_ENV = "SIMSMITH_REQUIRE_SERVICES"
OLD_REQUIRE_ENV = "SIMSMITH_REQUIRE_PG"  # the former name, still accepted


def services_required() -> bool:
    """SIMSMITH_REQUIRE_SERVICES=1 (the full suite, scripts/test.sh): a test whose real service
    is missing fails instead of skipping. SIMSMITH_REQUIRE_PG=1, the old name, means the same."""
    return "1" in (os.environ.get(REQUIRE_ENV), os.environ.get(OLD_REQUIRE_ENV))
