"""The durable workflow store (design §10): one `workflow` row per run of a workflow and one
`workflow_step` row per step of it, written when the run starts so the plan is visible.

A workflow row is the unit workers claim: `next_attempt_at` says when it is due (NULL once it
has finished), `lease_owner`/`lease_token` who holds it. A claim pushes `next_attempt_at` a lease
ahead, so a worker that dies loses only its lease and the run is due again when it expires
(simcore.workflows.engine). Migrations 0800, 0830 (cancel).
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, Column, Index, Integer, Text, UniqueConstraint
from sqlmodel import Field, SQLModel

from simcore.models import UtcDateTime, utcnow


def _ts(nullable: bool = False) -> datetime:
    return Field(default_factory=utcnow if not nullable else None,  # type: ignore[no-any-return]
                 sa_column=Column(UtcDateTime(), nullable=nullable))


class Workflow(SQLModel, table=True):
    """One run of a workflow (activation, suspend, resume, swap, termination)."""

    __tablename__ = "workflow"
    __table_args__ = (
        # Workers look for due runs in this order; finished runs have NULL and drop out.
        Index("ix_workflow_due", "next_attempt_at"),
        Index("ix_workflow_kind_created", "kind", "created_at"),
    )

    id: str = Field(primary_key=True, max_length=36)
    kind: str = Field(max_length=32)
    # pending → running → succeeded, or → compensating → failed | cancelled | stuck
    status: str = Field(max_length=16, index=True)
    subject: str | None = Field(default=None, max_length=128, index=True)  # ICCID, mostly
    input: str = Field(sa_column=Column(Text, nullable=False))  # canonical JSON, no secrets
    data: str = Field(sa_column=Column(Text, nullable=False))  # what the steps found and made
    step: int = 0  # the step to run (forward) or to undo (compensating)
    error: str | None = Field(default=None, sa_column=Column(Text, nullable=True))
    idempotency_key: str | None = Field(default=None, max_length=255, unique=True)
    actor: str = Field(max_length=128)
    trace_id: str | None = Field(default=None, max_length=32)
    next_attempt_at: datetime | None = _ts(nullable=True)
    lease_owner: str | None = Field(default=None, max_length=64)
    lease_token: str | None = Field(default=None, max_length=32)
    created_at: datetime = _ts()
    updated_at: datetime = _ts()
    finished_at: datetime | None = _ts(nullable=True)
    # A cancel asked for (migration 0830): the worker stops at the next step boundary.
    cancel_requested_at: datetime | None = _ts(nullable=True)
    cancel_requested_by: str | None = Field(default=None, max_length=128)
    cancel_reason: str | None = Field(default=None, max_length=200)


class WorkflowStep(SQLModel, table=True):
    """One step of a run: its idempotency key (what the peer sees), attempts, timestamps,
    the last error and its result."""

    __tablename__ = "workflow_step"
    __table_args__ = (UniqueConstraint("workflow_id", "seq"),)

    id: int | None = Field(default=None, sa_column=Column(
        BigInteger().with_variant(Integer(), "sqlite"), primary_key=True, autoincrement=True))
    workflow_id: str = Field(foreign_key="workflow.id", max_length=36, index=True)
    seq: int
    name: str = Field(max_length=32)
    idempotency_key: str = Field(max_length=80, unique=True)
    # pending | done | failed | skipped | compensated | compensation_failed
    status: str = Field(max_length=24)
    attempts: int = 0
    compensation_attempts: int = 0
    started_at: datetime | None = _ts(nullable=True)
    finished_at: datetime | None = _ts(nullable=True)
    compensated_at: datetime | None = _ts(nullable=True)
    last_error: str | None = Field(default=None, sa_column=Column(Text, nullable=True))
    result: str | None = Field(default=None, sa_column=Column(Text, nullable=True))
