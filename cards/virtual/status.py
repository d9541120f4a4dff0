"""Status words the virtual card answers with (ETSI TS 102 221 §10.2)."""

from __future__ import annotations

SW_OK = b"\x90\x00"


def sw_bytes(sw: int) -> bytes:
    """The two status bytes of `sw`."""
    return sw.to_bytes(2, "big")


class CardStatus(Exception):
    """Abort the command with a status word."""

    def __init__(self, sw: int) -> None:
        super().__init__(f"SW {sw:04X}")
        self.sw = sw
