"""Files sealed at rest: written and read back as a stream of AES-256-GCM chunks (NIST SP 800-38D)
in the STREAM construction of Hoang, Reyhanitabar, Rogaway and Vizár ("Online
Authenticated-Encryption and its Nonce-Reuse Misuse-Resistance", CRYPTO 2015, §7; the framing
age and Tink's streaming AEAD use). The one framing of every file simsmith keeps that holds
secrets in clear form: a vendor file uploaded for an import (key: a random data key per upload,
wrapped by the HSM — simcore.import_uploads) and a console dry run's file kept for its one-click
import (key: derived from the session — simcore.console.import_keep).

Layout:

    offset 0   "SSSEAL1\\n"                 magic
           8   u32 big-endian H (1..4096)   header length
          12   H bytes                      header, JSON: {"v": 1, "chunk": C, "prefix": 7 bytes
                                            hex, …the caller's fields}
      12 + H   chunk 0, chunk 1, …          each the GCM ciphertext of C clear bytes and its
                                            16-byte tag; the last one ("final") holds 0..C-1
                                            bytes, so there is always exactly one

Chunk i is sealed with nonce = prefix ‖ u32 big-endian i ‖ final flag (0x01 on the last chunk,
0x00 before) and the header as additional data. So a chunk moved, dropped or repeated fails its
tag (its index is in the nonce); a file cut at a chunk boundary ends without a final chunk; one
cut inside a chunk turns a non-final chunk into a would-be final one, whose tag fails; a changed
header fails every chunk. Each failure is a SealedFileError naming the file's owner (`what`,
e.g. "import job 12") and the byte offset of the chunk (or header) that failed.

Memory is one chunk (64 KiB) whatever the file's size; the reader is a raw stream, so
`io.BufferedReader` gives it readline() and the parser reads the clear bytes exactly as from the
clear file (its line and column positions are the same). Nothing in clear touches the disk.
"""

from __future__ import annotations

import io
import json
import os
import secrets
import struct
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any, BinaryIO

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from simcore.errors import SimsmithError

MAGIC = b"SSSEAL1\n"
VERSION = 1
CHUNK = 1 << 16  # clear bytes per chunk
TAG = 16
PREFIX = 7  # random nonce prefix per file; 4 bytes of index and 1 of flag make GCM's 12
HEADER_MAX = 4096
KEY_LENGTH = 32  # AES-256


class SealedFileError(SimsmithError):
    """A sealed file does not open: not one, truncated, altered, or the wrong key."""

    def __init__(self, what: str, offset: int, reason: str) -> None:
        self.what, self.offset, self.reason = what, offset, reason
        super().__init__(f"{what}: the sealed file is {reason} at byte offset {offset}")


def nonce(prefix: bytes, index: int, final: bool) -> bytes:
    """GCM's 96-bit nonce of chunk `index` (STREAM: prefix ‖ counter ‖ last-block flag)."""
    return prefix + struct.pack(">IB", index, 1 if final else 0)


def _header_bytes(fields: Mapping[str, Any], prefix: bytes, chunk: int) -> bytes:
    header = {**fields, "v": VERSION, "chunk": chunk, "prefix": prefix.hex()}
    raw = json.dumps(header, sort_keys=True, separators=(",", ":")).encode()
    if len(raw) > HEADER_MAX:
        raise ValueError(f"sealed file header over {HEADER_MAX} bytes")
    return raw


def _open_private(path: Path) -> BinaryIO:
    """A new file, mode 0600 from its creation (O_EXCL: never an old file's mode)."""
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0)
    return open(os.open(path, flags, 0o600), "wb")


class SealedWriter:
    """Seals what is written to it into a new file at `path` (mode 0600), chunk by chunk;
    `close()` writes the final chunk. `abort()` (or an exception inside `with`) deletes the
    file. Counts the clear bytes (`size`)."""

    def __init__(self, path: Path, key: bytes, fields: Mapping[str, Any] | None = None, *,
                 chunk: int | None = None) -> None:
        if len(key) != KEY_LENGTH:
            raise ValueError(f"a sealing key has {KEY_LENGTH} bytes")
        self.path = Path(path)
        self._aead = AESGCM(key)
        self._prefix = secrets.token_bytes(PREFIX)
        self._chunk = chunk = chunk or CHUNK
        self.header = _header_bytes(fields or {}, self._prefix, chunk)
        self._buf = bytearray()
        self._index = 0
        self.size = 0
        self._out: BinaryIO | None = _open_private(self.path)
        try:
            self._out.write(MAGIC + struct.pack(">I", len(self.header)) + self.header)
        except BaseException:
            self.abort()
            raise

    def write(self, data: bytes) -> int:
        assert self._out is not None, "sealed writer closed"
        self._buf += data
        self.size += len(data)
        c = self._chunk
        if len(self._buf) > c:  # keep at least one byte back: a full chunk is never final
            n = (len(self._buf) - 1) // c * c
            view = memoryview(self._buf)
            for start in range(0, n, c):
                self._seal(view[start:start + c], final=False)
            view.release()
            del self._buf[:n]
        return len(data)

    def _seal(self, data: bytes | bytearray | memoryview, *, final: bool) -> None:
        assert self._out is not None
        self._out.write(self._aead.encrypt(nonce(self._prefix, self._index, final), bytes(data),
                                           self.header))
        self._index += 1

    def close(self) -> None:
        """Seal what is left as the final chunk (a full chunk first if exactly one is left)."""
        if self._out is None:
            return
        try:
            if len(self._buf) == self._chunk:
                self._seal(self._buf, final=False)
                self._buf.clear()
            self._seal(self._buf, final=True)
            self._buf.clear()
            self._out.close()
            self._out = None
        except BaseException:
            self.abort()
            raise

    def abort(self) -> None:
        """Stop and delete the file."""
        if self._out is not None:
            self._out.close()
            self._out = None
        self._buf.clear()
        self.path.unlink(missing_ok=True)

    def __enter__(self) -> SealedWriter:
        return self

    def __exit__(self, exc_type: object, *exc: object) -> None:
        if exc_type is None:
            self.close()
        else:
            self.abort()


