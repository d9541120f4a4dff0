"""The root command imports a noun's module only when that noun runs (tools/cli.py)."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from typer.testing import CliRunner

from tools.cli import NOUNS, app

PROBE = """
import json, sys
from typer.testing import CliRunner
from tools.cli import app
ours = ("tools.", "esim.saip", "cards.", "hsm_sim.")
before = sorted(m for m in sys.modules if m.startswith(ours))
r = CliRunner().invoke(app, sys.argv[1:])
after = sorted(m for m in sys.modules if m.startswith(ours))
print(json.dumps({"code": r.exit_code, "before": before, "after": after}))
"""


def _probe(*args: str) -> dict[str, object]:
    out = subprocess.run([sys.executable, "-c", PROBE, *args], capture_output=True, text=True,
                         check=True)
    result: dict[str, object] = json.loads(out.stdout.strip().splitlines()[-1])
    return result


@pytest.mark.slow
def test_a_noun_imports_only_its_own_module() -> None:
    seen = _probe("id", "check", "89000123456789012341", "--json")
    assert seen["code"] == 0
    assert "tools.id_cli" not in seen["before"]
    after = seen["after"]
    assert isinstance(after, list)
    assert "tools.id_cli" in after
    for unused in ("tools.esim_cli", "tools.card_cli", "tools.import_cli", "esim.saip.schema",
                   "cards.pcsc", "tools.hsm_cli", "hsm_sim.soft", "hsm_sim.pkcs11"):
        assert unused not in after


def test_inventory_carries_the_import_commands_of_import_cli() -> None:
    r = CliRunner().invoke(app, ["inventory", "--help"])
    assert r.exit_code == 0
    assert " import " in r.stdout and " order " in r.stdout


def test_root_help_lists_every_noun_with_its_help() -> None:
    r = CliRunner().invoke(app, ["--help"])
    assert r.exit_code == 0
    for _, noun, _ in NOUNS:
        assert f" {noun} " in r.stdout
    assert "--install-completion" not in r.stdout
