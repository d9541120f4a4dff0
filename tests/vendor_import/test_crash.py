"""kill -9 in the middle of an import leaves no batch and no SIM; running the file again
imports it whole (SQLite and PostgreSQL)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy import Engine, func, select

from hsm_sim.soft import SoftHsm
from simcore.db import read_session
from simcore.models import Batch, Sim
from simcore.vendor_import import import_file

from .helpers import cards, out_text, write

REPO = Path(__file__).resolve().parents[2]
CHILD = """
import sys, time, warnings
warnings.simplefilter("ignore")
from pathlib import Path
from simcore.db import make_engine
from hsm_sim.soft import SoftHsm
from simcore.vendor_import import ImportOptions, import_file
hsm = SoftHsm.open(Path(sys.argv[2]), components=[bytes(range(1, 33)), bytes(range(7, 39))])
def progress(done, total):
    print(done, flush=True)
    time.sleep(0.05)
import_file(make_engine(sys.argv[1]), hsm, Path(sys.argv[3]),
            ImportOptions(chunk=500, worker=sys.argv[4] == "worker"), progress)
print("finished", flush=True)
"""


@pytest.mark.slow
@pytest.mark.parametrize("reader", ["inline", "worker"])
def test_kill_9_mid_import_then_rerun(engine: Engine, hsm: SoftHsm, tmp_path: Path,
                                      reader: str) -> None:
    n = 6000
    p = write(tmp_path / "big.out", out_text(cards(n, ("ICCID", "IMSI", "EKI", "EOPC")),
                                             ("ICCID", "IMSI", "EKI", "EOPC")))
    url = engine.url.render_as_string(hide_password=False)
    child = subprocess.Popen([sys.executable, "-c", CHILD, url, str(tmp_path / "hsm"), str(p),
                              reader],
                             cwd=REPO, stdout=subprocess.PIPE, text=True)
    assert child.stdout is not None
    seen = [child.stdout.readline() for _ in range(3)]  # 1,500 rows written, uncommitted
    assert all(s.strip().isdigit() for s in seen), seen
    os.kill(child.pid, signal.SIGKILL)
    child.wait(10)
    with read_session(engine) as s:
        assert s.execute(select(func.count()).select_from(Batch)).scalar_one() == 0
        assert s.execute(select(func.count()).select_from(Sim)).scalar_one() == 0
    r = import_file(engine, hsm, p)
    assert (r.status, r.imported) == ("imported", n)
    assert import_file(engine, hsm, p).status == "already_imported"
