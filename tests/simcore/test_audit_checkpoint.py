"""Signed audit checkpoints: a verify walks only what came after the newest valid checkpoint,
still finds every change after it, ignores forged checkpoints, and `full` walks everything."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest
from sqlalchemy import Engine, func, select, text

from simcore import audit, audit_checkpoint, inventory
from simcore.db import read_session, transaction
from simcore.models import AuditCheckpoint

from .helpers import seed

pytestmark = pytest.mark.storage


def _history(engine: Engine, n: int, start: int = 0) -> None:
    seed(engine, n, batch=f"b{start}")
    for i in range(n):
        sim = inventory.allocate(engine, f"cust-{start + i}", actor="t")
        inventory.activate(engine, sim.iccid, actor="t")


def test_verify_walks_only_events_after_the_checkpoint(engine: Engine, tmp_path: Path) -> None:
    key = audit_checkpoint.load_or_create_key(tmp_path)
    mode = stat.S_IMODE(os.stat(tmp_path / audit_checkpoint.KEY_FILE).st_mode)
    assert mode == 0o600
    _history(engine, 6)
    cp, first = audit_checkpoint.checkpoint(engine, key)
    # 2 ranges, a batch, 2 per SIM
    assert first.from_checkpoint is None and first.walked == cp.events == 15
    _history(engine, 2, start=100)
    r = audit_checkpoint.verify(engine, public=key.public)
    assert r.from_checkpoint == cp.id
    assert r.walked == 5 and r.report.events == 20
    assert r.report.digest == audit.verify(engine).digest
    full = audit_checkpoint.verify(engine, public=key.public, full=True)
    assert full.from_checkpoint is None and full.walked == 20
    # the same key reloads from the workspace
    assert audit_checkpoint.load_or_create_key(tmp_path).key_id == key.key_id


def test_changes_after_the_checkpoint_are_found_and_before_it_by_full(
        engine: Engine, tmp_path: Path) -> None:
    key = audit_checkpoint.load_or_create_key(tmp_path)
    _history(engine, 3)
    audit_checkpoint.checkpoint(engine, key)
    _history(engine, 2, start=100)
    with read_session(engine) as s:
        last = int(s.execute(text("SELECT max(seq) FROM audit_event")).scalar_one())
    with transaction(engine) as s:  # an edit after the checkpoint
        s.execute(text("UPDATE audit_event SET actor = 'mallory' WHERE seq = :q"), {"q": last})
    with pytest.raises(audit.AuditChainBroken, match="edited") as e:
        audit_checkpoint.verify(engine, public=key.public)
    assert e.value.seq == last
    with transaction(engine) as s:  # undo; now edit an event the checkpoint covers
        s.execute(text("UPDATE audit_event SET actor = 't' WHERE seq = :q"), {"q": last})
        s.execute(text("UPDATE audit_event SET actor = 'mallory' WHERE seq = 2"))
    audit_checkpoint.verify(engine, public=key.public)  # attested by the signature
    with pytest.raises(audit.AuditChainBroken) as e:
        audit_checkpoint.verify(engine, public=key.public, full=True)
    assert e.value.seq == 2


def test_removed_tail_after_checkpoint_is_found(engine: Engine, tmp_path: Path) -> None:
    key = audit_checkpoint.load_or_create_key(tmp_path)
    _history(engine, 3)
    audit_checkpoint.checkpoint(engine, key)
    with transaction(engine) as s:  # wipe a whole lane and reset its head
        lane = int(s.execute(text("SELECT lane FROM audit_event ORDER BY seq LIMIT 1")
                              ).scalar_one())
        s.execute(text("DELETE FROM audit_event WHERE lane = :l"), {"l": lane})
        s.execute(text("UPDATE audit_head SET seq = 0, hash = :g, prev_hash = :g WHERE id = :l"),
                  {"l": lane, "g": audit.GENESIS_HASH})
    with pytest.raises(audit.AuditChainBroken, match="events removed from the end"):
        audit_checkpoint.verify(engine, public=key.public)


def test_forged_or_foreign_checkpoints_are_not_trusted(engine: Engine, tmp_path: Path) -> None:
    key = audit_checkpoint.load_or_create_key(tmp_path / "a")
    other = audit_checkpoint.load_or_create_key(tmp_path / "b")
    _history(engine, 3)
    good, _ = audit_checkpoint.checkpoint(engine, key)
    _history(engine, 1, start=100)
    audit_checkpoint.checkpoint(engine, other)  # another key's checkpoint: not ours
    with transaction(engine) as s:  # a forged newer row under our key id
        s.add(AuditCheckpoint(events=10**6, heads=good.heads, key_id=key.key_id,
                              signature="00" * 64))
    r = audit_checkpoint.verify(engine, public=key.public)
    assert r.from_checkpoint == good.id  # the forged row was skipped
    assert audit_checkpoint.verify(engine, public=None).from_checkpoint is None
    with read_session(engine) as s:
        assert s.execute(select(func.count()).select_from(AuditCheckpoint)).scalar_one() == 3
