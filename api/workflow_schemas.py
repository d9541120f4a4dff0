"""Request and response models of the workflow resources (/v1/activations and siblings)."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from simcore.workflows.service import WorkflowView


class ActivationCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    subscriber_ref: str = Field(min_length=1, max_length=128)
    kind: Literal["physical", "esim"] = "physical"
    iccid: str | None = Field(default=None, max_length=22,
                              description="This SIM; unset: the next in stock")
    msisdn: str | None = Field(default="auto", max_length=20,
                               description='"auto" (the next available), a number, or null')
    eid: str | None = Field(default=None, max_length=40, description="eSIM: the device's EID")
    batch: str | None = Field(default=None, max_length=64)
    form_factor: str | None = Field(default=None, max_length=16)


class SuspensionCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    iccid: str = Field(max_length=22)
    reason: str | None = Field(default=None, max_length=200)


class ResumptionCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    iccid: str = Field(max_length=22)


class SwapCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    iccid: str = Field(max_length=22, description="The SIM being replaced")
    new_iccid: str | None = Field(default=None, max_length=22,
                                  description="The SIM taking over; unset: the next in stock")
    resume: bool = Field(default=False, description="A suspended SIM's new SIM takes over "
                         "suspended and barred at the HLR; true resumes the subscription "
                         "with the swap (new SIM active, access allowed; audited)")


class TerminationCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    iccid: str = Field(max_length=22)
    reason: str = Field(min_length=1, max_length=200)


class CancelRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    reason: str = Field(min_length=1, max_length=200, description="Why (audited)")


class StepPublic(BaseModel):
    seq: int
    name: str
    status: str = Field(description="pending | done | failed | skipped | compensated | "
                        "compensation_failed")
    idempotency_key: str = Field(description="What the peer sees for this step")
    attempts: int
    compensation_attempts: int
    started_at: datetime | None
    finished_at: datetime | None
    compensated_at: datetime | None
    last_error: str | None
    result: dict[str, Any]


class WorkflowPublic(BaseModel):
    id: str
    kind: str
    status: str = Field(description="pending | running | compensating | succeeded | failed "
                        "(compensated) | cancelled (compensated after a cancel) | stuck (a "
                        "compensation kept failing)")
    subject: str | None
    input: dict[str, Any]
    data: dict[str, Any] = Field(description="What the steps found and made (ICCID, IMSI, "
                                 "MSISDN, Matching ID, …); never a secret")
    error: str | None
    notice: str | None = Field(default=None, description="What the caller must know of the "
                               "outcome in plain words, e.g. that a terminated eSIM profile "
                               "remains on the device until the user deletes it")
    trace_id: str | None
    created_at: datetime
    updated_at: datetime
    finished_at: datetime | None
    next_attempt_at: datetime | None
    cancel_requested_at: datetime | None = Field(
        default=None, description="When a cancel was asked (the worker stops at the next step "
        "boundary)")
    cancel_requested_by: str | None = None
    cancel_reason: str | None = None
    steps: list[StepPublic]

    @classmethod
    def of(cls, v: WorkflowView) -> WorkflowPublic:
        return cls(id=v.id, kind=v.kind, status=v.status, subject=v.subject, input=v.input,
                   data=v.data, error=v.error, notice=v.notice, trace_id=v.trace_id,
                   created_at=v.created_at,
                   updated_at=v.updated_at, finished_at=v.finished_at,
                   next_attempt_at=v.next_attempt_at,
                   cancel_requested_at=v.cancel_requested_at,
                   cancel_requested_by=v.cancel_requested_by, cancel_reason=v.cancel_reason,
                   steps=[StepPublic(**s.__dict__) for s in v.steps])
