"""Signed checkpoints of the audit log: `audit verify` in time proportional to what is new.

A full verify walks every event (~40 s per million). A checkpoint records, for each of the 16
lanes, how many events it held and the hash of its last one, after a walk proved them; it is signed
with an Ed25519 key kept outside the database (`<SIMSMITH_HOME>/audit/checkpoint-ed25519.pem`, mode
0600), so someone who can write the database cannot forge one. An incremental verify starts each
lane at the newest checkpoint whose signature holds and walks only the events after it: the links
from the checkpointed hash, every new event's hash, and the heads. What it does not re-prove is the
content of events before the checkpoint — that is what the signature attests; `verify(full=True)`
(CLI `--full`) walks everything and proves it again.

Each checkpoint is made by an incremental verify from the previous one, so a chain of
checkpoints never covers an event that did not verify.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from sqlalchemy import Engine, select
from sqlmodel import col

from simcore import audit
from simcore.db import read_session, transaction
from simcore.models import AuditCheckpoint, utcnow
from simcore.records import canonical_json

KEY_FILE = Path("audit") / "checkpoint-ed25519.pem"


@dataclass(frozen=True)
class CheckpointKey:
    """The checkpoint signing key and its identifier (first 16 hex of SHA-256 of the raw
    public key)."""

    private: Ed25519PrivateKey

    @property
    def public(self) -> Ed25519PublicKey:
        return self.private.public_key()

    @property
    def key_id(self) -> str:
        return key_id(self.public)


def key_id(public: Ed25519PublicKey) -> str:
    import hashlib

    raw = public.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return hashlib.sha256(raw).hexdigest()[:16]


def load_or_create_key(home: Path) -> CheckpointKey:
    """The workspace's checkpoint key, created (mode 0600, never overwritten) on first use."""
    path = home / KEY_FILE
    if path.exists():
        key = serialization.load_pem_private_key(path.read_bytes(), password=None)
        if not isinstance(key, Ed25519PrivateKey):
            raise audit.AuditChainBroken(0, f"{path} does not hold an Ed25519 key")
        return CheckpointKey(key)
    path.parent.mkdir(parents=True, exist_ok=True)
    key = Ed25519PrivateKey.generate()
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                            serialization.NoEncryption())
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(pem)
    return CheckpointKey(key)


def _signed_text(heads: dict[int, tuple[int, str]], events: int) -> bytes:
    """What a checkpoint signs: canonical JSON of the lane positions and the event count."""
    return canonical_json({"events": events, "heads": {
        str(lane): [n, h] for lane, (n, h) in sorted(heads.items())}}).encode()


def _trusted_starts(engine: Engine, public: Ed25519PublicKey | None
                    ) -> tuple[dict[int, audit.LaneStart], AuditCheckpoint | None]:
    """The lane starts of the newest checkpoint signed by `public` (none: full walk)."""
    if public is None:
        return {}, None
    kid = key_id(public)
    with read_session(engine) as s:
        rows = list(s.execute(select(AuditCheckpoint).where(col(AuditCheckpoint.key_id) == kid)
                              .order_by(col(AuditCheckpoint.id).desc()).limit(20)).scalars())
    for cp in rows:  # the newest whose signature holds; a forged or damaged row is skipped
        heads = {int(k): (int(v[0]), str(v[1])) for k, v in json.loads(cp.heads).items()}
        try:
            public.verify(bytes.fromhex(cp.signature), _signed_text(heads, cp.events))
        except (InvalidSignature, ValueError):
            continue
        return {lane: audit.LaneStart(n, h) for lane, (n, h) in heads.items()}, cp
    return {}, None


@dataclass(frozen=True)
class Verified:
    report: audit.VerifyReport
    from_checkpoint: int | None  # the checkpoint id the walk started from; None: full walk
    walked: int  # events actually re-hashed


def verify(engine: Engine, *, public: Ed25519PublicKey | None = None,
           full: bool = False) -> Verified:
    """Verify the log, from the newest valid checkpoint unless `full` (raises
    audit.AuditChainBroken naming the first event at fault)."""
    starts, cp = ({}, None) if full else _trusted_starts(engine, public)
    report = audit.verify(engine, starts)
    before = sum(s.lane_seq for s in starts.values())
    return Verified(report, cp.id if cp else None, report.events - before)


def checkpoint(engine: Engine, key: CheckpointKey) -> tuple[AuditCheckpoint, Verified]:
    """Verify (from the previous checkpoint) and record a new signed checkpoint at the heads."""
    done = verify(engine, public=key.public)
    heads = {lane: (done.report.lane_seqs[lane], h) for lane, h in done.report.heads.items()}
    signature = key.private.sign(_signed_text(heads, done.report.events)).hex()
    cp = AuditCheckpoint(created_at=utcnow(), events=done.report.events,
                         heads=canonical_json({str(k): [n, h]
                                                     for k, (n, h) in sorted(heads.items())}),
                         key_id=key.key_id, signature=signature)
    with transaction(engine) as s:
        s.add(cp)
        s.flush()
        s.refresh(cp)
        s.expunge(cp)
    return cp, done
