"""The HLR/HSS port: what simsmith's workflows ask of the network's subscriber register
(3GPP TS 23.008 subscriber data: IMSI, MSISDN, authentication data, CS/PS access).

Every call is idempotent at the HLR: `provision` creates or updates, `remove` of a subscriber
the HLR does not hold succeeds, `set_access` sets (not toggles). So a workflow step may call
again after a crash without doing anything twice in effect.

`HlrUnavailable` (the HLR could not be reached, or timed out) is worth a retry; `HlrRefused`
(the HLR answered no) is not.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol, runtime_checkable

from simcore.errors import SimsmithError


class HlrError(SimsmithError):
    """The HLR did not do what was asked. `maybe_executed`: whether the HLR may have acted on
    (part of) the request all the same; False only when it certainly did not."""

    maybe_executed: bool = True


class HlrUnavailable(HlrError):
    """The HLR could not be reached, closed the connection or timed out. `maybe_executed` is
    False only when the request certainly never reached the HLR (no connection)."""

    def __init__(self, message: str, *, maybe_executed: bool = True) -> None:
        self.maybe_executed = maybe_executed
        super().__init__(message)


class HlrRefused(HlrError):
    """The HLR answered with an error (its reason in the message)."""


@dataclass(frozen=True, slots=True)
class HlrSubscriber:
    """A subscriber as the workflows hand it over: keys stay references (KeyRef tokens) until
    the adapter has the HSM re-wrap them for its target. `allowed`: network access (CS and PS)
    from the start; a subscriber provisioned barred (the new SIM of a suspended subscription's
    swap) is barred before it holds keys, so there is no moment it could attach."""

    iccid: str
    imsi: str
    msisdn: str | None
    ki_ref: str
    opc_ref: str
    allowed: bool = True


@runtime_checkable
class HlrPort(Protocol):
    def provision(self, sub: HlrSubscriber) -> None:
        """Create or update the subscriber: authentication data, MSISDN, and CS and PS access
        as `sub.allowed` says (barred before the keys are set when it is False)."""
        ...

    def set_msisdn(self, imsi: str, msisdn: str | None) -> None:
        """Give the subscriber this MSISDN (None: none)."""
        ...

    def set_access(self, imsi: str, *, allowed: bool) -> None:
        """Network access (CS and PS) allowed or barred."""
        ...

    def remove(self, imsi: str) -> None:
        """Delete the subscriber; one the HLR does not hold is fine."""
        ...
