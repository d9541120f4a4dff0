"""File exports: Open5GS (dbctl lines, MongoDB JSON), free5GC WebConsole JSON, CSV; clear only
for an insecure target, otherwise encrypted under the target's export key, algorithm stated."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import keywrap
from sqlalchemy import Engine

from hsm_sim.eki import EkiScheme, decrypt_eki
from hsm_sim.soft import SoftHsm
from simcore.errors import InvalidInput
from simcore.export import export_file

EXPORT_KEY = bytes(range(100, 116))  # hss1's key (tests.vendor_import.helpers.make_hsm)


def test_clear_formats(engine: Engine, hsm: SoftHsm, stocked: list, tmp_path: Path) -> None:  # type: ignore[type-arg]
    c0 = stocked[0]
    out = tmp_path / "subs.sh"
    r = export_file(engine, hsm, fmt="open5gs-dbctl", target="hlr-test", out=out)
    assert r.count == 6 and (out.stat().st_mode & 0o777) == 0o600
    assert f"open5gs-dbctl add {c0.imsi} {c0.ki.hex()} {c0.opc.hex()}\n" in out.read_text()
    export_file(engine, hsm, fmt="open5gs-json", target="hlr-test", out=tmp_path / "o.json")
    docs = [json.loads(x) for x in (tmp_path / "o.json").read_text().splitlines()]
    assert docs[0]["imsi"] == c0.imsi and docs[0]["security"]["k"] == c0.ki.hex()
    assert "simsmithKeyEncryption" not in docs[0]
    export_file(engine, hsm, fmt="free5gc-json", target="hlr-test", out=tmp_path / "f.json")
    subs = json.loads((tmp_path / "f.json").read_text())
    auth = subs[0]["AuthenticationSubscription"]
    assert subs[0]["ueId"] == f"imsi-{c0.imsi}" and subs[0]["plmnID"] == "00101"
    assert auth["permanentKey"] == {"encryptionAlgorithm": 0, "encryptionKey": 0,
                                    "permanentKeyValue": c0.ki.hex()}
    assert auth["opc"]["opcValue"] == c0.opc.hex()


@pytest.mark.parametrize("scheme", ["kwp", "aes128-ecb"])
def test_encrypted_csv_and_json(engine: Engine, hsm: SoftHsm, stocked: list, tmp_path: Path,  # type: ignore[type-arg]
                                scheme: str) -> None:
    out = tmp_path / "k.csv"
    export_file(engine, hsm, fmt="csv", target="hss1", scheme=scheme, out=out)
    rows = list(csv.DictReader(out.open()))
    assert len(rows) == 6
    text = out.read_text()
    for row, c in zip(rows, stocked, strict=True):
        assert (row["key_form"], row["kek"]) == (scheme, "hss1") and len(row["kek_kcv"]) == 6
        ki, opc = bytes.fromhex(row["ki"]), bytes.fromhex(row["opc"])
        if scheme == "kwp":
            assert keywrap.aes_key_unwrap_with_padding(EXPORT_KEY, ki) == c.ki
            assert keywrap.aes_key_unwrap_with_padding(EXPORT_KEY, opc) == c.opc
        else:
            assert decrypt_eki(EkiScheme.AES128_ECB, EXPORT_KEY, ki) == c.ki
        assert c.ki.hex() not in text and c.opc.hex() not in text
    export_file(engine, hsm, fmt="free5gc-json", target="hss1", scheme=scheme,
                out=tmp_path / "f.json")
    doc = json.loads((tmp_path / "f.json").read_text())[0]
    assert doc["simsmithKeyEncryption"]["kek"] == "hss1"
    assert doc["AuthenticationSubscription"]["permanentKey"]["encryptionAlgorithm"] == 1


def test_refusals(engine: Engine, hsm: SoftHsm, stocked: list, tmp_path: Path) -> None:  # type: ignore[type-arg]
    with pytest.raises(InvalidInput, match="open5gs-dbctl"):
        export_file(engine, hsm, fmt="open5gs-dbctl", target="hss1", out=tmp_path / "x")
    with pytest.raises(InvalidInput, match="scheme"):
        export_file(engine, hsm, fmt="csv", target="hss1", scheme="clear", out=tmp_path / "x")
    with pytest.raises(InvalidInput, match="clear"):
        export_file(engine, hsm, fmt="csv", target="hlr-test", scheme="kwp", out=tmp_path / "x")
    assert not list(tmp_path.glob("x*"))


def test_network_sqn_starts_above_the_sqns_simsmith_issued(
        engine: Engine, hsm: SoftHsm, stocked: list, tmp_path: Path) -> None:  # type: ignore[type-arg]
    """A SIM simsmith authenticated (vectors issued, SQN stored) is exported with the SQN its
    network should start from: a SEQ above every SEQ issued (TS 33.102 C.2.2), so the card
    accepts the network's first vector without a resync. Others start at 0."""
    from simcore.sqn_store import reserve_sqns

    c0, c1 = stocked[0], stocked[1]
    issued = reserve_sqns(engine, c0.iccid, 3)
    export_file(engine, hsm, fmt="open5gs-json", target="hlr-test", out=tmp_path / "o.json")
    docs = {d["imsi"]: d for d in (json.loads(x) for x in
                                   (tmp_path / "o.json").read_text().splitlines())}
    start = docs[c0.imsi]["security"]["sqn"]
    assert start >> 5 > max(s >> 5 for s in issued)
    assert start >> 5 == (max(issued) >> 5) + 1 and start & 31 == max(issued) & 31
    assert docs[c1.imsi]["security"]["sqn"] == 0
    export_file(engine, hsm, fmt="free5gc-json", target="hlr-test", out=tmp_path / "f.json")
    subs = {s["ueId"]: s for s in json.loads((tmp_path / "f.json").read_text())}
    assert subs[f"imsi-{c0.imsi}"]["AuthenticationSubscription"]["sequenceNumber"] == (
        f"{start:012x}")
    assert subs[f"imsi-{c1.imsi}"]["AuthenticationSubscription"]["sequenceNumber"] == "0" * 12
