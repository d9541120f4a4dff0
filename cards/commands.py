"""UICC commands (ETSI TS 102 221 §11, 3GPP TS 31.102 §7 for AUTHENTICATE and GET IDENTITY).

`Uicc` turns method calls into APDUs on a `Transport` and status words into typed errors.
Key references (TS 102 221 §9.5.1): PIN1 0x01, PIN2 0x81, ADM1 0x0A, ADM2 0x0B.
"""

from __future__ import annotations

from dataclasses import dataclass

from cards.apdu import Apdu
from cards.errors import SyncFailureError
from cards.fcp import Fcp, parse_fcp
from cards.secret import Secret
from cards.status_words import StatusWordError, WrongCode, check
from cards.tlv import TlvError, parse_tlv
from cards.transport import Transport

PIN1, PIN2, ADM1, ADM2 = 0x01, 0x81, 0x0A, 0x0B
KEY_NAMES = {PIN1: "PIN1", PIN2: "PIN2", ADM1: "ADM1", ADM2: "ADM2"}
MF = 0x3F00


@dataclass(frozen=True)
class Auth3G:
    """A successful 3G AUTHENTICATE (TS 31.102 §7.1.2.1): RES, CK, IK and optionally Kc."""

    res: bytes
    ck: bytes
    ik: bytes
    kc: bytes | None = None

    def __repr__(self) -> str:
        return f"Auth3G(res={len(self.res)} bytes, ck/ik masked)"


