"""Status words -> typed errors (ISO/IEC 7816-4 §5.6, ETSI TS 102 221 §10.2.1).

`check(sw, context)` returns on 9000 (and 91xx/92xx, which are success with a proactive/retry
note) and raises the matching `StatusWordError` subclass otherwise.
"""

from __future__ import annotations

from cards.errors import CardError


class StatusWordError(CardError):
    """The card answered with a status word other than success."""

    def __init__(self, sw: int, context: str, detail: str) -> None:
        self.sw = sw
        self.context = context
        prefix = f"{context}: " if context else ""
        super().__init__(f"{prefix}{detail} (SW {sw:04X})")


class SecurityStatusNotSatisfied(StatusWordError):
    """6982: the access condition (PIN, ADM) for this command is not met."""


class WrongCode(StatusWordError):
    """63Cx: VERIFY/UNBLOCK with a wrong code; `tries_left` remain."""

    def __init__(self, sw: int, context: str, detail: str) -> None:
        self.tries_left = sw & 0x0F
        super().__init__(sw, context, detail)


class CodeBlocked(StatusWordError):
    """6983: the code is blocked (no tries left)."""


class FileNotFound(StatusWordError):
    """6A82: file or application not found."""


class RecordNotFound(StatusWordError):
    """6A83: record not found."""


class WrongLength(StatusWordError):
    """6700 / 6Cxx left unhandled: wrong Lc/Le."""


class WrongParameters(StatusWordError):
    """6A86/6B00/6A87: wrong P1/P2 or Lc inconsistent with P1/P2."""


class IncorrectData(StatusWordError):
    """6A80/6A84: data field wrong or no space."""


class ConditionsNotSatisfied(StatusWordError):
    """6985: conditions of use not satisfied."""


class CommandNotAllowed(StatusWordError):
    """6986/6981: no current EF, or the command does not fit the file structure."""


class ReferencedDataNotFound(StatusWordError):
    """6A88: referenced data (key reference) not found."""


class NotSupported(StatusWordError):
    """6D00/6E00/6A81: instruction, class or function not supported."""


class AuthenticationFailed(StatusWordError):
    """9862: AUTHENTICATE failed (MAC wrong: the card's keys differ from the vector's)."""


class MemoryFailure(StatusWordError):
    """6581: the card failed to write its memory."""


_FIXED: dict[int, tuple[type[StatusWordError], str]] = {
    0x6982: (SecurityStatusNotSatisfied, "security status not satisfied"),
    0x6983: (CodeBlocked, "authentication method blocked: code blocked, no tries left"),
    0x6984: (ConditionsNotSatisfied, "referenced data invalidated"),
    0x6985: (ConditionsNotSatisfied, "conditions of use not satisfied"),
    0x6986: (CommandNotAllowed, "command not allowed: no EF selected"),
    0x6981: (CommandNotAllowed, "command incompatible with file structure"),
    0x6A82: (FileNotFound, "file or application not found"),
    0x6A83: (RecordNotFound, "record not found"),
    0x6A80: (IncorrectData, "incorrect parameters in the data field"),
    0x6A84: (IncorrectData, "not enough memory space"),
    0x6A81: (NotSupported, "function not supported"),
    0x6A86: (WrongParameters, "incorrect parameters P1-P2"),
    0x6A87: (WrongParameters, "Lc inconsistent with P1-P2"),
    0x6A88: (ReferencedDataNotFound, "referenced data not found"),
    0x6B00: (WrongParameters, "wrong parameters P1-P2 (offset outside the EF)"),
    0x6700: (WrongLength, "wrong length"),
    0x6D00: (NotSupported, "instruction code not supported"),
    0x6E00: (NotSupported, "class not supported"),
    0x6F00: (StatusWordError, "technical problem, no precise diagnosis"),
    0x6581: (MemoryFailure, "memory problem"),
    0x9862: (AuthenticationFailed, "authentication error: MAC wrong (card keys differ)"),
    0x9864: (AuthenticationFailed, "authentication error: security context not supported"),
    0x9865: (AuthenticationFailed, "key freshness failure"),
}


def is_success(sw: int) -> bool:
    """9000, and 91xx/92xx (success with extra information, TS 102 221 §10.2.1.1)."""
    return sw == 0x9000 or (sw >> 8) in (0x91, 0x92)


def error_for(sw: int, context: str = "", needs: str = "PIN or ADM") -> StatusWordError:
    """The typed error for a non-success status word. `needs` names the code the command needs."""
    if (sw & 0xFFF0) == 0x63C0:
        n = sw & 0x0F
        return WrongCode(sw, context, f"wrong code, {n} {'try' if n == 1 else 'tries'} left")
    if sw == 0x6982:
        return SecurityStatusNotSatisfied(
            sw, context, f"security status not satisfied: {needs} not verified"
        )
    if sw in _FIXED:
        cls, detail = _FIXED[sw]
        return cls(sw, context, detail)
    if (sw >> 8) == 0x6C:
        return WrongLength(sw, context, f"wrong Le, the card has {sw & 0xFF} bytes")
    return StatusWordError(sw, context, "unexpected status word")


def check(sw: int, context: str = "", needs: str = "PIN or ADM") -> None:
    """Return on success, raise the typed `StatusWordError` otherwise."""
    if not is_success(sw):
        raise error_for(sw, context, needs)
