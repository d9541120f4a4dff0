"""`patch_keys` (keys written into a caller's buffer inside the boundary) and `generate_code`
(PIN/PUK/ADM codes made inside the HSM), on both backends."""

from __future__ import annotations

import itertools
import logging
from pathlib import Path

import pytest

from hsm_sim.errors import BadLength, WrongKeyType, WrongOwner
from hsm_sim.hsm import Hsm, code_from_random
from hsm_sim.kcv import kcv
from hsm_sim.keyref import KeyType
from hsm_sim.soft import SoftHsm
from tests.helpers.hsm import Recorder, Slot

ICCID = "8949000000000000001"
OTHER = "8949000000000000019"
_n = itertools.count()


def owner() -> str:
    return f"894900000000000{next(_n):04d}"


def test_patch_writes_each_key_at_its_slot(hsm: Hsm) -> None:
    o = owner()
    ki, opc = hsm.generate(o, KeyType.KI), hsm.generate(o, KeyType.OPC)
    buf = bytearray(b"\xee" * 64)
    hsm.patch_keys(buf, [Slot("ki", 4, 16), Slot("opc", 30, 16), Slot("ki", 48, 16)],
                   [ki, opc, ki], owner=o)
    assert kcv(bytes(buf[4:20])) == hsm.kcv(ki) and kcv(bytes(buf[30:46])) == hsm.kcv(opc)
    assert buf[48:64] == buf[4:20]
    assert buf[:4] == b"\xee" * 4 and buf[20:30] == b"\xee" * 10 and buf[46:48] == b"\xee\xee"


def test_patch_refuses_before_writing(hsm: Hsm) -> None:
    o = owner()
    ki = hsm.generate(o, KeyType.KI)
    buf = bytearray(32)
    with pytest.raises(WrongOwner):
        hsm.patch_keys(buf, [Slot("ki", 0, 16)], [ki], owner=OTHER)
    with pytest.raises(BadLength, match="slot 0 holds 8 bytes"):
        hsm.patch_keys(buf, [Slot("ki", 0, 8)], [ki])
    with pytest.raises(BadLength, match="outside"):
        hsm.patch_keys(buf, [Slot("ki", 20, 16)], [ki])
    with pytest.raises(BadLength, match="2 slots but 1"):
        hsm.patch_keys(buf, [Slot("ki", 0, 16), Slot("ki", 16, 16)], [ki])
    assert buf == bytearray(32)


def test_codes(hsm: Hsm, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    o = owner()
    pin = hsm.generate_code(o, KeyType.PIN, 4)
    adm = hsm.generate_code(o, KeyType.ADM, 8)
    buf = bytearray(16)
    hsm.patch_keys(buf, [Slot("pin1", 0, 8), Slot("adm1", 8, 8)], [pin, adm], owner=o)
    assert buf[:4].isdigit() and buf[4:8] == b"\xff" * 4
    assert buf[8:].isdigit()
    with pytest.raises(WrongKeyType):
        hsm.generate_code(o, KeyType.KI, 8)
    with pytest.raises(BadLength):
        hsm.generate_code(o, KeyType.PIN, 9)
    shown = repr(pin) + repr(adm) + pin.to_token() + caplog.text
    assert bytes(buf[8:]).decode() not in shown


def test_patch_is_audited_without_keys(tmp_path: Path) -> None:
    audit = Recorder()
    hsm = SoftHsm.init(tmp_path / "hsm", components=[b"\x11" * 32, b"\x2c" * 32], audit=audit)
    ki = hsm.generate(ICCID, KeyType.KI)
    buf = bytearray(16)
    hsm.patch_keys(buf, [Slot("ki", 0, 16)], [ki], owner=ICCID)
    action, subject, details = audit.records[-1]
    assert (action, subject, details) == ("key.patch", ICCID, {"key_types": ["Ki"]})
    assert buf.hex() not in repr(audit.records)


def test_code_from_random_is_uniform_digits() -> None:
    code = code_from_random(lambda n: bytes(range(250, 256)) + bytes([7] * (n - 6)), 6)
    assert code == b"777777\xff\xff"


def test_codes_imported_in_clear(hsm: Hsm) -> None:
    """A vendor file's ADM1 (stored form: ASCII digits, 'FF'-padded to 8 bytes) is accepted and
    patched back unchanged; another length is refused."""
    o = owner()
    adm = hsm.import_clear(o, KeyType.ADM, b"87654321")
    pin = hsm.import_clear(o, KeyType.PIN, b"1234\xff\xff\xff\xff")
    buf = bytearray(16)
    hsm.patch_keys(buf, [Slot("adm1", 0, 8), Slot("pin1", 8, 8)], [adm, pin], owner=o)
    assert bytes(buf) == b"876543211234\xff\xff\xff\xff"
    with pytest.raises(BadLength, match="stored as 8 bytes"):
        hsm.import_clear(o, KeyType.PUK, b"1234")
