"""The import service: a vendor file in, a batch of `in_stock` SIMs out — whole, or nothing.

Order of work (design §4, docs/import.md):
1. Hash the file (SHA-256). A batch with that hash exists → "already imported", nothing done.
2. Read the header. The transport key (named on the command line, else by the file) must be an
   HSM transport KEK, and the KCV the file announces must match it (AES-CMAC or legacy form;
   the 3DES form when the scheme is 3DES):
   both checked before any row is read.
3. One transaction: the batch row, then chunks of rows — validated, checked against the store
   for duplicates, keys unwrapped from the transport key and re-wrapped for storage inside the
   HSM (`Hsm.import_batch`), SIMs and wrapped credentials bulk-inserted — then one audit event.
   Any broken rule anywhere rolls the whole transaction back. A crash (kill -9) leaves an
   uncommitted transaction the database discards; running the file again starts afresh.
   `dry_run` does steps 1–3 without the HSM and without writing.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, select
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col

from hsm_sim.eki import EkiScheme
from hsm_sim.errors import HsmError
from hsm_sim.hsm import Hsm
from hsm_sim.keyref import KeyType
from simcore import audit
from simcore.db import read_session, transaction
from simcore.errors import Conflict, InvalidInput
from simcore.lifecycle import SimState
from simcore.log import get_logger
from simcore.models import Batch, utcnow
from simcore.vendor_import import store
from simcore.vendor_import.check import (
    CheckVector,
    KcvRequired,
    TransportKeyError,
    parse_kcv,
)
from simcore.vendor_import.columns import ColumnMap
from simcore.vendor_import.parse import FORMATS, Header, VendorFile
from simcore.vendor_import.pipeline import Outcome, in_worker, inline
from simcore.vendor_import.report import MAX_KEPT, InvalidFile, Issue, Report, clip
from simcore.vendor_import.source import Source, source_of
from simcore.vendor_import.validate import Card, Validator

log = get_logger(__name__)

CHUNK = 5_000  # rows per HSM call and insert: what the import holds at once
WORKER_FROM_BYTES = 8 << 20  # files this big are read and validated in a second process
Progress = Callable[[int, int | None], None]


@dataclass(frozen=True)
class ImportOptions:
    fmt: str | None = None  # out | csv; by default from the file name
    transport_key: str | None = None  # HSM KEK name; default: the file's Transport_key
    scheme: EkiScheme = EkiScheme.AES128_ECB
    dry_run: bool = False
    batch: str | None = None
    vendor: str | None = None
    profile: str | None = None
    columns: ColumnMap = field(default_factory=ColumnMap.builtin)
    actor: str = "cli"
    chunk: int = CHUNK
    worker: bool | None = None  # read in a second process; default: for files >= 8 MiB
    kcv: str | None = None  # the transport key's KCV from the key ceremony (6 hex digits)
    no_kcv_check: bool = False  # import encrypted keys with no KCV at all (loud; audited)
    check_vector: CheckVector | None = None  # a vendor's sample vector for one card


@dataclass
class ImportResult:
    status: str  # imported | already_imported | valid (dry run) | invalid (dry run)
    file: str
    sha256: str
    batch: str | None = None
    batch_id: int | None = None
    rows: int = 0
    imported: int = 0
    rejected: int = 0
    seconds: float = 0.0
    report: Report | None = None

    def as_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {k: getattr(self, k) for k in (
            "status", "file", "sha256", "batch", "batch_id", "rows", "imported", "rejected")}
        out["seconds"] = round(self.seconds, 3)
        if self.report is not None:
            out["issues"] = [i.as_dict() for i in self.report.issues]
            out["issue_count"] = self.report.total
        return out


def file_sha256(file: Path | Source) -> str:
    """SHA-256 of the file's (clear) bytes."""
    h = hashlib.sha256()
    with source_of(file).open() as f:
        while chunk := f.read(1 << 20):
            h.update(chunk)
    return h.hexdigest()


def guess_format(path: Path) -> str:
    return "csv" if path.suffix.lower() in (".csv", ".txt") else "out"


def find_batch_by_hash(engine: Engine, sha: str) -> Batch | None:
    with read_session(engine) as s:
        return s.execute(select(Batch).where(col(Batch.file_sha256) == sha)).scalar_one_or_none()


