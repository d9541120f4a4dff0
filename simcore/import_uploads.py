"""Vendor files uploaded for import jobs, sealed at rest while the job lasts.

A vendor .out file carries PINs, PUKs and ADM codes in clear, often Ki/OPc too, so an upload is
never written to disk in clear — not for a moment: the API's body and the console's form part
are streamed into a `simcore.sealed_file.SealedWriter` as they arrive, and the import reads them
back through a decrypting stream (the job's `SealedSource`).

The key: 32 random bytes per upload made by the HSM (`Hsm.generate`, key type
`KeyType.UPLOAD`, owner `upload-<random id>`), wrapped under the HSM's storage KEK and bound to
that type and owner; the wrapped key (a KeyRef token) is kept on the job row (`import_job.
upload_key`). So any worker process — the one that took the upload, or another after a restart
— unwraps it again through the HSM (`Hsm.patch_keys`, audited `key.patch`), while the disk, a
backup of SIMSMITH_HOME or a copy of the database alone opens nothing. When the job ends (done,
invalid or failed) the sealed file is deleted and the wrapped key removed from the row;
`simcore.import_jobs.sweep_uploads` deletes what a crash left behind.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass, field
from pathlib import Path

from hsm_sim.hsm import Hsm
from hsm_sim.keyref import KeyRef, KeyType
from simcore.sealed_file import KEY_LENGTH, SealedSource, SealedWriter

SUFFIX = ".sealed"


@dataclass(frozen=True)
class _Slot:
    offset: int
    length: int


def unwrap(hsm: Hsm, token: str) -> bytes:
    """The clear data key of a wrapped upload key (a KeyRef token), through the HSM."""
    ref = KeyRef.from_token(token)
    buf = bytearray(KEY_LENGTH)
    hsm.patch_keys(buf, [_Slot(0, KEY_LENGTH)], [ref], owner=ref.owner)
    return bytes(buf)


def new_key(hsm: Hsm) -> tuple[str, bytes]:
    """(the wrapped key's token, the clear key) of a new upload key made by the HSM."""
    ref = hsm.generate(f"upload-{secrets.token_hex(16)}", KeyType.UPLOAD, KEY_LENGTH)
    return ref.to_token(), unwrap(hsm, ref.to_token())


@dataclass
class SealedUpload:
    """An upload being written sealed: `path` is the name the file goes by (its format and
    default batch name come from it) — nothing is ever written there; `sealed` holds it."""

    path: Path
    key_token: str
    key: bytes = field(repr=False)
    writer: SealedWriter = field(repr=False)

    @property
    def sealed(self) -> Path:
        return self.writer.path

    @property
    def size(self) -> int:
        return self.writer.size

    def write(self, data: bytes) -> None:
        self.writer.write(data)

    def finish(self) -> None:
        self.writer.close()

    def source(self, what: str = "upload") -> SealedSource:
        return SealedSource(self.path, self.sealed, self.key, what)

    def discard(self) -> None:
        self.writer.abort()


def begin(hsm: Hsm, path: Path, *, key: tuple[str, bytes] | None = None) -> SealedUpload:
    """Start sealing an upload known as `path` (simcore.import_jobs.upload_path) into
    `path` + ".sealed", under a new HSM-made key (or `key`, a (token, key) pair)."""
    token, clear = key or new_key(hsm)
    sealed = path.with_name(path.name + SUFFIX)
    writer = SealedWriter(sealed, clear, {"kind": "import-upload", "name": path.name})
    return SealedUpload(path, token, clear, writer)


def logical_path(sealed: Path) -> Path:
    """The name a sealed upload goes by (its path without ".sealed")."""
    return sealed.with_name(sealed.name.removesuffix(SUFFIX))


def source_of(hsm: Hsm, sealed: Path, token: str, what: str) -> SealedSource:
    """The job's upload read back: its key unwrapped again by the HSM."""
    return SealedSource(logical_path(sealed), sealed, unwrap(hsm, token), what)
