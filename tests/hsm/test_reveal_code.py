"""`reveal_code`: the digits of a PIN or PUK (customer care), on both backends. ADM codes and
cryptographic keys are refused, so is another owner's ref; the audit sink learns the key type
only."""

from __future__ import annotations

import itertools
import logging
from pathlib import Path

import pytest

from hsm_sim.errors import BadLength, TamperedBlob, WrongKeyType, WrongOwner
from hsm_sim.hsm import Hsm, code_digits
from hsm_sim.keyref import KeyRef, KeyType
from hsm_sim.soft import SoftHsm
from tests.helpers.hsm import Recorder, Slot

_n = itertools.count()


def owner() -> str:
    return f"894900000000001{next(_n):04d}"


def test_reveals_generated_codes_as_patched(hsm: Hsm, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    o = owner()
    pin = hsm.generate_code(o, KeyType.PIN, 4)
    puk = hsm.generate_code(o, KeyType.PUK, 8)
    buf = bytearray(16)
    hsm.patch_keys(buf, [Slot("pin1", 0, 8), Slot("puk1", 8, 8)], [pin, puk], owner=o)
    shown_pin, shown_puk = hsm.reveal_code(pin, owner=o), hsm.reveal_code(puk, owner=o)
    assert len(shown_pin) == 4 and shown_pin.isdigit() and len(shown_puk) == 8
    assert buf == bytearray(shown_pin.encode().ljust(8, b"\xff") + shown_puk.encode())
    assert shown_puk not in caplog.text


def test_reveals_imported_codes(hsm: Hsm) -> None:
    o = owner()
    pin = hsm.import_clear(o, KeyType.PIN, b"123456\xff\xff")
    puk = hsm.import_clear(o, KeyType.PUK, b"87654321")
    assert hsm.reveal_code(pin, owner=o) == "123456"
    assert hsm.reveal_code(puk, owner=o) == "87654321"


def test_refuses_adm_keys_and_other_owners(hsm: Hsm) -> None:
    o = owner()
    adm = hsm.generate_code(o, KeyType.ADM, 8)
    with pytest.raises(WrongKeyType, match="PIN and PUK codes only, not ADM"):
        hsm.reveal_code(adm, owner=o)
    for key_type in (KeyType.KI, KeyType.OPC, KeyType.KIC, KeyType.KID, KeyType.KIK):
        with pytest.raises(WrongKeyType, match=f"not {key_type.value}"):
            hsm.reveal_code(hsm.generate(o, key_type), owner=o)
    pin = hsm.generate_code(o, KeyType.PIN, 4)
    with pytest.raises(WrongOwner):
        hsm.reveal_code(pin, owner=owner())


def test_refuses_a_relabelled_blob(hsm: Hsm) -> None:
    """An ADM blob presented as a PIN: the key type is bound into the wrapping."""
    o = owner()
    adm = hsm.generate_code(o, KeyType.ADM, 8)
    forged = KeyRef(adm.backend, KeyType.PIN, adm.owner, adm.kek, adm.blob)
    with pytest.raises(TamperedBlob):
        hsm.reveal_code(forged, owner=o)


def test_reveal_is_audited_without_the_value(tmp_path: Path) -> None:
    audit = Recorder()
    hsm = SoftHsm.init(tmp_path / "hsm", components=[b"\x11" * 32, b"\x2c" * 32], audit=audit)
    o = owner()
    puk = hsm.import_clear(o, KeyType.PUK, b"24681357")
    assert hsm.reveal_code(puk, owner=o) == "24681357"
    assert audit.records[-1] == ("key.reveal", o, {"key_type": "PUK"})
    assert "24681357" not in repr(audit.records)
    with pytest.raises(WrongKeyType):
        hsm.reveal_code(hsm.generate_code(o, KeyType.ADM), owner=o)
    assert audit.records[-1][0] != "key.reveal"


def test_code_digits_refuses_anything_but_the_stored_form() -> None:
    ref = KeyRef("soft", KeyType.PIN, "8949", "storage", b"\x00" * 16)
    assert code_digits(b"1234\xff\xff\xff\xff", ref) == "1234"
    for bad in (b"123\xff\xff\xff\xff\xff", b"12a4\xff\xff\xff\xff", b"1234\xff\xff\xff",
                b"12\xff34\xff\xff\xff", b"\x00" * 8, "１２３４".encode()[:8]):
        with pytest.raises(BadLength) as e:
            code_digits(bad, ref)
        assert bad.decode("latin-1") not in str(e.value)
