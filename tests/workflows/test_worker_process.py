"""A worker process that imported nothing but the runtime knows every workflow kind (the
definitions register on import): `simsmith worker --once` in a fresh interpreter."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy import Engine

from simcore.workflows.service import get_workflow, start_activation

pytestmark = pytest.mark.slow  # a fresh interpreter

ROOT = Path(__file__).resolve().parents[2]


def test_a_fresh_worker_process_runs_the_activation(cli_env: Engine) -> None:
    wid = start_activation(cli_env, {"subscriber_ref": "fresh"}, actor="t")
    proc = subprocess.run([sys.executable, "-m", "tools.cli", "worker", "--once"], cwd=ROOT,
                          capture_output=True, timeout=300)
    assert proc.returncode == 0, proc.stderr.decode()[-2000:]
    v = get_workflow(cli_env, wid)
    # No osmo-hlr configured in this environment: the embedded HLR (not "no workflow kind").
    assert v.status == "succeeded", v.error
    assert next(s for s in v.steps if s.name == "hlr").status == "done"
