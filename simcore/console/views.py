"""Read models for the console's pages that no other service gives: the dashboard's counts,
the prefix search over a SIM's four identifiers, and one SIM's audit trail, webhook events and
workflow runs.

Reads only; bounded (every list has a limit, every count one grouped query).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any, Literal

from sqlalchemy import Engine, func, select
from sqlmodel import col

from simcore import inventory, nats_relay, webhooks
from simcore.db import read_session
from simcore.errors import InvalidInput
from simcore.models import AuditEvent, Batch, OutboxEvent, Sim, utcnow
from simcore.models_api import EsimOrder, ImportJob, WebhookDelivery
from simcore.workflows.engine import LIVE
from simcore.workflows.models import Workflow
from simcore.workflows.service import WorkflowView, list_workflows

SearchField = Literal["any", "iccid", "imsi", "msisdn", "eid"]
SEARCH_FIELDS: tuple[SearchField, ...] = ("any", "iccid", "imsi", "msisdn", "eid")
_MAX_LEN = {"iccid": 20, "imsi": 15, "msisdn": 15, "eid": 32, "any": 32}


@dataclass(frozen=True)
class Dashboard:
    sims_by_state: dict[str, int]  # physical SIMs
    profiles_by_state: dict[str, int]  # eSIM profiles, by SM-DP+ state
    esims_by_state: dict[str, int]  # eSIM profiles, by service state
    imports_24h: dict[str, int]  # import jobs of the last 24 h by status
    rows_imported_24h: int
    activations_24h: int
    esim_orders_24h: int
    webhook_deliveries: dict[str, int]  # by state
    webhook_dead_24h: int
    outbox_pending: int
    extra: dict[str, Any] = field(default_factory=dict)
    workflows_24h: dict[str, int] = field(default_factory=dict)  # runs started, by status
    workflows_live: int = 0  # runs not finished (any age)


def dashboard(engine: Engine) -> Dashboard:
    summary = inventory.summary(engine)
    sims = {st: n for (k, st), n in summary.by_kind_state.items() if k == "physical"}
    esims = {st: n for (k, st), n in summary.by_kind_state.items() if k == "esim"}
    since = utcnow() - timedelta(hours=24)
    with read_session(engine) as s:
        profiles = {str(st): int(n) for st, n in s.execute(
            select(col(Sim.profile_state), func.count()).where(col(Sim.kind) == "esim")
            .group_by(col(Sim.profile_state))).all() if st is not None}
        imports = {str(st): int(n) for st, n in s.execute(
            select(col(ImportJob.status), func.count())
            .where(col(ImportJob.created_at) >= since).group_by(col(ImportJob.status))).all()}
        rows = s.execute(select(func.coalesce(func.sum(col(ImportJob.rows_done)), 0))
                         .where(col(ImportJob.created_at) >= since)).scalar_one()
        # Audit timestamps are ISO 8601 UTC strings: they compare in time order as text.
        activations = s.execute(select(func.count()).select_from(AuditEvent).where(
            col(AuditEvent.action) == "sim.active",
            col(AuditEvent.ts) >= since.isoformat())).scalar_one()
        orders = s.execute(select(func.count()).select_from(EsimOrder).where(
            col(EsimOrder.created_at) >= since)).scalar_one()
        flows = {str(st): int(n) for st, n in s.execute(
            select(col(Workflow.status), func.count())
            .where(col(Workflow.created_at) >= since).group_by(col(Workflow.status))).all()}
        live = s.execute(select(func.count()).select_from(Workflow).where(
            col(Workflow.status).in_(LIVE))).scalar_one()
        dead = s.execute(select(func.count()).select_from(WebhookDelivery).where(
            col(WebhookDelivery.state) == "dead",
            col(WebhookDelivery.created_at) >= since)).scalar_one()
    backlog = webhooks.backlog(engine)
    relay = nats_relay.status(engine)
    if relay.get("registered"):
        nats = {"NATS relay backlog": relay.get("backlog"),
                "NATS relayed (total)": relay.get("relayed_count"),
                "NATS last relayed": _when(relay.get("last_relayed_at")),
                "NATS last error": relay.get("last_error") or "none"}
    else:
        nats = {"NATS relay": "not running"}
    deliveries = {k.removeprefix("deliveries_"): v for k, v in backlog.items()
                  if k.startswith("deliveries_")}
    return Dashboard(sims_by_state=sims, profiles_by_state=profiles, esims_by_state=esims,
                     imports_24h=imports, rows_imported_24h=int(rows),
                     activations_24h=int(activations), esim_orders_24h=int(orders),
                     webhook_deliveries=deliveries, webhook_dead_24h=int(dead),
                     outbox_pending=backlog.get("outbox_pending", 0), extra=nats,
                     workflows_24h=flows, workflows_live=int(live))


def _when(value: Any) -> str:
    return value.strftime("%Y-%m-%d %H:%M:%S UTC") if value is not None else "never"


def normalise_query(text: str, where: str) -> str:
    """The digits of a search: spaces, dashes and a leading '+' dropped; anything else is an
    InvalidInput naming its position."""
    if where not in SEARCH_FIELDS:
        raise InvalidInput("field", "unknown search field", value=where[:16],
                           expected=", ".join(SEARCH_FIELDS))
    out: list[str] = []
    for i, ch in enumerate(text.strip()):
        if ch in " -" or (ch == "+" and not out):
            continue
        if not ch.isascii() or not ch.isdigit():
            raise InvalidInput("q", "not a digit", value=text[:40], position=i,
                               expected="the first digits of an ICCID, IMSI, MSISDN or EID")
        out.append(ch)
    digits = "".join(out)
    if not digits:
        raise InvalidInput("q", "empty search", expected="at least one digit")
    if len(digits) > _MAX_LEN[where]:
        raise InvalidInput("q", "longer than any identifier", value=digits[:40],
                           position=_MAX_LEN[where], expected=f"at most {_MAX_LEN[where]} digits")
    return digits


def _prefix(column: Any, digits: str) -> Any:
    # A range, not LIKE: a B-tree index serves it on both databases whatever the collation.
    upper = digits[:-1] + chr(ord(digits[-1]) + 1)
    return (column >= digits) & (column < upper)


_COLUMNS = {"iccid": col(Sim.iccid), "imsi": col(Sim.imsi), "msisdn": col(Sim.msisdn),
            "eid": col(Sim.eid)}


@dataclass(frozen=True)
class SearchPage:
    """SIMs found, and per identifier whose page was full, where its next page starts."""

    sims: list[Sim]
    more: dict[str, str]  # field -> the last value shown (the `after` of its next page)


def _search_one(engine: Engine, where: str, digits: str, after: str | None,
                limit: int) -> list[Sim]:
    column = _COLUMNS[where]
    # Ordered by the searched column itself: the index that finds the prefix also yields the
    # order, so a page reads `limit` rows however many SIMs share a short prefix.
    stmt = select(Sim).where(_prefix(column, digits))
    if after:
        stmt = stmt.where(column > after)
    with read_session(engine) as s:
        return list(s.execute(stmt.order_by(column).limit(limit)).scalars())


def search_sims(engine: Engine, text: str, *, where: str = "any", after: str | None = None,
                limit: int = 25) -> SearchPage:
    """SIMs whose ICCID, IMSI, MSISDN or EID (or the one named by `where`) starts with the
    digits of `text`, a page of `limit` per identifier, in that identifier's order (keyset
    paging by `after`, a value of that identifier; with "any", first pages only)."""
    digits = normalise_query(text, where)
    limit = max(1, min(limit, 200))
    if after is not None and (not after.isdigit() or len(after) > 32):
        raise InvalidInput("after", "not an identifier", value=after[:40], expected="digits")
    fields = [where] if where != "any" else list(_COLUMNS)
    found: list[Sim] = []
    seen: set[str] = set()
    more: dict[str, str] = {}
    for f in fields:
        page = _search_one(engine, f, digits, after if where != "any" else None, limit)
        if len(page) == limit:
            more[f] = str(getattr(page[-1], f))
        for sim in page:
            if sim.iccid not in seen:
                seen.add(sim.iccid)
                found.append(sim)
    return SearchPage(found, more)


@dataclass(frozen=True)
class SimContext:
    """What the SIM detail page shows beside the SIM itself."""

    batch: Batch | None
    orders: list[EsimOrder]
    audit: list[AuditEvent]
    events: list[OutboxEvent]
    deliveries: list[WebhookDelivery]


def sim_context(engine: Engine, iccid: str, *, limit: int = 50) -> SimContext:
    sim = inventory.get_sim(engine, iccid)
    with read_session(engine) as s:
        batch = s.get(Batch, sim.batch_id) if sim.batch_id is not None else None
        orders = list(s.execute(select(EsimOrder).where(col(EsimOrder.iccid) == sim.iccid)
                                .order_by(col(EsimOrder.id).desc()).limit(limit)).scalars())
        trail = list(s.execute(select(AuditEvent).where(col(AuditEvent.subject_id) == sim.iccid)
                               .order_by(col(AuditEvent.seq).desc()).limit(limit)).scalars())
        events = list(s.execute(select(OutboxEvent)
                                .where(col(OutboxEvent.subject_id) == sim.iccid)
                                .order_by(col(OutboxEvent.id).desc()).limit(limit)).scalars())
        ids = [e.id for e in events]
        deliveries = list(s.execute(select(WebhookDelivery)
                                    .where(col(WebhookDelivery.event_id).in_(ids))
                                    .order_by(col(WebhookDelivery.id).desc())).scalars()
                          ) if ids else []
    return SimContext(batch=batch, orders=orders, audit=trail, events=events,
                      deliveries=deliveries)


def sim_workflows(engine: Engine, sim: Sim, *, limit: int = 10) -> list[WorkflowView]:
    """The newest workflow runs about a SIM: those whose subject is its ICCID, and those of
    its subscriber (an activation that took the next SIM in stock is the subscriber's)."""
    runs = {v.id: v for v in list_workflows(engine, subject=sim.iccid, limit=limit)}
    if sim.subscriber_ref:
        for v in list_workflows(engine, subject=sim.subscriber_ref, limit=limit):
            runs.setdefault(v.id, v)
    return sorted(runs.values(), key=lambda v: (v.created_at, v.id), reverse=True)[:limit]
