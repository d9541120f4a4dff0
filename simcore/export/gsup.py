"""A minimal GSUP client: SendAuthInfo against an HLR (Osmocom GSUP, "GSUP Protocol" chapter of
the OsmoHLR/OsmoMSC user manuals), over IPA (protocol 0xEE, extension 0x05).

Enough to fetch authentication vectors from osmo-hlr and compare them with the HSM's Milenage
(tests, `simsmith export osmo-hlr --check`): the IPA CCM identity handshake (ID_GET answered with
an ID_RESP carrying unit ID and serial number), PING/PONG, and the messages

    0x08 SEND_AUTH_INFO_REQUEST   IMSI (0x01, TBCD), number of vectors (0x52), CN domain (0x28),
                                  optionally AUTS (0x26) with RAND (0x20) for a resync
    0x0a SEND_AUTH_INFO_RESULT    IMSI, auth tuples (0x03) of RAND 0x20, SRES 0x21, Kc 0x22,
                                  IK 0x23, CK 0x24, AUTN 0x25, RES 0x27
    0x09 SEND_AUTH_INFO_ERROR     IMSI, cause (0x02, a GMM cause)
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

from simcore.errors import SimsmithError
from simcore.export.ipa import (
    CCM_ID_GET,
    CCM_ID_RESP,
    CCM_PING,
    CCM_PONG,
    EXT_GSUP,
    PROTO_CCM,
    PROTO_OSMO,
    IpaSocket,
    frame,
    osmo,
)
from simcore.identifiers import encode_swapped_bcd

SAI_REQUEST, SAI_ERROR, SAI_RESULT = 0x08, 0x09, 0x0A
IE_IMSI, IE_CAUSE, IE_AUTH_TUPLE, IE_NUM_VECTORS, IE_CN_DOMAIN = 0x01, 0x02, 0x03, 0x52, 0x28
IE_RAND, IE_SRES, IE_KC, IE_IK, IE_CK, IE_AUTN, IE_AUTS, IE_RES = (
    0x20, 0x21, 0x22, 0x23, 0x24, 0x25, 0x26, 0x27)
CN_PS, CN_CS = 1, 2
# IPA CCM identity tags.
TAG_SERNR, TAG_UNIT = 0x00, 0x08


class GsupError(SimsmithError):
    """The HLR refused a request (`cause`: the GMM cause it sent) or spoke out of turn."""

    def __init__(self, message: str, cause: int | None = None) -> None:
        self.cause = cause
        super().__init__(message)


@dataclass(frozen=True, slots=True, repr=False)
class AuthTuple:
    rand: bytes
    sres: bytes | None
    kc: bytes | None
    ik: bytes | None
    ck: bytes | None
    autn: bytes | None
    res: bytes | None

    def __repr__(self) -> str:  # vectors are secrets of the moment: show the RAND only
        return f"AuthTuple(rand={self.rand.hex()}, umts={self.autn is not None})"


def _tlv(tag: int, value: bytes) -> bytes:
    return bytes([tag, len(value)]) + value


def _parse(data: bytes) -> list[tuple[int, bytes]]:
    out, i = [], 0
    while i + 2 <= len(data):
        tag, n = data[i], data[i + 1]
        out.append((tag, data[i + 2 : i + 2 + n]))
        i += 2 + n
    return out


def imsi_tbcd(imsi: str) -> bytes:
    return encode_swapped_bcd(imsi, (len(imsi) + 1) // 2)


def _id_resp(name: str) -> bytes:
    body = bytearray([CCM_ID_RESP])
    for tag, text in ((TAG_UNIT, "0/0/0"), (TAG_SERNR, name)):
        value = text.encode("ascii") + b"\x00"
        body += struct.pack(">HB", len(value) + 1, tag) + value
    return bytes(body)


class GsupClient:
    """One GSUP connection to an HLR, identified as `name` (its IPA serial number)."""

    def __init__(self, host: str, port: int = 4222, name: str = "simsmith",
                 timeout: float = 5.0) -> None:
        self.ipa = IpaSocket(host, port, timeout)
        self.name = name
        self._handshake()

    def _handshake(self) -> None:
        """Wait for the HLR's ID_GET and answer it: requests sent before the ID_RESP are dropped
        ("GSUP client that sent this request not found"). osmo-hlr sends no ID_ACK."""
        while True:
            proto, payload = self.ipa.recv()
            if proto != PROTO_CCM:
                continue
            if payload[:1] == bytes([CCM_ID_GET]):
                self.ipa.send(frame(PROTO_CCM, _id_resp(self.name)))
                return
            if payload[:1] == bytes([CCM_PING]):
                self.ipa.send(frame(PROTO_CCM, bytes([CCM_PONG])))

    def close(self) -> None:
        self.ipa.close()

    def __enter__(self) -> GsupClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _next_gsup(self) -> bytes:
        while True:
            proto, payload = self.ipa.recv()
            if proto == PROTO_CCM:
                kind = payload[:1]
                if kind == bytes([CCM_PING]):
                    self.ipa.send(frame(PROTO_CCM, bytes([CCM_PONG])))
                elif kind == bytes([CCM_ID_GET]):
                    self.ipa.send(frame(PROTO_CCM, _id_resp(self.name)))
                continue
            if proto == PROTO_OSMO and payload[:1] == bytes([EXT_GSUP]):
                return payload[1:]

    def send_auth_info(self, imsi: str, count: int = 1, *, cs: bool = False,
                       auts: bytes | None = None, rand: bytes | None = None) -> list[AuthTuple]:
        """Ask the HLR for `count` vectors (PS domain unless `cs`); AUTS+RAND to resync."""
        msg = bytes([SAI_REQUEST]) + _tlv(IE_IMSI, imsi_tbcd(imsi))
        msg += _tlv(IE_NUM_VECTORS, bytes([count])) + _tlv(IE_CN_DOMAIN,
                                                           bytes([CN_CS if cs else CN_PS]))
        if auts is not None and rand is not None:
            msg += _tlv(IE_AUTS, auts) + _tlv(IE_RAND, rand)
        self.ipa.send(osmo(EXT_GSUP, msg))
        while True:
            reply = self._next_gsup()
            ies = _parse(reply[1:])
            if reply[0] == SAI_ERROR:
                cause = next((v[0] for t, v in ies if t == IE_CAUSE and v), None)
                raise GsupError(f"SendAuthInfo for {imsi} refused (GMM cause {cause})", cause)
            if reply[0] != SAI_RESULT:
                continue
            out = []
            for tag, value in ies:
                if tag != IE_AUTH_TUPLE:
                    continue
                f = dict(_parse(value))
                out.append(AuthTuple(f[IE_RAND], f.get(IE_SRES), f.get(IE_KC), f.get(IE_IK),
                                     f.get(IE_CK), f.get(IE_AUTN), f.get(IE_RES)))
            return out
