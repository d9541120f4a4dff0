"""The import service on SQLite and PostgreSQL: all or nothing, keys only wrapped, idempotent by
content hash, transport key checked by KCV before any row is read."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from sqlalchemy import Engine, func, select
from sqlmodel import col

from hsm_sim.eki import EkiScheme, encrypt_eki
from hsm_sim.kcv import kcv
from hsm_sim.keyref import KeyRef
from hsm_sim.milenage import vector
from hsm_sim.soft import SoftHsm
from simcore.db import read_session
from simcore.models import AuditEvent, Batch, Sim, SimCredential
from simcore.vendor_import import ImportOptions, InvalidFile, TransportKeyError, import_file

from .helpers import TRANSPORT_KEY, cards, csv_text, out_text, write


def counts(engine: Engine) -> tuple[int, int, int]:
    with read_session(engine) as s:
        return tuple(s.execute(select(func.count()).select_from(t)).scalar_one()  # type: ignore[return-value]
                     for t in (Batch, Sim, SimCredential))


def test_import_out_file(engine: Engine, hsm: SoftHsm, tmp_path: Path) -> None:
    cs = cards(6)
    p = write(tmp_path / "b.out", out_text(cs))
    r = import_file(engine, hsm, p, ImportOptions(actor="t"))
    assert (r.status, r.rows, r.imported, r.rejected) == ("imported", 6, 6, 0)
    assert counts(engine) == (1, 6, 6 * 5)
    with read_session(engine) as s:
        b = s.execute(select(Batch)).scalar_one()
        assert (b.name, b.source, b.row_count, b.status, b.file_sha256) == (
            "B-TEST-1", "import", 6, "complete", r.sha256)
        sims = list(s.execute(select(Sim).order_by(col(Sim.iccid))).scalars())
        events = list(s.execute(select(AuditEvent)).scalars())
    assert [x.state for x in sims] == ["in_stock"] * 6
    assert sims[3].acc == cs[3].values["ACC"]
    for sim, c in zip(sims, cs, strict=True):
        assert sim.iccid == c.iccid and sim.imsi == c.imsi
        ki, opc = KeyRef.from_token(sim.ki_ref or ""), KeyRef.from_token(sim.opc_ref or "")
        assert (ki.owner, ki.kek) == (c.iccid, "storage")
        assert hsm.kcv(ki) == kcv(c.ki) and hsm.kcv(opc) == kcv(c.opc)
        rand = bytes(range(16))
        v = hsm.milenage_vectors(ki, opc, [32], rands=[rand])[0]
        assert v == vector(c.ki, c.opc, rand, 32, b"\x80\x00")
    assert [e.action for e in events] == ["inventory.import"]
    text = json.dumps([e.details for e in events]) + repr(sims)
    for c in cs:
        for secret in (c.ki.hex(), c.opc.hex(), c.values["EKI"], c.values["PUK1"]):
            assert secret.lower() not in text.lower()
    again = import_file(engine, hsm, p)
    assert (again.status, again.batch_id) == ("already_imported", r.batch_id)
    assert counts(engine) == (1, 6, 30)


def test_credentials_are_wrapped_codes(engine: Engine, hsm: SoftHsm, tmp_path: Path) -> None:
    cs = cards(2)
    import_file(engine, hsm, write(tmp_path / "b.out", out_text(cs)))
    with read_session(engine) as s:
        creds = {(c.iccid, c.name): c.ref for c in s.execute(select(SimCredential)).scalars()}
    ref = KeyRef.from_token(creds[(cs[1].iccid, "PUK1")])
    assert ref.key_type.value == "PUK" and ref.owner == cs[1].iccid
    assert cs[1].values["PUK1"] not in creds[(cs[1].iccid, "PUK1")]
    buf = bytearray(8)

    class Slot:
        offset, length = 0, 8
    hsm.patch_keys(buf, [Slot()], [ref])
    assert bytes(buf) == cs[1].values["PUK1"].encode()


def test_csv_with_clear_keys_and_ota_keys(engine: Engine, hsm: SoftHsm, tmp_path: Path) -> None:
    cols = ("ICCID", "IMSI", "KI", "OPC", "KIC1", "KID1", "KIK1", "PIN1")
    cs = cards(3, encrypted=False)
    r = import_file(engine, hsm, write(tmp_path / "k.csv", csv_text(cs, cols)),
                    ImportOptions(batch="csv-1"))
    assert r.imported == 3
    with read_session(engine) as s:
        sim = s.get(Sim, cs[0].iccid)
        names = set(s.execute(select(col(SimCredential.name))).scalars())
    assert sim is not None and hsm.kcv(KeyRef.from_token(sim.ki_ref or "")) == kcv(cs[0].ki)
    assert names == {"PIN1", "ota-kvn01-kid01", "ota-kvn01-kid02", "ota-kvn01-kid03"}


def test_a_bad_row_late_in_the_file_leaves_nothing(engine: Engine, hsm: SoftHsm,
                                                   tmp_path: Path) -> None:
    def bad(t: list[list[str]]) -> None:
        t[-1][2] = t[-1][2][:30]
    p = write(tmp_path / "b.out", out_text(cards(9), mutate=bad))
    with pytest.raises(InvalidFile) as e:
        import_file(engine, hsm, p, ImportOptions(chunk=2))  # earlier chunks were written
    assert str(e.value) == ("b.out:28:37: EKI <30 hex digits>: 30 hex digits, expected 32 "
                            "[hex.length]")
    assert counts(engine) == (0, 0, 0)


def test_duplicates_against_the_store(engine: Engine, hsm: SoftHsm, tmp_path: Path) -> None:
    import_file(engine, hsm, write(tmp_path / "a.out", out_text(cards(3))),
                ImportOptions(batch="first"))
    p = write(tmp_path / "b.out", out_text(cards(3, offset=2), var_in=False))
    with pytest.raises(InvalidFile) as e:
        import_file(engine, hsm, p, ImportOptions(batch="second"))
    assert [i.rule for i in e.value.report.issues] == ["iccid.in_store", "imsi.in_store"]
    assert counts(engine)[:2] == (1, 3)
    dry = import_file(engine, hsm, p, ImportOptions(batch="second", dry_run=True))
    assert (dry.status, dry.rejected, dry.imported) == ("invalid", 1, 0)


def test_wrong_transport_key_is_refused_before_any_row(engine: Engine, hsm: SoftHsm,
                                                       tmp_path: Path) -> None:
    def garbage(t: list[list[str]]) -> None:
        t[0][0] = "not-an-iccid"
    p = write(tmp_path / "b.out", out_text(cards(3), kcv_value="ABCDEF", mutate=garbage))
    with pytest.raises(TransportKeyError, match=r"b.out:9:16: Transport_key KCV ABCDEF does not"):
        import_file(engine, hsm, p)
    with pytest.raises(TransportKeyError, match="not in the HSM"):
        import_file(engine, hsm, p, ImportOptions(transport_key="nope"))
    assert counts(engine) == (0, 0, 0)


def test_dry_run_writes_nothing(engine: Engine, hsm: SoftHsm, tmp_path: Path) -> None:
    r = import_file(engine, hsm, write(tmp_path / "b.out", out_text(cards(4))),
                    ImportOptions(dry_run=True))
    assert (r.status, r.rows, r.imported) == ("valid", 4, 0)
    assert counts(engine) == (0, 0, 0)


@pytest.mark.slow
def test_second_process_reader_same_outcome(engine: Engine, hsm: SoftHsm, tmp_path: Path
                                            ) -> None:
    def bad(t: list[list[str]]) -> None:
        t[5][0] = t[4][0]
    p = write(tmp_path / "bad.out", out_text(cards(8), mutate=bad, var_in=False))
    with pytest.raises(InvalidFile) as e:
        import_file(engine, hsm, p, ImportOptions(worker=True, chunk=2))
    assert [i.rule for i in e.value.report.issues] == ["iccid.duplicate"]
    assert counts(engine) == (0, 0, 0)
    p = write(tmp_path / "good.out", out_text(cards(8)))
    r = import_file(engine, hsm, p, ImportOptions(worker=True, chunk=3))
    assert (r.status, r.rows, r.imported) == ("imported", 8, 8)
    assert counts(engine) == (1, 8, 40)


@pytest.mark.parametrize("scheme", [EkiScheme.AES128_CBC, EkiScheme.TDES2_ECB])
def test_other_transport_schemes(engine: Engine, hsm: SoftHsm, tmp_path: Path,
                                 scheme: EkiScheme) -> None:
    cs = cards(3)
    for c in cs:
        c.values["EKI"] = encrypt_eki(scheme, TRANSPORT_KEY, c.ki).hex()
        c.values["EOPC"] = encrypt_eki(scheme, TRANSPORT_KEY, c.opc).hex()
    p = write(tmp_path / "b.out", out_text(cs, ("ICCID", "IMSI", "EKI", "EOPC"), kcv_value=None))
    # The file states no KCV: the one from the key ceremony, in the scheme's convention.
    given = next(iter(hsm.transport_kcvs("vendor1", scheme).values()))
    import_file(engine, hsm, p, ImportOptions(scheme=scheme, kcv=given.lower()))
    with read_session(engine) as s:
        sim = s.get(Sim, cs[2].iccid)
    assert sim is not None
    assert hsm.kcv(KeyRef.from_token(sim.ki_ref or "")) == kcv(cs[2].ki)
    assert hsm.kcv(KeyRef.from_token(sim.opc_ref or "")) == kcv(cs[2].opc)
