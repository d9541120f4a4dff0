"""Exceptions raised by the esim package.

Every error names what went wrong and where (field, position, profile element). None of them
ever carries a secret value (Ki, OPc, PIN, PUK, ADM, OTA key) in its message or attributes.
"""

from __future__ import annotations

from simcore.errors import SimsmithError


class EsimError(SimsmithError):
    """Base class of every error raised by esim/ (under simsmith's one base class)."""


class ActivationCodeError(EsimError, ValueError):
    """An activation code (GSMA SGP.22 §4.1) is malformed.

    `field` names the activation-code field ("AC_Format", "SM-DP+ Address", "Matching ID",
    "SM-DP+ OID", "Confirmation Code Required Flag" or "Activation Code"); `position` is the
    0-based character offset in the parsed string where the problem starts (None when building).
    """

    def __init__(self, field: str, message: str, position: int | None = None) -> None:
        self.field = field
        self.position = position
        where = f" at position {position}" if position is not None else ""
        super().__init__(f"{field}{where}: {message}")


class ConfirmationCodeMismatch(EsimError):
    """A confirmation code (SGP.22 §3.1.3) did not verify against the stored hash."""


class SaipDecodeError(EsimError, ValueError):
    """A SAIP profile package could not be decoded or encoded.

    `offset` is the byte offset in the package where the fault was found (None when encoding),
    `element` the 1-based number of the profile element, `field` the member path when known.
    """

    def __init__(self, message: str, offset: int | None = None, field: str | None = None,
                 element: int | None = None) -> None:
        self.offset = offset
        self.field = field
        self.element = element
        super().__init__(message)


class ProfileValidationError(EsimError, ValueError):
    """A profile package broke a rule; names the profile element and the field."""

    def __init__(self, element: str, field: str, message: str) -> None:
        self.element = element
        self.field = field
        super().__init__(f"{element}.{field}: {message}")


class TemplateError(EsimError, ValueError):
    """A profile template file or its parameters are inconsistent."""
