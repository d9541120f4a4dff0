"""Store steps recorded together (simcore.workflows.engine._record): consecutive steps without a
peer call commit in the transaction of the step before them, each with its own record; a
chained step that fails is recorded on its own (the steps before it stay done); on PostgreSQL
the audit records of such a transaction are written lane by lane at its end (audit.deferred)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator, Mapping
from typing import Any

import pytest
from sqlalchemy import Engine, event, func, select
from sqlmodel import Session, col

from simcore import audit, events
from simcore.db import read_session, transaction
from simcore.models import AuditEvent, OutboxEvent
from simcore.workflows import engine as wf
from simcore.workflows.service import get_workflow, start_activation
from simcore.workflows.steps import Deps
from tests.helpers.fake_hlr import FakeHlr
from tests.workflows.conftest import FAST


@pytest.fixture
def commits(stocked: Engine) -> Iterator[list[int]]:
    got: list[int] = []

    def on_commit(conn: Any) -> None:
        # Write transactions only: a read (db.read_connection) ends with COMMIT too.
        if not conn.get_execution_options().get("readonly"):
            got.append(1)
    event.listen(stocked, "commit", on_commit)
    yield got
    event.remove(stocked, "commit", on_commit)


def test_activation_commits_store_steps_together(deps: Deps, fake_hlr: FakeHlr,
                                                 commits: list[int]) -> None:
    wid = start_activation(deps.engine, {"subscriber_ref": "one"}, actor="t")
    commits.clear()
    w = wf.Worker(deps.engine, deps, policy=FAST)
    assert w.run_once() == 1
    v = get_workflow(deps.engine, wid)
    assert v.status == wf.SUCCEEDED, v.error
    # the claim (on PostgreSQL one statement in autocommit, no transaction); validate +
    # reserve + msisdn + keys (the SIM has them: no call); then after the HLR's call: hlr +
    # smdp_order (skipped) + activate + notify + the run's finish.
    assert len(commits) == (2 if deps.engine.dialect.name == "postgresql" else 3)
    assert [(s.name, s.status, s.attempts) for s in v.steps] == [
        ("validate", "done", 1), ("reserve", "done", 1), ("msisdn", "done", 1),
        ("keys", "done", 1), ("hlr", "done", 1), ("smdp_order", "skipped", 0),
        ("activate", "done", 1), ("notify", "done", 1)]
    assert all(s.started_at and s.finished_at for s in v.steps if s.status == "done")
    assert fake_hlr.calls["provision"] == 1


def test_an_activation_reads_its_sim_row_no_more_than_it_must(deps: Deps) -> None:
    """The reserve's SIM, locked and written in the store steps' transaction, is not read again
    there (steps.remember_locked: the MSISDN step and the keys check use it), and marking it
    active is one UPDATE that checks the state as it writes (lifecycle.transition_if): the one
    read left is the HLR step's, outside any transaction."""
    wid = start_activation(deps.engine, {"subscriber_ref": "reads"}, actor="t")
    statements: list[str] = []

    def seen(conn: Any, cursor: Any, statement: str, *_: Any) -> None:
        statements.append(" ".join(statement.split()))

    event.listen(deps.engine, "before_cursor_execute", seen)
    try:
        assert wf.Worker(deps.engine, deps, policy=FAST).run_once() == 1
    finally:
        event.remove(deps.engine, "before_cursor_execute", seen)
    assert get_workflow(deps.engine, wid).status == wf.SUCCEEDED
    sim_reads = [q for q in statements if q.startswith("SELECT") and " FROM sim " in q + " "]
    assert sim_reads == [], sim_reads  # (the HLR step's read is a DirectStatement: no event)
    assert sum(q.startswith("UPDATE sim SET") for q in statements) == 3  # reserve, MSISDN, active
    # The lowest free MSISDN picked and assigned by one UPDATE, no read first.
    assert not [q for q in statements if q.startswith("SELECT") and "FROM msisdn" in q]
    if deps.engine.dialect.name == "postgresql":
        # Each transaction's audit records go with its last statement (the run's move or
        # finish), not in statements of their own.
        finals = [q for q in statements if q.startswith("WITH rec AS")]
        assert len(finals) == 2 and all("audit_append_batch" in q for q in finals)
        assert not [q for q in statements if "audit_head" in q or
                    (q.startswith("SELECT audit_append_batch"))]


def _effect(name: str, fail: list[BaseException]) -> wf.Step:
    """A store step writing one outbox event; raises the first of `fail` if any."""

    def commit(s: Session, run: wf.Run) -> Mapping[str, Any]:
        events.emit(s, f"t.{name}", "t", run.id, {})
        if fail:
            raise fail.pop(0)
        return {name: True}
    return wf.Step(name, commit=commit)


