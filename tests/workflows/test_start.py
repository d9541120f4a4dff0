"""Starting a run (engine.start): the run, its steps, its audit record and outbox event written
together — on PostgreSQL as one statement in autocommit — and an Idempotency-Key that two
starts race on answers both with the run that won."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import Engine, func, select
from sqlmodel import col

from simcore import audit
from simcore.db import read_session
from simcore.errors import Conflict
from simcore.models import AuditEvent, OutboxEvent
from simcore.workflows import engine as wf
from simcore.workflows.activation import ACTIVATION
from simcore.workflows.models import Workflow, WorkflowStep


def test_a_start_writes_the_run_its_steps_audit_and_outbox(stocked: Engine) -> None:
    wid = wf.start(stocked, ACTIVATION, {"subscriber_ref": "s1"}, actor="tester",
                   subject="s1", trace_id="ab" * 16)
    with read_session(stocked) as s:
        run = s.execute(select(Workflow).where(col(Workflow.id) == wid)).scalar_one()
        steps = s.execute(select(WorkflowStep).where(col(WorkflowStep.workflow_id) == wid)
                          .order_by(col(WorkflowStep.seq))).scalars().all()
        events = s.execute(select(AuditEvent.action, AuditEvent.actor, AuditEvent.details)
                           .where(col(AuditEvent.subject_id) == wid)).all()
        outbox = s.execute(select(OutboxEvent.topic, OutboxEvent.payload)
                           .where(col(OutboxEvent.subject_id) == wid)).all()
    assert (run.kind, run.status, run.step, run.subject, run.actor, run.trace_id) == (
        "activation", "pending", 0, "s1", "tester", "ab" * 16)
    assert run.input == '{"subscriber_ref":"s1"}' and run.data == "{}"
    assert run.next_attempt_at is not None and run.idempotency_key is None
    assert [(st.seq, st.name, st.status, st.idempotency_key, st.attempts) for st in steps] == [
        (i, step.name, "pending", f"{wid}/{i}-{step.name}", 0)
        for i, step in enumerate(ACTIVATION.steps)]
    details = f'{{"subject":"s1","workflow_id":"{wid}"}}'
    assert events == [("workflow.activation.started", "tester", details)]
    assert outbox == [("workflow.activation.started", details)]
    audit.verify(stocked)


def test_a_start_racing_on_its_key_answers_the_run_that_won(
        stocked: Engine, monkeypatch: pytest.MonkeyPatch) -> None:
    first = wf.start(stocked, ACTIVATION, {"subscriber_ref": "k"}, actor="t",
                     idempotency_key="key-1")
    if stocked.dialect.name == "postgresql":
        # The second start reads before the first committed (it finds nothing), then its
        # insert meets the first one's key.
        real = wf._found_by_key
        misses = [1]

        def late(*args: Any) -> str | None:
            if misses:
                misses.pop()
                return None
            return real(*args)
        monkeypatch.setattr(wf, "_found_by_key", late)
    again = wf.start(stocked, ACTIVATION, {"subscriber_ref": "k"}, actor="t",
                     idempotency_key="key-1")
    assert again == first
    with pytest.raises(Conflict):
        wf.start(stocked, ACTIVATION, {"subscriber_ref": "other"}, actor="t",
                 idempotency_key="key-1")
    with read_session(stocked) as s:
        runs = s.execute(select(func.count()).select_from(Workflow)).scalar_one()
        started = s.execute(select(func.count()).select_from(AuditEvent).where(
            col(AuditEvent.action) == "workflow.activation.started")).scalar_one()
    assert (runs, started) == (1, 1)
