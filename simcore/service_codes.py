"""Service centre: a SIM's PIN2, PUK2 and ADM1, read out of the HSM to re-program its card.

A service centre re-programming a card (a new PLMN list, a repaired file, a replaced applet)
needs the codes that open its files: ADM1 for the operator's files, PIN2/PUK2 for the files
behind the second PIN (ETSI TS 102 221 §9.5.1). These are not customer care's codes: the path
is its own (`Hsm.reveal_service_code`, scope `service:card-codes`, which neither `admin` nor
`care:access-codes` implies), a reason is required, and every read is audited.

- The HSM unwraps each code bound to the SIM's ICCID (`key.reveal_service` in the HSM's own
  audit records, key type only).
- The audit event `sim.service_codes_revealed` (actor, codes read, reason, state) is committed
  before the codes are returned: a read that could not be audited returns nothing. Values never
  enter the audit log, logs or reprs (`ServiceCodes` masks them).
- SIMs out of service (terminated, quarantine, recycled) are refused (Conflict), as for care.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from sqlalchemy import Engine

from hsm_sim.hsm import Hsm
from hsm_sim.keyref import KeyRef
from simcore import audit
from simcore.care import REASON_MAX, code_tokens
from simcore.db import transaction
from simcore.errors import InvalidInput
from simcore.identifiers import Iccid
from simcore.keys import MissingKeys

__all__ = ["SERVICE_CODES", "ServiceCodes", "reveal_service_codes"]

SERVICE_CODES = ("PIN2", "PUK2", "ADM1")


@dataclass(frozen=True, repr=False)
class ServiceCodes:
    """The service codes a SIM has in the store (name → digits). repr and str show the ICCID
    and the names only."""

    iccid: str
    codes: dict[str, str]

    def __repr__(self) -> str:
        return f"ServiceCodes({self.iccid}, {', '.join(f'{n}=<hidden>' for n in self.codes)})"

    __str__ = __repr__


def reveal_service_codes(engine: Engine, hsm: Hsm | Callable[[], Hsm], iccid: str, *,
                         actor: str, reason: str) -> ServiceCodes:
    """PIN2, PUK2 and ADM1 of one SIM (those it has in the store), unwrapped by the HSM, after
    an audit event naming `actor`, the codes read and `reason` has been committed.

    `hsm` is an open HSM or a function opening one, called only once the SIM and its code refs
    are found. InvalidInput for a malformed ICCID or a missing or over-long reason; NotFound
    for an unknown SIM; MissingKeys when it has none of the service codes; Conflict for a SIM
    out of service."""
    digits = Iccid.parse(iccid).digits
    reason = (reason or "").strip()
    if not reason:
        raise InvalidInput("reason", "required", expected="why the codes are read (e.g. a "
                           "service order number)")
    if len(reason) > REASON_MAX:
        raise InvalidInput("reason", "too long", expected=f"at most {REASON_MAX} characters")
    state, tokens = code_tokens(engine, digits, SERVICE_CODES, what="service codes")
    names = [n for n in SERVICE_CODES if n in tokens]
    if not names:
        raise MissingKeys(f"SIM {digits} has no {', '.join(SERVICE_CODES)} in the store")
    opened = hsm() if callable(hsm) else hsm
    codes = {n: opened.reveal_service_code(KeyRef.from_token(tokens[n]), owner=digits)
             for n in names}
    with transaction(engine) as s:
        audit.append(s, actor=actor, action="sim.service_codes_revealed", subject_type="sim",
                     subject_id=digits, details={"codes": names, "reason": reason,
                                                 "state": state})
    return ServiceCodes(digits, codes)
