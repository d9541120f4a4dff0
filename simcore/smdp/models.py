"""Tables of simsmith's SM-DP+ (simcore.smdp). Migrations: versions/0400_es2plus.py,
0450_es2plus_stock.py, 0451_es2plus_call_digest.py and 0452_es2plus_notify.py.

- `es2plus_order`: what simsmith's SM-DP+ keeps per ordered Profile beyond `sim.profile_state`:
  who ordered it (functionRequesterIdentifier), the Profile Type, the Matching ID, SHA256 of the
  confirmation code (SGP.22 §3.1.3; never the code itself) and the SM-DS address.
- `es2plus_call`: every ES2+ call received, by (requester, functionCallIdentifier), with its
  function, a digest of its body and the answer given: the same call repeated gets the same
  answer and changes nothing (notifications resent by an SM-DP+, a client retrying after a lost
  answer); another call under a used identifier is refused (migration 0451 added the digest).
- `es2plus_stock`: which operator (functionRequesterIdentifier) a batch of eSIM profiles was
  stocked for at simsmith's SM-DP+ (simcore.smdp.stock); only that operator's DownloadOrder takes
  them. A batch without a row is open to every operator.
- `es2plus_receiver`: where each operator (functionRequesterIdentifier) receives
  HandleDownloadProgressInfo from this SM-DP+: URL, client certificate for mutual TLS, enabled.
- `es2plus_notification`: one HandleDownloadProgressInfo per (outbox event, operator) with its
  fixed functionCallIdentifier and body, and its delivery state (simcore.smdp.progress_notify).
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, Column, Index, Integer, Text, UniqueConstraint
from sqlmodel import Field, SQLModel

from simcore.models import _ts


class Es2PlusOrder(SQLModel, table=True):
    __tablename__ = "es2plus_order"

    iccid: str = Field(primary_key=True, foreign_key="sim.iccid", max_length=20)
    requester: str = Field(max_length=128)
    profile_type: str | None = Field(default=None, max_length=64)
    matching_id: str | None = Field(default=None, max_length=255, unique=True)
    cc_hash: str | None = Field(default=None, max_length=64, repr=False)
    smds_address: str | None = Field(default=None, max_length=255)
    created_at: datetime = _ts()
    updated_at: datetime = _ts()


class Es2PlusCall(SQLModel, table=True):
    __tablename__ = "es2plus_call"

    requester: str = Field(primary_key=True, max_length=128)
    call_id: str = Field(primary_key=True, max_length=128)
    function: str = Field(max_length=32)
    # SHA-256 of the request without its header (simcore.smdp.es2plus.request_digest); None for
    # calls recorded before migration 0451.
    body_digest: str | None = Field(default=None, max_length=64)
    iccid: str | None = Field(default=None, max_length=20, index=True)
    response: str = Field(sa_column=Column(Text, nullable=False))  # the JSON answer
    created_at: datetime = _ts()


class Es2PlusStock(SQLModel, table=True):
    __tablename__ = "es2plus_stock"

    batch_id: int = Field(primary_key=True, foreign_key="batch.id")
    operator: str = Field(max_length=128)
    created_at: datetime = _ts()


class Es2PlusReceiver(SQLModel, table=True):
    __tablename__ = "es2plus_receiver"

    operator: str = Field(primary_key=True, max_length=128)
    # ES2+ base URL (the function's path is appended), https only.
    url: str = Field(max_length=2048)
    # PEM files for mutual TLS (paths, not the keys); None: the development PKI.
    cert: str | None = Field(default=None, max_length=1024)
    key: str | None = Field(default=None, max_length=1024)
    ca: str | None = Field(default=None, max_length=1024)
    # The functionRequesterIdentifier this SM-DP+ sends; None: the client certificate's CN.
    requester_id: str | None = Field(default=None, max_length=128)
    enabled: bool = True
    created_at: datetime = _ts()
    updated_at: datetime = _ts()


class Es2PlusNotification(SQLModel, table=True):
    __tablename__ = "es2plus_notification"
    __table_args__ = (
        UniqueConstraint("event_id", "operator", name="uq_es2plus_notification_event"),
        Index("ix_es2plus_notification_due", "state", "next_attempt_at"),
    )

    id: int | None = Field(default=None, sa_column=Column(
        BigInteger().with_variant(Integer(), "sqlite"), primary_key=True, autoincrement=True))
    event_id: int = Field(sa_column=Column(BigInteger, nullable=False))
    operator: str = Field(max_length=128, index=True)
    iccid: str = Field(max_length=20, index=True)
    # Fixed at creation: every attempt is the same call, which the receiver replays.
    call_id: str = Field(max_length=64)
    body: str = Field(sa_column=Column(Text, nullable=False))  # JSON without the header
    state: str = Field(default="pending", max_length=16)  # pending | delivered | dead
    attempts: int = 0
    next_attempt_at: datetime | None = _ts(nullable=True)
    last_status: int | None = None
    last_error: str | None = Field(default=None, max_length=256)
    created_at: datetime = _ts()
    delivered_at: datetime | None = _ts(nullable=True)
