"""SIGKILL of a worker process at each step of an eSIM activation (issue 18 item 5): after the
peer call and before its record, or inside the record's transaction. Another worker resumes
once the lease runs out; the run succeeds with every effect done once — one HLR subscriber
created, one DownloadOrder and one ConfirmOrder executed, one MSISDN assigned, one eSIM order,
one `sim.activated` event — and the invariants hold."""

from __future__ import annotations

import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest
from sqlalchemy import Engine, select
from sqlmodel import col

from simcore.db import read_session
from simcore.models import AuditEvent, OutboxEvent
from simcore.models_api import EsimOrder
from simcore.workflows import engine as wf
from simcore.workflows.activation import ACTIVATION
from simcore.workflows.service import get_workflow, start_activation
from tests.helpers.fake_hlr import FileHlr
from tests.workflows import invariants
from tests.workflows.crash_worker import finish_after_kill

pytestmark = pytest.mark.slow  # subprocesses, osmo-hlr, an HSM opened per command

ROOT = Path(__file__).resolve().parents[2]
POINTS = [(s.name, "call") for s in ACTIVATION.steps if s.call is not None] + [
    (s.name, "commit") for s in ACTIVATION.steps if s.commit is not None]


@pytest.mark.parametrize(("step", "phase"), POINTS, ids=[f"{s}-{p}" for s, p in POINTS])
def test_sigkill_at_each_step_resumes_with_nothing_done_twice(
        stocked: Engine, tmp_path: Path, step: str, phase: str) -> None:
    url = stocked.url.render_as_string(hide_password=False)
    hlr_file = str(tmp_path / "hlr.json")
    wid = start_activation(stocked, {"subscriber_ref": "kill", "kind": "esim"}, actor="t")
    proc = subprocess.run(
        [sys.executable, "-m", "tests.workflows.crash_worker", url, str(tmp_path / "hsm"),
         hlr_file, step, phase], cwd=ROOT, capture_output=True, timeout=300)
    assert proc.returncode == -9, proc.stderr.decode()[-2000:]
    v = get_workflow(stocked, wid)
    assert v.status in (wf.PENDING, wf.RUNNING)
    done = {s.name for s in v.steps if s.status == "done"}
    assert step not in done, f"{step} recorded before the kill"

    finish_after_kill(url, str(tmp_path / "hsm"), hlr_file, stocked, wid)
    v = get_workflow(stocked, wid)
    assert v.status == wf.SUCCEEDED, (v.error, [(s.name, s.status) for s in v.steps])
    # The attempt that died counts, on the step its transaction began with: store steps are
    # recorded in the transaction of the step with a peer call before them (engine._record;
    # here the eSIM's keys are made by the HSM, so every step with a call runs it).
    k = next(i for i, s in enumerate(ACTIVATION.steps) if s.name == step)
    began = max(i for i, s in enumerate(ACTIVATION.steps[:k + 1]) if s.call is not None)
    assert [s.attempts for s in v.steps[began:k + 1]] == [2] + [1] * (k - began)

    hlr = FileHlr(hlr_file).state()
    assert [e.split()[0] for e in hlr["effects"]] == ["create"]
    assert list(hlr["subscribers"]) == [v.data["imsi"]]
    with read_session(stocked) as s:
        actions = Counter(s.execute(select(col(AuditEvent.action))).scalars())
        topics = Counter(s.execute(select(col(OutboxEvent.topic))).scalars())
        orders = list(s.execute(select(EsimOrder)).scalars())
    assert actions["esim_profile.allocated"] == 1 and actions["esim_profile.released"] == 1
    assert actions["msisdn.assigned"] == 1 and actions["sim.allocated"] == 1
    assert actions["sim.active"] == 1
    assert topics["sim.activated"] == 1
    assert [(o.iccid, o.status) for o in orders] == [(v.data["iccid"], "active")]
    invariants.check(stocked, hlr["subscribers"])
