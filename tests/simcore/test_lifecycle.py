"""Every transition of every machine, allowed and refused, and what a transition writes."""

from __future__ import annotations

import itertools
import json

import pytest
from sqlalchemy import Engine, func, select, update
from sqlmodel import col

from simcore import audit
from simcore.db import read_session, transaction
from simcore.lifecycle import (
    MSISDN_LIFECYCLE,
    PROFILE_LIFECYCLE,
    SIM_LIFECYCLE,
    StaleVersion,
    StateMachine,
    TransitionNotAllowed,
    apply_transition,
    transition_if,
)
from simcore.models import AuditEvent, MsisdnEntry, OutboxEvent, Sim

from .helpers import seed

pytestmark = pytest.mark.storage


def _counts(engine: Engine) -> tuple[int, int]:
    with read_session(engine) as s:
        a = s.execute(select(func.count()).select_from(AuditEvent)).scalar_one()
        o = s.execute(select(func.count()).select_from(OutboxEvent)).scalar_one()
    return a, o


def test_the_documented_sim_lifecycle() -> None:
    path = ["blank", "personalised", "in_stock", "allocated", "active", "suspended", "active",
            "terminated", "quarantine", "recycled"]
    for a, b in itertools.pairwise(path):
        assert b in SIM_LIFECYCLE.allowed(a), (a, b)
    assert SIM_LIFECYCLE.allowed("recycled") == frozenset()
    assert PROFILE_LIFECYCLE.allowed("deleted") == frozenset()
    for a, b in [("available", "allocated"), ("available", "linked"), ("allocated", "confirmed"),
                 ("linked", "confirmed"), ("confirmed", "released"), ("released", "downloaded"),
                 ("downloaded", "installed"), ("installed", "enabled"), ("enabled", "disabled"),
                 ("disabled", "enabled"), ("disabled", "deleted")]:
        assert b in PROFILE_LIFECYCLE.allowed(a), (a, b)


@pytest.mark.slow
@pytest.mark.parametrize("machine", [SIM_LIFECYCLE, PROFILE_LIFECYCLE], ids=lambda m: m.name)
def test_every_transition_allowed_and_refused(engine: Engine, machine: StateMachine) -> None:
    iccid = seed(engine, 1).first_iccid
    states = sorted(machine.states)
    for current in states:
        for target in states:
            with transaction(engine) as s:
                s.execute(update(Sim).where(col(Sim.iccid) == iccid)
                          .values(**{machine.field: current}))
            before = _counts(engine)
            with read_session(engine) as s:
                sim = s.get(Sim, iccid)
            assert sim is not None
            if target in machine.allowed(current):
                with transaction(engine) as s:
                    apply_transition(s, sim, target, actor="t", machine=machine)
                with read_session(engine) as s:
                    assert getattr(s.get(Sim, iccid), machine.field) == target
                assert _counts(engine) == (before[0] + 1, before[1] + 1)
            else:
                with pytest.raises(TransitionNotAllowed) as e, transaction(engine) as s:
                    apply_transition(s, sim, target, actor="t", machine=machine)
                msg = str(e.value)
                assert f"from {current} to {target}" in msg
                for allowed in machine.allowed(current):
                    assert allowed in msg
                assert e.value.allowed == machine.allowed(current)
                with read_session(engine) as s:
                    assert getattr(s.get(Sim, iccid), machine.field) == current
                assert _counts(engine) == before
    audit.verify(engine)


def test_msisdn_machine(engine: Engine) -> None:
    from simcore.msisdn_pool import add_msisdn_range

    add_msisdn_range(engine, "447700900000", "447700900000", name="m", actor="t")
    for current in sorted(MSISDN_LIFECYCLE.states):
        for target in sorted(MSISDN_LIFECYCLE.states):
            with transaction(engine) as s:
                s.execute(update(MsisdnEntry).values(state=current))
            with read_session(engine) as s:
                entry = s.get(MsisdnEntry, "447700900000")
            assert entry is not None
            if target in MSISDN_LIFECYCLE.allowed(current):
                with transaction(engine) as s:
                    apply_transition(s, entry, target, actor="t", machine=MSISDN_LIFECYCLE)
            else:
                with pytest.raises(TransitionNotAllowed), transaction(engine) as s:
                    apply_transition(s, entry, target, actor="t", machine=MSISDN_LIFECYCLE)


