"""A dry run's file kept encrypted for the one-click import (simcore.console.import_keep;
issue 19 item 4): HKDF and AES-GCM against their published vectors, streamed in chunks; only
the uploading session reads it back, never past its time; nothing in clear on disk; and over
HTTP, dry run then one click."""

from __future__ import annotations

import io
import os
import re
import time
from datetime import timedelta
from pathlib import Path

import pytest
from cryptography.exceptions import InvalidTag

from simcore import import_jobs, inventory
from simcore.console import import_keep
from tests.console.conftest import Console, known_cards, secrets_of
from tests.vendor_import.helpers import out_text

TOKEN = "session-token-of-the-uploader-0123456789abcdef"


def test_hkdf_rfc5869_test_case_1() -> None:
    okm = import_keep.derive_key(b"\x0b" * 22, bytes.fromhex("000102030405060708090a0b0c"),
                                 bytes.fromhex("f0f1f2f3f4f5f6f7f8f9"), 42)
    assert okm.hex() == ("3cb25f25faacd57a90434f64d0362f2a2d2d0a90cf1a5a4c5db02d56ecc4c5bf"
                         "34007208d5b887185865")


# The GCM specification's test case 16 (McGrew & Viega; NIST SP 800-38D's examples): AES-256,
# 96-bit IV, additional data, 60 bytes that end mid-block.
K16 = bytes.fromhex("feffe9928665731c6d6a8f9467308308feffe9928665731c6d6a8f9467308308")
P16 = bytes.fromhex("d9313225f88406e5a55909c5aff5269a86a7a9531534f7da2e4c303d8a318a72"
                    "1c3c0c95956809532fcf0e2449a6b525b16aedf5aa0de657ba637b39")
A16 = bytes.fromhex("feedfacedeadbeeffeedfacedeadbeefabaddad2")
IV16 = bytes.fromhex("cafebabefacedbaddecaf888")
C16 = bytes.fromhex("522dc1f099567d07f47f37a32a84427d643a8cdcbfe5c0c97598a2bd2555d1aa"
                    "8cb08e48590dbb3da7b08b1056828838c5f61e6393ba7a0abcc9f662")
T16 = bytes.fromhex("76fc6ece0f4e1768cddf8853bb2d551b")


@pytest.mark.parametrize("chunk", [7, 16, 1 << 20])
def test_aes_gcm_test_case_16_streamed(monkeypatch: pytest.MonkeyPatch, chunk: int) -> None:
    monkeypatch.setattr(import_keep, "CHUNK", chunk)
    out = io.BytesIO()
    import_keep.seal_stream(io.BytesIO(P16), out, K16, IV16, A16)
    assert out.getvalue() == C16 + T16
    back = io.BytesIO()
    import_keep.open_stream(io.BytesIO(C16), len(C16), back, K16, IV16, A16, T16)
    assert back.getvalue() == P16
    with pytest.raises(InvalidTag):
        import_keep.open_stream(io.BytesIO(C16), len(C16), io.BytesIO(), K16, IV16,
                                A16[:-1] + b"\x00", T16)


def _file(tmp_path: Path, body: bytes) -> tuple[Path, str]:
    import hashlib

    p = tmp_path / "upload.out"
    p.write_bytes(body)
    return p, hashlib.sha256(body).hexdigest()