class Uicc:
    """Commands for one card over one transport. `cla` is 0x00 (UICC) by default."""

    def __init__(self, transport: Transport, cla: int = 0x00) -> None:
        self.transport = transport
        self.cla = cla

    def _send(self, apdu: Apdu, context: str, needs: str = "PIN or ADM") -> bytes:
        data, sw = self.transport.send(apdu)
        check(sw, context, needs)
        return data

    # -- SELECT (§11.1.1) -------------------------------------------------------------------
    def _select(self, p1: int, data: bytes, fcp: bool, context: str) -> Fcp | None:
        apdu = Apdu(self.cla, 0xA4, p1, 0x04 if fcp else 0x0C, data, 0 if fcp else None)
        resp = self._send(apdu, context)
        if not fcp:
            return None
        try:
            return parse_fcp(resp)
        except (ValueError, TlvError) as exc:
            raise StatusWordError(0x9000, context, f"unusable FCP: {exc}") from None

    def select_fid(self, fid: int, *, fcp: bool = False) -> Fcp | None:
        """SELECT by file identifier (P1 00): a child of the current DF, its parent or MF."""
        return self._select(0x00, fid.to_bytes(2, "big"), fcp, f"SELECT {fid:04X}")

    def select_path(self, path: list[int], *, from_mf: bool = True,
                    fcp: bool = False) -> Fcp | None:
        """SELECT by path (P1 08 from MF, 09 from the current DF); `path` excludes 3F00."""
        data = b"".join(f.to_bytes(2, "big") for f in path)
        name = "/".join(f"{f:04X}" for f in path)
        return self._select(0x08 if from_mf else 0x09, data, fcp,
                            f"SELECT {'3F00/' if from_mf else './'}{name}")

    def select_aid(self, aid: bytes, *, fcp: bool = False) -> Fcp | None:
        """SELECT by DF name (P1 04); a partial AID selects the first match."""
        return self._select(0x04, aid, fcp, f"SELECT AID {aid.hex().upper()}")

    # -- files (§11.1.3-11.1.6) -------------------------------------------------------------
    def read_binary(self, length: int, offset: int = 0, *, sfi: int | None = None,
                    context: str = "READ BINARY") -> bytes:
        out = b""
        while len(out) < length:
            n = min(256, length - len(out))
            pos = offset + len(out)
            p1, p2 = self._binary_p1p2(pos, sfi if not out else None)
            out += self._send(Apdu(self.cla, 0xB0, p1, p2, le=n), context, "PIN1")
            sfi = None  # after the first SFI access the EF is current
        return out

    def update_binary(self, data: bytes, offset: int = 0, *, sfi: int | None = None,
                      secret: bool = False, context: str = "UPDATE BINARY",
                      needs: str = "ADM") -> None:
        done = 0
        while done < len(data):
            chunk = data[done : done + 255]
            p1, p2 = self._binary_p1p2(offset + done, sfi if done == 0 else None)
            self._send(Apdu(self.cla, 0xD6, p1, p2, chunk, secret=secret), context, needs)
            done += len(chunk)

    @staticmethod
    def _binary_p1p2(offset: int, sfi: int | None) -> tuple[int, int]:
        if sfi is not None:
            if offset > 0xFF:
                raise ValueError("offset above 255 cannot be used with an SFI")
            return 0x80 | sfi, offset
        if offset > 0x7FFF:
            raise ValueError(f"offset {offset} above 32767")
        return offset >> 8, offset & 0xFF

    def read_record(self, number: int, length: int, *, sfi: int | None = None,
                    context: str = "READ RECORD") -> bytes:
        p2 = 0x04 | ((sfi or 0) << 3)
        return self._send(Apdu(self.cla, 0xB2, number, p2, le=length), context, "PIN1")

    def update_record(self, number: int, data: bytes, *, sfi: int | None = None,
                      context: str = "UPDATE RECORD", needs: str = "ADM") -> None:
        p2 = 0x04 | ((sfi or 0) << 3)
        self._send(Apdu(self.cla, 0xDC, number, p2, data), context, needs)

    def get_identity(self, context: int = 0x01) -> bytes:
        """GET IDENTITY (TS 31.102 §7.5, CLA '80' INS '78') in the selected ADF.USIM: the
        SUCI the USIM computes (context '01'), as the 5GS mobile identity value (TS 24.501
        §9.11.3.4 from octet 4) taken out of its 'A1' TLV."""
        data = self._send(Apdu(0x80, 0x78, 0x00, context, le=0), "GET IDENTITY (SUCI)", "PIN1")
        try:
            items = parse_tlv(data)
        except TlvError as exc:
            raise StatusWordError(0x9000, "GET IDENTITY", f"malformed answer: {exc}") from None
        if len(items) != 1 or items[0][0] != 0xA1:
            raise StatusWordError(0x9000, "GET IDENTITY", "the answer is not one 'A1' SUCI TLV")
        return items[0][1]

    def status(self) -> bytes:
        """STATUS (§11.1.2), P2 00: the FCP of the current application/DF."""
        return self._send(Apdu(self.cla, 0xF2, 0x00, 0x00, le=0), "STATUS")

    # -- codes (§11.1.9-11.1.13) ------------------------------------------------------------
    def tries_left(self, key_ref: int) -> int | None:
        """VERIFY without data: tries left, or None if verified / not needed. Burns nothing."""
        _data, sw = self.transport.send(Apdu(self.cla, 0x20, 0x00, key_ref))
        if (sw & 0xFFF0) == 0x63C0:
            return sw & 0x0F
        if sw == 0x6983:
            return 0
        check(sw, f"VERIFY {KEY_NAMES.get(key_ref, hex(key_ref))} (query)")
        return None

    def verify(self, key_ref: int, code: Secret) -> None:
        """VERIFY once. A wrong code raises `WrongCode` with `tries_left`; never retried."""
        name = KEY_NAMES.get(key_ref, f"key {key_ref:02X}")
        self._send(Apdu(self.cla, 0x20, 0x00, key_ref, _pad8(code), secret=True),
                   f"VERIFY {name}")

    def change_pin(self, key_ref: int, old: Secret, new: Secret) -> None:
        name = KEY_NAMES.get(key_ref, f"key {key_ref:02X}")
        self._send(Apdu(self.cla, 0x24, 0x00, key_ref, _pad8(old) + _pad8(new), secret=True),
                   f"CHANGE {name}")

    def unblock_pin(self, key_ref: int, puk: Secret, new: Secret) -> None:
        name = KEY_NAMES.get(key_ref, f"key {key_ref:02X}")
        self._send(Apdu(self.cla, 0x2C, 0x00, key_ref, _pad8(puk) + _pad8(new), secret=True),
                   f"UNBLOCK {name}")

    # -- AUTHENTICATE (TS 31.102 §7.1.2) ------------------------------------------------------
    def authenticate_3g(self, rand: bytes, autn: bytes) -> Auth3G:
        """3G context (P2 81). Raises `SyncFailureError` with AUTS on an SQN failure."""
        data = bytes((16,)) + rand + bytes((16,)) + autn
        resp = self._send(Apdu(self.cla, 0x88, 0x00, 0x81, data, 0, secret_response=True),
                          "AUTHENTICATE (3G)", "PIN1")
        if resp[:1] == b"\xdc":
            auts = resp[2 : 2 + resp[1]]
            raise SyncFailureError("AUTHENTICATE: the card reports an SQN out of range "
                                   "(synchronisation failure, AUTS returned)", auts, rand)
        if resp[:1] != b"\xdb":
            raise StatusWordError(0x9000, "AUTHENTICATE (3G)", "unexpected response tag")
        fields, i = [], 1
        while i < len(resp):
            n = resp[i]
            fields.append(resp[i + 1 : i + 1 + n])
            i += 1 + n
        if len(fields) < 3:
            raise StatusWordError(0x9000, "AUTHENTICATE (3G)", "response lacks RES/CK/IK")
        return Auth3G(fields[0], fields[1], fields[2], fields[3] if len(fields) > 3 else None)

    def authenticate_gsm(self, rand: bytes) -> tuple[bytes, bytes]:
        """GSM context (P2 80): (SRES, Kc)."""
        resp = self._send(Apdu(self.cla, 0x88, 0x00, 0x80, bytes((16,)) + rand, 0,
                               secret_response=True), "AUTHENTICATE (GSM)", "PIN1")
        if len(resp) < 14 or resp[0] != 4 or resp[5] != 8:
            raise StatusWordError(0x9000, "AUTHENTICATE (GSM)", "malformed SRES/Kc response")
        return resp[1:5], resp[6:14]


def _pad8(code: Secret) -> bytes:
    raw = code.reveal()
    if len(raw) > 8:
        raise ValueError(f"{code.label} is longer than 8 bytes")
    return raw + b"\xff" * (8 - len(raw))


__all__ = ["ADM1", "ADM2", "MF", "PIN1", "PIN2", "Auth3G", "Uicc", "WrongCode"]
