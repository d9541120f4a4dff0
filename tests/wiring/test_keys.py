"""Store ↔ HSM: keys generated in bulk and stored as tokens, loaded back, handed to cards and to
profile packages by the HSM; vectors for a stored SIM. Keys are compared through the HSM (KCV) or
inside the test only, never printed."""

from __future__ import annotations

import logging

import pytest
from sqlalchemy import Engine, select
from sqlmodel import col

from esim.build import build_package, get_compiled, verify_package
from hsm_sim.kcv import kcv
from hsm_sim.milenage import Milenage
from hsm_sim.soft import SoftHsm
from simcore import audit, key_writers, keys, sqn_store
from simcore.db import read_session
from simcore.errors import NotFound, SimsmithError
from simcore.models import AuditEvent, Sim, SimCredential
from tests.helpers.hsm import clear
from tests.wiring.conftest import seed


def test_generate_store_load(engine: Engine, hsm: SoftHsm, caplog: pytest.LogCaptureFixture
                             ) -> None:
    caplog.set_level(logging.DEBUG)
    iccids = seed(engine, hsm, 4, kind="esim")
    with read_session(engine) as s:
        sims = list(s.execute(select(Sim).order_by(col(Sim.iccid))).scalars())
        creds = list(s.execute(select(SimCredential)).scalars())
    assert all(x.ki_ref and x.ki_ref.startswith("kr1.soft.Ki.") for x in sims)
    assert all(x.auth_algorithm == "milenage" and x.version == 2 for x in sims)
    assert len(creds) == 4 * (len(keys.CODES) + len(keys.OTA_KEYS))
    k = keys.load_keys(engine, iccids[0])
    assert k.ki.owner == k.opc.owner == iccids[0]
    assert set(k.credentials) == set(keys.CODES) | set(keys.OTA_KEYS)
    assert repr(k).startswith(f"SimKeys({iccids[0]}, Ki, OPc, ADM1")
    ki, opc = clear(hsm, k.ki), clear(hsm, k.opc)
    assert len(ki) == len(opc) == 16 and ki != opc
    pin1, puk1, adm1 = (clear(hsm, k.credentials[n]) for n in ("PIN1", "PUK1", "ADM1"))
    assert pin1[:4].isdigit() and pin1[4:] == b"\xff" * 4
    assert puk1.isdigit() and adm1.isdigit() and len(adm1) == 8
    # a second run finds every SIM done: nothing changes
    again = keys.generate_keys(engine, hsm, actor="t", batch="b1", ota=True)
    assert (again.sims, again.skipped) == (0, 4)
    assert keys.load_keys(engine, iccids[0]).ki == k.ki
    # the audit log names counts and key types; it verifies and holds no key material
    with read_session(engine) as s:
        events = list(s.execute(select(AuditEvent).where(
            col(AuditEvent.action) == "keys.generate")).scalars())
    assert len(events) == 1 and '"sims":4' in events[0].details
    audit.verify(engine)
    shown = caplog.text + "".join(e.details for e in events) + repr(k)
    for secret in (ki, opc, pin1, puk1, adm1):
        assert secret.hex() not in shown.lower()
    assert puk1.decode() not in shown and adm1.decode() not in shown


def test_missing_keys(engine: Engine, hsm: SoftHsm) -> None:
    iccids = seed(engine, hsm, 1, with_keys=False)
    with pytest.raises(keys.MissingKeys, match=f"SIM {iccids[0]} has no Ki/OPc"):
        keys.load_keys(engine, iccids[0])
    with pytest.raises(NotFound, match="no SIM with ICCID"):
        keys.load_keys(engine, "8988211000000999998")
    with pytest.raises(NotFound, match="no batch named 'nope'"):
        keys.generate_keys(engine, hsm, actor="t", batch="nope")
    r = keys.generate_keys(engine, hsm, actor="t", iccids=iccids, codes=())
    assert r.sims == 1
    with pytest.raises(keys.MissingKeys, match="has no ADM1"):
        key_writers.SimKeyWriter(hsm, keys.load_keys(engine, iccids[0])).adm1(iccids[0])


