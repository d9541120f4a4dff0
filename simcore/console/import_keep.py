"""A dry run's vendor file kept, encrypted, for the one-click import that follows it (issue 19
item 4). AES-256-GCM (NIST SP 800-38D) under a key derived for each upload with HKDF-SHA256
(RFC 5869) from the console session's token and a random salt.

Why this shape: a vendor file holds PINs, PUKs, ADM codes and transport-wrapped keys, so it is
never kept in clear; and `simsmith serve` runs several worker processes, so the confirm may
reach another process than the upload. The session token is the one secret every request of
that session brings (the browser's HttpOnly cookie) and that the store does not keep (it holds
the token's SHA-256): the key is re-derived from it by whichever process answers, and exists
nowhere at rest. So the file is only readable by the session that uploaded it, and not at all
once that session has ended; past its time (SIMSMITH_CONSOLE_IMPORT_KEEP_SECONDS) it is refused
and deleted.

On disk, `<home>/imports/kept/<job id>.enc`: the magic `SSKEEP1\\n`, the header's length (4
bytes, big-endian), the header (JSON: job, file name, size, SHA-256 of the clear file, salt, IV,
expiry), the ciphertext and the 16-byte tag. The header is GCM's additional data, so its digest,
job and expiry cannot be changed without the tag failing. Encryption and decryption stream in
1 MiB chunks: memory stays bounded whatever the file's size.
"""

from __future__ import annotations

import hashlib
import json
import os
import secrets
import struct
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import IO, Any, Protocol

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from simcore.errors import SimsmithError
from simcore.log import get_logger
from simcore.models import utcnow

log = get_logger(__name__)

MAGIC = b"SSKEEP1\n"
CHUNK = 1 << 20
TAG = 16
HEADER_MAX = 4096
INFO = b"simsmith console import keep v1"


class NotKept(SimsmithError):
    """The file is not kept (never was, expired, consumed, or another session's)."""


class _Writer(Protocol):
    def write(self, data: bytes, /) -> int: ...


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


def seal_stream(src: IO[bytes], dst: IO[bytes], key: bytes, iv: bytes, aad: bytes) -> None:
    """AES-GCM over `src` into `dst`, chunk by chunk, the tag written last."""
    enc = Cipher(algorithms.AES(key), modes.GCM(iv)).encryptor()
    enc.authenticate_additional_data(aad)
    while chunk := src.read(CHUNK):
        dst.write(enc.update(chunk))
    dst.write(enc.finalize())
    dst.write(enc.tag)


def open_stream(src: IO[bytes], length: int, dst: _Writer, key: bytes, iv: bytes,
                aad: bytes, tag: bytes) -> None:
    """Decrypt `length` bytes of `src` into `dst`; InvalidTag (after the last chunk) if the
    key, the additional data or a byte is wrong — the caller deletes what was written."""
    dec = Cipher(algorithms.AES(key), modes.GCM(iv, tag)).decryptor()
    dec.authenticate_additional_data(aad)
    left = length
    while left > 0:
        chunk = src.read(min(CHUNK, left))
        if not chunk:
            raise InvalidTag()
        left -= len(chunk)
        dst.write(dec.update(chunk))
    dst.write(dec.finalize())


def _dir(home: Path) -> Path:
    return home / "imports" / "kept"


def _path(home: Path, job_id: int) -> Path:
    return _dir(home) / f"{int(job_id)}.enc"


def _key(token: str, salt: bytes, job_id: int) -> bytes:
    return derive_key(token.encode(), salt, INFO + b"/job/" + str(int(job_id)).encode())


