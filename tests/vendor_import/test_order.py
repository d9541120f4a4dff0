"""`simsmith inventory order`: the order file, the reserved blocks, and the import of the
vendor's answer filling the ordered batch."""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import pytest
from sqlalchemy import Engine, select
from typer.testing import CliRunner

from hsm_sim.hsm import KekPurpose
from hsm_sim.soft import SoftHsm
from simcore import inventory
from simcore.db import read_session
from simcore.errors import Conflict
from simcore.models import Batch
from simcore.ranges import RangeOverlap, add_range
from simcore.vendor_import import import_file
from simcore.vendor_import.columns import ColumnMap
from simcore.vendor_import.parse import VendorFile
from simcore.vendor_import.report import Report
from simcore.vendor_order import create_order
from tools.cli import app

from .helpers import TRANSPORT_KCV, TRANSPORT_KEY, cards, iccid, imsi, out_text, write

FIRST_ICCID, LAST_ICCID = iccid(0), iccid(999)


def ranges(engine: Engine) -> None:
    add_range(engine, "iccid", FIRST_ICCID, LAST_ICCID, name="ic", actor="t")
    add_range(engine, "imsi", imsi(0), imsi(999), name="im", actor="t")


def test_order_reserves_blocks_and_import_fills_the_batch(engine: Engine, hsm: SoftHsm,
                                                          tmp_path: Path) -> None:
    ranges(engine)
    o = create_order(engine, quantity=6, profile="P1", transport_key="vendor1",
                     transport_kcv=TRANSPORT_KCV, out=tmp_path / "order.inp", actor="t",
                     batch="B-TEST-1")
    assert (o.first_iccid, o.last_iccid, o.first_imsi) == (iccid(0), iccid(5), imsi(0))
    report = Report("order.inp")
    with VendorFile(tmp_path / "order.inp", "out", ColumnMap.builtin(), report) as vf:
        assert report.ok
        assert (vf.header.quantity, vf.header.transport_kcv) == ("6", TRANSPORT_KCV)
        assert vf.header.var_in == {"ICCID": iccid(0), "IMSI": imsi(0)}
    # The ranges' cursors moved: generation continues after the block, a second order too.
    with pytest.raises(RangeOverlap, match="starts before the free part"):
        create_order(engine, quantity=2, profile="P1", transport_key="vendor1",
                     transport_kcv=None, out=tmp_path / "o2.inp", actor="t",
                     iccid_start=iccid(3), imsi_start=imsi(100))
    assert not (tmp_path / "o2.inp").exists()
    nxt = create_order(engine, quantity=2, profile="P1", transport_key="vendor1",
                       transport_kcv=None, out=tmp_path / "o3.inp", actor="t")
    assert nxt.first_iccid == iccid(6)
    g = inventory.generate_sims(engine, 1, batch="gen", actor="t")
    assert g.first_iccid == iccid(8)
    with pytest.raises(Conflict, match="ordered with 6 cards, the file's Quantity is 5"):
        import_file(engine, hsm, write(tmp_path / "a.out", out_text(cards(5))))
    r = import_file(engine, hsm, write(tmp_path / "b.out", out_text(cards(6))))
    assert r.status == "imported"
    with read_session(engine) as s:
        b = s.execute(select(Batch).where(Batch.name == "B-TEST-1")).scalar_one()
    assert (b.id, b.source, b.status, b.row_count) == (o.batch_id, "order", "complete", 6)


def test_order_outside_ranges_becomes_its_own_range(engine: Engine, tmp_path: Path) -> None:
    o = create_order(engine, quantity=3, profile="P", transport_key="vendor1",
                     transport_kcv=None, out=tmp_path / "o.inp", actor="t",
                     iccid_start=iccid(0), imsi_start=imsi(0))
    assert o.last_imsi == imsi(2)
    with pytest.raises(RangeOverlap):
        add_range(engine, "iccid", iccid(2), iccid(10), name="x", actor="t")


def test_order_cli(engine: Engine, tmp_path: Path) -> None:
    home = tmp_path / "home"
    warnings.simplefilter("ignore")
    SoftHsm.dev(home / "hsm").kek_add("vendor1", KekPurpose.TRANSPORT, [TRANSPORT_KEY])
    env = {"SIMSMITH_HOME": str(home),
           "SIMSMITH_DATABASE_URL": engine.url.render_as_string(hide_password=False)}
    ranges(engine)
    out = tmp_path / "order.inp"
    r = CliRunner().invoke(app, ["inventory", "order", "-n", "10", "--profile", "P1",
                                 "--transport-key", "vendor1", "-o", str(out), "--json"], env=env)
    assert r.exit_code == 0, r.output
    assert json.loads(r.stdout)["iccids"] == f"{iccid(0)}..{iccid(9)}"
    assert f"Transport_key: vendor1 KCV={TRANSPORT_KCV}" in out.read_text()
    r = CliRunner().invoke(app, ["inventory", "order", "-n", "1", "--profile", "P1",
                                 "--transport-key", "nope", "-o", str(out)], env=env)
    assert r.exit_code == 1 and "no transport KEK named 'nope'" in r.stderr