def test_key_writer_gives_card_secrets(engine: Engine, hsm: SoftHsm) -> None:
    iccid = seed(engine, hsm, 1)[0]
    k = keys.load_keys(engine, iccid)
    w = key_writers.SimKeyWriter(hsm, k)
    ck = w.card_keys(iccid)
    assert ck.ki.reveal() == clear(hsm, k.ki) and ck.opc.reveal() == clear(hsm, k.opc)
    adm = w.adm1(iccid)
    assert adm.reveal() == clear(hsm, k.credentials["ADM1"])
    assert "bytes" in repr(adm) and adm.reveal().decode() not in repr(adm) + repr(w)
    with pytest.raises(SimsmithError, match="asked for card"):
        w.adm1("8988211000000999998")


def test_vectors_for_a_stored_sim(engine: Engine, hsm: SoftHsm) -> None:
    iccid = seed(engine, hsm, 1)[0]
    k = keys.load_keys(engine, iccid)
    rand = bytes(range(16))
    v1, v2 = sqn_store.fresh_vectors(engine, hsm, k, count=2, sqn=0x20, rand=rand)
    m = Milenage(clear(hsm, k.ki), clear(hsm, k.opc))
    assert v1 == m.vector(rand, 0x20, b"\x80\x00") and v2 == m.vector(rand, 0x40, b"\x80\x00")
    (a, _), (b, _) = sqn_store.issue_vectors(engine, hsm, k, count=2)  # stored: see test_sqn.py
    assert b >> 5 == (a >> 5) + 1 and (b & 31) == ((a & 31) + 1) % 32 and 0 < a >> 5 < 1 << 28


def test_package_keys_are_the_hsms(engine: Engine, hsm: SoftHsm) -> None:
    iccid = seed(engine, hsm, 1, kind="esim")[0]
    k = keys.load_keys(engine, iccid)
    with read_session(engine) as s:
        sim = s.get(Sim, iccid)
        assert sim is not None and sim.imsi
        imsi = sim.imsi
    compiled = get_compiled("usim-isim-milenage")
    params = key_writers.package_params(iccid, imsi)
    der = build_package(compiled, params, key_writers.package_patcher(hsm, k, compiled),
                        verify=True)
    package = verify_package(der)
    assert package.iccid == iccid and package.imsi == imsi
    akas = package.all("akaParameter")
    assert len(akas) == 2
    for aka in akas:
        _, algo = aka.value["algoConfiguration"]
        assert kcv(algo["key"]) == hsm.kcv(k.ki) and kcv(algo["opc"]) == hsm.kcv(k.opc)
    sd = package.one("securityDomain").value
    datas = [c["keyData"] for key in sd["keyList"] for c in key["keyComponents"]]
    assert [kcv(d) for d in datas] == [hsm.kcv(k.credentials[n]) for n in keys.OTA_KEYS]
    # PIN/PUK/ADM fields hold the HSM's codes, not the placeholders
    for f, offset in zip(compiled.fields, compiled.offsets, strict=True):
        if f.param in key_writers.PACKAGE_CODES:
            ref = k.credentials[key_writers.PACKAGE_CODES[f.param]]
            assert der[offset : offset + 8] == clear(hsm, ref)


def test_package_for_a_sim_without_ota_keys(engine: Engine, hsm: SoftHsm) -> None:
    iccid = seed(engine, hsm, 1)[0]  # physical: no OTA keys
    k = keys.load_keys(engine, iccid)
    compiled = get_compiled("usim-isim-milenage")
    params = key_writers.package_params(iccid, "001010000000001")
    with pytest.raises(keys.MissingKeys, match="no ota-kvn01-kid01"):
        build_package(compiled, params, key_writers.package_patcher(hsm, k, compiled))
