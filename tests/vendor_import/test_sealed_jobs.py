"""Import jobs on sealed uploads (simcore.import_uploads): the data key is made and wrapped by the
HSM (soft and SoftHSM2), kept wrapped on the job row, and unwrapped again by the worker that
takes the job — also after a restart; the file is read in a second process for big files; what
a crash leaves is swept. On SQLite and PostgreSQL."""

from __future__ import annotations

import os
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, func, select

from hsm_sim.keyref import KeyRef, KeyType
from hsm_sim.soft import SoftHsm
from simcore import import_jobs, import_uploads, inventory
from simcore.db import read_session
from simcore.models import Sim
from simcore.sealed_file import SealedFileError
from simcore.vendor_import import ImportOptions, import_file
from tests.hsm.conftest import p11hsm  # noqa: F401  (SoftHSM2 token, skipped without its env)

from .helpers import Card, cards, make_hsm, out_text

COLUMNS = ("ICCID", "IMSI", "KI", "OPC", "PIN1", "PUK1", "ADM1")
COMPONENTS = [bytes(range(1, 33)), bytes(range(7, 39))]  # make_hsm's


@pytest.fixture(params=["soft", "pkcs11"])
def any_hsm(request: pytest.FixtureRequest, tmp_path: Path) -> Any:
    if request.param == "soft":
        return make_hsm(tmp_path / "hsm")
    return request.getfixturevalue("p11hsm")


def _rows(n: int, offset: int) -> list[Card]:
    return cards(n, COLUMNS, encrypted=False, offset=offset)


def _queue(engine: Engine, hsm: Any, home: Path, body: bytes, name: str = "B1.out") -> int:
    """What the API does with an upload: sealed as it arrives, a queued job holding the key."""
    up = import_uploads.begin(hsm, import_jobs.upload_path(home, name))
    for i in range(0, len(body), 4096):
        up.write(body[i:i + 4096])
    up.finish()
    job = import_jobs.create(engine, up.sealed, name, import_jobs.JobOptions(), actor="t",
                             upload_key=up.key_token)
    return int(job.id or 0)


def _restarted(hsm: Any, tmp_path: Path) -> Any:
    """The HSM as a new worker process opens it: the soft keystore opened again from disk; the
    token's storage KEK (SoftHSM2 allows one login per process: the same session, the key
    unwrapped again from the row all the same)."""
    if isinstance(hsm, SoftHsm):
        return SoftHsm.open(tmp_path / "hsm", components=COMPONENTS)
    return hsm


@pytest.mark.storage
def test_a_queued_job_resumes_after_a_restart(engine: Engine, any_hsm: Any,
                                              tmp_path: Path) -> None:
    rows = _rows(12, 500 + (0 if isinstance(any_hsm, SoftHsm) else 40))
    body = out_text(rows, COLUMNS, transport=None, var_in=False).encode()
    job_id = _queue(engine, any_hsm, tmp_path, body)
    row = import_jobs.get(engine, job_id)
    ref = KeyRef.from_token(row.upload_key or "")
    assert ref.key_type is KeyType.UPLOAD and ref.owner.startswith("upload-")
    assert ref.backend == any_hsm.backend
    sealed = Path(row.path)
    assert body not in sealed.read_bytes() and rows[0].values["PUK1"].encode() not in \
        sealed.read_bytes()

    # The process dies with the job running; the next one requeues it and runs it.
    assert import_jobs.claim(engine, job_id) == job_id
    assert import_jobs.requeue_stale(engine, older_than=timedelta(0)) == 1
    hsm2 = _restarted(any_hsm, tmp_path)
    assert import_jobs.claim(engine) == job_id
    done = import_jobs.run(engine, hsm2, job_id)
    assert done.status == "imported" and done.rows_done == 12, done.error
    assert inventory.get_sim(engine, rows[0].iccid).batch_id is not None
    assert done.upload_key is None and not sealed.exists()


