"""The import graph keeps the layers of docs/architecture.md: tools > api > simcore > esim | cards
> hsm_sim, no cycles between sibling modules (the import-linter contracts of pyproject.toml; the
same check as `lint-imports` in scripts/test.sh)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.slow
def test_import_contracts_are_kept() -> None:
    r = subprocess.run([sys.executable, "-c", "import sys; from importlinter.cli import "
                        "lint_imports; sys.exit(lint_imports(no_cache=True))"],
                       cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stdout[-4000:] + r.stderr[-2000:]
    assert "0 broken" in r.stdout
