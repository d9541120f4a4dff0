"""An eSIM profile as simsmith's ES2+ functions see it (GSMA SGP.22 v2.5 §5.3): the refusal they
raise (SGP.22 subject and reason codes, esim.es2plus.codes), the ICCID and EID forms of ES2+
messages, the profile row locked for the call's transaction, its Profile Type, owner and order.
"""

from __future__ import annotations

from sqlalchemy import select
from sqlmodel import Session, col

from esim.es2plus import codes
from esim.es2plus.codes import StatusCode
from esim.es2plus.messages import Response, failed_header
from simcore.errors import SimsmithError
from simcore.identifiers import Eid, Iccid, InvalidIdentifier
from simcore.models import Batch, Sim
from simcore.smdp.models import Es2PlusOrder
from simcore.smdp.stock import stock_owner


class Es2PlusRefused(SimsmithError):
    """A function refused with an SGP.22 status code; becomes a Failed answer."""

    def __init__(self, code: StatusCode, message: str,
                 subject_identifier: str | None = None) -> None:
        self.code = code
        self.message = message
        self.subject_identifier = subject_identifier
        super().__init__(f"{code}: {message}")

    def answer(self, model: type[Response] = Response) -> Response:
        return model(header=failed_header(self.code, self.message, self.subject_identifier))


def iccid_digits(value: str | None) -> str | None:
    """An ES2+ ICCID's digits (19 or 20, a 19-digit one possibly padded with F). One that is not
    an ICCID at all (E.118: digits, length, 89, Luhn) is refused as invalid, 8.2.1/2.1 — not
    looked up and reported unknown."""
    if not value:
        return None
    try:
        return Iccid.parse(value).digits
    except InvalidIdentifier as e:
        raise Es2PlusRefused(codes.ICCID_INVALID, str(e), "iccid") from None


def eid_digits(value: str | None) -> str | None:
    """An EID's 32 digits (SGP.29); 8.1.1/2.1 when malformed."""
    if not value:
        return None
    try:
        return Eid.parse(value).digits
    except InvalidIdentifier as e:
        raise Es2PlusRefused(codes.EID_INVALID, str(e), value) from None


def locked_profile(s: Session, iccid: str) -> Sim:
    """The eSIM profile `iccid`, locked for the caller's transaction; 8.2.1/3.9 when unknown."""
    sim: Sim | None = s.execute(select(Sim).where(col(Sim.iccid) == iccid).with_for_update()
                                ).scalar_one_or_none()
    if sim is None or sim.kind != "esim":
        raise Es2PlusRefused(codes.ICCID_UNKNOWN, f"no eSIM profile with ICCID {iccid}", iccid)
    return sim


def profile_type_of(s: Session, sim: Sim) -> str | None:
    """The Profile Type of a profile: its batch's profile name."""
    if sim.batch_id is None:
        return None
    return s.execute(select(col(Batch.profile)).where(col(Batch.id) == sim.batch_id)
                     ).scalar_one_or_none()


def check_stock_owner(s: Session, sim: Sim, requester: str) -> None:
    """A profile stocked for another operator (simcore.smdp.stock) is not this one's."""
    owner = stock_owner(s, sim.batch_id)
    if owner is not None and owner != requester:
        raise Es2PlusRefused(codes.ICCID_NOT_ALLOWED,
                             f"profile {sim.iccid} is stocked for another operator", sim.iccid)


def order_of(s: Session, sim: Sim, requester: str) -> Es2PlusOrder:
    """The ES2+ order of a profile; refused when another requester placed it. A profile
    ordered some other way (the embedded port) gets its order record now."""
    order = s.get(Es2PlusOrder, sim.iccid)
    if order is None:
        check_stock_owner(s, sim, requester)
        order = Es2PlusOrder(iccid=sim.iccid, requester=requester,
                             profile_type=profile_type_of(s, sim))
        s.add(order)
        s.flush()
        return order
    if order.requester != requester:
        raise Es2PlusRefused(codes.ICCID_NOT_ALLOWED,
                             f"profile {sim.iccid} was ordered by another requester", sim.iccid)
    return order