def check_transport_key(hsm: Hsm, name: str, kcv: str | None, where: str,
                        scheme: EkiScheme = EkiScheme.AES128_ECB) -> None:
    """The KEK `name` exists, is a transport key, and matches `kcv` (if the file states one) in
    the convention of the scheme's algorithm: AES-CMAC or legacy AES-ECB KCV for AES schemes,
    3DES KCV (3DES-ECB of 8 zero bytes, first 3 bytes) for 3des2-ecb / 3des3-ecb."""
    info = next((k for k in hsm.kek_list() if k.name == name), None)
    if info is None:
        raise TransportKeyError(f"{where}: transport key {name!r} is not in the HSM (add it with "
                                "`simsmith hsm kek add NAME --purpose transport …`)")
    if str(info.purpose) != "transport":
        raise TransportKeyError(f"{where}: KEK {name!r} is a {info.purpose} key, not a "
                                "transport key")
    if kcv is None:
        return
    try:
        known = hsm.transport_kcvs(name, scheme)
    except HsmError as e:
        raise TransportKeyError(f"{where}: transport key {name!r} with scheme "
                                f"{EkiScheme(scheme).value}: {e}") from None
    if kcv.upper() not in {v.upper() for v in known.values()}:
        shown = ", ".join(f"{label} {value.upper()}" for label, value in known.items())
        raise TransportKeyError(
            f"{where}: Transport_key KCV {kcv.upper()} does not match HSM key {name!r} "
            f"({shown}; scheme {EkiScheme(scheme).value}): wrong transport key")


def require_kcv(header: Header, opts: ImportOptions, transport: str, where: str) -> str | None:
    """The KCV rule for keys under a transport key: the file states a KCV, or the caller
    gives one (`--kcv`, returned upper-cased), or explicitly skips the check (`--no-kcv-check`);
    else KcvRequired."""
    given = parse_kcv(opts.kcv) if opts.kcv is not None else None
    if opts.no_kcv_check and given is not None:
        raise InvalidInput("kcv", "--kcv and --no-kcv-check together", expected="one of them")
    if header.transport_kcv is None and given is None and not opts.no_kcv_check:
        raise KcvRequired(
            "kcv", f"{where}: the file states no KCV for transport key {transport!r}, so a "
            "wrong key would import every SIM with garbage keys",
            expected="--kcv XXXXXX (the key's check value from the key ceremony), or "
            "--no-kcv-check to import unchecked")
    return given


def preflight(file: Path | Source, opts: ImportOptions) -> None:
    """The checks an upload can fail at once, before a job is queued: the file's header reads,
    and keys under a transport key come with a KCV or an explicit `no_kcv_check`."""
    source = source_of(file)
    fmt = opts.fmt or guess_format(source.path)
    report = Report(source.path.name)
    with VendorFile(source, fmt, opts.columns, report) as vf:
        transport = opts.transport_key or vf.header.transport_key
        if transport is not None:
            require_kcv(vf.header, opts, transport, vf.header.where("transport_key"))


def import_file(engine: Engine, hsm: Hsm, file: Path | Source, opts: ImportOptions | None = None,
                progress: Progress | None = None) -> ImportResult:
    """Validate and import one vendor file (see the module docstring): a path, or a Source
    (an upload sealed at rest). Raises InvalidFile (nothing written) when a rule is broken,
    unless `dry_run` (then the result holds the report)."""
    opts = opts or ImportOptions()
    source = source_of(file)
    path = source.path
    started = time.monotonic()
    fmt = opts.fmt or guess_format(path)
    if fmt not in FORMATS:
        raise InvalidInput("format", f"unknown format {fmt!r}", expected=" or ".join(FORMATS))
    try:
        sha = file_sha256(source)
    except OSError as e:
        raise InvalidInput("file", f"cannot read {path}: {e.strerror}") from None
    done = find_batch_by_hash(engine, sha)
    if done is not None:
        return ImportResult("already_imported", str(path), sha, done.name, done.id, done.row_count,
                            0, 0, time.monotonic() - started)
    report = Report(path.name)
    with VendorFile(source, fmt, opts.columns, report) as vf:
        run = _Run(engine, hsm, vf, opts, sha, progress)
        return run.execute(started)