def test_kept_encrypted_and_read_back_by_its_session_only(tmp_path: Path,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(import_keep, "CHUNK", 4096)  # several chunks
    body = (b"PIN1 97318642 PUK1 52719384 KI 000102030405060708090a0b0c0d0e0f\n" * 500)
    src, digest = _file(tmp_path, body)
    kept = import_keep.keep(tmp_path, 7, src, session_token=TOKEN, filename="B.out",
                            sha256=digest, keep_for=timedelta(minutes=5))
    on_disk = (tmp_path / "imports" / "kept" / "7.enc").read_bytes()
    assert b"97318642" not in on_disk and b"52719384" not in on_disk
    assert b"000102030405060708090a0b0c0d0e0f" not in on_disk and TOKEN.encode() not in on_disk
    assert oct(os.stat(tmp_path / "imports" / "kept" / "7.enc").st_mode & 0o777) == "0o600"
    assert import_keep.find(tmp_path, 7) == kept and import_keep.find(tmp_path, 8) is None

    with pytest.raises(import_keep.NotKept, match="session that uploaded it"):
        import_keep.restore(tmp_path, 7, tmp_path / "other", session_token="another session")
    assert not (tmp_path / "other").exists()  # nothing of a failed read is left
    assert import_keep.find(tmp_path, 7) is not None

    got = import_keep.restore(tmp_path, 7, tmp_path / "back", session_token=TOKEN)
    assert (tmp_path / "back").read_bytes() == body and got.sha256 == digest
    assert import_keep.find(tmp_path, 7) is None  # consumed
    with pytest.raises(import_keep.NotKept, match="not kept"):
        import_keep.restore(tmp_path, 7, tmp_path / "again", session_token=TOKEN)


def test_a_changed_header_or_byte_is_refused(tmp_path: Path) -> None:
    src, digest = _file(tmp_path, b"row 1\nrow 2\n")
    import_keep.keep(tmp_path, 3, src, session_token=TOKEN, filename="B.out", sha256=digest,
                     keep_for=timedelta(minutes=5))
    p = tmp_path / "imports" / "kept" / "3.enc"
    good = p.read_bytes()
    # A later expiry written into the header: the additional data no longer matches.
    p.write_bytes(re.sub(rb'"expires": "\d{4}', b'"expires": "2999', good))
    with pytest.raises(import_keep.NotKept):
        import_keep.restore(tmp_path, 3, tmp_path / "x", session_token=TOKEN)
    flipped = bytearray(good)
    flipped[-20] ^= 1
    p.write_bytes(bytes(flipped))
    with pytest.raises(import_keep.NotKept):
        import_keep.restore(tmp_path, 3, tmp_path / "y", session_token=TOKEN)
    assert not (tmp_path / "x").exists() and not (tmp_path / "y").exists()


def test_expired_is_refused_and_swept(tmp_path: Path) -> None:
    src, digest = _file(tmp_path, b"rows\n")
    for job in (1, 2):
        import_keep.keep(tmp_path, job, src, session_token=TOKEN, filename="B.out",
                         sha256=digest, keep_for=timedelta(seconds=-1 if job == 1 else 300))
    with pytest.raises(import_keep.NotKept, match="kept until"):
        import_keep.restore(tmp_path, 1, tmp_path / "x", session_token=TOKEN)
    assert not (tmp_path / "imports" / "kept" / "1.enc").exists()
    import_keep.keep(tmp_path, 1, src, session_token=TOKEN, filename="B.out", sha256=digest,
                     keep_for=timedelta(seconds=-1))
    assert import_keep.sweep(tmp_path) == 1
    assert [p.name for p in (tmp_path / "imports" / "kept").iterdir()] == ["2.enc"]


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


def _done(console: Console, location: str) -> str:
    job_id = int(location.rsplit("/", 1)[1])
    for _ in range(600):
        if import_jobs.get(console.engine, job_id).status in import_jobs.DONE:
            break
        time.sleep(0.05)
    return console.client.get(location).text


@pytest.mark.slow
def test_dry_run_then_one_click_import(console: Console) -> None:
    console.login("ops")
    rows = known_cards(3, offset=70)
    text = out_text(rows, var_in=False)
    loc = _upload(console, text)
    page = _done(console, loc)
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
    page = _done(console, r.headers["location"])
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
    _done(console, loc)
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

    page = _done(console, _upload(console, out_text(rows, var_in=False, mutate=break_row)))
    assert 'id="job-status">invalid<' in page and "import-kept" not in page
    assert list((console.tmp / "imports" / "kept").iterdir()) == []
