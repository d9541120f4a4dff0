"""Tables of simsmith's SM-DP+ (simcore.smdp). Migrations: versions/0400_es2plus.py and
0450_es2plus_stock.py.

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
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Column, Text
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
