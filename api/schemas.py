"""The API's models: `…Create` / `…Action` for what comes in, `…Public` for what goes out.

Public models list their fields explicitly: a column added to a table (e.g. a key reference)
never leaks into a response by accident. No model has a field for Ki, OPc, ADM or OTA keys.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, Field

from simcore.models import AuditEvent, MsisdnEntry, Sim


class SimPublic(BaseModel):
    iccid: str
    imsi: str | None
    kind: str
    form_factor: str | None
    state: str
    profile_state: str | None
    subscriber_ref: str | None
    msisdn: str | None
    eid: str | None
    batch_id: int | None
    has_keys: bool = Field(description="Whether the HSM holds keys for this SIM (never shown)")
    reason: str | None
    version: int = Field(description="Send back as `version` (or If-Match) to change the SIM")
    created_at: datetime
    updated_at: datetime

    @classmethod
    def of(cls, sim: Sim) -> SimPublic:
        return cls(iccid=sim.iccid, imsi=sim.imsi, kind=sim.kind, form_factor=sim.form_factor,
                   state=sim.state, profile_state=sim.profile_state,
                   subscriber_ref=sim.subscriber_ref, msisdn=sim.msisdn, eid=sim.eid,
                   batch_id=sim.batch_id, has_keys=bool(sim.ki_ref), reason=sim.reason,
                   version=sim.version, created_at=sim.created_at, updated_at=sim.updated_at)


class SimAllocate(BaseModel):
    subscriber_ref: str = Field(min_length=1, max_length=128)
    kind: Literal["physical", "esim"] = "physical"
    form_factor: str | None = Field(default=None, max_length=16)
    batch: str | None = Field(default=None, max_length=64)


class VersionedAction(BaseModel):
    version: int | None = Field(default=None, ge=1, description="Expected SIM version "
                                "(optimistic locking); or send If-Match")


class SimActivate(VersionedAction):
    msisdn: str | None = Field(default=None, max_length=16,
                               description='An MSISDN from the pool, or "auto"')


class SimSuspend(VersionedAction):
    reason: str | None = Field(default=None, max_length=64)


class SimTerminate(VersionedAction):
    reason: str = Field(min_length=1, max_length=64)


class SimSwap(VersionedAction):
    new_iccid: str | None = Field(default=None, max_length=22,
                                  description="The SIM to move to; default: next in stock")
    reason: str = Field(default="swapped", min_length=1, max_length=64)
    resume: bool = Field(default=False, description="A suspended SIM's new SIM takes over "
                         "suspended; true resumes the subscription with the swap (audited)")


class SwapPublic(BaseModel):
    old: SimPublic
    new: SimPublic


class QrLinks(BaseModel):
    png_url: str
    svg_url: str
    png_data_uri: str | None = Field(description="The PNG inline (omitted with qr_data_uri=false)")


class InstallLinks(BaseModel):
    lpa: str = Field(description="`LPA:1$…` URI (QR content, Android deep link)")
    ios: str = Field(description="Apple's universal link for eSIM installation")


class EsimOrderCreate(BaseModel):
    external_ref: str = Field(min_length=1, max_length=128,
                              description="Your reference for the customer or order")
    eid: str | None = Field(default=None, max_length=32,
                            description="The device's EID, if known (links the profile)")
    confirmation_code: bool = Field(default=False, description="Require a confirmation code")
    batch: str | None = Field(default=None, max_length=64)


class EsimCancel(BaseModel):
    final_status: Literal["available", "unavailable"] = "available"


class EsimProfilePublic(BaseModel):
    iccid: str
    external_ref: str
    eid: str | None
    status: str | None = Field(description="SM-DP+ profile state (SGP.22): available, "
                               "allocated, linked, confirmed, released, downloaded, installed, "
                               "enabled, disabled, deleted, error, unavailable")
    order_status: str = Field(description="active, cancelled or failed")
    sim_state: str
    smdp_address: str
    matching_id: str
    activation_code: str = Field(description="SGP.22 §4.1 activation code (no LPA: prefix)")
    confirmation_code_required: bool
    confirmation_code: str | None = Field(
        default=None, description="Only in the response that created the order")
    download_expires_at: datetime | None = Field(
        default=None, description="When simsmith's SM-DP+ stops taking this download order "
        "(SIMSMITH_SMDP_ORDER_VALIDITY after its release; SGP.22 8.8.5 / 4.10 after it, the "
        "profile then in error); null: it never expires, or another SM-DP+ holds it")
    qr: QrLinks
    install: InstallLinks
    created_at: datetime
    updated_at: datetime


class MsisdnPublic(BaseModel):
    msisdn: str
    state: str
    iccid: str | None
    quarantine_until: datetime | None
    version: int
    updated_at: datetime

    @classmethod
    def of(cls, e: MsisdnEntry) -> MsisdnPublic:
        return cls(msisdn=e.msisdn, state=e.state, iccid=e.iccid,
                   quarantine_until=e.quarantine_until, version=e.version,
                   updated_at=e.updated_at)


class MsisdnAssign(BaseModel):
    iccid: str = Field(min_length=18, max_length=22)


class AuditEventPublic(BaseModel):
    seq: int
    lane: int
    lane_seq: int
    ts: str
    actor: str
    action: str
    subject_type: str
    subject_id: str
    details: dict[str, Any]
    prev_hash: str
    hash: str

    @classmethod
    def of(cls, ev: AuditEvent) -> AuditEventPublic:
        import json

        return cls(seq=int(ev.seq or 0), lane=ev.lane, lane_seq=ev.lane_seq, ts=ev.ts,
                   actor=ev.actor, action=ev.action, subject_type=ev.subject_type,
                   subject_id=ev.subject_id, details=json.loads(ev.details),
                   prev_hash=ev.prev_hash, hash=ev.hash)


class AuditVerifyPublic(BaseModel):
    ok: bool
    events: int
    lanes: int
    digest: str = Field(description="SHA-256 over every lane head; note it to anchor the log")
    from_checkpoint: int | None = Field(
        default=None, description="The signed checkpoint the walk started from (null: all)")
    walked: int = Field(default=0, description="Events re-hashed by this verify")


class WebhookCreate(BaseModel):
    url: str = Field(min_length=8, max_length=2048, pattern=r"^https?://")
    topics: list[str] = Field(default_factory=lambda: ["*"],
                              description='Event topics, e.g. "sim.state_changed"; "*" = all')
    secret: str | None = Field(default=None, min_length=16, max_length=128,
                               description="Signing secret; generated when omitted")


class WebhookPublic(BaseModel):
    id: int
    url: str
    topics: list[str]
    active: bool
    created_at: datetime
    secret: str | None = Field(default=None, description="Only in the creation response")


class DeliveryPublic(BaseModel):
    id: int
    subscription_id: int
    event_id: int
    topic: str
    state: str = Field(description="pending, delivered or dead")
    attempts: int
    next_attempt_at: datetime | None
    last_status: int | None
    last_error: str | None
    created_at: datetime
    delivered_at: datetime | None


class Health(BaseModel):
    status: str
    checks: dict[str, str] = Field(default_factory=dict)
