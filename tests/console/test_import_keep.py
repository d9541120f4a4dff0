"""A dry run's file kept encrypted for the one-click import (simcore.console.import_keep;
issue 19 item 4): HKDF against its published vector (the framing: tests/simcore/
test_sealed_file.py); only the uploading session reads it back, never past its time; nothing in
clear on disk; and over HTTP, dry run then one click — the upload sealed as it arrives."""

from __future__ import annotations

import io
import os
import re
import time
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import Engine

from simcore import import_jobs, inventory, sealed_file
from simcore.console import import_keep
from simcore.vendor_import.source import FileSource
from tests.console.conftest import Console, import_page, known_cards, secrets_of
from tests.vendor_import.helpers import out_text

TOKEN = "session-token-of-the-uploader-0123456789abcdef"


def test_hkdf_rfc5869_test_case_1() -> None:
    okm = import_keep.derive_key(b"\x0b" * 22, bytes.fromhex("000102030405060708090a0b0c"),
                                 bytes.fromhex("f0f1f2f3f4f5f6f7f8f9"), 42)
    assert okm.hex() == ("3cb25f25faacd57a90434f64d0362f2a2d2d0a90cf1a5a4c5db02d56ecc4c5bf"
                         "34007208d5b887185865")


def _file(tmp_path: Path, body: bytes) -> tuple[FileSource, str]:
    import hashlib

    p = tmp_path / "upload.out"
    p.write_bytes(body)
    return FileSource(p), hashlib.sha256(body).hexdigest()


def test_kept_encrypted_and_read_back_by_its_session_only(tmp_path: Path,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sealed_file, "CHUNK", 4096)  # several chunks
    body = (b"PIN1 97318642 PUK1 52719384 KI 000102030405060708090a0b0c0d0e0f\n" * 500)
    src, digest = _file(tmp_path, body)
    kept = import_keep.keep(tmp_path, 7, src, session_token=TOKEN, filename="B.out",
                            sha256=digest, keep_for=timedelta(minutes=5))
    on_disk = (tmp_path / "imports" / "kept" / "7.enc").read_bytes()
    assert b"97318642" not in on_disk and b"52719384" not in on_disk
    assert b"000102030405060708090a0b0c0d0e0f" not in on_disk and TOKEN.encode() not in on_disk
    assert oct(os.stat(tmp_path / "imports" / "kept" / "7.enc").st_mode & 0o777) == "0o600"
    assert import_keep.find(tmp_path, 7) == kept and import_keep.find(tmp_path, 8) is None

    other = io.BytesIO()
    with pytest.raises(import_keep.NotKept, match="session that uploaded it"):
        import_keep.restore(tmp_path, 7, other, session_token="another session")
    assert other.getvalue() == b""  # not a byte of it
    assert import_keep.find(tmp_path, 7) is not None

    back = io.BytesIO()
    got = import_keep.restore(tmp_path, 7, back, session_token=TOKEN)
    assert back.getvalue() == body and got.sha256 == digest
    assert import_keep.find(tmp_path, 7) is None  # consumed
    with pytest.raises(import_keep.NotKept, match="not kept"):
        import_keep.restore(tmp_path, 7, io.BytesIO(), session_token=TOKEN)


def test_a_changed_header_or_byte_is_refused(tmp_path: Path) -> None:
    src, digest = _file(tmp_path, b"row 1\nrow 2\n")
    import_keep.keep(tmp_path, 3, src, session_token=TOKEN, filename="B.out", sha256=digest,
                     keep_for=timedelta(minutes=5))
    p = tmp_path / "imports" / "kept" / "3.enc"
    good = p.read_bytes()
    # A later expiry written into the header: the additional data no longer matches.
    later = re.sub(rb'"expires":"\d{4}', b'"expires":"2999', good)
    assert later != good
    p.write_bytes(later)
    x, y = io.BytesIO(), io.BytesIO()
    with pytest.raises(import_keep.NotKept):
        import_keep.restore(tmp_path, 3, x, session_token=TOKEN)
    flipped = bytearray(good)
    flipped[-20] ^= 1
    p.write_bytes(bytes(flipped))
    with pytest.raises(import_keep.NotKept):
        import_keep.restore(tmp_path, 3, y, session_token=TOKEN)
    assert x.getvalue() == b"" and y.getvalue() == b""


def test_expired_is_refused_and_swept(tmp_path: Path) -> None:
    src, digest = _file(tmp_path, b"rows\n")
    for job in (1, 2):
        import_keep.keep(tmp_path, job, src, session_token=TOKEN, filename="B.out",
                         sha256=digest, keep_for=timedelta(seconds=-1 if job == 1 else 300))
    with pytest.raises(import_keep.NotKept, match="kept until"):
        import_keep.restore(tmp_path, 1, io.BytesIO(), session_token=TOKEN)
    assert not (tmp_path / "imports" / "kept" / "1.enc").exists()
    import_keep.keep(tmp_path, 1, src, session_token=TOKEN, filename="B.out", sha256=digest,
                     keep_for=timedelta(seconds=-1))
    assert import_keep.sweep(tmp_path) == 1
    assert [p.name for p in (tmp_path / "imports" / "kept").iterdir()] == ["2.enc"]