def _topics(engine: Engine) -> Counter[str]:
    with read_session(engine) as s:
        return Counter(s.execute(select(col(OutboxEvent.topic))).scalars())


def test_a_chained_step_that_fails_is_retried_on_its_own(stocked: Engine) -> None:
    calls: list[str] = []
    # b fails chained after a (rolled back, not an attempt: b then runs on its own), then on
    # its own (an attempt, retried), then succeeds.
    fail: list[BaseException] = [wf.Transient("busy"), wf.Transient("busy")]
    d = wf.Definition("chain", (
        wf.Step("peer", call=lambda run: calls.append(run.step_key) or {"p": 1}),
        _effect("a", []), _effect("b", fail), _effect("c", [])))
    registry = wf.Registry({d.kind: d})
    wid = wf.start(stocked, d, {}, actor="t")
    w = wf.Worker(stocked, None, policy=FAST, registry=registry)
    for _ in range(5):
        w.run_once()
    v = get_workflow(stocked, wid)
    assert v.status == wf.SUCCEEDED, v.error
    assert [(s.name, s.status, s.attempts) for s in v.steps] == [
        ("peer", "done", 1), ("a", "done", 1), ("b", "done", 2), ("c", "done", 1)]
    assert len(calls) == 1  # the peer's call is not made again for its store steps
    assert v.steps[2].last_error is None and v.data == {"p": 1, "a": True, "b": True, "c": True}
    topics = _topics(stocked)  # the rolled-back attempt left nothing
    assert (topics["t.a"], topics["t.b"], topics["t.c"]) == (1, 1, 1)


def test_a_chained_step_that_fails_for_good_compensates(stocked: Engine) -> None:
    undone: list[str] = []
    d = wf.Definition("chain2", (
        wf.Step("peer", call=lambda run: None, undo=lambda run: undone.append("peer")),
        wf.Step("a", commit=_effect("a", []).commit,
                undo_commit=lambda s, run: undone.append("a")),
        _effect("b", [wf.StepFailed("no"), wf.StepFailed("no")]), _effect("c", [])))
    wid = wf.start(stocked, d, {}, actor="t")
    w = wf.Worker(stocked, None, policy=FAST, registry=wf.Registry({d.kind: d}))
    for _ in range(5):
        w.run_once()
    v = get_workflow(stocked, wid)
    assert v.status == wf.FAILED
    assert [(s.name, s.status) for s in v.steps] == [
        ("peer", "compensated"), ("a", "compensated"), ("b", "failed"), ("c", "pending")]
    assert undone == ["a", "peer"]
    assert (_topics(stocked)["t.a"], _topics(stocked)["t.b"]) == (1, 0)


def test_deferred_records_are_written_at_the_end_in_lane_order(stocked: Engine) -> None:
    subjects = sorted((f"s{i}" for i in range(40)), key=audit.lane_of, reverse=True)[:6]
    with read_session(stocked) as s:
        before = s.execute(select(func.count()).select_from(AuditEvent)).scalar_one()
    with transaction(stocked) as s:
        with audit.deferred(s):
            for subject in subjects:
                events.emit(s, "t.first", "t", subject, {})
                audit.append(s, actor="t", action="t.x", subject_type="t", subject_id=subject,
                             outbox=audit.Outbox("t.x", "t", subject, {}))
            inside = s.execute(select(func.count()).select_from(AuditEvent)).scalar_one()
            outbox_inside = s.execute(select(func.count()).select_from(OutboxEvent).where(
                col(OutboxEvent.topic).in_(("t.first", "t.x")))).scalar_one()
        rows = s.execute(select(col(AuditEvent.subject_id), col(AuditEvent.lane))
                         .where(col(AuditEvent.action) == "t.x")
                         .order_by(col(AuditEvent.seq))).all()
        outbox = s.execute(select(col(OutboxEvent.subject_id), col(OutboxEvent.topic))
                           .where(col(OutboxEvent.topic).in_(("t.first", "t.x")))
                           .order_by(col(OutboxEvent.id))).all()
    if stocked.dialect.name == "postgresql":
        assert (inside, outbox_inside) == (before, 0)  # all of it waits for the end
        assert [lane for _, lane in rows] == sorted(lane for _, lane in rows)
    else:  # one writer at a time: nothing to order, written as they come
        assert [subject for subject, _ in rows] == subjects
    assert sorted(subject for subject, _ in rows) == sorted(subjects)
    for subject in subjects:  # each subject's events in the order they were made
        assert [t for sub, t in outbox if sub == subject] == ["t.first", "t.x"]
    audit.verify(stocked)


