"""Secret byte strings (Ki, OPc, PINs, PUKs, ADM codes) that cannot leak by accident.

`Secret` never shows its value in repr/str/format, refuses pickling and JSON, and compares in
constant time. Code that must put the bytes into an APDU calls `reveal()` at that moment.
"""

from __future__ import annotations

import hmac
from typing import NoReturn


class Secret:
    """Opaque holder for secret bytes; `reveal()` is the only way out."""

    __slots__ = ("_value", "label")

    def __init__(self, value: bytes, label: str = "secret") -> None:
        if not isinstance(value, bytes | bytearray):
            raise TypeError("Secret holds bytes")
        self._value = bytes(value)
        self.label = label

    def reveal(self) -> bytes:
        return self._value

    def __len__(self) -> int:
        return len(self._value)

    def __repr__(self) -> str:
        return f"Secret({self.label}, {len(self._value)} bytes)"

    __str__ = __repr__

    def __format__(self, spec: str) -> str:
        return repr(self)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Secret):
            return NotImplemented
        return hmac.compare_digest(self._value, other._value)

    def __hash__(self) -> int:
        return hash((Secret, len(self._value)))

    def __reduce__(self) -> NoReturn:
        raise TypeError("a Secret cannot be pickled")


class CodeFormatError(ValueError):
    """A PIN/ADM code given as text has the wrong form (the message never echoes the code)."""


def pin_from_text(text: str, label: str = "PIN") -> Secret:
    """A PIN/PUK typed as 4..8 digits -> 8 bytes ASCII padded with FF (TS 102 221 §9.5.1)."""
    if not (text.isdigit() and 4 <= len(text) <= 8):
        raise CodeFormatError(f"{label} must be 4 to 8 decimal digits")
    return Secret(text.encode() + b"\xff" * (8 - len(text)), label)


def adm_from_text(text: str, label: str = "ADM1") -> Secret:
    """An ADM code: 8 ASCII digits (sent as ASCII) or 16 hex digits (sent as 8 raw bytes)."""
    if len(text) == 16:
        try:
            return Secret(bytes.fromhex(text), label)
        except ValueError:
            raise CodeFormatError(f"{label}: 16 characters must be hex digits") from None
    if text.isdigit() and 4 <= len(text) <= 8:
        return Secret(text.encode() + b"\xff" * (8 - len(text)), label)
    raise CodeFormatError(f"{label} must be 4 to 8 decimal digits or 16 hex digits")
