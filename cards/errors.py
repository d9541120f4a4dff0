"""The one exception family of `cards`: everything a card, reader or driver can get wrong.

Status-word errors (ISO/IEC 7816-4 §5.6, ETSI TS 102 221 §10.2) live in `status_words`; this
module holds the base class and the transport/driver errors. Messages never carry secrets.
"""

from __future__ import annotations

from simcore.errors import SimsmithError


class CardError(SimsmithError):
    """Base class of every error raised by `cards` (under the project's one base class)."""


class TransportError(CardError):
    """The reader or the PC/SC stack failed (not the card's answer)."""


class NoReaderError(TransportError):
    """No such PC/SC reader."""


class NoCardError(TransportError):
    """No card in the reader (or none arrived before the timeout)."""


class CardRemovedError(TransportError):
    """The card went away during a command."""


class DriverError(CardError):
    """No driver fits the card, or the driver cannot do what was asked."""


class UnknownCardError(DriverError):
    """The ATR names no known card type."""


class VerificationError(CardError):
    """Personalisation read-back or authentication did not give the expected result."""


class SyncFailureError(VerificationError):
    """The card rejected the vector's SQN and answered AUTS (TS 33.102 §6.3.5)."""

    def __init__(self, message: str, auts: bytes, rand: bytes) -> None:
        super().__init__(message)
        self.auts = auts
        self.rand = rand
