"""Profile package files are exports (issue 13 item 1): a package holds the SIM's Ki, OPc, OTA
keys, PINs, PUKs and ADM1 in clear, so writing one is a key exit like `simsmith export`.

- **A target, always.** Packages are written for a named HSM export target (the receiving
  SM-DP+): `simsmith hsm kek add NAME --purpose export --component …`. By default each file is an
  **envelope** encrypted to that target's key; clear packages only with `clear=True` (the CLI's
  `--clear`) *and* a target marked `--insecure-clear`, the rule `simsmith export` follows.
- **Audited per SIM, before the file is written.** One `esim.package_export` event per SIM
  (subject the ICCID, details: target, form, algorithm, KEK check value, template, run id, where
  it went; never a key), appended in bulk (`audit.append_many`) for each chunk of packages and
  committed before any file of the chunk exists, so no package can leave unrecorded; a run
  stopped half-way leaves records for at most one chunk of files not written. Per SIM because
  the auditor's question is "did this SIM's keys ever leave, when, to whom, in what form":
  `simsmith audit list --subject ICCID` answers it from the SIM's own chain. One
  `esim.package_batch_export` event per batch run adds the count.
- **Mode 0600 from creation**: `O_CREAT | O_EXCL` with mode 0600 (an existing file is removed
  first, so its old mode cannot survive a rewrite); directories made 0700.

Envelope (`SSPE` version 1), what the receiving SM-DP+ opens:

    offset 0   "SSPE" 0x01                         magic and version
           5   u16 big-endian H, H bytes           header: UTF-8 JSON {"format", "iccid",
                                                    "target", "kek_kcv", "key_wrap", "cipher",
                                                    "run", "template"}
               u16 big-endian W, W bytes           the data key (32 bytes, AES-256) wrapped
                                                    under the target's KEK: AES key wrap with
                                                    padding, RFC 5649
               12 bytes                            GCM nonce (random per file)
               rest                                AES-256-GCM ciphertext of the DER package
                                                    with its 16-byte tag (NIST SP 800-38D),
                                                    additional data: every byte before it

The receiver unwraps the data key with its KEK (RFC 5649; OpenSSL `id-aes128-wrap-pad`,
`cryptography`'s `aes_key_unwrap_with_padding`), decrypts and checks the tag with the header as
additional data, and compares the header's ICCID with the package's: `open_envelope` here does
exactly that. One data key per run, made in the HSM (`KeyType.DEK`) and handed out wrapped to
the target (`Hsm.export`, audited by the HSM as key.export); it lives in clear in this process
only while the run lasts, as the packages' own keys do.
"""

from __future__ import annotations

import json
import os
import struct
import time
import uuid
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import keywrap
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from sqlalchemy import Engine, select

from hsm_sim.hsm import Hsm
from hsm_sim.keyref import KeyType
from simcore import audit, db
from simcore.db import transaction
from simcore.errors import InvalidInput, NotFound, SimsmithError
from simcore.export.keys import key_form

__all__ = [
    "ENVELOPE_MAGIC",
    "EnvelopeError",
    "ExportSummary",
    "PackageTarget",
    "PackageWriter",
    "export_batch",
    "open_envelope",
    "package_target",
    "write_private",
]

ENVELOPE_MAGIC = b"SSPE\x01"
ENVELOPE_FORMAT = "simsmith-package-envelope-1"
KEY_WRAP = "aes-kwp-rfc5649"
CIPHER = "aes-256-gcm"
ENCRYPTED_SUFFIX = ".der.sspe"
_NONCE = 12
_DEK_LENGTH = 32


class EnvelopeError(SimsmithError):
    """An envelope does not open: not an envelope, truncated, wrong key or altered."""


