"""A dry run's vendor file kept, encrypted, for the one-click import that follows it (issue 19
item 4). Sealed in simcore.sealed_file's framing (AES-256-GCM in chunks, NIST SP 800-38D) under a
key derived for each upload with HKDF-SHA256 (RFC 5869) from the console session's token and a
random salt.

Why this key: a vendor file holds PINs, PUKs, ADM codes and transport-wrapped keys, so it is
never kept in clear; and `simsmith serve` runs several worker processes, so the confirm may
reach another process than the upload. The session token is the one secret every request of
that session brings (the browser's HttpOnly cookie) and that the store does not keep (it holds
the token's SHA-256): the key is re-derived from it by whichever process answers, and exists
nowhere at rest. So the file is only readable by the session that uploaded it, and not at all
once that session has ended; past its time (SIMSMITH_CONSOLE_IMPORT_KEEP_SECONDS) it is refused
and deleted. (The dry run's own upload is sealed under an HSM-made key for as long as its job
lasts, simcore.import_uploads; this copy outlives the job, for that session only.)

On disk, `<home>/imports/kept/<job id>.enc`: a sealed file whose header (JSON: job, file name,
size, SHA-256 of the clear file, salt, expiry) is every chunk's additional data, so its digest,
job and expiry cannot be changed without the chunks failing. Sealing and opening stream a chunk
at a time, from the job's sealed upload into the kept copy and from the kept copy into the next
job's sealed upload: memory stays bounded whatever the file's size, and no clear byte is written.
"""

from __future__ import annotations

import hashlib
import secrets
import struct
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, Protocol

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from simcore import sealed_file
from simcore.errors import SimsmithError
from simcore.log import get_logger
from simcore.models import utcnow
from simcore.sealed_file import SealedFileError, SealedReader, SealedWriter
from simcore.vendor_import.source import Source

log = get_logger(__name__)

INFO = b"simsmith console import keep v1"


class NotKept(SimsmithError):
    """The file is not kept (never was, expired, consumed, or another session's)."""


class _Writer(Protocol):
    def write(self, data: bytes, /) -> Any: ...


@dataclass(frozen=True)
class Kept:
    job_id: int
    filename: str
    size: int
    sha256: str
    expires_at: datetime


def derive_key(ikm: bytes, salt: bytes, info: bytes, length: int = 32) -> bytes:
    """HKDF-SHA256 (RFC 5869): extract with `salt`, expand with `info`."""
    return HKDF(hashes.SHA256(), length, salt, info).derive(ikm)


def _dir(home: Path) -> Path:
    return home / "imports" / "kept"


def _path(home: Path, job_id: int) -> Path:
    return _dir(home) / f"{int(job_id)}.enc"


def _key(token: str, salt: bytes, job_id: int) -> bytes:
    return derive_key(token.encode(), salt, INFO + b"/job/" + str(int(job_id)).encode())


def keep(home: Path, job_id: int, src: Source, *, session_token: str, filename: str,
         sha256: str, keep_for: timedelta) -> Kept:
    """Seal the upload `src` (the dry run's own sealed upload, read through its decrypting
    stream) again for the job's one-click import, under the session's key."""
    salt = secrets.token_bytes(16)
    expires = utcnow() + keep_for
    size = src.size()
    fields = {"job": int(job_id), "filename": filename, "size": size, "sha256": sha256,
              "salt": salt.hex(), "expires": expires.isoformat()}
    d = _dir(home)
    d.mkdir(parents=True, exist_ok=True, mode=0o700)
    final = _path(home, job_id)
    tmp = final.with_suffix(".part")
    tmp.unlink(missing_ok=True)
    try:
        with src.open() as fin, SealedWriter(tmp, _key(session_token, salt, job_id),
                                             fields) as out:
            sealed_file.copy(fin, out)
        tmp.replace(final)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    log.info("console.import_kept", job_id=job_id, size=size, expires=expires.isoformat())
    return Kept(int(job_id), filename, size, sha256, expires)


def _header(p: Path, job_id: int) -> dict[str, Any]:
    with p.open("rb") as f:
        return sealed_file.read_header(f, f"kept file of dry run {job_id}")[1]


def _kept_of(h: dict[str, Any]) -> Kept:
    return Kept(int(str(h["job"])), str(h["filename"]), int(str(h["size"])), str(h["sha256"]),
                datetime.fromisoformat(str(h["expires"])))


def find(home: Path, job_id: int, *, now: datetime | None = None) -> Kept | None:
    """What is kept for the job (unexpired), or None."""
    p = _path(home, job_id)
    try:
        kept = _kept_of(_header(p, job_id))
    except (OSError, ValueError, KeyError, SealedFileError, struct.error):
        return None
    if kept.expires_at <= (now or utcnow()):
        discard(home, job_id)
        return None
    return kept


def restore(home: Path, job_id: int, dest: _Writer, *, session_token: str) -> Kept:
    """Decrypt the job's kept file into `dest` (the next job's sealed upload: what an upload
    would have written) and delete the kept copy. NotKept if there is none, it expired, or it
    is another session's — the caller then discards what `dest` received."""
    p = _path(home, job_id)
    try:
        h = _header(p, job_id)
    except OSError:
        raise NotKept(f"the file of dry run {job_id} is not kept") from None
    except SealedFileError:
        raise NotKept(f"the file of dry run {job_id} is damaged") from None
    try:
        kept = _kept_of(h)
        salt = bytes.fromhex(str(h["salt"]))
    except (ValueError, KeyError):
        raise NotKept(f"the file of dry run {job_id} is damaged") from None
    if kept.expires_at <= utcnow():
        discard(home, job_id)
        raise NotKept(f"the file of dry run {job_id} was kept until "
                      f"{kept.expires_at:%H:%M} UTC")
    digest = hashlib.sha256()
    try:
        with SealedReader(p, _key(session_token, salt, job_id),
                          f"kept file of dry run {job_id}") as f:
            while data := f.read(sealed_file.CHUNK):
                digest.update(data)
                dest.write(data)
        if digest.hexdigest() != kept.sha256:
            raise SealedFileError(f"kept file of dry run {job_id}", 0, "not the file checked")
    except SealedFileError:
        raise NotKept(f"the file of dry run {job_id} is kept for the session that "
                      "uploaded it") from None
    discard(home, job_id)
    return kept


def discard(home: Path, job_id: int) -> None:
    _path(home, job_id).unlink(missing_ok=True)


def sweep(home: Path, *, now: datetime | None = None) -> int:
    """Delete what has expired, and anything else there older than a day (a partial or damaged
    file); how many files were deleted."""
    d = _dir(home)
    if not d.is_dir():
        return 0
    now = now or utcnow()
    gone = 0
    for p in list(d.iterdir()):
        if p.suffix == ".enc" and p.stem.isdigit():
            if find(home, int(p.stem), now=now) is not None:
                continue
            if not p.exists():  # expired: find deleted it
                gone += 1
                continue
        try:
            if now.timestamp() - p.stat().st_mtime > 86400:
                p.unlink(missing_ok=True)
                gone += 1
        except OSError:
            continue
    return gone