@pytest.mark.storage
def test_a_job_without_its_hsm_fails_and_its_upload_goes(engine: Engine, tmp_path: Path) -> None:
    hsm = make_hsm(tmp_path / "hsm")
    rows = _rows(3, 600)
    job_id = _queue(engine, hsm, tmp_path, out_text(rows, COLUMNS, transport=None,
                                                    var_in=False).encode())
    import_jobs.claim(engine, job_id)
    done = import_jobs.run(engine, None, job_id)  # type: ignore[arg-type]
    assert done.status == "failed" and "sealed under a key the HSM keeps" in (done.error or "")
    assert done.upload_key is None and not Path(done.path).exists()


@pytest.mark.storage
def test_a_sealed_upload_read_in_a_second_process(engine: Engine, tmp_path: Path) -> None:
    hsm = make_hsm(tmp_path / "hsm")
    rows = _rows(700, 700)
    body = out_text(rows, COLUMNS, transport=None, var_in=False).encode()
    job_id = _queue(engine, hsm, tmp_path, body)
    job = import_jobs.get(engine, job_id)
    src = import_uploads.source_of(hsm, Path(job.path), job.upload_key or "", "upload of t")

    # A row broken far into the file: reported at the same line and column as in clear.
    broken = body.replace(rows[650].values["IMSI"].encode(), b"00101000000X111")
    bad = _queue(engine, hsm, tmp_path, broken, "B2.out")
    bjob = import_jobs.get(engine, bad)
    bsrc = import_uploads.source_of(hsm, Path(bjob.path), bjob.upload_key or "", "upload 2")
    clear = tmp_path / "clear.out"
    clear.write_bytes(broken)
    want = import_file(engine, hsm, clear, ImportOptions(dry_run=True, worker=False))
    got = import_file(engine, hsm, bsrc, ImportOptions(dry_run=True, worker=True))
    assert want.report is not None and got.report is not None and got.status == "invalid"
    assert [(i.line, i.column, i.rule) for i in got.report.issues] == \
        [(i.line, i.column, i.rule) for i in want.report.issues]
    assert got.report.issues[0].line > 600 and got.sha256 == want.sha256

    # Damaged: the second process says where, typed, and nothing is imported.
    raw = bytearray(Path(job.path).read_bytes())
    raw[-100] ^= 1
    Path(job.path).write_bytes(bytes(raw))
    with pytest.raises(SealedFileError, match=r"upload of t: .* at byte offset"):
        import_file(engine, hsm, src, ImportOptions(worker=True, actor="t"))
    with read_session(engine) as s:
        assert s.execute(select(func.count()).select_from(Sim)).scalar_one() == 0


@pytest.mark.storage
def test_the_sweep_deletes_what_a_crash_left(engine: Engine, tmp_path: Path) -> None:
    hsm = make_hsm(tmp_path / "hsm")
    body = out_text(_rows(2, 800), COLUMNS, transport=None, var_in=False).encode()
    live = _queue(engine, hsm, tmp_path, body, "live.out")
    ended = _queue(engine, hsm, tmp_path, body, "ended.out")
    import_jobs._set(engine, ended, status="failed")  # the process died before deleting it
    d = tmp_path / "imports"
    orphan_old, orphan_new = d / "1-old.out.sealed", d / "2-new.out.sealed"
    orphan_old.write_bytes(b"x")
    orphan_new.write_bytes(b"x")
    old = time.time() - 7200
    os.utime(orphan_old, (old, old))
    os.utime(Path(import_jobs.get(engine, live).path), (old, old))  # old, but its job is queued
    assert import_jobs.sweep_uploads(engine, tmp_path) == 2
    assert sorted(p.name for p in d.iterdir()) == sorted(
        [orphan_new.name, Path(import_jobs.get(engine, live).path).name])
    assert import_jobs.get(engine, ended).upload_key is None
    assert import_jobs.get(engine, live).upload_key is not None
