"""How long a released download order stays valid at simsmith's SM-DP+ (GSMA SGP.22 v2.5 §3.1.3:
an expired order is refused at ES9+.AuthenticateClient with 8.8.5 / 4.10 "Download order -
Time to Live Expired"; SGP.22 leaves the validity to the SM-DP+'s operator).

The end of validity is kept per profile with the order's counters (`smdp_download_counter`,
keyed by ICCID, for the order's matching ID; migration 0721) and set when the order is
confirmed: now + SIMSMITH_SMDP_ORDER_VALIDITY when ConfirmOrder releases it, at ReleaseProfile
for an order confirmed without release, None (never) when no validity is configured. Every
release path writes it in its own transaction: ES2+ ConfirmOrder / ReleaseProfile
(simcore.smdp.orders), the in-process SM-DP+ (simcore.smdp.in_process) and the order service's
one-transaction order (simcore.esim_orders). The ES9+ side (simcore.smdp.download_orders) reads
it with the order, refuses and ends an expired one, and sweeps those nobody came for.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Table, bindparam, case, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from simcore.db import Tx, core
from simcore.models import utcnow
from simcore.smdp.es9plus_models import SmdpDownloadCounter

_COUNTER: Table = SmdpDownloadCounter.__table__  # type: ignore[attr-defined]


def valid_until(validity: timedelta | None, now: datetime | None = None) -> datetime | None:
    """The end of an order released now (None: it never expires)."""
    return None if validity is None else (now or utcnow()) + validity


def record_confirmed(tx: Tx, iccid: str, matching_id: str, expires_at: datetime | None) -> None:
    """ConfirmOrder: the order's end of validity (None until released, or never). A new
    matching ID for the profile starts its counters from zero, as the ES9+ side does."""
    conn = core(tx)
    conn.execute(_confirmed_statement(conn.dialect.name), {
        "iccid": iccid, "matching_id": matching_id, "expires_at": expires_at,
        "updated_at": utcnow()})


def record_released(tx: Tx, iccid: str, expires_at: datetime | None) -> None:
    """ReleaseProfile of an order confirmed before: its validity starts now."""
    core(tx).execute(_RELEASED, {"b_iccid": iccid, "b_expires_at": expires_at,
                                 "b_updated_at": utcnow()})


_RELEASED = (update(_COUNTER).where(_COUNTER.c.iccid == bindparam("b_iccid"))
             .values(expires_at=bindparam("b_expires_at"),
                     updated_at=bindparam("b_updated_at")))


def _confirmed_statement(dialect: str) -> Any:
    statement = (pg_insert(_COUNTER) if dialect == "postgresql" else sqlite_insert(_COUNTER)
                 ).values(iccid=bindparam("iccid"), matching_id=bindparam("matching_id"),
                          cc_failures=0, downloads=0, expires_at=bindparam("expires_at"),
                          updated_at=bindparam("updated_at"))
    same = _COUNTER.c.matching_id == statement.excluded.matching_id
    return statement.on_conflict_do_update(
        index_elements=[_COUNTER.c.iccid],
        set_={"matching_id": statement.excluded.matching_id,
              "downloads": case((same, _COUNTER.c.downloads), else_=0),
              "cc_failures": case((same, _COUNTER.c.cc_failures), else_=0),
              "expires_at": statement.excluded.expires_at,
              "updated_at": statement.excluded.updated_at})