def keep(home: Path, job_id: int, src: Path, *, session_token: str, filename: str,
         sha256: str, keep_for: timedelta) -> Kept:
    """Encrypt the upload at `src` for the job's one-click import."""
    salt, iv = secrets.token_bytes(16), secrets.token_bytes(12)
    expires = utcnow() + keep_for
    size = src.stat().st_size
    header = json.dumps({"job": int(job_id), "filename": filename, "size": size,
                         "sha256": sha256, "salt": salt.hex(), "iv": iv.hex(),
                         "expires": expires.isoformat()}, sort_keys=True).encode()
    d = _dir(home)
    d.mkdir(parents=True, exist_ok=True, mode=0o700)
    final = _path(home, job_id)
    tmp = final.with_suffix(".part")
    try:
        with src.open("rb") as fin, open(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC,
                                                 0o600), "wb") as out:
            out.write(MAGIC + struct.pack(">I", len(header)) + header)
            seal_stream(fin, out, _key(session_token, salt, job_id), iv, header)
        tmp.replace(final)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    log.info("console.import_kept", job_id=job_id, size=size, expires=expires.isoformat())
    return Kept(int(job_id), filename, size, sha256, expires)


def _read_header(f: IO[bytes]) -> tuple[bytes, dict[str, object]]:
    if f.read(len(MAGIC)) != MAGIC:
        raise NotKept("not a kept upload")
    (n,) = struct.unpack(">I", f.read(4))
    if not 0 < n <= HEADER_MAX:
        raise NotKept("not a kept upload")
    raw = f.read(n)
    return raw, json.loads(raw)


def _kept_of(h: dict[str, object]) -> Kept:
    return Kept(int(str(h["job"])), str(h["filename"]), int(str(h["size"])), str(h["sha256"]),
                datetime.fromisoformat(str(h["expires"])))


def find(home: Path, job_id: int, *, now: datetime | None = None) -> Kept | None:
    """What is kept for the job (unexpired), or None."""
    p = _path(home, job_id)
    try:
        with p.open("rb") as f:
            _, h = _read_header(f)
    except (OSError, ValueError, NotKept, struct.error):
        return None
    kept = _kept_of(h)
    if kept.expires_at <= (now or utcnow()):
        discard(home, job_id)
        return None
    return kept


def restore(home: Path, job_id: int, dest: Path, *, session_token: str) -> Kept:
    """Decrypt the job's kept file to `dest` (what an upload would have written) and delete
    the kept copy. NotKept if there is none, it expired, or it is another session's."""
    p = _path(home, job_id)
    try:
        f = p.open("rb")
    except OSError:
        raise NotKept(f"the file of dry run {job_id} is not kept") from None
    with f:
        try:
            raw, h = _read_header(f)
            kept = _kept_of(h)
            salt, iv = bytes.fromhex(str(h["salt"])), bytes.fromhex(str(h["iv"]))
        except (ValueError, KeyError, struct.error):
            raise NotKept(f"the file of dry run {job_id} is damaged") from None
        if kept.expires_at <= utcnow():
            discard(home, job_id)
            raise NotKept(f"the file of dry run {job_id} was kept until "
                          f"{kept.expires_at:%H:%M} UTC")
        start = f.tell()
        length = p.stat().st_size - start - TAG
        f.seek(start + max(length, 0))
        tag = f.read(TAG)
        f.seek(start)
        digest = hashlib.sha256()
        try:
            with open(os.open(dest, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600), "wb") as out:
                open_stream(f, length, _Hashing(out, digest), _key(session_token, salt, job_id),
                            iv, raw, tag)
            if digest.hexdigest() != kept.sha256:
                raise InvalidTag()
        except (InvalidTag, ValueError):
            dest.unlink(missing_ok=True)
            raise NotKept(f"the file of dry run {job_id} is kept for the session that "
                          "uploaded it") from None
        except BaseException:
            dest.unlink(missing_ok=True)
            raise
    discard(home, job_id)
    return kept


class _Hashing:
    """A file wrapper that hashes what is written through it."""

    def __init__(self, out: IO[bytes], digest: Any) -> None:
        self.out, self.digest = out, digest

    def write(self, data: bytes) -> int:
        self.digest.update(data)
        return self.out.write(data)


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