@dataclass(frozen=True)
class PackageTarget:
    """Where packages go: an HSM export target, and whether they leave in clear."""

    name: str
    clear: bool
    kek_kcv: str | None = None

    def describe(self) -> dict[str, Any]:
        if self.clear:
            return {"target": self.name, "form": "clear", "insecure_clear": True}
        return {"target": self.name, "form": "encrypted", "key_wrap": KEY_WRAP,
                "cipher": CIPHER, "kek_kcv": self.kek_kcv}


def package_target(hsm: Hsm, target: str, *, clear: bool = False) -> PackageTarget:
    """The target checked against the HSM: an export KEK for encrypted packages; for clear
    ones (only when asked) an export target marked insecure-clear."""
    try:
        form = key_form(hsm, target, "clear" if clear else "kwp")
    except InvalidInput:
        if clear:
            raise InvalidInput("target", "clear packages go only to an export target marked "
                               "insecure-clear (simsmith hsm kek add NAME --purpose export "
                               "--insecure-clear)", value=target,
                               expected="an insecure-clear target, or no --clear") from None
        raise InvalidInput("target", "is marked insecure-clear: it has no key to encrypt "
                           "packages to; ask for clear packages explicitly (--clear)",
                           value=target, expected="an export target with a key") from None
    except NotFound as e:
        raise InvalidInput("target", str(e), value=target,
                           expected="an HSM export target") from None
    return PackageTarget(target, form.clear, form.kcv)


def write_private(path: Path, data: bytes) -> None:
    """Write `data` to a new file created with mode 0600 (O_EXCL: never an old file's mode);
    an existing file at `path` is removed first."""
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0)
    try:
        fd = os.open(path, flags, 0o600)
    except FileExistsError:
        os.unlink(path)
        fd = os.open(path, flags, 0o600)
    try:
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view):]
    finally:
        os.close(fd)


class _Sealer:
    """Seals packages for one target with one data key made in the HSM for this run."""

    def __init__(self, hsm: Hsm, target: PackageTarget, run: str, template: str) -> None:
        owner = f"pkgrun-{run}"
        ref = hsm.generate(owner, KeyType.DEK, _DEK_LENGTH)
        wrapped = hsm.export([ref], target.name, "kwp")[0]
        dek = bytearray(_DEK_LENGTH)
        hsm.patch_keys(dek, [_Slot(0, _DEK_LENGTH)], [ref], owner=owner)
        self._aead = AESGCM(bytes(dek))
        dek[:] = bytes(_DEK_LENGTH)
        self._wrapped = wrapped
        self._header = {"format": ENVELOPE_FORMAT, "target": target.name,
                        "kek_kcv": target.kek_kcv, "key_wrap": KEY_WRAP, "cipher": CIPHER,
                        "run": run, "template": template}

    def seal(self, iccid: str, der: bytes) -> bytes:
        header = json.dumps(self._header | {"iccid": iccid}, sort_keys=True,
                            separators=(",", ":")).encode()
        nonce = os.urandom(_NONCE)
        head = b"".join((ENVELOPE_MAGIC, struct.pack(">H", len(header)), header,
                         struct.pack(">H", len(self._wrapped)), self._wrapped, nonce))
        return head + self._aead.encrypt(nonce, der, head)


@dataclass(frozen=True)
class _Slot:
    offset: int
    length: int


