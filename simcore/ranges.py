"""Number ranges: ICCID, IMSI and MSISDN blocks an operator owns, and the cursor that hands out
their next free members (generation, vendor orders, the MSISDN pool).

A range's ends are validated identifiers (simcore.identifiers, ITU-T E.118 / TS 23.003 / E.164);
ranges of one kind never overlap. Every write is one transaction with its audit event.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import Engine, func, select, update
from sqlmodel import Session, col

from simcore import audit
from simcore.db import read_session, transaction
from simcore.errors import Conflict, InvalidInput, NotFound
from simcore.identifiers import IdentifierRange
from simcore.models import NumberRange


class RangeOverlap(Conflict):
    """A new range overlaps an existing one."""


class RangeExhausted(Conflict):
    """A range has fewer free members than asked for."""


def range_of(r: NumberRange) -> IdentifierRange[Any]:
    return IdentifierRange(r.kind, r.first, r.last, r.mnc_length)  # type: ignore[arg-type]


def add_range(
    engine: Engine, kind: str, first: str, last: str, *, name: str,
    mnc_length: int | None = None, actor: str,
) -> NumberRange:
    """Create a range (ends validated, overlap with any existing range of the kind refused)."""
    if kind not in ("iccid", "imsi", "msisdn"):
        raise InvalidInput("kind", f"unknown range kind {kind!r}", expected="iccid, imsi, msisdn")
    new = IdentifierRange.of(kind, first, last, mnc_length)  # type: ignore[arg-type]
    with transaction(engine) as s:
        if s.execute(select(NumberRange).where(col(NumberRange.name) == name)).first():
            raise Conflict(f"range name {name!r} is already taken")
        for existing in s.execute(
            select(NumberRange).where(col(NumberRange.kind) == kind)
        ).scalars():
            if range_of(existing).overlaps(new):
                raise RangeOverlap(
                    f"{kind} range {first}..{last} overlaps range {existing.name!r} "
                    f"({existing.first}..{existing.last})"
                )
        row = NumberRange(name=name, kind=kind, first=new.first, last=new.last,
                          mnc_length=new.mnc_length, next_offset=0)
        s.add(row)
        s.flush()
        audit.append(s, actor=actor, action="range.add", subject_type="range", subject_id=name,
                     details={"kind": kind, "first": first, "last": last, "size": len(new)},
                     outbox=audit.Outbox("range.created", "range", name,
                                         {"kind": kind, "size": len(new)}))
    return row


def list_ranges(engine: Engine) -> list[NumberRange]:
    with read_session(engine) as s:
        return list(s.execute(select(NumberRange).order_by(col(NumberRange.id))).scalars())


def get_range(session: Session, name: str, kind: str | None = None) -> NumberRange:
    stmt = select(NumberRange).where(col(NumberRange.name) == name)
    r: NumberRange | None = session.execute(stmt).scalar_one_or_none()
    if r is None:
        raise NotFound(f"no range named {name!r}")
    if kind is not None and r.kind != kind:
        raise InvalidInput("range", f"{name!r} is an {r.kind} range", expected=f"an {kind} range")
    return r


def default_range(session: Session, kind: str) -> NumberRange:
    rows: Sequence[NumberRange] = session.execute(
        select(NumberRange).where(col(NumberRange.kind) == kind).order_by(col(NumberRange.id))
    ).scalars().all()
    for r in rows:
        if r.next_offset < len(range_of(r)):
            return r
    if rows:
        raise RangeExhausted(f"every {kind} range is used up; add one with `simsmith range add`")
    raise NotFound(f"no {kind} range exists; add one with `simsmith range add {kind} …`")


def take_from_range(session: Session, r: NumberRange, count: int, column: Any) -> list[str]:
    """The next `count` free members of `r` (skipping any already present in `column`), and
    move the range's cursor past them. Caller holds the transaction."""
    rng = range_of(r)
    out: list[str] = []
    offset = r.next_offset
    while len(out) < count:
        left = len(rng) - offset
        if left <= 0:
            raise RangeExhausted(
                f"{r.kind} range {r.name!r} has {len(out)} free members left, {count} asked for"
            )
        want = min(count - len(out), left)
        chunk = list(rng.values(offset, want))
        offset += want
        # Members used elsewhere (e.g. an imported vendor file) are skipped, never reused.
        taken = set(session.execute(
            select(column).where(column >= chunk[0], column <= chunk[-1],
                                 func.length(column) == len(chunk[0]))
        ).scalars())
        out.extend(v for v in chunk if v not in taken)
    session.execute(update(NumberRange).where(col(NumberRange.id) == r.id)
                    .values(next_offset=offset))
    r.next_offset = offset
    return out
