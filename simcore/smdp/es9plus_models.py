"""Tables of the SM-DP+'s ES9+ downloads (simcore.smdp.es9plus, download_orders). Migrations:
versions/0700_es9plus_sessions.py, 0720_smdp_download_counter.py, 0721_smdp_order_expiry.py.

- `smdp_download_counter`: wrong confirmation codes and BPPs delivered per order (retry
  limits), and the end of the order's validity; migrations 0720, 0721.
- `smdp_download_session`: one RSP session per transactionId (SGP.22 §3.1.2), so every API
  worker and machine serves any step of a download; swept once expired (index on expires_at).
  Nothing secret: challenges, the CI key identifier, the eUICC certificate and smdpSignature2
  are public values; the one-time keys and the profile never leave the request that uses them.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Boolean, Column, LargeBinary
from sqlmodel import Field, SQLModel

from simcore.models import UtcDateTime


class SmdpDownloadSession(SQLModel, table=True):
    __tablename__ = "smdp_download_session"

    transaction_id: str = Field(primary_key=True, max_length=32)  # hex, upper case
    stage: str = Field(max_length=16)
    euicc_challenge: bytes = Field(sa_column=Column(LargeBinary, nullable=False))
    server_challenge: bytes = Field(sa_column=Column(LargeBinary, nullable=False))
    ci_key_id: bytes = Field(sa_column=Column(LargeBinary, nullable=False))
    expires_at: datetime = Field(sa_column=Column(UtcDateTime(), nullable=False, index=True))
    matching_id: str | None = Field(default=None, max_length=255)
    eid: str | None = Field(default=None, max_length=32)
    iccid: str | None = Field(default=None, max_length=20)
    euicc_certificate: bytes | None = Field(default=None,
                                            sa_column=Column(LargeBinary, nullable=True))
    smdp_signature2: bytes | None = Field(default=None,
                                          sa_column=Column(LargeBinary, nullable=True))
    cc_required: bool = Field(default=False, sa_column=Column(Boolean, nullable=False))


class SmdpDownloadCounter(SQLModel, table=True):
    """Per released order (ICCID + matching ID): wrong confirmation codes and BPPs delivered,
    for the retry limits of SGP.22 §3.1.3 (simcore.smdp.download_orders), and when the order
    expires (simcore.smdp.order_validity). A new matching ID for the same profile (a new order
    after a cancel) starts from zero. Migrations 0720, 0721."""

    __tablename__ = "smdp_download_counter"

    iccid: str = Field(primary_key=True, max_length=20)
    matching_id: str = Field(max_length=255)
    cc_failures: int = Field(default=0)
    downloads: int = Field(default=0)
    last_transaction_id: str | None = Field(default=None, max_length=32)
    updated_at: datetime = Field(sa_column=Column(UtcDateTime(), nullable=False))
    # The end of the order's validity (simcore.smdp.order_validity); None: never. Migration 0721.
    expires_at: datetime | None = Field(
        default=None, sa_column=Column(UtcDateTime(), nullable=True, index=True))
