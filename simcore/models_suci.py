"""The SUCI home-network key registry (issue 20; docs/suci.md). Migration: 0630_suci_keys.py.

One row per home network public key identifier (0-255, TS 23.003 §2.2B): its ECIES profile,
public key, the HSM's KeyRef token of the private key (wrapped, never clear) and its state.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Column, Integer, Text
from sqlmodel import Field, SQLModel

from simcore.models import _ts


class SuciKey(SQLModel, table=True):
    """A home-network key pair: `active` keys de-conceal, a `retired` one refuses."""

    __tablename__ = "suci_key"

    key_id: int = Field(sa_column=Column(Integer, primary_key=True, autoincrement=False))
    scheme: int  # TS 33.501 table C.1-1: 1 Profile A, 2 Profile B
    public_key: str = Field(max_length=130)  # hex: 32 octets (A), compressed point (B)
    key_ref: str = Field(sa_column=Column(Text, nullable=False))  # KeyRef token (wrapped)
    source: str = Field(max_length=16)  # generated | imported
    state: str = Field(max_length=16)  # active | retired
    created_at: datetime = _ts()
    retired_at: datetime | None = _ts(nullable=True)
