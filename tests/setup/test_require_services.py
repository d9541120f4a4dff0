"""SIMSMITH_REQUIRE_SERVICES=1 makes a missing real service fail the tests instead of skipping
them; SIMSMITH_REQUIRE_PG=1, its former name (it always forced every service), still works."""

from __future__ import annotations

import pytest

from tests.helpers.services import services_required


@pytest.mark.parametrize(("env", "required"), [
    ({}, False),
    ({"SIMSMITH_REQUIRE_SERVICES": "1"}, True),
    ({"SIMSMITH_REQUIRE_PG": "1"}, True),
    ({"SIMSMITH_REQUIRE_SERVICES": "0"}, False),
])
def test_either_name_requires_the_services(env: dict[str, str], required: bool,
                                           monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("SIMSMITH_REQUIRE_SERVICES", raising=False)
    monkeypatch.delenv("SIMSMITH_REQUIRE_PG", raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    assert services_required() is required
