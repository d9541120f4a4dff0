"""The one base class of simsmith's errors, and the error families of simcore.

Every error names what was wrong (the field), where (a position: digit index, file line, APDU,
JSON path) and what was expected, without ever carrying a secret value.
"""

from __future__ import annotations


class SimsmithError(Exception):
    """Base class of every error simsmith raises on purpose."""


class InvalidInput(SimsmithError, ValueError):
    """A value given to simsmith is malformed.

    `field` names the input, `position` where in it (if known), `expected` what would be right.
    """

    def __init__(
        self,
        field: str,
        message: str,
        *,
        value: str | None = None,
        position: str | int | None = None,
        expected: str | None = None,
    ) -> None:
        self.field = field
        self.value = value
        self.position = position
        self.expected = expected
        self.reason = message
        text = f"{field}"
        if value is not None:
            text += f" {value!r}"
        text += f": {message}"
        if position is not None:
            text += f" (at {position})"
        if expected is not None:
            text += f"; expected {expected}"
        super().__init__(text)


class NotFound(SimsmithError, LookupError):
    """A lookup found nothing. Lookups return exactly one thing or raise this."""


class Conflict(SimsmithError):
    """The store's state forbids the operation (duplicate, exhausted range, stale version)."""