def test_deferred_records_are_written_in_one_statement(stocked: Engine) -> None:
    """On PostgreSQL the records of a block go in one call (audit_append_batch, migration
    0041), chained as single appends are — several on one lane too — and verifiable."""
    statements: list[str] = []

    def seen(conn: Any, cursor: Any, statement: str, *_: Any) -> None:
        statements.append(statement)

    same_lane = [f"x{i}" for i in range(200) if audit.lane_of(f"x{i}") == 3][:3]
    with transaction(stocked) as s:
        with audit.deferred(s):
            for subject in [*same_lane, "other"]:
                audit.append(s, actor="t", action="t.b", subject_type="t", subject_id=subject,
                             details={"ref": subject},
                             outbox=audit.Outbox("t.b", "t", subject, {"ref": subject}))
                events.emit(s, "t.after", "t", subject, {})
            audit.append(s, actor="t", action="t.plain", subject_type="t", subject_id="plain")
            event.listen(stocked, "before_cursor_execute", seen)
        event.remove(stocked, "before_cursor_execute", seen)
    if stocked.dialect.name == "postgresql":
        assert len(statements) == 1 and "audit_append_batch" in statements[0]
    with read_session(stocked) as s:
        rows = s.execute(select(col(AuditEvent.subject_id), col(AuditEvent.lane),
                                col(AuditEvent.lane_seq), col(AuditEvent.details))
                         .where(col(AuditEvent.action).in_(("t.b", "t.plain")))).all()
        outbox = s.execute(select(col(OutboxEvent.subject_id), col(OutboxEvent.topic))
                           .where(col(OutboxEvent.topic).in_(("t.b", "t.after")))
                           .order_by(col(OutboxEvent.id))).all()
    assert sorted(r[0] for r in rows) == sorted([*same_lane, "other", "plain"])
    lane3 = sorted((r[2], r[0]) for r in rows if r[1] == 3)
    assert [subject for _, subject in lane3 if subject in same_lane] == same_lane
    assert all(r[3] == f'{{"ref":"{r[0]}"}}' for r in rows if r[0] != "plain")
    for subject in [*same_lane, "other"]:  # each subject's events in the order they were made
        assert [t for sub, t in outbox if sub == subject] == ["t.b", "t.after"]
    audit.verify(stocked)


def test_deferred_records_are_dropped_with_a_failed_block(stocked: Engine) -> None:
    with pytest.raises(RuntimeError), transaction(stocked) as s, audit.deferred(s):
        audit.append(s, actor="t", action="t.gone", subject_type="t", subject_id="x")
        raise RuntimeError("boom")
    with transaction(stocked) as s:  # the pooled connection carries nothing deferred over
        audit.append(s, actor="t", action="t.next", subject_type="t", subject_id="x")
    with read_session(stocked) as s:
        actions = list(s.execute(select(col(AuditEvent.action)).where(
            col(AuditEvent.action).like("t.%"))).scalars())
    assert actions == ["t.next"]


def test_a_busy_worker_claims_without_looking_first(deps: Deps,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    for i in range(2):
        start_activation(deps.engine, {"subscriber_ref": f"b{i}"}, actor="t")
    peeks: list[int] = []
    real = wf._any_due

    class Counting:  # the peek is a DirectStatement (no SQLAlchemy events): counted here
        def __init__(self, engine: Engine) -> None:
            self.statement = real(engine)

        def rows(self, **params: Any) -> list[tuple[Any, ...]]:
            got = self.statement.rows(**params)
            peeks.append(len(got))
            return got

    monkeypatch.setattr(wf, "_any_due", Counting)
    w = wf.Worker(deps.engine, deps, policy=FAST, batch=1)
    if deps.engine.dialect.name == "postgresql":
        # The claim is one statement in autocommit there, as cheap as a read: never a peek.
        assert [w.run_once(), w.run_once(), w.run_once(), w.run_once(), peeks] == [
            1, 1, 0, 0, []]
        return
    assert [w.run_once(), peeks] == [1, [1]]  # idle: a read first (it finds one)
    assert [w.run_once(), peeks] == [1, [1]]  # busy: straight to the claim
    assert [w.run_once(), peeks] == [0, [1]]  # nothing claimed by that claim
    assert [w.run_once(), peeks] == [0, [1, 0]]  # idle again: a read, nothing due
