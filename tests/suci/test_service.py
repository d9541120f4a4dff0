"""simcore.suci_keys on SQLite and PostgreSQL with a soft HSM: the registry, rotation with
overlap, audited de-concealment and its exact refusals."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, select

from hsm_sim.ecies import MacFailure, ProtectionScheme
from hsm_sim.eki import EkiScheme, encrypt_eki
from hsm_sim.hsm import KekPurpose
from hsm_sim.soft import SoftHsm
from simcore import suci_keys as sk
from simcore.db import read_session
from simcore.errors import Conflict, InvalidInput
from simcore.models import AuditEvent
from simcore.suci import InvalidSuci, Suci, UnsupportedScheme
from tests.hsm.vectors import cases, h

C4 = {c.values[0]["set"]: c.values[0] for c in cases("suci/ts33501_annex_c4.txt")}
IMSI = "274012001002086"


@pytest.fixture
def hsm(tmp_path: Path) -> SoftHsm:
    hsm = SoftHsm.init(tmp_path / "hsm", components=[b"\x11" * 32, b"\x2c" * 32])
    hsm.kek_add("vendor", KekPurpose.TRANSPORT, [b"\x42" * 16])
    return hsm


def annex_keys(engine: Engine, hsm: SoftHsm) -> None:
    for key_id, setname in ((27, "C.4.3.1"), (28, "C.4.4.1")):
        data = encrypt_eki(EkiScheme.AES128_ECB, b"\x42" * 16, h(C4[setname], "hn_private"))
        sk.import_key(engine, hsm, key_id, C4[setname]["scheme"], data, "vendor", actor="ops")


def events(engine: Engine, action: str) -> list[Any]:
    with read_session(engine) as s:
        return list(s.execute(select(AuditEvent).where(AuditEvent.action == action)
                              ).scalars())


@pytest.mark.parametrize("setname,key_id", [("C.4.3.1", 27), ("C.4.4.1", 28)])
def test_annex_suci_deconceals_to_its_imsi(engine: Engine, hsm: SoftHsm, setname: str,
                                           key_id: int) -> None:
    annex_keys(engine, hsm)
    rec = C4[setname]
    text = f"suci-0-274-012-678-{rec['scheme']}-{key_id}-{rec['scheme_output'].lower()}"
    got = sk.deconceal(engine, hsm, text, actor="udm-1")
    assert (got.supi, got.suci.routing_indicator) == (f"imsi-{IMSI}", "678")
    binary = Suci.parse(text).to_bytes()
    assert sk.deconceal(engine, hsm, binary, actor="udm-1").imsi.digits == IMSI
    assert sk.deconceal(engine, hsm, "0x" + binary.hex(), actor="udm-1").imsi.digits == IMSI
    ev = events(engine, "suci.deconcealed")
    assert len(ev) == 3 and ev[0].actor == "udm-1" and ev[0].subject_id == str(key_id)
    assert json.loads(ev[0].details)["imsi"] == IMSI


def test_generate_conceal_deconceal_and_rotation(engine: Engine, hsm: SoftHsm) -> None:
    old = sk.generate_key(engine, hsm, 1, "A", actor="ops")
    new = sk.generate_key(engine, hsm, 2, "B", actor="ops")
    assert (old.scheme, new.scheme, old.state) == (ProtectionScheme.PROFILE_A,
                                                   ProtectionScheme.PROFILE_B, "active")
    s_old = sk.conceal(engine, IMSI, "A", 1, routing_indicator="12", mnc_length=3)
    s_new = sk.conceal(engine, IMSI, "B", 2, mnc_length=3)
    # overlap: both identifiers de-conceal
    for s in (s_old, s_new):
        assert sk.deconceal(engine, hsm, str(s), actor="udm").imsi.digits == IMSI
    sk.retire_key(engine, 1, actor="ops")
    with pytest.raises(sk.RetiredKey, match="key id 1: this home-network key is retired"):
        sk.deconceal(engine, hsm, str(s_old), actor="udm")
    assert sk.deconceal(engine, hsm, str(s_new), actor="udm").imsi.digits == IMSI
    assert [(k.key_id, k.state) for k in sk.list_keys(engine)] == [(1, "retired"), (2, "active")]
    with pytest.raises(sk.RetiredKey):
        sk.retire_key(engine, 1, actor="ops")
    with pytest.raises(Conflict, match="never reused"):
        sk.generate_key(engine, hsm, 1, "A", actor="ops")
    info = sk.list_keys(engine)[0].as_dict()
    assert set(info) == {"key_id", "scheme", "profile", "public_key", "source", "state",
                         "created_at", "retired_at"}


def test_refusals(engine: Engine, hsm: SoftHsm) -> None:
    annex_keys(engine, hsm)
    out = C4["C.4.3.1"]["scheme_output"]
    with pytest.raises(sk.UnknownKeyId, match="SUCI key id 5"):
        sk.deconceal(engine, hsm, f"suci-0-274-012-0-1-5-{out}", actor="udm")
    with pytest.raises(sk.SchemeMismatch, match="Profile A with key id 28"):
        sk.deconceal(engine, hsm, f"suci-0-274-012-0-1-28-{out}", actor="udm")
    with pytest.raises(UnsupportedScheme, match="scheme 4 is reserved"):
        sk.deconceal(engine, hsm, f"suci-0-274-012-0-4-27-{out}", actor="udm")
    bad = out[:-2] + ("00" if out[-2:] != "00" else "01")
    with pytest.raises(MacFailure):
        sk.deconceal(engine, hsm, f"suci-0-274-012-0-1-27-{bad}", actor="udm")
    with pytest.raises(InvalidSuci, match="0x-prefixed"):
        sk.deconceal(engine, hsm, "0xzz", actor="udm")
    assert [json.loads(e.details)["error"] for e in events(engine, "suci.deconceal_failed")
            ] == ["MacFailure"]
    assert events(engine, "suci.deconcealed") == []
    with pytest.raises(InvalidInput, match="profile"):
        sk.generate_key(engine, hsm, 3, "C", actor="ops")
    with pytest.raises(InvalidInput, match="0 to 255"):
        sk.generate_key(engine, hsm, 300, "A", actor="ops")


def test_null_scheme_needs_no_key(engine: Engine, hsm: SoftHsm) -> None:
    s = sk.conceal(engine, IMSI, "null", 0, mnc_length=3)
    assert str(s) == "suci-0-274-012-0-0-0-001002086"
    assert sk.deconceal(engine, hsm, str(s), actor="udm").imsi.digits == IMSI


def test_registry_holds_no_clear_key(engine: Engine, hsm: SoftHsm) -> None:
    annex_keys(engine, hsm)
    with read_session(engine) as s:
        dump = repr([tuple(r) for r in s.execute(select(sk.SuciKey)).all()])
    dump += repr([e.details for e in events(engine, "suci.key_import")])
    for setname in ("C.4.3.1", "C.4.4.1"):
        assert C4[setname]["hn_private"].lower() not in dump.lower()


def test_calc_info_lists_the_active_keys_newest_first(engine: Engine, hsm: SoftHsm) -> None:
    annex_keys(engine, hsm)
    data = sk.calc_info(engine)
    assert data.startswith(bytes.fromhex("a006" "0201" "0102" "0000"))  # B (newest), A, null
    sk.retire_key(engine, 28, actor="ops")
    assert sk.calc_info(engine).startswith(bytes.fromhex("a004" "0101" "0000"))


def test_a_phone_concealing_from_calc_info_reaches_the_imsi(engine: Engine, hsm: SoftHsm) -> None:
    from simcore.identifiers import Imsi
    from simcore.suci import conceal_as_phone, parse_suci_calc_info

    annex_keys(engine, hsm)
    info = sk.calc_info(engine)
    entries = parse_suci_calc_info(info + b"\xff" * 20)  # as read from a 118-octet file
    assert [(s, k.key_id if k else None) for s, k in entries] == [(2, 28), (1, 27), (0, None)]
    imsi = Imsi.parse(IMSI, 3)
    for supported, key_id in (((ProtectionScheme.PROFILE_A, ProtectionScheme.PROFILE_B), 28),
                              ((ProtectionScheme.PROFILE_A,), 27), ((), 0)):
        s = conceal_as_phone(imsi, info, routing_indicator="12", supported=supported)
        assert s.key_id == key_id
        got = sk.deconceal(engine, hsm, s.to_bytes(), actor="udm")
        assert (got.imsi.digits, got.suci.routing_indicator) == (IMSI, "12")
    with pytest.raises(InvalidSuci, match="no protection scheme"):
        conceal_as_phone(imsi, sk.calc_info(engine, null_scheme=False), supported=())
    with pytest.raises(InvalidSuci, match=r"cut short|announced"):
        parse_suci_calc_info(info[:-3])
