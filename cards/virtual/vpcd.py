"""vpcd client: plugs a VirtualUicc (or any EmulatedCard, e.g. the virtual eUICC) into pcscd
through vsmartcard-vpcd (vsmartcard 3.3).

The card is a TCP client of vpcd (one port per slot, 35963 + slot). Each message is a 2-byte
big-endian length then the payload; a 1-byte payload is a control code (0 power off, 1 power on,
2 reset: no reply; 4 get ATR: reply with the ATR); anything else is a command APDU answered with
the response APDU. vpcd writes length and payload separately, so TCP_QUICKACK is set after every
recv — without it each APDU stalls ~40 ms on delayed ACK.
"""

from __future__ import annotations

import contextlib
import logging
import socket
import threading
import time
from typing import Protocol

log = logging.getLogger(__name__)

VPCD_BASE_PORT = 35963
POWER_OFF, POWER_ON, RESET, GET_ATR = 0, 1, 2, 4


class EmulatedCard(Protocol):
    """What vpcd needs of a card: its ATR, a reset, and APDU in -> response out."""

    @property
    def atr(self) -> bytes: ...

    def reset(self) -> None: ...

    def process(self, raw: bytes) -> bytes: ...


class VpcdError(OSError):
    """vpcd is not reachable."""


class VpcdCard:
    """Serve one EmulatedCard on one vpcd slot, in a background thread or in the foreground.

    `pull_after`: drop the connection when that many APDUs have arrived (the last one is never
    answered), as a card pulled out of the reader mid-command.
    """

    def __init__(self, card: EmulatedCard, *, port: int = VPCD_BASE_PORT,
                 host: str = "127.0.0.1", pull_after: int | None = None) -> None:
        self.card = card
        self.host, self.port = host, port
        self.pull_after = pull_after
        self.apdus = 0
        self._sock: socket.socket | None = None
        self._thread: threading.Thread | None = None
        self._stopping = threading.Event()
        self.pulled = threading.Event()

    def connect(self, timeout: float = 5.0) -> None:
        deadline = time.monotonic() + timeout
        while True:
            try:
                sock = socket.create_connection((self.host, self.port), timeout=1.0)
                break
            except OSError as exc:
                if time.monotonic() >= deadline:
                    raise VpcdError(f"vpcd not reachable on {self.host}:{self.port}: {exc}"
                                    " (is pcscd with vpcd running? scripts/services/pcscd.sh start)"
                                    ) from None
                time.sleep(0.05)
        sock.settimeout(None)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self._sock = sock

    @staticmethod
    def _recv_exact(sock: socket.socket, n: int) -> bytes | None:
        buf = b""
        while len(buf) < n:
            chunk = sock.recv(n - len(buf))
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_QUICKACK, 1)
            if not chunk:
                return None
            buf += chunk
        return buf

    def serve(self) -> None:
        """Answer vpcd until the connection closes or `stop()` is called."""
        sock = self._sock
        assert sock is not None
        try:
            while not self._stopping.is_set():
                head = self._recv_exact(sock, 2)
                if head is None:
                    break
                payload = self._recv_exact(sock, int.from_bytes(head, "big"))
                if payload is None:
                    break
                if len(payload) == 1:
                    code = payload[0]
                    if code in (POWER_OFF, POWER_ON, RESET):
                        self.card.reset()
                    elif code == GET_ATR:
                        sock.sendall(len(self.card.atr).to_bytes(2, "big") + self.card.atr)
                    continue
                self.apdus += 1
                if self.pull_after is not None and self.apdus >= self.pull_after:
                    self.pulled.set()
                    break
                resp = self.card.process(payload)
                sock.sendall(len(resp).to_bytes(2, "big") + resp)
        except OSError as exc:
            if not self._stopping.is_set():
                log.info("vpcd connection on port %d ended: %s", self.port, exc)
        finally:
            self._close()

    def _close(self) -> None:
        sock, self._sock = self._sock, None
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
            sock.close()

    def start(self, timeout: float = 5.0) -> VpcdCard:
        """Connect and serve in a daemon thread ("insert the card")."""
        self.connect(timeout)
        self._thread = threading.Thread(target=self.serve, name=f"vpcd-card-{self.port}",
                                        daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        """Disconnect ("pull the card") and wait for the thread."""
        self._stopping.set()
        self._close()
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()
