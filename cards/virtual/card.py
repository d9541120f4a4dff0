"""The software UICC: answers command APDUs the way a T=0 UICC does (ETSI TS 102 221 §10-11,
3GPP TS 31.102 §7 AUTHENTICATE, TS 51.011 §9.2.16 RUN GSM ALGORITHM for class A0).

Case-4 commands answer 61xx and wait for GET RESPONSE; case-2 commands with a wrong Le answer
6Cxx. State (files, counters, SQN) can be saved to a JSON file after every change, so a card
keeps what was written across restarts — and across a pull in the middle of a write. The state
file holds PIN/PUK/ADM codes only as verifiers (`codes.py`) and is written with mode 0600.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from cards.apdu import Apdu, ApduError, parse_apdu
from cards.secret import Secret
from cards.virtual.aka import CardAka
from cards.virtual.build import build_card
from cards.virtual.card_types import ALGO_MILENAGE, CONFIG_OPC, CardType, card_type
from cards.virtual.codes import Code, pad8
from cards.virtual.filesystem import Node
from cards.virtual.instructions import CLA_80, HANDLERS
from cards.virtual.milenage_card import Milenage, opc_from_op
from cards.virtual.status import SW_OK, CardStatus, sw_bytes

STATE_VERSION = 2


def _code_bytes(code: str | Secret) -> bytes:
    if isinstance(code, Secret):  # an ADM1 handed over by the HSM (simcore.lab_cards)
        raw = code.reveal()
        return raw + b"\xff" * (8 - len(raw))
    return bytes.fromhex(code) if len(code) == 16 else pad8(code)


class VirtualUicc:
    """One virtual card. `process(apdu_bytes) -> response_bytes`; `reset()` on power/reset."""

    def __init__(self, type_name: str = "sysmoISIM-SJA2", *, iccid: str = "8988211000000000011",
                 adm1: str | Secret = "12345678", pin1: str = "1234", puk1: str = "12345678",
                 pin2: str = "5678", puk2: str = "87654321", pin1_enabled: bool = False,
                 state_path: str | os.PathLike[str] | None = None) -> None:
        self.state_path = Path(state_path) if state_path else None
        if self.state_path and self.state_path.exists():
            self._load(json.loads(self.state_path.read_text()))
        else:
            self.type: CardType = card_type(type_name)
            self.mf = build_card(self.type, iccid)
            self.codes: dict[int, Code] = {
                0x01: Code.new(pad8(pin1), puk=pad8(puk1), enabled=pin1_enabled),
                0x81: Code.new(pad8(pin2), puk=pad8(puk2), enabled=False),
                0x0A: Code.new(_code_bytes(adm1)),
            }
            self.aka = CardAka()
            self.save()
        self.apdu_count = 0
        self.reset()

    def __repr__(self) -> str:
        return f"VirtualUicc({self.type.name})"

    @property
    def atr(self) -> bytes:
        return self.type.atr

    # -- state ------------------------------------------------------------------------------
    def to_json(self) -> dict[str, Any]:
        """Files that differ from blank (FF), by home path; codes as verifiers only."""
        files: dict[str, Any] = {}
        for node in self.mf.walk():
            if node.kind == "DF" or node.is_blank():
                continue
            if node.kind == "transparent":
                files[node.path] = node.data.hex()
            else:
                files[node.path] = [r.hex() for r in node.records]
        return {"version": STATE_VERSION, "type": self.type.name, "files": files,
                "sqn": self.aka.seq,
                "codes": {f"{k:02X}": c.to_json() for k, c in self.codes.items()}}

    def _load(self, state: dict[str, Any]) -> None:
        self.type = card_type(state["type"])
        self.mf = build_card(self.type, "0" * 19)
        files = state["files"]
        for node in self.mf.walk():
            if node.kind == "DF":
                continue
            value = files.get(node.path)
            if value is None:
                if state.get("version", 1) >= 2:
                    node.fill()  # saved blank
                continue
            if isinstance(value, list):
                for record, saved in zip(node.records, value, strict=False):
                    raw = bytes.fromhex(saved)
                    if len(raw) == len(record):
                        record[:] = raw
            else:
                raw = bytes.fromhex(value)
                node.data[: min(len(raw), len(node.data))] = raw[: len(node.data)]
        self.codes = {int(k, 16): Code.from_json(v) for k, v in state["codes"].items()}
        self.aka = CardAka(list(state.get("sqn", [])))

    def save(self) -> None:
        """Write the state file (atomically, mode 0600: it holds the card's keys)."""
        if self.state_path is None:
            return
        tmp = self.state_path.with_suffix(self.state_path.suffix + ".tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as fh:
            json.dump(self.to_json(), fh)
        os.chmod(tmp, 0o600)  # O_CREAT's mode does not apply to a leftover file
        os.replace(tmp, self.state_path)

    # -- session ----------------------------------------------------------------------------
    def reset(self) -> None:
        """Power-on / warm reset: MF selected, no code verified, no pending response."""
        self.current_df: Node = self.mf
        self.current_ef: Node | None = None
        self.current_adf: Node | None = None
        self.verified: set[int] = set()
        self.pending: bytes | None = None

    def node(self, path: str) -> Node:
        """The node at a path like '3F00/7FF0/6F07' (tests and tools); linked paths resolve."""
        parts = [int(p, 16) for p in path.split("/")]
        if parts[0] != self.mf.fid:
            raise KeyError(path)
        node = self.mf
        for fid in parts[1:]:
            child = node.children.get(fid)
            if child is None:
                raise KeyError(path)
            node = child
        return node

    def process(self, raw: bytes) -> bytes:
        self.apdu_count += 1
        try:
            apdu = parse_apdu(raw)
        except ApduError:
            return sw_bytes(0x6700)
        try:
            if apdu.ins == 0xC0:
                return self._get_response(apdu)
            self.pending = None
            handler = HANDLERS.get(apdu.ins)
            if handler is None:
                return sw_bytes(0x6D00)
            if (apdu.cla == 0x80) != (apdu.ins in CLA_80) or apdu.cla not in (0x00, 0xA0, 0x80):
                return sw_bytes(0x6E00)
            return handler(self, apdu)
        except CardStatus as status:
            return sw_bytes(status.sw)

    def _get_response(self, apdu: Apdu) -> bytes:
        if self.pending is None:
            raise CardStatus(0x6985)
        want = apdu.le or 256
        if want > len(self.pending):
            return sw_bytes(0x6C00 | len(self.pending))
        data, self.pending = self.pending[:want], self.pending[want:] or None
        if self.pending:
            return data + bytes((0x61, min(len(self.pending), 256) & 0xFF))
        return data + SW_OK

    # -- the interface the instruction handlers use (interface.UiccContext) -----------------
    def select(self, node: Node, via: Node) -> None:
        if node.kind == "DF":
            self.current_df, self.current_ef = node, None
            if node.aid:
                self.current_adf = node
        else:
            self.current_df, self.current_ef = via, node

    def respond(self, apdu: Apdu, data: bytes) -> bytes:
        if not data:
            return SW_OK
        self.pending = data
        return bytes((0x9F if apdu.cla == 0xA0 else 0x61, min(len(data), 256) & 0xFF))

    def case2(self, apdu: Apdu, data: bytes) -> bytes:
        want = apdu.le if apdu.le is not None else 256
        if want != len(data):
            if want > len(data) or apdu.ins in (0xB2, 0xF2):
                return sw_bytes(0x6C00 | (len(data) & 0xFF))
            data = data[:want]
        return data + SW_OK

    def allowed(self, condition: tuple[str, ...]) -> bool:
        for c in condition:
            if c == "ALW" or (c == "ADM1" and 0x0A in self.verified):
                return True
            if c == "PIN1" and (0x01 in self.verified or not self.codes[0x01].enabled):
                return True
        return False

    def require(self, condition: tuple[str, ...]) -> None:
        if not self.allowed(condition):
            raise CardStatus(0x6982)

    def ef_for(self, sfi: int | None, kinds: tuple[str, ...]) -> Node:
        if sfi is not None:
            node = self.current_df.child_by_sfi(sfi)
            if node is None:
                raise CardStatus(0x6A82)
            self.current_ef = node
        node = self.current_ef
        if node is None:
            raise CardStatus(0x6986)
        if node.kind not in kinds:
            raise CardStatus(0x6981)
        return node

    def changed(self) -> None:
        self.save()

    def milenage(self, purpose: str) -> Milenage:
        """K/OPc from the vendor files: USIM/ISIM AF20, DF.SYSTEM 6F20 (2G), or SJS1 00FF/00F7.

        The SJA key files are read as the card does: the config byte decides Milenage and
        whether bytes 17-32 are OPc or OP (the vendor tools write K at offset 1 and OPc at
        offset 17 and leave the config byte at its factory value).
        """
        if self.type.key_layout == "sjs1":
            k = bytes(self.node("3F00/7F20/00FF").data)
            opc_file = bytes(self.node("3F00/7F20/00F7").data)
            return Milenage(k, opc_file[1:] if opc_file[0] == 0x01
                            else opc_from_op(k, opc_file[1:]))
        path = {"usim": "3F00/7FF0/AF20", "isim": "3F00/7FF1/AF20",
                "gsm": "3F00/A515/6F20"}[purpose]
        raw = bytes(self.node(path).data)
        if raw[0] & 0x0F != ALGO_MILENAGE:
            raise CardStatus(0x6985)  # this emulator implements Milenage only
        k, opx = raw[1:17], raw[17:33]
        return Milenage(k, opx if raw[0] & CONFIG_OPC else opc_from_op(k, opx))