class _Run:
    """One import: holds the file, its validator and the chunk being built."""

    def __init__(self, engine: Engine, hsm: Hsm, vf: VendorFile, opts: ImportOptions, sha: str,
                 progress: Progress | None) -> None:
        self.engine, self.hsm, self.vf, self.opts, self.sha = engine, hsm, vf, opts, sha
        self.progress = progress
        self.report = vf.report
        self.header = vf.header
        # A real import finds ICCIDs/IMSIs repeated in the file against the store (its own
        # earlier chunks are there), not in sets that grow with the file; a dry run writes
        # nothing, so its validator keeps them (only for files without start values).
        self.validator = Validator(vf.header, vf.report, dedupe=opts.dry_run)
        self.batch_id: int | None = None
        names = {c.name for c in vf.header.columns}
        self.transport = opts.transport_key or vf.header.transport_key
        # EKI/EOPC columns are encrypted; KI/OPC too once a transport key is in effect.
        self.encrypted = bool(names & {"EKI", "EOPC"}) or self.transport is not None
        self.imported = 0
        self.rows_seen = 0
        self.given_kcv: str | None = None
        self.kcv_checked = False
        self.vector_checked = False
        size = vf.source.size()
        self.use_worker = opts.worker if opts.worker is not None else size >= WORKER_FROM_BYTES
        self.batch_name = (opts.batch or vf.header.batch or vf.path.stem)[:64]

    def _header_checks(self) -> None:
        """Everything decidable before the first row: header issues stop here."""
        if not self.report.ok:
            raise InvalidFile(self.report)
        where = self.header.where("transport_key")
        if self.transport is not None:
            self._kcv_rule(where)
            if self.hsm is not None:
                check_transport_key(self.hsm, self.transport, self.header.transport_kcv, where,
                                    self.opts.scheme)
                if self.given_kcv is not None:
                    check_transport_key(self.hsm, self.transport, self.given_kcv, "--kcv",
                                        self.opts.scheme)
        elif self.encrypted:
            raise TransportKeyError(f"{where}: the file has encrypted keys but names no "
                                    "transport key: pass --transport-key NAME")
        cv = self.opts.check_vector
        if cv is not None and not ({"OPC", "EOPC"} & {c.name for c in self.header.columns}):
            raise InvalidInput("check_vector", "the file has no OPc column: a Milenage vector "
                               "cannot be computed")

    def _kcv_rule(self, where: str) -> None:
        assert self.transport is not None
        self.given_kcv = require_kcv(self.header, self.opts, self.transport, where)
        stated = self.header.transport_kcv is not None or self.given_kcv is not None
        self.kcv_checked = stated and self.hsm is not None

    def execute(self, started: float) -> ImportResult:
        self._header_checks()
        if self.opts.dry_run:
            with read_session(self.engine) as s:
                self._stream(s, write=False)
            status = "valid" if self.report.ok else "invalid"
            return self._result(status, None, started)
        try:
            with transaction(self.engine) as s:
                batch = self._batch(s)
                s.add(batch)
                s.flush()
                self.batch_id = batch.id
                self._stream(s, write=True)
                if not self.report.ok:
                    raise InvalidFile(self.report)
                batch.row_count, batch.status = self.imported, "complete"
                s.add(batch)
                s.flush()
                details = {"batch": self.batch_name, "rows": self.imported, "file":
                           self.vf.path.name, "file_sha256": self.sha, "vendor": batch.vendor,
                           "transport_kek": self.transport, "scheme": str(self.opts.scheme),
                           "kcv_checked": self.kcv_checked,
                           "check_vector": (self.opts.check_vector.iccid
                                            if self.opts.check_vector else None)}
                audit.append(s, actor=self.opts.actor, action="inventory.import",
                             subject_type="batch", subject_id=self.batch_name, details=details,
                             outbox=audit.Outbox("batch.imported", "batch", self.batch_name,
                                                 {"batch": self.batch_name, "rows":
                                                  self.imported}))
        except IntegrityError:
            done = find_batch_by_hash(self.engine, self.sha)
            if done is None:
                raise Conflict(f"{self.report.path}: another writer took one of these ICCIDs or "
                               "IMSIs during the import; nothing imported, run it again") from None
            return ImportResult("already_imported", str(self.vf.path), self.sha, done.name,
                                done.id, done.row_count, 0, 0, time.monotonic() - started)
        log.info("inventory.imported", batch=self.batch_name, rows=self.imported,
                 file=self.vf.path.name)
        return self._result("imported", self.batch_id, started)

    def _batch(self, s: Session) -> Batch:
        """A new batch, or the one `simsmith inventory order` recorded for this file."""
        b = s.execute(select(Batch).where(col(Batch.name) == self.batch_name)
                      .with_for_update()).scalar_one_or_none()
        if b is not None and not (b.source == "order" and b.status == "ordered"):
            raise Conflict(f"batch {self.batch_name!r} already exists (from another file): "
                           "pass --batch NAME")
        if b is None:
            b = Batch(name=self.batch_name, source="import")
        elif self.validator.quantity not in (None, b.row_count):
            raise Conflict(f"batch {self.batch_name!r} was ordered with {b.row_count} cards, the "
                           f"file's Quantity is {self.validator.quantity}")
        b.vendor = self._vendor() or b.vendor
        b.profile = self.opts.profile or self.header.get("profile") or b.profile
        b.file_sha256, b.status = self.sha, "in_progress"
        return b

    def _vendor(self) -> str | None:
        v = self.opts.vendor or self.header.get("vendor") or self.header.get("manufacturer")
        return v[:64] if v else None

    def _result(self, status: str, batch_id: int | None, started: float) -> ImportResult:
        return ImportResult(status, str(self.vf.path), self.sha, self.batch_name, batch_id,
                            self.rows_seen, self.imported, self.report.bad_rows,
                            time.monotonic() - started, self.report)

    # --- rows --------------------------------------------------------------------------------

    def _stream(self, s: Session, *, write: bool) -> None:
        outcome = Outcome()
        if self.use_worker:
            source = in_worker(self.vf.source, self.vf.fmt, self.opts.columns, self.opts.chunk,
                               self.report.path, outcome, dedupe=self.opts.dry_run)
        else:
            source = inline(self.vf, self.validator, self.opts.chunk, outcome)
        for cards, seen, issues in source:
            self.rows_seen = seen
            if cards:
                self._chunk(s, cards, write and issues == 0)
            if self.progress:
                self.progress(seen, self.validator.quantity)
        if outcome.report is not None:
            self.report.merge(outcome.report)
        self.rows_seen = outcome.rows
        cv = self.opts.check_vector
        if cv is not None and self.hsm is not None and not self.vector_checked \
                and self.report.ok:
            raise InvalidInput("check_vector", f"ICCID {cv.iccid} is not in the file",
                               expected="the ICCID of one of the file's cards")
        if outcome.sha256 != self.sha:
            self.report.add(Issue(self.report.path, 0, 0, "file", "file.changed",
                                  "the file changed while it was being imported"))
        self.report.issues.sort(key=lambda i: (i.line, i.column))

    def _check_vector(self, cards: list[Card]) -> None:
        """The vendor's sample vector, computed inside the HSM from the card's keys as this
        import unwraps them (nothing written)."""
        cv = self.opts.check_vector
        if cv is None or self.vector_checked or self.hsm is None:
            return
        card = next((c for c in cards if c[1].rstrip("Ff") == cv.iccid), None)
        if card is None:
            return
        if card[4] is None:
            raise InvalidInput("check_vector", f"the row of ICCID {cv.iccid} has no OPc",
                               position=f"{self.report.path}:{card[0]}")
        if self.encrypted:
            assert self.transport is not None
            ki, maybe_opc = self.hsm.import_batch(
                [(card[1], card[3].reveal(), card[4].reveal())], self.transport,
                self.opts.scheme)[0]
            assert maybe_opc is not None  # the row has an OPc (checked above)
            opc = maybe_opc
        else:
            ki = self.hsm.import_clear(card[1], KeyType.KI, card[3].reveal())
            opc = self.hsm.import_clear(card[1], KeyType.OPC, card[4].reveal())
        v = self.hsm.milenage_vectors(ki, opc, [cv.sqn], cv.amf, rands=[cv.rand])[0]
        cv.verify(v.xres, v.autn, v.ck, v.ik)
        self.vector_checked = True

    def _chunk(self, s: Session, cards: list[Card], write: bool) -> None:
        self._check_vector(cards)
        iccids, imsis = store.existing(s, [c[1] for c in cards], [c[2] for c in cards])
        hits: list[tuple[int, str, str, bool]] = []  # line, field, value, earlier in the file
        if iccids or imsis:
            mine = self.batch_id
            hits = [(c[0], fld, value, mine is not None and found[value] == mine) for c in cards
                    for fld, value, found in (("ICCID", c[1], iccids), ("IMSI", c[2], imsis))
                    if value in found]
        if not self.validator.deduplicates:
            hits += _repeated_in_chunk(cards)
        if hits:
            hits.sort()
            self._in_store(hits)
            self.report.bad_rows += len({h[0] for h in hits})
        if write and self.report.ok:
            self._write(s, cards)

    def _in_store(self, hits: list[tuple[int, str, str, bool]]) -> None:
        """Report (line, field, value, earlier in this file) found in the store or repeated in
        the file, each at its row's exact column (looked up again in the file, only for the
        issues the report keeps)."""
        index = {c.name: c.index for c in self.header.columns}
        room = max(0, MAX_KEPT - len(self.report.issues))
        wanted: dict[int, list[int]] = {}
        for line, fld, _, _ in hits[:room]:
            wanted.setdefault(line, []).append(index[fld])
        where = self.vf.columns_at(wanted)
        for line, fld, value, in_file in hits:
            rule, message = ((f"{fld.lower()}.duplicate", "appears earlier in this file")
                             if in_file else (f"{fld.lower()}.in_store",
                                              "already in the store (another SIM has it)"))
            self.report.add(Issue(self.report.path, line, where.get((line, index[fld]), 0), fld,
                                  rule, message, clip(value)))

    def _write(self, s: Session, cards: list[Card]) -> None:
        refs = self._keys(cards)
        now = store.stamp(s, utcnow())
        state, bid = str(SimState.IN_STOCK), self.batch_id
        rows = [(c[1], c[2], "physical", bid, state, ki, opc,
                 "milenage" if opc else None, c[5], 1, now, now)
                for c, (ki, opc) in zip(cards, refs, strict=True)]
        store.bulk_insert(s, "sim", store.SIM_COLUMNS, rows)
        del rows
        # Codes and OTA keys: every one of the chunk wrapped in one HSM call.
        kt = _KEY_TYPES
        items = [(c[1], kt[key_type], value.reveal())
                 for c in cards for _, key_type, value in c[6]]
        refs_ = tokens(self.hsm.import_clear_many(items))
        del items
        names = [(c[1], name) for c in cards for name, _, _ in c[6]]
        store.bulk_insert(s, "sim_credential", store.CREDENTIAL_COLUMNS,
                          [(iccid, name, ref) for (iccid, name), ref in
                           zip(names, refs_, strict=True)])
        self.imported += len(cards)

    def _keys(self, cards: list[Card]) -> list[tuple[str, str | None]]:
        if self.encrypted:
            assert self.transport is not None
            pairs = self.hsm.import_batch(
                [(c[1], c[3].reveal(), None if c[4] is None else c[4].reveal()) for c in cards],
                self.transport, self.opts.scheme)
            kis = tokens([p[0] for p in pairs])
            if all(p[1] is not None for p in pairs):
                return list(zip(kis, tokens([p[1] for p in pairs]), strict=True))
            return [(k, p[1].to_token() if p[1] is not None else None)
                    for k, p in zip(kis, pairs, strict=True)]
        kis = tokens(self.hsm.import_clear_many([(c[1], KeyType.KI, c[3].reveal())
                                                 for c in cards]))
        with_opc = [c for c in cards if c[4] is not None]
        opcs = iter(tokens(self.hsm.import_clear_many(
            [(c[1], KeyType.OPC, c[4].reveal()) for c in with_opc if c[4] is not None])))
        return [(ki, next(opcs) if c[4] is not None else None)
                for c, ki in zip(cards, kis, strict=True)]