def open_envelope(data: bytes, kek: bytes) -> tuple[dict[str, Any], bytes]:
    """The receiver's side: (header, DER package) of an envelope, opened with the target's KEK.
    EnvelopeError naming the offset for anything malformed, a wrong key or an altered byte."""
    if data[:len(ENVELOPE_MAGIC)] != ENVELOPE_MAGIC:
        raise EnvelopeError("not a simsmith package envelope (at offset 0: expected SSPE 01)")
    pos = len(ENVELOPE_MAGIC)
    parts = []
    for what in ("header", "wrapped key"):
        if len(data) < pos + 2:
            raise EnvelopeError(f"truncated before the {what} length (at offset {pos})")
        (n,) = struct.unpack_from(">H", data, pos)
        if len(data) < pos + 2 + n:
            raise EnvelopeError(f"truncated {what}: {n} bytes announced at offset {pos}")
        parts.append(data[pos + 2:pos + 2 + n])
        pos += 2 + n
    if len(data) < pos + _NONCE + 16:
        raise EnvelopeError(f"truncated nonce or ciphertext (at offset {pos})")
    header_bytes, wrapped = parts
    try:
        header = json.loads(header_bytes)
    except ValueError:
        raise EnvelopeError("the header is not JSON (at offset 7)") from None
    if not isinstance(header, dict) or header.get("format") != ENVELOPE_FORMAT:
        raise EnvelopeError(f"unknown envelope format (at offset 7): expected {ENVELOPE_FORMAT}")
    try:
        dek = keywrap.aes_key_unwrap_with_padding(kek, wrapped)
    except (keywrap.InvalidUnwrap, ValueError):
        raise EnvelopeError("the data key does not unwrap with this KEK (wrong key or "
                            f"altered, wrapped key at offset {7 + len(header_bytes) + 2})"
                            ) from None
    nonce = data[pos:pos + _NONCE]
    try:
        der = AESGCM(dek).decrypt(nonce, data[pos + _NONCE:], data[:pos + _NONCE])
    except InvalidTag:
        raise EnvelopeError(f"the package fails its integrity check (ciphertext at offset "
                            f"{pos + _NONCE} or the header altered)") from None
    return header, der


@dataclass
class ExportSummary:
    target: PackageTarget
    run: str
    packages: int = 0
    bytes: int = 0
    seconds: float = 0.0  # the batch's work: reads, HSM, audit, files (not start-up)

    def as_dict(self) -> dict[str, Any]:
        return {"run": self.run, "packages": self.packages, "bytes": self.bytes,
                "seconds": round(self.seconds, 3), **self.target.describe()}


class PackageWriter:
    """Writes one run's packages for a target: audited per SIM before the files exist, mode
    0600, sealed unless the target is a clear one asked for explicitly."""

    def __init__(self, engine: Engine, hsm: Hsm, target: PackageTarget, *, template: str,
                 actor: str, output: str) -> None:
        self.engine, self.target, self.actor = engine, target, actor
        self.run = uuid.uuid4().hex[:16]
        self.summary = ExportSummary(target, self.run)
        self._sealer = None if target.clear else _Sealer(hsm, target, self.run, template)
        # One details mapping for every SIM of the run: the audit encodes it once.
        self._details = {**target.describe(), "template": template, "run": self.run,
                         "output": output}

    @property
    def suffix(self) -> str:
        return ".der" if self.target.clear else ENCRYPTED_SUFFIX

    def seal(self, iccid: str, der: bytes) -> bytes:
        """What goes into the file for this SIM."""
        return der if self._sealer is None else self._sealer.seal(iccid, der)

    def record(self, iccids: Iterable[str]) -> None:
        """The per-SIM audit events of a chunk, committed (before its files are written)."""
        with transaction(self.engine) as s:
            audit.append_many(s, actor=self.actor, action="esim.package_export",
                              events=[("sim", i, self._details) for i in iccids])

    def write_one(self, path: Path, iccid: str, der: bytes) -> None:
        self.record([iccid])
        data = self.seal(iccid, der)
        write_private(path, data)
        self.summary.packages += 1
        self.summary.bytes += len(data)


# What forked workers inherit (set in the parent just before the pool starts; fork copies it).
_WORK: dict[str, Any] = {}


def _work_range(bounds: tuple[str, str, int]) -> tuple[int, int]:
    """One run of the batch, already audited by the parent: build, seal, write."""
    from simcore.esim_build import build_range

    w = _WORK
    if w.get("pid") != os.getpid():  # a forked worker: its own database connections
        w["engine"] = db.make_engine(w["url"], pool_size=2)
        w["pid"] = os.getpid()
    writer: PackageWriter = w["writer"]
    part = build_range(w["engine"], w["hsm"], w["compiled"], w["batch_key"], bounds,
                       w["options"], w["mnc"], verify_every=w["verify_every"])
    size = 0
    for iccid, der in part:
        data = writer.seal(iccid, der)
        write_private(w["out_dir"] / f"{iccid}{writer.suffix}", data)
        size += len(data)
    return len(part), size


