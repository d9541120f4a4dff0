"""The SM-DP+ port: how simsmith's eSIM order service drives an SM-DP+ (GSMA SGP.22 §5.3, ES2+).

`SmdpPort` is the whole contract, four calls shaped like the ES2+ functions:

- `download_order`  ES2+.DownloadOrder  (§5.3.1): reserve the profile `iccid`, linked to `eid` if
  given. Profile state available → allocated (no EID) or linked (EID).
- `confirm_order`   ES2+.ConfirmOrder   (§5.3.2): fix the matching ID (and the confirmation code,
  if any); with `release=True` the profile is released for download at once. allocated | linked
  → confirmed, or → released.
- `cancel_order`    ES2+.CancelOrder    (§5.3.3): undo an order; the profile goes back to
  available, or to unavailable when `final_status` says so (finalProfileStatusIndicator).
- `release_profile` ES2+.ReleaseProfile (§5.3.4): confirmed → released.

simsmith always names the ICCID: the inventory, not the SM-DP+, picks which profile a customer
gets. An implementation owns the mirrored `sim.profile_state`: when a call returns, the inventory's
profile state reflects the SM-DP+'s (through simcore.lifecycle, so with an audit and an outbox
event). A refusal raises `SmdpRefused` carrying the ES2+ subject and reason codes; a peer that
cannot be reached or answers nonsense raises `SmdpUnavailable`. Either way the implementation
leaves nothing half-written on its side.

Two implementations: `simcore.smdp.in_process.InProcessSmdp`, the embedded default (the SM-DP+'s
state is the inventory itself, so each call is one transaction on the store), and
`simcore.smdp.es2plus_port.Es2PlusSmdp` (ES2+ over HTTPS with mutual TLS, for a commercial SM-DP+
or simsmith's own endpoint).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal, Protocol, runtime_checkable

from sqlmodel import Session

from simcore.errors import SimsmithError

FinalStatus = Literal["available", "unavailable"]


class SmdpError(SimsmithError):
    """The SM-DP+ did not do what was asked."""


class SmdpRefused(SmdpError):
    """The SM-DP+ refused a call: ES2+ `subject_code` / `reason_code` (SGP.22 §5.3 and the
    table of subject and reason codes), e.g. 8.2.6 / 3.3 "matching ID already in use"."""

    def __init__(self, function: str, subject_code: str, reason_code: str, message: str) -> None:
        self.function = function
        self.subject_code = subject_code
        self.reason_code = reason_code
        super().__init__(f"{function} refused ({subject_code} / {reason_code}): {message}")


class SmdpUnavailable(SmdpError):
    """The SM-DP+ could not be reached, timed out or answered something that is not ES2+.
    `maybe_executed` is False only when the call certainly never reached the SM-DP+."""

    def __init__(self, message: str, *, maybe_executed: bool = True) -> None:
        self.maybe_executed = maybe_executed
        super().__init__(message)


class SmdpAnswerInvalid(SmdpError):
    """The SM-DP+ answered, in ES2+, something simsmith cannot use: another profile than the one
    asked for, a Matching ID or SM-DP+ address that cannot go into an activation code. The
    SM-DP+ may have executed the call: the caller compensates (CancelOrder)."""


# Work the caller wants committed together with the port's own record of a call (the mirrored
# profile state), in the same transaction: e.g. the order service's SIM and order state when it
# compensates with CancelOrder.
Settle = Callable[[Session], None]


@dataclass(frozen=True)
class DownloadOrderResult:
    iccid: str


@dataclass(frozen=True)
class ConfirmOrderResult:
    iccid: str
    matching_id: str
    smdp_address: str
    eid: str | None = None


@runtime_checkable
class SmdpPort(Protocol):
    """An SM-DP+ as simsmith's eSIM order service sees it (ES2+ functions, SGP.22 §5.3)."""

    @property
    def smdp_address(self) -> str:
        """The SM-DP+'s FQDN, as it goes into activation codes."""
        ...

    def download_order(self, *, iccid: str, eid: str | None = None,
                       profile_type: str | None = None) -> DownloadOrderResult: ...

    def confirm_order(self, *, iccid: str, matching_id: str, eid: str | None = None,
                      confirmation_code: str | None = None,
                      release: bool = True) -> ConfirmOrderResult: ...

    def cancel_order(self, *, iccid: str, matching_id: str | None = None,
                     eid: str | None = None, final_status: FinalStatus = "available",
                     settle: Settle | None = None) -> None:
        """CancelOrder; `settle(session)` runs in the transaction that records the cancelled
        profile's state, after the SM-DP+ executed the call (never when it refused)."""
        ...

    def release_profile(self, *, iccid: str) -> None: ...