def _repeated_in_chunk(cards: list[Card]) -> list[tuple[int, str, str, bool]]:
    """ICCIDs/IMSIs a chunk holds twice (the store holds the earlier chunks' already)."""
    out: list[tuple[int, str, str, bool]] = []
    iccids: set[str] = set()
    imsis: set[str] = set()
    for c in cards:
        if c[1] in iccids:
            out.append((c[0], "ICCID", c[1], True))
        if c[2] in imsis:
            out.append((c[0], "IMSI", c[2], True))
        iccids.add(c[1])
        imsis.add(c[2])
    return out


_KEY_TYPES = {t.value: t for t in KeyType}
_B64URL = bytes.maketrans(b"+/", b"-_")


def tokens(refs: Sequence[Any]) -> list[str]:
    """`KeyRef.to_token()` of many refs at once: when every blob has one length divisible by 3,
    base64 of the concatenation is the concatenation of each blob's base64, so one encoding
    call serves the whole chunk; otherwise one plain binascii call per blob. Checked against
    `to_token()` on the first ref."""
    if not refs:
        return []
    n = len(refs[0].blob)
    if n % 3 or any(len(r.blob) != n for r in refs):
        b64, table = binascii.b2a_base64, _B64URL
        out = [f"kr1.{r.backend}.{r.key_type.value}.{r.owner}.{r.kek}."
               f"{b64(r.blob, newline=False).translate(table).rstrip(b'=').decode('ascii')}"
               for r in refs]
        if out[0] != refs[0].to_token():
            return [r.to_token() for r in refs]
        return out
    enc = base64.urlsafe_b64encode(b"".join(r.blob for r in refs)).decode("ascii")
    w = n // 3 * 4
    out = [f"kr1.{r.backend}.{r.key_type.value}.{r.owner}.{r.kek}.{enc[i * w:(i + 1) * w]}"
           for i, r in enumerate(refs)]
    if out[0] != refs[0].to_token():
        return [r.to_token() for r in refs]
    return out
