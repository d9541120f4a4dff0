"""An in-process Transport straight into a VirtualUicc (no pcscd): for unit tests, plans and
benchmarks that want to separate card logic from the PC/SC path."""

from __future__ import annotations

from cards.transport import ExchangeTransport, TraceSink
from cards.virtual.card import VirtualUicc


class LoopbackTransport(ExchangeTransport):
    def __init__(self, card: VirtualUicc, trace: TraceSink | None = None) -> None:
        super().__init__(card.atr, trace)
        self.card = card
        card.reset()

    def _exchange(self, raw: bytes) -> bytes:
        return self.card.process(raw)
