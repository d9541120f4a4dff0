"""PC/SC transport through pyscard's `smartcard.scard` (PC/SC Workgroup spec part 5 API).

pyscard is imported lazily so `cards` works (virtual card, plans, file codecs) without it.
"""

from __future__ import annotations

import time
from typing import Any

from cards.errors import CardRemovedError, NoCardError, NoReaderError, TransportError
from cards.transport import ExchangeTransport, TraceSink


def _scard() -> Any:
    try:
        from smartcard import scard
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise TransportError(
            "pyscard is not installed: pip install 'simsmith[cards]' "
            "(needs apt packages pcscd libpcsclite-dev swig)"
        ) from exc
    return scard


class _Context:
    def __init__(self) -> None:
        self.scard = _scard()
        rc, self.handle = self.scard.SCardEstablishContext(self.scard.SCARD_SCOPE_USER)
        if rc != self.scard.SCARD_S_SUCCESS:
            raise TransportError(f"PC/SC unavailable (is pcscd running?): {self._msg(rc)}")

    def _msg(self, rc: int) -> str:
        return str(self.scard.SCardGetErrorMessage(rc)).strip()

    def readers(self) -> list[str]:
        rc, names = self.scard.SCardListReaders(self.handle, [])
        if rc == self.scard.SCARD_E_NO_READERS_AVAILABLE:
            return []
        if rc != self.scard.SCARD_S_SUCCESS:
            raise TransportError(f"cannot list readers: {self._msg(rc)}")
        return list(names)

    def release(self) -> None:
        self.scard.SCardReleaseContext(self.handle)


def list_readers() -> list[str]:
    """Names of the PC/SC readers, in pcscd's order (the index is `--reader N`)."""
    ctx = _Context()
    try:
        return ctx.readers()
    finally:
        ctx.release()


def resolve_reader(reader: int | str, names: list[str]) -> str:
    if isinstance(reader, int):
        if not 0 <= reader < len(names):
            raise NoReaderError(f"no reader {reader}: {len(names)} reader(s) present")
        return names[reader]
    if reader not in names:
        raise NoReaderError(f"no reader named {reader!r}")
    return reader


def wait_for_card_state(reader: int | str, *, present: bool, timeout: float) -> None:
    """Block until the reader has (present=True) or lacks a card; NoCardError on timeout."""
    ctx = _Context()
    s = ctx.scard
    try:
        name = resolve_reader(reader, ctx.readers())
        deadline = time.monotonic() + timeout
        state = s.SCARD_STATE_UNAWARE
        while True:
            left_ms = max(0, int((deadline - time.monotonic()) * 1000))
            rc, states = s.SCardGetStatusChange(ctx.handle, left_ms, [(name, state)])
            if rc == s.SCARD_S_SUCCESS:
                state = states[0][1] & ~s.SCARD_STATE_CHANGED
                if bool(state & s.SCARD_STATE_PRESENT) == present:
                    return
            elif rc != s.SCARD_E_TIMEOUT:
                raise TransportError(f"watching {name!r} failed: {ctx._msg(rc)}")
            if time.monotonic() >= deadline:
                still = "absent" if present else "present"
                raise NoCardError(f"reader {name!r}: card still {still} after {timeout:g} s")
    finally:
        ctx.release()


class PcscTransport(ExchangeTransport):
    """One connection to the card in one reader."""

    def __init__(self, reader: int | str = 0, *, timeout: float = 0.0,
                 trace: TraceSink | None = None) -> None:
        self._ctx = _Context()
        s = self._ctx.scard
        try:
            self.reader = resolve_reader(reader, self._ctx.readers())
            self._wait_for_card(timeout)
            rc, self._card, self._protocol = s.SCardConnect(
                self._ctx.handle, self.reader, s.SCARD_SHARE_SHARED,
                s.SCARD_PROTOCOL_T0 | s.SCARD_PROTOCOL_T1)
            if rc in (s.SCARD_E_NO_SMARTCARD, s.SCARD_W_REMOVED_CARD):
                raise NoCardError(f"no card in reader {self.reader!r}")
            if rc != s.SCARD_S_SUCCESS:
                raise TransportError(f"cannot connect to {self.reader!r}: {self._ctx._msg(rc)}")
            rc, _name, _state, _proto, atr = s.SCardStatus(self._card)
            if rc != s.SCARD_S_SUCCESS:
                raise TransportError(f"cannot read the ATR: {self._ctx._msg(rc)}")
        except BaseException:
            self._ctx.release()
            raise
        super().__init__(bytes(atr), trace)

    def _wait_for_card(self, timeout: float) -> None:
        s = self._ctx.scard
        deadline = time.monotonic() + timeout
        state = s.SCARD_STATE_UNAWARE
        while True:
            left_ms = max(0, int((deadline - time.monotonic()) * 1000))
            rc, states = s.SCardGetStatusChange(self._ctx.handle, left_ms, [(self.reader, state)])
            if rc == s.SCARD_S_SUCCESS:
                state = states[0][1]
                if state & s.SCARD_STATE_PRESENT and not state & s.SCARD_STATE_MUTE:
                    return
            elif rc != s.SCARD_E_TIMEOUT:
                raise TransportError(f"waiting for a card failed: {self._ctx._msg(rc)}")
            if time.monotonic() >= deadline:
                raise NoCardError(f"no card in reader {self.reader!r}"
                                  + (f" after {timeout:g} s" if timeout else ""))
            state &= ~s.SCARD_STATE_CHANGED

    def _exchange(self, raw: bytes) -> bytes:
        s = self._ctx.scard
        rc, resp = s.SCardTransmit(self._card, self._protocol, list(raw))
        if rc != s.SCARD_S_SUCCESS:
            if rc in (s.SCARD_W_REMOVED_CARD, s.SCARD_E_NO_SMARTCARD, s.SCARD_W_RESET_CARD,
                      s.SCARD_W_UNPOWERED_CARD, s.SCARD_E_NOT_TRANSACTED,
                      s.SCARD_W_UNRESPONSIVE_CARD):
                raise CardRemovedError(
                    f"card in {self.reader!r} removed or not responding during a command "
                    f"({self._ctx._msg(rc)}); re-insert it and run again")
            raise TransportError(f"transmit failed on {self.reader!r}: {self._ctx._msg(rc)}")
        if len(resp) < 2:  # vpcd (and some readers) answer nothing when the card went away
            raise CardRemovedError(f"card in {self.reader!r} gave no answer during a command "
                                   "(removed?); re-insert it and run again")
        return bytes(resp)

    def close(self, reset: bool = True) -> None:
        """Disconnect; by default reset the card so no PIN/ADM stays verified behind us."""
        s = self._ctx.scard
        try:
            s.SCardDisconnect(self._card, s.SCARD_RESET_CARD if reset else s.SCARD_LEAVE_CARD)
        finally:
            self._ctx.release()

    def __enter__(self) -> PcscTransport:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
