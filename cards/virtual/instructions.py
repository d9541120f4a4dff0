"""Instruction handlers of the virtual card (ETSI TS 102 221 §11.1; TS 31.102 §7.1.2, and §7.5
GET IDENTITY in `identity`; TS 51.011 §9.2.16). Each takes the card, as the `UiccContext`
interface, and the parsed APDU and returns response bytes.
"""

from __future__ import annotations

from collections.abc import Callable

from cards.apdu import Apdu
from cards.virtual.aka import MacFailure, SyncFailure
from cards.virtual.codes import Code
from cards.virtual.filesystem import RECORD_KINDS, Node
from cards.virtual.identity import INS_GET_IDENTITY, get_identity
from cards.virtual.interface import UiccContext
from cards.virtual.milenage_card import c2_sres, c3_kc
from cards.virtual.status import SW_OK, CardStatus, sw_bytes


# -- SELECT (§11.1.1) --------------------------------------------------------------------------
def _find_fid(card: UiccContext, fid: int) -> tuple[Node, Node]:
    """(node, DF it was found in) for a FID: child, current DF, parent, or sibling DF."""
    cur = card.current_df
    if fid == 0x3F00:
        return card.mf, card.mf
    if fid == 0x7FFF and card.current_adf is not None:
        return card.current_adf, card.current_adf
    if fid in cur.children:
        return cur.children[fid], cur
    if cur.fid == fid:
        return cur, cur
    parent = cur.parent
    if parent is not None:
        if parent.fid == fid:
            return parent, parent
        sibling = parent.children.get(fid)
        if sibling is not None and sibling.kind == "DF":
            return sibling, parent
    raise CardStatus(0x6A82)


def _walk_path(start: Node, data: bytes) -> tuple[Node, Node]:
    if len(data) % 2 or not data:
        raise CardStatus(0x6A87)
    node = via = start
    for i in range(0, len(data), 2):
        fid = int.from_bytes(data[i : i + 2], "big")
        if i == 0 and fid == 0x3F00 and start.fid == 0x3F00:
            continue
        child = node.children.get(fid)
        if child is None:
            raise CardStatus(0x6A82)
        node, via = child, node
    return node, via


def select(card: UiccContext, apdu: Apdu) -> bytes:
    p1, data = apdu.p1, apdu.data
    if p1 == 0x00:
        if len(data) != 2:
            raise CardStatus(0x6A87)
        node, via = _find_fid(card, int.from_bytes(data, "big"))
    elif p1 == 0x04:
        matches = [n for n in card.mf.children.values() if n.aid and n.aid.startswith(data)]
        if not data or not matches:
            raise CardStatus(0x6A82)
        node, via = matches[0], card.mf
    elif p1 == 0x08:
        node, via = _walk_path(card.mf, data)
    elif p1 == 0x09:
        node, via = _walk_path(card.current_df, data)
    elif p1 == 0x03:
        node = card.current_df.parent or card.mf
        via = node
    else:
        raise CardStatus(0x6A86)
    card.select(node, via)
    if apdu.p2 & 0x0C == 0x0C:
        return SW_OK
    if apdu.cla == 0xA0:  # TS 51.011 §9.2.1: a GSM response (size, FID, type), via 9Fxx
        kind = 1 if node is card.mf else 2 if node.kind == "DF" else 4
        gsm = (b"\x00\x00" + node.size.to_bytes(2, "big") + node.fid.to_bytes(2, "big")
               + bytes((kind,)) + bytes(8))
        return card.respond(apdu, gsm)
    return card.respond(apdu, node.fcp(in_df=via))


# -- binary and records (§11.1.3-11.1.6) -------------------------------------------------------
def _binary_target(card: UiccContext, apdu: Apdu) -> tuple[Node, int]:
    if apdu.p1 & 0x80:
        return card.ef_for(apdu.p1 & 0x1F, ("transparent",)), apdu.p2
    return card.ef_for(None, ("transparent",)), (apdu.p1 << 8) | apdu.p2


def read_binary(card: UiccContext, apdu: Apdu) -> bytes:
    node, offset = _binary_target(card, apdu)
    card.require(node.read)
    if offset >= len(node.data):
        raise CardStatus(0x6B00)
    return card.case2(apdu, bytes(node.data[offset : offset + (apdu.le or 256)]))


def update_binary(card: UiccContext, apdu: Apdu) -> bytes:
    node, offset = _binary_target(card, apdu)
    card.require(node.update)
    if offset + len(apdu.data) > len(node.data):
        raise CardStatus(0x6700 if offset < len(node.data) else 0x6B00)
    node.data[offset : offset + len(apdu.data)] = apdu.data
    card.changed()
    return SW_OK


def _record_target(card: UiccContext, apdu: Apdu) -> tuple[Node, bytearray]:
    if apdu.p2 & 0x07 != 0x04:
        raise CardStatus(0x6A86)  # only absolute mode is implemented
    sfi = apdu.p2 >> 3
    node = card.ef_for(sfi or None, RECORD_KINDS)
    if not 1 <= apdu.p1 <= len(node.records):
        raise CardStatus(0x6A83)
    return node, node.records[apdu.p1 - 1]