@pytest.mark.storage
def test_the_api_process_sweeps_expired_files_by_itself(tmp_path: Path, engine: Engine) -> None:
    """The import runner's background round deletes an expired kept file (and an upload no job
    holds, past its grace) without anyone showing the imports page; a file still in its time
    stays."""
    from api.import_runner import Sweeper

    home = tmp_path / "home"
    src, digest = _file(tmp_path, b"rows\n")
    for job, seconds in ((1, -1), (2, 300)):
        import_keep.keep(home, job, src, session_token=TOKEN, filename="B.out", sha256=digest,
                         keep_for=timedelta(seconds=seconds))
    orphan = home / "imports" / "upload-of-no-job.sealed"
    orphan.write_bytes(b"x")
    os.utime(orphan, (time.time() - 7200, time.time() - 7200))
    sweeper = Sweeper(engine, home, poll=0.05)
    sweeper.start()
    try:
        kept = home / "imports" / "kept"
        for _ in range(200):
            if not (kept / "1.enc").exists() and not orphan.exists():
                break
            time.sleep(0.05)
    finally:
        sweeper.stop()
    assert [p.name for p in kept.iterdir()] == ["2.enc"]
    assert not orphan.exists()


# --- over HTTP ---------------------------------------------------------------------------------


def _upload(console: Console, text: str, *, dry_run: bool = True) -> str:
    data = {"csrf_token": console.csrf(), "batch": "one-click"}
    if dry_run:
        data["dry_run"] = "on"
    r = console.client.post("/console/imports", data=data,
                            files={"file": ("K1.out", text.encode(), "text/plain")},
                            follow_redirects=False)
    assert r.status_code == 303, r.text
    return str(r.headers["location"])


@pytest.mark.slow
def test_dry_run_then_one_click_import(console: Console) -> None:
    console.login("ops")
    rows = known_cards(3, offset=70)
    text = out_text(rows, var_in=False)
    loc = _upload(console, text)
    page = import_page(console, loc)
    assert 'id="job-status">valid<' in page and 'id="import-kept"' in page
    kept = list((console.tmp / "imports" / "kept").iterdir())
    assert len(kept) == 1
    body = kept[0].read_bytes()
    for s in secrets_of(rows):
        assert s.encode() not in body and s.lower().encode() not in body
    assert not any(p.is_file() for p in (console.tmp / "imports").iterdir())  # upload gone

    dry_id = int(loc.rsplit("/", 1)[1])
    r = console.client.post(f"/console/imports/{dry_id}/import", data={},
                            follow_redirects=False)
    assert r.status_code == 403  # no CSRF token
    r = console.client.post(f"/console/imports/{dry_id}/import",
                            data={"csrf_token": console.csrf()}, follow_redirects=False)
    assert r.status_code == 303, r.text
    page = import_page(console, r.headers["location"])
    assert 'id="job-status">imported<' in page and 'id="job-rows">3<' in page
    sim = inventory.get_sim(console.engine, rows[0].iccid)
    assert sim.batch_id is not None
    assert list((console.tmp / "imports" / "kept").iterdir()) == []
    # Once used, it is gone: a second click says to upload again.
    r = console.client.post(f"/console/imports/{dry_id}/import",
                            data={"csrf_token": console.csrf()})
    assert r.status_code == 410 and "upload it again" in r.text
    assert 'id="not-kept"' in console.client.get(loc).text


@pytest.mark.slow
def test_another_session_cannot_use_the_kept_file(console: Console) -> None:
    console.login("ops")
    rows = known_cards(2, offset=80)
    loc = _upload(console, out_text(rows, var_in=False))
    import_page(console, loc)
    console.login("ops")  # a new session of the same person: another token
    dry_id = int(loc.rsplit("/", 1)[1])
    r = console.client.post(f"/console/imports/{dry_id}/import",
                            data={"csrf_token": console.csrf()})
    assert r.status_code == 410 and "session that uploaded it" in r.text
    assert import_jobs.list_jobs(console.engine)[-1].id == dry_id  # no job started


@pytest.mark.slow
def test_a_dry_run_with_errors_keeps_nothing(console: Console) -> None:
    console.login("ops")
    rows = known_cards(2, offset=90)

    def break_row(table: list[list[str]]) -> None:
        table[1][1] = "00101000000X111"

    page = import_page(console, _upload(console, out_text(rows, var_in=False, mutate=break_row)))
    assert 'id="job-status">invalid<' in page and "import-kept" not in page
    assert list((console.tmp / "imports" / "kept").iterdir()) == []


@pytest.mark.slow
def test_the_upload_is_sealed_as_it_arrives(console: Console,
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    """While the dry run runs (held at its first chunk), nothing under the home holds the
    file's codes or keys in clear: the form's file part was sealed as python-multipart handed
    it over, never spooled (Starlette's UploadFile would write parts over 1 MiB to a clear
    temporary file)."""
    from tests.api.test_import_sealed import Hold, scan

    console.login("ops")
    rows = known_cards(3, offset=95)
    hold = Hold(monkeypatch)
    loc = _upload(console, out_text(rows, var_in=False))
    assert hold.reached.wait(30)
    try:
        # seed.out: the fixture's own vendor file, written by the test itself
        assert scan(console.tmp, [s.encode() for s in secrets_of(rows) if len(s) >= 8],
                    skip=("seed.out",)) == []
        job = import_jobs.get(console.engine, int(loc.rsplit("/", 1)[1]))
        assert job.upload_key and Path(job.path).read_bytes()[:8] == b"SSSEAL1\n"
    finally:
        hold.release.set()
    assert 'id="job-status">valid<' in import_page(console, loc)
    assert not Path(job.path).exists() and import_jobs.get(console.engine, job.id or 0).upload_key \
        is None
