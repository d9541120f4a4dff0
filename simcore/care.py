"""Customer care: a SIM's PIN1 and PUK1, read out of the HSM one SIM at a time, each read audited.

A subscriber who blocked their PIN calls care, care reads the PUK1 out. That is the one place
simsmith serves an access code in clear (design §7 keeps Ki, OPc, ADM and OTA keys out of every
response); the API serves it under the `care:access-codes` scope only, which `admin` does not
imply.

- The HSM unwraps each code (`Hsm.reveal_code`: PIN and PUK only, bound to the SIM's ICCID).
- The audit event `sim.access_codes_revealed` (actor, codes read, reason) is committed before the
  codes are returned: a read that could not be audited returns nothing. The values never enter
  the audit log, logs or reprs (`AccessCodes` masks them).
- SIMs out of service (terminated, quarantine, recycled) are refused (Conflict): their card no
  longer belongs to a subscriber, so care has nobody to read a code to. Every other state is
  served, including stock (a shop testing a card before handing it over).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from sqlalchemy import Engine, select
from sqlmodel import col

from hsm_sim.hsm import Hsm
from hsm_sim.keyref import KeyRef
from simcore import audit
from simcore.db import read_session, transaction
from simcore.errors import Conflict, InvalidInput, NotFound
from simcore.identifiers import Iccid
from simcore.keys import MissingKeys
from simcore.lifecycle import SimState
from simcore.models import Sim, SimCredential

__all__ = ["CARE_CODES", "OUT_OF_SERVICE", "REASON_MAX", "AccessCodes", "reveal_access_codes"]

CARE_CODES = ("PIN1", "PUK1")
OUT_OF_SERVICE = frozenset({SimState.TERMINATED, SimState.QUARANTINE, SimState.RECYCLED})
REASON_MAX = 200


@dataclass(frozen=True, repr=False)
class AccessCodes:
    """A SIM's PIN1 and PUK1 in clear. Its repr and str show the ICCID only."""

    iccid: str
    pin1: str
    puk1: str

    def __repr__(self) -> str:
        return f"AccessCodes({self.iccid}, PIN1=<hidden>, PUK1=<hidden>)"

    __str__ = __repr__


def code_tokens(engine: Engine, digits: str, names: tuple[str, ...], *, what: str
                ) -> tuple[str, dict[str, str]]:
    """The SIM's state and the stored refs (tokens) of those of `names` it has. NotFound for
    an unknown SIM, Conflict (naming `what`) for a SIM out of service. Shared by the care
    and service-centre paths (simcore.service_codes)."""
    with read_session(engine) as s:
        state = s.execute(select(col(Sim.state)).where(col(Sim.iccid) == digits)
                          ).scalar_one_or_none()
        if state is None:
            raise NotFound(f"no SIM with ICCID {digits}")
        tokens = dict(s.execute(
            select(col(SimCredential.name), col(SimCredential.ref))
            .where(col(SimCredential.iccid) == digits,
                   col(SimCredential.name).in_(names))).all())
    if state in OUT_OF_SERVICE:
        raise Conflict(f"SIM {digits} is {state}: {what} are served for SIMs in service only")
    return state, tokens


def reveal_access_codes(engine: Engine, hsm: Hsm | Callable[[], Hsm], iccid: str, *, actor: str,
                        reason: str | None = None) -> AccessCodes:
    """PIN1 and PUK1 of one SIM, unwrapped by the HSM, after an audit event naming `actor`,
    the codes read and `reason` (never their values) has been committed.

    `hsm` is an open HSM or a function opening one (the API's `open_hsm`): it is called only
    once the SIM and its code refs are found, so an unknown ICCID is NotFound even when the
    HSM cannot be opened. NotFound for an unknown SIM, MissingKeys when it has no PIN1 or PUK1
    in the store, Conflict for a SIM out of service, InvalidInput for a malformed ICCID or an
    over-long reason; whatever opening the HSM raises (HsmUnavailable) after those checks."""
    digits = Iccid.parse(iccid).digits
    if reason is not None:
        reason = reason.strip() or None
        if reason is not None and len(reason) > REASON_MAX:
            raise InvalidInput("reason", "too long", expected=f"at most {REASON_MAX} characters")
    state, tokens = code_tokens(engine, digits, CARE_CODES, what="access codes")
    for name in CARE_CODES:
        if name not in tokens:
            raise MissingKeys(f"SIM {digits} has no {name} in the store")
    refs = [KeyRef.from_token(tokens[name]) for name in CARE_CODES]
    opened = hsm() if callable(hsm) else hsm
    pin1, puk1 = (opened.reveal_code(ref, owner=digits) for ref in refs)
    details: dict[str, object] = {"codes": list(CARE_CODES), "state": state}
    if reason is not None:
        details["reason"] = reason
    with transaction(engine) as s:
        audit.append(s, actor=actor, action="sim.access_codes_revealed", subject_type="sim",
                     subject_id=digits, details=details)
    return AccessCodes(digits, pin1, puk1)
