"""What the instruction handlers may use of a virtual card: the session state (current DF/EF/
ADF, verified codes) and a few card services (T=0 response handling, access checks, state
saving, the card's own AKA keys). `VirtualUicc` implements it; the handlers in
`instructions.py` depend on this Protocol only, not on the card class (no import cycle, no
private members crossed)."""

from __future__ import annotations

from typing import Protocol

from cards.apdu import Apdu
from cards.virtual.aka import CardAka
from cards.virtual.codes import Code
from cards.virtual.filesystem import Node
from cards.virtual.milenage_card import Milenage


class UiccContext(Protocol):
    mf: Node
    current_df: Node
    current_ef: Node | None
    current_adf: Node | None
    codes: dict[int, Code]
    verified: set[int]
    aka: CardAka

    def select(self, node: Node, via: Node) -> None:
        """Make `node` current; `via` is the DF it was found in (a linked file has two)."""

    def respond(self, apdu: Apdu, data: bytes) -> bytes:
        """Case-4 answer: 61xx (9Fxx in class A0) and keep `data` for GET RESPONSE."""

    def case2(self, apdu: Apdu, data: bytes) -> bytes:
        """Case-2 answer: `data` when Le fits, else 6Cxx."""

    def require(self, condition: tuple[str, ...]) -> None:
        """Raise CardStatus(6982) unless one of the access conditions holds."""

    def ef_for(self, sfi: int | None, kinds: tuple[str, ...]) -> Node:
        """The EF addressed by SFI (selecting it) or the current EF, of one of `kinds`."""

    def changed(self) -> None:
        """Persist the state after a change (file content, counter, SQN)."""

    def milenage(self, purpose: str) -> Milenage:
        """The card's K/OPc for "usim", "isim" or "gsm", from its key files."""