def _range_iccids(engine: Engine, batch_key: int, after: str, last: str) -> list[str]:
    from simcore.models import Sim

    sim = Sim.__table__  # type: ignore[attr-defined]
    with engine.connect() as conn:
        return list(conn.execute(
            select(sim.c.iccid).where(sim.c.batch_id == batch_key, sim.c.iccid > after,
                                      sim.c.iccid <= last).order_by(sim.c.iccid)).scalars())


def export_batch(engine: Engine, hsm: Hsm, compiled: Any, batch: str, target: PackageTarget,
                 out_dir: Path, *, options: Any = None, actor: str = "cli",
                 verify_every: int = 1000, workers: int = 1, chunk: int = 1000,
                 progress: Callable[[int], None] | None = None) -> ExportSummary:
    """A batch's packages into `out_dir` (<ICCID>.der.sspe, or .der when clear), built by
    `workers` processes (fork; the soft HSM's opened state is inherited, a PKCS#11 session is
    not, so the pkcs11 backend runs in one process). Each run of `chunk` SIMs is built, its
    per-SIM audit events committed, then its files written. One summary event per batch."""
    import multiprocessing

    from simcore.esim_build import ProfileOptions, batch_bounds, check_options_fit, with_suci
    from simcore.mnc_length import MncLengths

    started = time.monotonic()
    options = options or ProfileOptions()
    check_options_fit(compiled, options)
    options = with_suci(engine, compiled, options)
    bounds = batch_bounds(engine, batch, chunk)
    try:
        out_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    except OSError as e:
        raise InvalidInput("output", e.strerror or "cannot create", value=str(out_dir)
                           ) from None
    writer = PackageWriter(engine, hsm, target, template=compiled.template.name, actor=actor,
                           output=str(out_dir))
    from simcore.db import read_session
    from simcore.inventory import batch_id

    with read_session(engine) as s:
        batch_key = batch_id(s, batch)
    _WORK.clear()
    _WORK.update(writer=writer, hsm=hsm, compiled=compiled, batch_key=batch_key,
                 options=options, mnc=MncLengths.load(engine), verify_every=verify_every,
                 out_dir=out_dir, pid=os.getpid(),
                 url=engine.url.render_as_string(hide_password=False))
    if getattr(hsm, "backend", "soft") != "soft":
        workers = 1
    workers = max(1, min(workers, len(bounds)))

    def audited() -> Iterator[tuple[str, str, int]]:
        """Each run's per-SIM events committed (here, one writer) before it is handed out."""
        for b in bounds:
            writer.record(_range_iccids(engine, batch_key, b[0], b[1]))
            yield b

    def done(count: int, size: int) -> None:
        writer.summary.packages += count
        writer.summary.bytes += size
        if progress:
            progress(count)

    try:
        if workers == 1:
            _WORK["engine"] = engine
            for b in audited():
                done(*_work_range(b))
        else:
            pending: deque[Any] = deque()
            with multiprocessing.get_context("fork").Pool(workers) as pool:
                for b in audited():  # at most 2 runs per worker in flight
                    pending.append(pool.apply_async(_work_range, (b,)))
                    if len(pending) >= 2 * workers:
                        done(*pending.popleft().get())
                while pending:
                    done(*pending.popleft().get())
    finally:
        _WORK.clear()
    with transaction(engine) as s:
        audit.append(s, actor=actor, action="esim.package_batch_export", subject_type="batch",
                     subject_id=batch,
                     details=writer._details | {"packages": writer.summary.packages})
    writer.summary.seconds = time.monotonic() - started
    return writer.summary