def test_transition_writes_state_audit_and_outbox_together(engine: Engine) -> None:
    iccid = seed(engine, 1).first_iccid
    with read_session(engine) as s:
        sim = s.get(Sim, iccid)
    assert sim is not None and sim.version == 1
    with transaction(engine) as s:
        apply_transition(s, sim, "allocated", actor="alice", details={"subscriber_ref": "c-1"})
    with read_session(engine) as s:
        stored = s.get(Sim, iccid)
        ev = s.execute(select(AuditEvent).order_by(col(AuditEvent.seq).desc())).scalars().first()
        out = s.execute(select(OutboxEvent).order_by(col(OutboxEvent.id).desc())).scalars().first()
    assert stored is not None and stored.state == "allocated" and stored.version == 2
    assert ev is not None and ev.action == "sim.allocated" and ev.actor == "alice"
    assert json.loads(ev.details) == {"from": "in_stock", "to": "allocated",
                                      "subscriber_ref": "c-1"}
    assert out is not None and out.topic == "sim.state_changed" and out.subject_id == iccid


def test_failure_after_transition_rolls_everything_back(engine: Engine) -> None:
    iccid = seed(engine, 1).first_iccid
    before = _counts(engine)
    with read_session(engine) as s:
        sim = s.get(Sim, iccid)
    assert sim is not None
    with pytest.raises(RuntimeError), transaction(engine) as s:
        apply_transition(s, sim, "allocated", actor="t")
        raise RuntimeError("crash before commit")
    with read_session(engine) as s:
        assert s.get(Sim, iccid).state == "in_stock"  # type: ignore[union-attr]
    assert _counts(engine) == before


def test_stale_version_is_refused(engine: Engine) -> None:
    iccid = seed(engine, 1).first_iccid
    with read_session(engine) as s:
        stale = s.get(Sim, iccid)
        fresh = s.get(Sim, iccid)
    assert stale is not None and fresh is not None
    stale = Sim.model_validate(stale.model_dump())
    with transaction(engine) as s:
        apply_transition(s, fresh, "allocated", actor="t")
    with pytest.raises(StaleVersion, match="changed by someone else"), transaction(engine) as s:
        apply_transition(s, stale, "terminated", actor="t", reason="x")


def test_transition_if_moves_only_a_row_in_the_state_and_columns_given(engine: Engine) -> None:
    """transition_if: one UPDATE that checks the state (and `where`) as it writes; the same
    records as apply_transition; nothing written when the row is not in that state."""
    first = seed(engine, 2).first_iccid
    with transaction(engine) as s:
        sim = s.get(Sim, first)
        assert sim is not None
        apply_transition(s, sim, "allocated", actor="t", changes={"subscriber_ref": "c-1"})
    before = _counts(engine)
    with transaction(engine) as s:  # another subscriber's, or not allocated: nothing
        assert transition_if(s, SIM_LIFECYCLE, first, "allocated", "active", actor="t",
                             where={"subscriber_ref": "c-2"}) is None
        assert transition_if(s, SIM_LIFECYCLE, first, "in_stock", "allocated",
                             actor="t") is None
        assert transition_if(s, SIM_LIFECYCLE, "89000000000000000000", "allocated", "active",
                             actor="t") is None
    assert _counts(engine) == before
    with transaction(engine) as s:
        done = transition_if(s, SIM_LIFECYCLE, first, "allocated", "active", actor="bob",
                             where={"subscriber_ref": "c-1"},
                             details=lambda row: {"ref": row.subscriber_ref, "v": row.version})
    assert (done.state, done.version, done.subscriber_ref) == ("active", 3, "c-1")
    with read_session(engine) as s:
        stored = s.get(Sim, first)
        ev = s.execute(select(AuditEvent).order_by(col(AuditEvent.seq).desc())).scalars().first()
    assert stored is not None and (stored.state, stored.version) == ("active", 3)
    assert ev is not None and (ev.action, ev.actor) == ("sim.active", "bob")
    assert json.loads(ev.details) == {"from": "allocated", "to": "active", "ref": "c-1", "v": 3}
    assert _counts(engine) == (before[0] + 1, before[1] + 1)
    with pytest.raises(TransitionNotAllowed), transaction(engine) as s:
        transition_if(s, SIM_LIFECYCLE, first, "in_stock", "active", actor="t")
    audit.verify(engine)
