"""Table of the SM-DP+ stock (simcore.es2plus_stock). Migration: versions/0450_es2plus_stock.py.

- `es2plus_stock`: which operator (functionRequesterIdentifier) a batch of eSIM profiles was
  stocked for at simsmith's SM-DP+; only that operator's DownloadOrder takes them. A batch
  without a row is open to every operator.
"""

from __future__ import annotations

from datetime import datetime

from sqlmodel import Field, SQLModel

from simcore.models import _ts


class Es2PlusStock(SQLModel, table=True):
    __tablename__ = "es2plus_stock"

    batch_id: int = Field(primary_key=True, foreign_key="batch.id")
    operator: str = Field(max_length=128)
    created_at: datetime = _ts()
