"""Tables of the provisioning API's services: API keys, idempotency records, eSIM orders,
webhook subscriptions and deliveries. Migration: simcore/migrations/versions/0200_api.py.

No secret in clear except what must be: an API key is stored as its SHA-256 only; a webhook
subscription's signing secret is kept as given (the deliverer needs it to sign) and never
returned after creation; a confirmation code is stored as SHA256(CC) (SGP.22 §3.1.3).
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, Column, Index, Integer, Text, UniqueConstraint
from sqlmodel import Field, SQLModel

from simcore.models import _ts


class ApiKey(SQLModel, table=True):
    """A key for the API: shown once at creation, stored as SHA-256 of the whole key."""

    __tablename__ = "api_key"

    id: int | None = Field(default=None, primary_key=True)
    name: str = Field(max_length=64)
    prefix: str = Field(max_length=16)  # the key's first characters, to recognise it in lists
    key_hash: str = Field(max_length=64, unique=True)
    scopes: str = Field(max_length=512)  # space-separated
    created_at: datetime = _ts()
    revoked_at: datetime | None = _ts(nullable=True)


class IdempotencyRecord(SQLModel, table=True):
    """The stored outcome of a POST sent with an Idempotency-Key, per API key."""

    __tablename__ = "idempotency_record"
    __table_args__ = (UniqueConstraint("api_key_id", "key"),)

    id: int | None = Field(default=None, primary_key=True)
    api_key_id: int = Field(foreign_key="api_key.id")
    key: str = Field(max_length=255)
    fingerprint: str = Field(max_length=64)  # SHA-256 over method, path and body
    state: str = Field(max_length=16)  # pending | done
    status_code: int | None = None
    content_type: str | None = Field(default=None, max_length=128)
    body: str | None = Field(default=None, sa_column=Column(Text, nullable=True))
    created_at: datetime = _ts(nullable=False)


class EsimOrder(SQLModel, table=True):
    """One eSIM order: the profile (ICCID) given to an external reference, its matching ID and
    SM-DP+ address. The ICCID's latest order is the profile's current one."""

    __tablename__ = "esim_order"

    id: int | None = Field(default=None, sa_column=Column(
        BigInteger().with_variant(Integer(), "sqlite"), primary_key=True, autoincrement=True))
    iccid: str = Field(foreign_key="sim.iccid", max_length=20, index=True)
    external_ref: str = Field(max_length=128, index=True)
    eid: str | None = Field(default=None, max_length=32)
    matching_id: str = Field(max_length=64, unique=True)
    smdp_address: str = Field(max_length=255)
    confirmation_code_hash: str | None = Field(default=None, max_length=64)  # SHA256(CC) hex
    status: str = Field(max_length=16)  # pending | released | cancelled | failed
    created_at: datetime = _ts()
    updated_at: datetime = _ts()


class WebhookSubscription(SQLModel, table=True):
    """Where events go: a URL, the topics it wants ("*" for all) and the signing secret."""

    __tablename__ = "webhook_subscription"

    id: int | None = Field(default=None, primary_key=True)
    url: str = Field(max_length=2048)
    topics: str = Field(default="*", max_length=1024)  # space-separated
    secret: str = Field(max_length=128)
    active: bool = True
    created_at: datetime = _ts()


class WebhookDelivery(SQLModel, table=True):
    """One event for one subscription, with its attempts; `dead` after the last one failed."""

    __tablename__ = "webhook_delivery"
    __table_args__ = (
        UniqueConstraint("subscription_id", "event_id"),
        Index("ix_webhook_delivery_due", "state", "next_attempt_at"),
    )

    id: int | None = Field(default=None, sa_column=Column(
        BigInteger().with_variant(Integer(), "sqlite"), primary_key=True, autoincrement=True))
    subscription_id: int = Field(foreign_key="webhook_subscription.id", index=True)
    event_id: int = Field(sa_column=Column(BigInteger, nullable=False))
    topic: str = Field(max_length=64)
    payload: str = Field(sa_column=Column(Text, nullable=False))  # the exact body sent
    state: str = Field(max_length=16)  # pending | delivered | dead
    attempts: int = 0
    next_attempt_at: datetime | None = _ts(nullable=True)
    last_status: int | None = None
    last_error: str | None = Field(default=None, max_length=256)
    created_at: datetime = _ts()
    delivered_at: datetime | None = _ts(nullable=True)
    # The event's W3C traceparent (OutboxEvent.traceparent), sent as a header.
    traceparent: str | None = Field(default=None, max_length=55)


class ImportJob(SQLModel, table=True):
    """An uploaded vendor file being imported (simcore.import_jobs): progress, result, issues."""

    __tablename__ = "import_job"

    id: int | None = Field(default=None, primary_key=True)
    filename: str = Field(max_length=255)
    path: str = Field(max_length=1024)  # where the upload is kept (sealed) until the job ends
    # The upload's data key wrapped by the HSM (a KeyRef token; simcore.import_uploads), removed
    # when the job ends. NULL for a job whose file is not sealed (none is made so any more).
    upload_key: str | None = Field(default=None, max_length=512)
    options: str = Field(sa_column=Column(Text, nullable=False))  # JSON: format, batch, …
    status: str = Field(max_length=24, index=True)  # queued | running | <ImportResult.status>
    rows_done: int = 0
    rows_total: int | None = None
    result: str | None = Field(default=None, sa_column=Column(Text, nullable=True))  # JSON
    issues: str | None = Field(default=None, sa_column=Column(Text, nullable=True))  # JSON
    issue_count: int = 0
    error: str | None = Field(default=None, max_length=512)
    actor: str = Field(max_length=128)
    created_at: datetime = _ts()
    updated_at: datetime = _ts()
