"""The audit chain: tamper detection, head consistency, no secrets."""

from __future__ import annotations

import itertools

import pytest
from sqlalchemy import Engine, text

from simcore import audit, db, events, inventory
from simcore.models import AuditEvent

from .helpers import seed

pytestmark = pytest.mark.storage


def _some_history(engine: Engine) -> int:
    seed(engine, 3)
    sim = inventory.allocate(engine, "cust-1", actor="alice")
    inventory.activate(engine, sim.iccid, actor="alice")
    inventory.suspend(engine, sim.iccid, actor="bob", reason="unpaid")
    return audit.verify(engine).events


def test_chains_verify_and_link(engine: Engine) -> None:
    n = _some_history(engine)
    assert n == 6
    evs = list(audit.iter_events(engine, chunk=2))
    assert [e.seq for e in evs] == list(range(1, n + 1))
    lanes: dict[int, list[AuditEvent]] = {}
    for e in evs:
        assert e.lane == audit.lane_of(e.subject_id)
        lanes.setdefault(e.lane, []).append(e)
    for chain in lanes.values():
        assert [e.lane_seq for e in chain] == list(range(1, len(chain) + 1))
        assert chain[0].prev_hash == audit.GENESIS_HASH
        for a, b in itertools.pairwise(chain):
            assert b.prev_hash == a.hash
    # A SIM's whole history is one chain.
    sim_events = [e for e in evs if e.subject_type == "sim"]
    assert len({e.lane for e in sim_events}) == 1 and len(sim_events) == 3


def test_hashes_agree_for_any_text(engine: Engine) -> None:
    """PostgreSQL computes the hash in SQL, verify in Python: both must see the same bytes."""
    with db.transaction(engine) as s:
        for i, word in enumerate(["Grüße", "€ 5", "😀 emoji", "quote \" and ;:", "日本"]):
            audit.append(s, actor=f"actör-{word}", action="note", subject_type="x",
                         subject_id=f"{word}-{i}", details={"text": word, "n": i, "ok": True})
    assert audit.verify(engine).events == 5


@pytest.mark.parametrize("column", ["details", "actor", "ts", "action", "subject_id"])
def test_changing_one_byte_of_one_event_is_named(engine: Engine, column: str) -> None:
    _some_history(engine)
    with db.transaction(engine) as s:
        value = s.execute(text(f"SELECT {column} FROM audit_event WHERE seq = 4")).scalar_one()
        # Flip one character of the stored value.
        ch = "Z" if value[-2] != "Z" else "Y"
        tampered = value[:-2] + ch + value[-1]
        s.execute(text(f"UPDATE audit_event SET {column} = :v WHERE seq = 4"), {"v": tampered})
    with pytest.raises(audit.AuditChainBroken) as e:
        audit.verify(engine)
    assert e.value.seq == 4 and "edited" in str(e.value)


def test_rehashed_event_breaks_the_next_link(engine: Engine) -> None:
    _some_history(engine)
    with db.transaction(engine) as s:
        s.execute(text("UPDATE audit_event SET hash = :h WHERE seq = 2"), {"h": "f" * 64})
    with pytest.raises(audit.AuditChainBroken) as e:
        audit.verify(engine)
    assert e.value.seq == 2


def test_deleted_events_are_found(engine: Engine) -> None:
    _some_history(engine)  # events 4, 5, 6 are one SIM's: allocated, active, suspended
    with db.transaction(engine) as s:
        s.execute(text("DELETE FROM audit_event WHERE seq = 4"))
    with pytest.raises(audit.AuditChainBroken,
                       match=r"audit event 5: lane \d+: 1 event\(s\) before this one are missing"):
        audit.verify(engine)


def test_truncated_tail_is_found(engine: Engine) -> None:
    n = _some_history(engine)
    with db.transaction(engine) as s:
        s.execute(text(f"DELETE FROM audit_event WHERE seq = {n}"))
    with pytest.raises(audit.AuditChainBroken, match="events removed from the end") as e:
        audit.verify(engine)
    assert e.value.seq == n - 1  # the lane's last event still standing


@pytest.mark.parametrize("field", ["ki", "OPc", "adm1", "pin1", "transport_key"])
def test_secrets_never_enter_the_log(engine: Engine, field: str) -> None:
    with pytest.raises(audit.SecretInAudit) as e, db.transaction(engine) as s:
        audit.append(s, actor="t", action="x", subject_type="sim", subject_id="1",
                     details={"nested": {field: "00112233445566778899aabbccddeeff"}})
    assert field in str(e.value)
    assert "0011223344" not in str(e.value)
    with pytest.raises(audit.SecretInAudit), db.transaction(engine) as s:
        events.emit(s, "t", "sim", "1", {"blob": b"\x00\x01"})
    assert audit.verify(engine).events == 0


def test_outbox_pending_and_published(engine: Engine) -> None:
    _some_history(engine)
    pend = events.pending(engine)
    assert [e.topic for e in pend][:2] == ["range.created", "range.created"]
    events.mark_published(engine, [e.id for e in pend if e.id is not None][:2])
    assert len(events.pending(engine)) == len(pend) - 2
