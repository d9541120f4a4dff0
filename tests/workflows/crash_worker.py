"""A worker process that SIGKILLs itself at one point of one step (the chaos tests run it):

    python -m tests.workflows.crash_worker DB_URL HSM_DIR HLR_FILE STEP PHASE

PHASE `call`: right after the step's peer call returned, before anything is recorded;
`commit`: inside the transaction that records the step, before it commits. The worker's lease
is one second, so another worker resumes the run soon after.
"""

from __future__ import annotations

import dataclasses
import os
import signal
import sys
import warnings
from pathlib import Path
from typing import Any

from sqlalchemy import Engine

from hsm_sim.soft import SoftHsm
from simcore import db
from simcore.smdp.in_process import InProcessSmdp
from simcore.workflows import activation, engine
from simcore.workflows.steps import Deps
from tests.helpers.fake_hlr import FileHlr

PASSPHRASE = "workflow tests only"
SMDP = "smdp.simsmith.test"


def _die() -> None:
    os.kill(os.getpid(), signal.SIGKILL)


def crashing(step: engine.Step, phase: str) -> engine.Step:
    if phase == "call":
        assert step.call is not None
        call = step.call

        def call_then_die(run: engine.Run) -> Any:
            call(run)
            _die()
        return dataclasses.replace(step, call=call_then_die)
    commit = step.commit
    assert commit is not None

    def commit_then_die(s: Any, run: engine.Run) -> Any:
        commit(s, run)
        s.flush()  # the rows are written (uncommitted) when the process dies
        _die()
    return dataclasses.replace(step, commit=commit_then_die)


def deps(url: str, hsm_dir: str, hlr_file: str) -> Deps:
    eng = db.make_engine(url)
    warnings.simplefilter("ignore")
    hsm = SoftHsm.open(Path(hsm_dir), passphrase=PASSPHRASE)
    return Deps(eng, FileHlr(hlr_file), InProcessSmdp(eng, SMDP), hsm)


def finish_after_kill(url: str, hsm_dir: str, hlr_file: str, check: Engine, wid: int) -> None:
    """Run a fresh worker (as a restarted process would) until run `wid` has finished, read
    through `check` (an engine on the same store): at most 120 s, while the killed worker's
    lease (1 s) runs out."""
    import time

    from simcore.workflows.service import get_workflow

    d = deps(url, hsm_dir, hlr_file)
    w = engine.Worker(d.engine, d, policy=engine.RetryPolicy(initial=0, maximum=0, jitter=0))
    deadline = time.monotonic() + 120
    try:
        while not get_workflow(check, wid).finished and time.monotonic() < deadline:
            if w.run_once() == 0:
                time.sleep(0.1)
    finally:
        d.engine.dispose()


def main() -> None:
    url, hsm_dir, hlr_file, step_name, phase = sys.argv[1:6]
    d = activation.ACTIVATION
    steps = tuple(crashing(s, phase) if s.name == step_name else s for s in d.steps)
    registry = engine.Registry({d.kind: dataclasses.replace(d, steps=steps)})
    dep = deps(url, hsm_dir, hlr_file)
    w = engine.Worker(dep.engine, dep, lease=1.0, registry=registry,
                      policy=engine.RetryPolicy(initial=0, maximum=0, jitter=0))
    for _ in range(50):
        w.run_once()
    sys.exit(3)  # never reached when the step runs: the process killed itself


if __name__ == "__main__":
    main()
