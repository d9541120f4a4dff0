"""IPA framing as Osmocom speaks it on its CTRL and GSUP ports (the ip.access "IPA" multiplex,
documented in the Osmocom "IPA multiplex" chapter of the OsmoHLR/OsmoBSC user manuals).

Frame: 2-byte big-endian length of what follows the 3-byte header, 1-byte protocol, payload.
Osmocom's own protocols use protocol 0xEE (OSMO) with a 1-byte extension first in the payload:
0x00 CTRL, 0x05 GSUP. Protocol 0xFE is CCM (PING 0x00, PONG 0x01, ID_GET 0x04, ID_RESP 0x05,
ID_ACK 0x06).
"""

from __future__ import annotations

import socket
import struct

PROTO_CCM = 0xFE
PROTO_OSMO = 0xEE
EXT_CTRL = 0x00
EXT_GSUP = 0x05
CCM_PING, CCM_PONG, CCM_ID_GET, CCM_ID_RESP, CCM_ID_ACK = 0x00, 0x01, 0x04, 0x05, 0x06


class IpaClosed(ConnectionError):
    """The peer closed the IPA connection."""


def frame(proto: int, payload: bytes) -> bytes:
    return struct.pack(">HB", len(payload), proto) + payload


def osmo(ext: int, data: bytes) -> bytes:
    return frame(PROTO_OSMO, bytes([ext]) + data)


class IpaSocket:
    """A blocking TCP connection carrying IPA frames."""

    def __init__(self, host: str, port: int, timeout: float = 5.0) -> None:
        self.sock = socket.create_connection((host, port), timeout=timeout)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self._buf = bytearray()

    def close(self) -> None:
        self.sock.close()

    def send(self, data: bytes) -> None:
        self.sock.sendall(data)

    def _fill(self, n: int) -> None:
        while len(self._buf) < n:
            chunk = self.sock.recv(max(65536, n - len(self._buf)))
            if not chunk:
                raise IpaClosed("the peer closed the connection")
            self._buf += chunk

    def recv(self) -> tuple[int, bytes]:
        """The next frame: (protocol, payload)."""
        self._fill(3)
        length, proto = struct.unpack(">HB", self._buf[:3])
        self._fill(3 + length)
        payload = bytes(self._buf[3 : 3 + length])
        del self._buf[: 3 + length]
        return proto, payload
