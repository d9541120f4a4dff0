"""The software UICC answers like a T=0 UICC (TS 102 221 §10-11, TS 31.102 §7): selects, FCP,
6Cxx, access conditions, PIN/PUK counters, AUTHENTICATE contexts, state file; secrets stay out
of reprs."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from cards.apdu import Apdu
from cards.commands import ADM1, PIN1, Uicc
from cards.drivers.base import USIM_AID
from cards.errors import SyncFailureError
from cards.profile import AuthVector, CardKeys, StaticKeyWriter
from cards.read import read_card
from cards.secret import Secret, adm_from_text, pin_from_text
from cards.status_words import (
    CodeBlocked,
    FileNotFound,
    SecurityStatusNotSatisfied,
    WrongCode,
)
from cards.virtual.card import VirtualUicc
from cards.virtual.loopback import LoopbackTransport
from cards.virtual.milenage_card import Milenage, c2_sres, c3_kc
from tests.cards.helpers import KI, OPC, vector


def uicc(card: VirtualUicc) -> Uicc:
    return Uicc(LoopbackTransport(card))


def test_select_variants_and_fcp() -> None:
    u = uicc(VirtualUicc())
    fcp = u.select_aid(USIM_AID, fcp=True)
    assert fcp is not None and fcp.kind == "DF" and fcp.aid and fcp.aid.startswith(USIM_AID)
    assert fcp.pin_refs == (1, 10)
    imsi = u.select_fid(0x6F07, fcp=True)
    assert imsi is not None and imsi.size == 9 and imsi.sfi == 7
    msisdn = u.select_path([0x7FF0, 0x6F40], fcp=True)
    assert msisdn is not None and msisdn.kind == "linear_fixed" and msisdn.record_length == 34
    u.select_path([0x7F20])
    u.select_fid(0x7F10)  # a sibling DF of the current DF
    with pytest.raises(FileNotFound, match="SELECT 6F99: file or application not found"):
        u.select_fid(0x6F99)


def test_wrong_le_gets_6cxx_and_is_resent() -> None:
    card = VirtualUicc()
    t = LoopbackTransport(card)
    data, sw = t.send(Apdu(0, 0xB0, 0x82, 0, le=0))  # EF.ICCID by SFI, Le 256
    assert sw == 0x9000 and len(data) == 10 and t.stats.exchanges == 2


def test_access_conditions() -> None:
    card = VirtualUicc(pin1_enabled=True)
    u = uicc(card)
    u.select_aid(USIM_AID)
    with pytest.raises(SecurityStatusNotSatisfied, match="ADM not verified"):
        u.update_binary(b"\x00\x00", sfi=6)
    with pytest.raises(SecurityStatusNotSatisfied, match="PIN1 not verified"):
        u.read_binary(9, sfi=7)
    u.verify(PIN1, pin_from_text("1234"))
    assert u.read_binary(9, sfi=7) == b"\xff" * 9
    info = read_card(LoopbackTransport(card))
    assert info["imsi"] is None and "EF.IMSI: PIN1 not verified" in info["notes"]


def test_pin_counters_change_and_unblock(tmp_path: Path) -> None:
    state = tmp_path / "c.json"
    card = VirtualUicc(pin1_enabled=True, state_path=state)
    u = uicc(card)
    assert u.tries_left(PIN1) == 3
    for left in (2, 1, 0):
        with pytest.raises(WrongCode) as exc:
            u.verify(PIN1, pin_from_text("0000"))
        assert exc.value.tries_left == left
    with pytest.raises(CodeBlocked):
        u.verify(PIN1, pin_from_text("1234"))
    with pytest.raises(WrongCode, match="9 tries left"):
        u.unblock_pin(PIN1, pin_from_text("00000000"), pin_from_text("4321"))
    u.unblock_pin(PIN1, pin_from_text("12345678"), pin_from_text("4321"))
    u.change_pin(PIN1, pin_from_text("4321"), pin_from_text("9999"))
    again = VirtualUicc(state_path=state)  # counters and codes survive a restart
    assert again.codes[PIN1].tries == 3 and again.codes[PIN1].puk_tries == 10
    u2 = uicc(again)
    u2.verify(PIN1, pin_from_text("9999"))
    assert u2.tries_left(ADM1) == 3


def test_state_file_holds_verifiers_not_codes(tmp_path: Path) -> None:
    """A card only checks codes; the state file keeps verifiers (issue 13 item 1), mode 0600."""
    state = tmp_path / "c.json"
    codes = {"adm1": "90817263", "pin1": "4711", "puk1": "31415926", "pin2": "8642",
             "puk2": "27182818"}
    card = VirtualUicc(state_path=state, **codes)  # type: ignore[arg-type]
    u = uicc(card)
    u.change_pin(PIN1, pin_from_text("4711"), pin_from_text("0815"))
    text = state.read_text()
    for code in [*codes.values(), "0815"]:
        # as ASCII hex, or as digits standing alone (a short code can occur inside a random
        # verifier's hex by chance: that is not a leak)
        assert code.encode().hex() not in text, code
        assert not re.search(rf"(?<![0-9a-f]){code}(?![0-9a-f])", text), code
    assert '"value"' not in text and "hmac-sha256:" in text
    assert state.stat().st_mode & 0o777 == 0o600
    again = uicc(VirtualUicc(state_path=state))
    with pytest.raises(WrongCode):
        again.verify(ADM1, adm_from_text("12345678"))
    again.verify(ADM1, adm_from_text("90817263"))
    again.verify(PIN1, pin_from_text("0815"))


def test_state_file_with_clear_codes_is_rewritten_with_verifiers(tmp_path: Path) -> None:
    state = tmp_path / "old.json"
    VirtualUicc(state_path=state)
    old = json.loads(state.read_text())
    old["codes"]["0A"] = {"value": b"55667788".hex(), "max_tries": 3, "tries": 3, "puk": None,
                          "puk_max": 10, "puk_tries": 10, "enabled": True}
    old.pop("version")
    state.write_text(json.dumps(old))
    card = VirtualUicc(state_path=state)
    uicc(card).verify(ADM1, adm_from_text("55667788"))
    assert b"55667788".hex() not in state.read_text()


def test_authenticate_contexts() -> None:
    card = VirtualUicc()
    card.node("3F00/7FF0/AF20").data[:] = b"\x14" + KI + OPC
    u = uicc(card)
    u.select_aid(USIM_AID)
    v = vector(seq=4)
    result = u.authenticate_3g(v.rand, v.autn)
    assert (result.res, result.ck, result.ik) == (v.res, v.ck, v.ik)
    assert result.kc == c3_kc(v.ck, v.ik)
    assert "ck" not in repr(result).replace("ck/ik masked", "")
    sres, kc = u.authenticate_gsm(v.rand)
    assert sres == c2_sres(v.res) and kc == v.kc
    with pytest.raises(SyncFailureError) as exc:  # replay: SQN not fresh
        u.authenticate_3g(v.rand, v.autn)
    # the AUTS conceals SQN_MS with AK* and is MACed with f1* (TS 33.102 §6.3.5)
    m = Milenage(KI, OPC)
    _, _, _, _, ak_star = m.f2345(v.rand)
    sqn_ms = bytes(a ^ b for a, b in zip(exc.value.auts[:6], ak_star, strict=True))
    assert int.from_bytes(sqn_ms, "big") == 4 << 5
    assert m.f1(v.rand, sqn_ms, b"\x00\x00")[1] == exc.value.auts[6:]


def test_op_instead_of_opc_and_other_algorithm() -> None:
    from cards.virtual.milenage_card import opc_from_op

    op = bytes(range(16))
    card = VirtualUicc()
    card.node("3F00/7FF0/AF20").data[:] = b"\x04" + KI + op  # bit 4 clear: the value is OP
    u = uicc(card)
    u.select_aid(USIM_AID)
    v = vector(seq=1, opc=opc_from_op(KI, op))
    assert u.authenticate_3g(v.rand, v.autn).res == v.res
    card.node("3F00/7FF0/AF20").data[0] = 0x1F
    with pytest.raises(Exception, match="6985"):
        u.authenticate_3g(v.rand, v.autn)


def test_secrets_stay_out_of_reprs() -> None:
    keys = CardKeys(Secret(KI, "Ki"), Secret(OPC, "OPc"))
    writer = StaticKeyWriter(adm_from_text("12345678"), keys)
    v = vector()
    card = VirtualUicc()
    texts = [repr(keys), repr(writer), str(writer), repr(card), repr(card.codes),
             repr(Milenage(KI, OPC)), repr(v), repr(AuthVector(v.rand, v.autn, v.res, v.ck, v.ik))]
    blob = " ".join(texts).lower()
    for secret in (KI.hex(), OPC.hex(), b"12345678".hex(), "12345678", v.ck.hex(), v.ik.hex()):
        assert secret not in blob


def test_gsm_class_a0_uses_9fxx() -> None:
    card = VirtualUicc()
    card.node("3F00/A515/6F20").data[:] = b"\x14" + KI + OPC
    t = LoopbackTransport(card)
    data, sw = t.send(Apdu(0xA0, 0xA4, 0, 0, b"\x7f\x20"))
    assert sw == 0x9000 and data[4:7] == b"\x7f\x20\x02"
    v = vector()
    data, sw = t.send(Apdu(0xA0, 0x88, 0, 0, v.rand))
    assert sw == 0x9000 and data == v.sres + v.kc
    assert t.stats.exchanges == 4
