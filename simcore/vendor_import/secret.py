"""Key material as it arrives in a vendor file — Ki/OPc (clear or under the transport key),
PIN/PUK/ADM codes, OTA keys — held in a type that does not show it.

A `Secret` travels from the parser to the HSM and nowhere else: its repr and str name only its
length, it is not `bytes` (so it cannot be formatted, logged, JSON-encoded or compared into a
message by accident), and `reveal()` — called only where the HSM takes the value — is the one
way to the bytes. It pickles (the reader process sends chunks over a pipe) as its bytes.
"""

from __future__ import annotations

from typing import Any


class Secret:
    """Bytes that show only their length. `reveal()` gives them to the HSM call that needs them."""

    __slots__ = ("_value",)

    def __init__(self, value: bytes) -> None:
        self._value = bytes(value)

    def reveal(self) -> bytes:
        return self._value

    def __len__(self) -> int:
        return len(self._value)

    def __repr__(self) -> str:
        return f"<secret: {len(self._value)} bytes>"

    __str__ = __repr__

    def __format__(self, spec: str) -> str:
        return repr(self)

    def __reduce__(self) -> tuple[Any, tuple[bytes]]:
        return (Secret, (self._value,))