def read_record(card: UiccContext, apdu: Apdu) -> bytes:
    node, record = _record_target(card, apdu)
    card.require(node.read)
    return card.case2(apdu, bytes(record))


def update_record(card: UiccContext, apdu: Apdu) -> bytes:
    node, record = _record_target(card, apdu)
    card.require(node.update)
    if len(apdu.data) != len(record):
        raise CardStatus(0x6700)
    record[:] = apdu.data
    card.changed()
    return SW_OK


def status(card: UiccContext, apdu: Apdu) -> bytes:
    return card.case2(apdu, card.current_df.fcp() if apdu.p2 != 0x0C else b"")


# -- codes (§11.1.9-11.1.13) -------------------------------------------------------------------
def _code(card: UiccContext, apdu: Apdu) -> tuple[int, Code]:
    code = card.codes.get(apdu.p2)
    if code is None:
        raise CardStatus(0x6A88)
    return apdu.p2, code


def verify(card: UiccContext, apdu: Apdu) -> bytes:
    ref, _ = _code(card, apdu)
    code = card.codes[ref]
    if not apdu.data:
        if ref in card.verified or not code.enabled:
            return SW_OK
        return sw_bytes(0x6983) if code.blocked else sw_bytes(0x63C0 | code.tries)
    if len(apdu.data) != 8:
        raise CardStatus(0x6700)
    if code.blocked:
        raise CardStatus(0x6983)
    ok = code.check(apdu.data)
    card.changed()
    if not ok:
        card.verified.discard(ref)
        return sw_bytes(0x63C0 | code.tries)
    card.verified.add(ref)
    return SW_OK


def change_pin(card: UiccContext, apdu: Apdu) -> bytes:
    ref, _ = _code(card, apdu)
    code = card.codes[ref]
    if len(apdu.data) != 16:
        raise CardStatus(0x6700)
    if code.blocked:
        raise CardStatus(0x6983)
    ok = code.check(apdu.data[:8])
    if ok:
        code.set_value(apdu.data[8:])
        card.verified.add(ref)
    card.changed()
    return SW_OK if ok else sw_bytes(0x63C0 | code.tries)


def unblock_pin(card: UiccContext, apdu: Apdu) -> bytes:
    ref, _ = _code(card, apdu)
    code = card.codes[ref]
    if code.puk is None:
        raise CardStatus(0x6A88)
    if len(apdu.data) != 16:
        raise CardStatus(0x6700)
    if code.puk_tries == 0:
        raise CardStatus(0x6983)
    ok = code.check_puk(apdu.data[:8])
    if ok:
        code.set_value(apdu.data[8:])
        code.tries = code.max_tries
        card.verified.add(ref)
    card.changed()
    return SW_OK if ok else sw_bytes(0x63C0 | code.puk_tries)


# -- authentication ----------------------------------------------------------------------------
def authenticate(card: UiccContext, apdu: Apdu) -> bytes:
    if apdu.cla == 0xA0:  # RUN GSM ALGORITHM in DF.GSM
        if card.current_df.fid != 0x7F20 or len(apdu.data) != 16:
            raise CardStatus(0x6985 if len(apdu.data) == 16 else 0x6700)
        card.require(("PIN1",))
        res, ck, ik, _, _ = card.milenage("gsm").f2345(apdu.data)
        return card.respond(apdu, c2_sres(res) + c3_kc(ck, ik))
    adf = card.current_adf
    if adf is None or card.current_df is not adf:
        raise CardStatus(0x6985)
    card.require(("PIN1",))
    m = card.milenage("isim" if adf.fid == 0x7FF1 else "usim")
    data = apdu.data
    if apdu.p2 == 0x80:  # GSM context
        if len(data) != 17 or data[0] != 16:
            raise CardStatus(0x6A80)
        res, ck, ik, _, _ = m.f2345(data[1:17])
        return card.respond(apdu, b"\x04" + c2_sres(res) + b"\x08" + c3_kc(ck, ik))
    if apdu.p2 != 0x81:
        raise CardStatus(0x6A86)
    if len(data) != 34 or data[0] != 16 or data[17] != 16:
        raise CardStatus(0x6A80)
    rand, autn = data[1:17], data[18:34]
    try:
        res, ck, ik, kc = card.aka.authenticate(m, rand, autn)
    except MacFailure:
        raise CardStatus(0x9862) from None
    except SyncFailure as sync:
        card.changed()
        return card.respond(apdu, b"\xdc" + bytes((len(sync.auts),)) + sync.auts)
    card.changed()
    out = b"\xdb"
    for part in (res, ck, ik, kc):
        out += bytes((len(part),)) + part
    return card.respond(apdu, out)


HANDLERS: dict[int, Callable[[UiccContext, Apdu], bytes]] = {
    0xA4: select,
    0xB0: read_binary,
    0xD6: update_binary,
    0xB2: read_record,
    0xDC: update_record,
    0xF2: status,
    0x20: verify,
    0x24: change_pin,
    0x2C: unblock_pin,
    0x88: authenticate,
    INS_GET_IDENTITY: get_identity,
}
# Proprietary-class (CLA '80') instructions: TS 102 221 §10.1.2 table 10.5.
CLA_80 = frozenset({INS_GET_IDENTITY})
