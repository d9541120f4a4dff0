"""Vendor order (input) files: what a SIM vendor needs to personalise a batch, and the number
ranges it uses reserved so nothing else hands them out (design §4; docs/import.md).

The file is the header and input-variables part of the ".out" layout
(simcore.vendor_import.parse): `Quantity`, `Profile`, `Batch`, `Transport_key` (name and its
AES-CMAC KCV), `Var_In_List` with the first ICCID and IMSI, and the `var_out:` columns the
vendor is to return. The vendor answers with the same header followed by one row per card.

Reservation, in one transaction with the order's batch record (status `ordered`) and its audit
event: an ICCID or IMSI block inside an operator range must start at or after the range's cursor
and fit in the range; the cursor moves past the block (members skipped are never handed out). A
block outside every range becomes a range of its own, fully used (`add_range`'s overlap check
refuses a block that overlaps any range). SIMs already in the store inside the block are refused.
When the vendor's output file is imported, the import fills the ordered batch.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import Engine, func, select, update
from sqlmodel import Session, col

from simcore import audit
from simcore.db import transaction
from simcore.errors import Conflict, InvalidInput
from simcore.identifiers import Iccid, IdentifierRange, Imsi
from simcore.models import Batch, NumberRange, Sim
from simcore.ranges import RangeExhausted, RangeOverlap, range_of

DEFAULT_COLUMNS = ("ICCID", "IMSI", "EKI", "EOPC", "PIN1", "PUK1", "PIN2", "PUK2", "ADM1", "ACC")
ORDERED = "ordered"


@dataclass(frozen=True)
class Order:
    batch: str
    batch_id: int
    quantity: int
    first_iccid: str
    last_iccid: str
    first_imsi: str
    last_imsi: str
    path: str


def order_text(*, quantity: int, batch: str, profile: str, transport_key: str,
               transport_kcv: str | None, first_iccid: str, first_imsi: str,
               columns: tuple[str, ...] = DEFAULT_COLUMNS, customer: str | None = None,
               card_type: str | None = None) -> str:
    kcv = f" KCV={transport_kcv.upper()}" if transport_kcv else ""
    lines = ["*", "* HEADER DESCRIPTION", "*"]
    if customer:
        lines.append(f"Customer     : {customer}")
    lines += [f"Quantity     : {quantity}"]
    if card_type:
        lines.append(f"Type         : {card_type}")
    lines += [f"Profile      : {profile}", f"Batch        : {batch}",
              f"Transport_key: {transport_key}{kcv}",
              "*", "* INPUT VARIABLES", "*", "Var_In_List:",
              f"ICCID: {first_iccid}", f"IMSI: {first_imsi}",
              "*", "* OUTPUT VARIABLES", "*", "var_out: " + "/".join(columns)]
    return "\n".join(lines) + "\n"


def _first_free(s: Session, kind: str) -> str:
    for r in s.execute(select(NumberRange).where(col(NumberRange.kind) == kind)
                       .order_by(col(NumberRange.id))).scalars():
        rng = range_of(r)
        if r.next_offset < len(rng):
            return rng.value_at(r.next_offset)
    raise RangeExhausted(f"no {kind} range has room: give --{kind}-start or add a range")


def _reserve(s: Session, kind: str, first: str, last: str, batch: str, mnc: int | None) -> None:
    """Reserve first..last (ICCIDs with check digits, IMSIs) as described in the docstring."""
    block = IdentifierRange.of(kind, first, last, mnc)  # type: ignore[arg-type]
    column = col(Sim.iccid) if kind == "iccid" else col(Sim.imsi)
    used = s.execute(select(func.count()).where(column >= first, column <= last,
                                                func.length(column) == len(first))).scalar_one()
    if used:
        raise Conflict(f"{used} SIMs in the store already have {kind.upper()}s in {first}..{last}")
    for r in s.execute(select(NumberRange).where(col(NumberRange.kind) == kind)
                       .with_for_update()).scalars():
        rng = range_of(r)
        if not rng.overlaps(block):
            continue
        inside = int(rng.first) <= int(block.first) and int(block.last) <= int(rng.last)
        if not inside:
            raise RangeOverlap(f"{kind} block {first}..{last} straddles range {r.name!r} "
                               f"({r.first}..{r.last})")
        offset = int(block.first) - int(rng.first)
        if offset < r.next_offset:
            raise RangeOverlap(f"{kind} block {first}..{last} starts before the free part of "
                               f"range {r.name!r}: {rng.value_at(r.next_offset)} is its next "
                               "free member")
        s.execute(update(NumberRange).where(col(NumberRange.id) == r.id)
                  .values(next_offset=offset + len(block)))
        return
    if s.execute(select(col(NumberRange.id)).where(
            col(NumberRange.name) == f"order-{batch}-{kind}"[:64])).first():
        raise Conflict(f"range name order-{batch}-{kind} is already taken")
    # Range ends as add_range stores them (ICCIDs by body, without the check digit).
    s.add(NumberRange(name=f"order-{batch}-{kind}"[:64], kind=kind, first=block.first,
                      last=block.last, mnc_length=block.mnc_length, next_offset=len(block)))


def create_order(engine: Engine, *, quantity: int, profile: str, transport_key: str,
                 transport_kcv: str | None, out: Path, actor: str, batch: str | None = None,
                 iccid_start: str | None = None, imsi_start: str | None = None,
                 vendor: str | None = None, columns: tuple[str, ...] = DEFAULT_COLUMNS,
                 customer: str | None = None, card_type: str | None = None) -> Order:
    """Reserve the ICCID and IMSI blocks, record the ordered batch, write the order file."""
    if quantity < 1:
        raise InvalidInput("quantity", "too small", value=str(quantity), expected="at least 1")
    from simcore.vendor_import.columns import SPECS

    for c in columns:
        if c not in SPECS:
            raise InvalidInput("columns", f"unknown column {c!r}", expected=", ".join(SPECS))
    out = Path(out)
    tmp = out.with_name(out.name + ".tmp")
    try:
        return _order(engine, quantity, profile, transport_key, transport_kcv, out, tmp, actor,
                      batch, iccid_start, imsi_start, vendor, columns, customer, card_type)
    finally:
        tmp.unlink(missing_ok=True)


def _order(engine: Engine, quantity: int, profile: str, transport_key: str,
           transport_kcv: str | None, out: Path, tmp: Path, actor: str, batch: str | None,
           iccid_start: str | None, imsi_start: str | None, vendor: str | None,
           columns: tuple[str, ...], customer: str | None, card_type: str | None) -> Order:
    with transaction(engine) as s:
        first_iccid = Iccid.parse(iccid_start or _first_free(s, "iccid")).digits
        imsi = Imsi.parse(imsi_start or _first_free(s, "imsi"))
        ibody = int(first_iccid[:-1]) + quantity - 1
        if len(str(ibody)) > len(first_iccid) - 1:
            raise InvalidInput("iccid_start", "the block runs past the last ICCID of its length")
        last_iccid = Iccid.from_body(str(ibody).zfill(len(first_iccid) - 1)).digits
        last_imsi_n = int(imsi.digits) + quantity - 1
        if len(str(last_imsi_n)) > len(imsi.digits):
            raise InvalidInput("imsi_start", "the block runs past the last IMSI of its length")
        last_imsi = str(last_imsi_n).zfill(len(imsi.digits))
        if not last_imsi.startswith(imsi.plmn):
            raise InvalidInput("imsi_start", f"the block leaves PLMN {imsi.plmn}")
        name = (batch or f"order-{first_iccid}")[:64]
        if s.execute(select(col(Batch.id)).where(col(Batch.name) == name)).first():
            raise Conflict(f"batch {name!r} already exists")
        _reserve(s, "iccid", first_iccid, last_iccid, name, None)
        _reserve(s, "imsi", imsi.digits, last_imsi, name, imsi.mnc_length)
        b = Batch(name=name, source="order", vendor=vendor, profile=profile, row_count=quantity,
                  status=ORDERED)
        s.add(b)
        s.flush()
        text = order_text(quantity=quantity, batch=name, profile=profile,
                          transport_key=transport_key, transport_kcv=transport_kcv,
                          first_iccid=first_iccid, first_imsi=imsi.digits, columns=columns,
                          customer=customer, card_type=card_type)
        tmp.write_text(text)
        details = {"batch": name, "quantity": quantity, "first_iccid": first_iccid,
                   "last_iccid": last_iccid, "first_imsi": imsi.digits, "last_imsi": last_imsi,
                   "profile": profile, "transport_kek": transport_key, "file": out.name}
        audit.append(s, actor=actor, action="inventory.order", subject_type="batch",
                     subject_id=name, details=details,
                     outbox=audit.Outbox("batch.ordered", "batch", name, details))
        assert b.id is not None
    tmp.replace(out)  # the file appears only once the reservation is committed
    return Order(name, b.id, quantity, first_iccid, last_iccid, imsi.digits, last_imsi, str(out))