def read_header(f: IO[bytes], what: str) -> tuple[bytes, dict[str, Any]]:
    """(the header's bytes, the header) of an open sealed file; SealedFileError if it is not
    one."""
    if f.read(len(MAGIC)) != MAGIC:
        raise SealedFileError(what, 0, "not a sealed file")
    raw_len = f.read(4)
    if len(raw_len) != 4:
        raise SealedFileError(what, len(MAGIC), "truncated in its header")
    (n,) = struct.unpack(">I", raw_len)
    if not 0 < n <= HEADER_MAX:
        raise SealedFileError(what, len(MAGIC), "damaged (header length)")
    raw = f.read(n)
    start = len(MAGIC) + 4
    if len(raw) != n:
        raise SealedFileError(what, start, "truncated in its header")
    try:
        header = json.loads(raw)
        if not isinstance(header, dict) or header.get("v") != VERSION:
            raise ValueError("version")
        chunk, prefix = int(header["chunk"]), bytes.fromhex(str(header["prefix"]))
    except (ValueError, KeyError, TypeError):
        raise SealedFileError(what, start, "damaged (header)") from None
    if not 0 < chunk <= 1 << 24 or len(prefix) != PREFIX:
        raise SealedFileError(what, start, "damaged (header)")
    return raw, header


def clear_size(sealed_size: int, body_start: int, chunk: int) -> int:
    """The clear length of a sealed file of `sealed_size` bytes (its body starting at
    `body_start`): full chunks, then the final one. -1 if no layout gives that size."""
    body = sealed_size - body_start
    full = body // (chunk + TAG)
    last = body - full * (chunk + TAG)
    if last < TAG:
        return -1
    return full * chunk + last - TAG


class SealedReader(io.RawIOBase):
    """The clear bytes of a sealed file, decrypted a chunk at a time as they are read; raises
    SealedFileError at the first chunk that fails (before handing out any of its bytes)."""

    def __init__(self, path: Path, key: bytes, what: str) -> None:
        super().__init__()
        self._f: BinaryIO = open(path, "rb")  # noqa: SIM115 (closed by close())
        self.what = what
        try:
            self.header_raw, self.header = read_header(self._f, what)
        except BaseException:
            self._f.close()
            raise
        self._aead = AESGCM(key)
        self._chunk = int(self.header["chunk"])
        self._prefix = bytes.fromhex(str(self.header["prefix"]))
        self._index = 0
        self._pos = self._f.tell()  # sealed offset of the next chunk
        self._buf = b""
        self._at = 0
        self._done = False

    def readable(self) -> bool:
        return True

    def _next(self) -> bool:
        """Decrypt the next chunk into the buffer; False at the end (after the final one)."""
        if self._done:
            return False
        offset = self._pos
        data = self._f.read(self._chunk + TAG)
        final = len(data) < self._chunk + TAG
        if len(data) < TAG:
            reason = "truncated" if not data else "truncated inside a chunk"
            raise SealedFileError(self.what, offset, f"{reason} (chunk {self._index})")
        try:
            clear = self._aead.decrypt(nonce(self._prefix, self._index, final), data,
                                       self.header_raw)
        except InvalidTag:
            raise SealedFileError(self.what, offset, f"altered, truncated or under another key "
                                  f"(chunk {self._index})") from None
        if final and self._f.read(1):
            raise SealedFileError(self.what, offset + len(data), "longer than sealed (bytes "
                                  "after the final chunk)")
        self._pos += len(data)
        self._index += 1
        self._done = final
        self._buf, self._at = clear, 0
        return True

    def readinto(self, b: Any) -> int:
        while self._at >= len(self._buf):
            if not self._next():
                return 0
        n = min(len(b), len(self._buf) - self._at)
        b[:n] = self._buf[self._at:self._at + n]
        self._at += n
        return n

    def close(self) -> None:
        if not self.closed:
            self._f.close()
            self._buf = b""
        super().close()


@dataclass(frozen=True)
class SealedSource:
    """A sealed file read as a vendor file (simcore.vendor_import.source.Source): `path` is the
    name the file goes by (its format and batch name come from it), `sealed` where it is.
    Picklable (a big import reads it in a second process); the key never in its repr."""

    path: Path
    sealed: Path
    key: bytes = field(repr=False)
    what: str = "sealed file"

    def open(self) -> BinaryIO:
        return io.BufferedReader(SealedReader(self.sealed, self.key, self.what), CHUNK)

    def size(self) -> int:
        with open(self.sealed, "rb") as f:
            raw, header = read_header(f, self.what)
            total = os.fstat(f.fileno()).st_size
        return max(clear_size(total, len(MAGIC) + 4 + len(raw), int(header["chunk"])), 0)


def copy(src: IO[bytes], dst: SealedWriter | IO[bytes]) -> int:
    """Copy a stream chunk by chunk; the bytes copied."""
    n = 0
    while data := src.read(CHUNK):
        dst.write(data)
        n += len(data)
    return n
