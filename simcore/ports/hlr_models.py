"""The embedded HLR's subscriber register (simcore.ports.embedded_hlr): one row per IMSI, as an
HLR holds it (3GPP TS 23.008 §2.1 IMSI, §2.1.2 MSISDN, §2.4 network access mode: CS and PS
allowed or barred), with the authentication keys as the HSM's references — never K or OPc in
clear. Migration 0801.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Column, Text
from sqlmodel import Field, SQLModel

from simcore.models import UtcDateTime, utcnow


class HlrEntry(SQLModel, table=True):
    """One subscriber of the embedded HLR."""

    __tablename__ = "hlr_subscriber"

    imsi: str = Field(primary_key=True, max_length=15)
    # Unique like osmo-hlr's: one subscriber per number.
    msisdn: str | None = Field(default=None, max_length=15, unique=True)
    iccid: str = Field(max_length=20, index=True)
    # The SIM's K and OPc as HSM KeyRef tokens (wrapped; hsm_sim.keyref), never clear keys.
    ki_ref: str = Field(sa_column=Column(Text, nullable=False), repr=False)
    opc_ref: str = Field(sa_column=Column(Text, nullable=False), repr=False)
    cs_allowed: bool = True
    ps_allowed: bool = True
    created_at: datetime = Field(default_factory=utcnow,
                                 sa_column=Column(UtcDateTime(), nullable=False))
    updated_at: datetime = Field(default_factory=utcnow,
                                 sa_column=Column(UtcDateTime(), nullable=False))
