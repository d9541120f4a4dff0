"""Issue #13 item 4: a file that states no KCV no longer imports garbage keys under a wrong
transport key. Keys under a transport key need a KCV — the file's or `--kcv` — or an explicit,
audited `--no-kcv-check`; a vendor's sample vector (`--check-vector`) is checked inside the HSM
before the import commits. Same rule on the CLI, the library and the API."""

from __future__ import annotations

import json
import warnings
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine, func, select
from typer.testing import CliRunner

from hsm_sim.hsm import KekPurpose
from hsm_sim.kcv import kcv
from hsm_sim.milenage import vector
from hsm_sim.soft import SoftHsm
from simcore.db import read_session
from simcore.errors import InvalidInput
from simcore.log import configure
from simcore.models import AuditEvent, Sim
from simcore.vendor_import import (
    CheckVector,
    ImportOptions,
    KcvRequired,
    TransportKeyError,
    VectorMismatch,
    import_file,
)
from tools.cli import app

from .helpers import TRANSPORT_KCV, TRANSPORT_KEY, cards, out_text, write

WRONG_KEY = bytes(range(50, 66))
runner = CliRunner()


def sims(engine: Engine) -> int:
    with read_session(engine) as s:
        return int(s.execute(select(func.count()).select_from(Sim)).scalar_one())


def no_kcv_file(tmp_path: Path, n: int = 3) -> Path:
    return write(tmp_path / "nokcv.out", out_text(cards(n), kcv_value=None))


def sample_vector(i: int = 0, *, res_len: int = 8) -> str:
    """What a vendor prints for card i: RAND, SQN, AMF in; RES, AUTN, CK, IK out (computed here
    from the card's clear keys, which only the vendor and this test know)."""
    c = cards(i + 1)[i]
    rand, sqn, amf = bytes(range(16, 32)), 0x1F, b"\x80\x00"
    v = vector(c.ki, c.opc, rand, sqn, amf)
    return (f"iccid={c.iccid},rand={rand.hex()},sqn={sqn:012x},amf={amf.hex()},"
            f"res={v.xres[:res_len].hex()},autn={v.autn.hex()},ck={v.ck.hex()},ik={v.ik.hex()}")


@pytest.fixture
def wrong_hsm(hsm: SoftHsm) -> SoftHsm:
    hsm.kek_add("vendor2", KekPurpose.TRANSPORT, [WRONG_KEY])
    return hsm


def test_no_kcv_anywhere_is_refused_before_any_row(engine: Engine, wrong_hsm: SoftHsm,
                                                   tmp_path: Path) -> None:
    p = no_kcv_file(tmp_path)
    for key in ("vendor2", None):  # a wrong key, or the right one: no KCV says which
        with pytest.raises(KcvRequired) as e:
            import_file(engine, wrong_hsm, p, ImportOptions(transport_key=key))
        assert e.value.field == "kcv" and "nokcv.out:9:16" in str(e.value)
        assert "--kcv" in str(e.value) and "--no-kcv-check" in str(e.value)
    with pytest.raises(KcvRequired):
        import_file(engine, wrong_hsm, p, ImportOptions(transport_key="vendor2", dry_run=True))
    assert sims(engine) == 0


def test_kcv_given_on_the_command_line(engine: Engine, wrong_hsm: SoftHsm,
                                       tmp_path: Path) -> None:
    p = no_kcv_file(tmp_path)
    with pytest.raises(TransportKeyError, match=r"--kcv: Transport_key KCV .* does not match "
                                                r"HSM key 'vendor2'"):
        import_file(engine, wrong_hsm, p, ImportOptions(transport_key="vendor2",
                                                        kcv=TRANSPORT_KCV))
    with pytest.raises(InvalidInput, match="6 hex digits"):
        import_file(engine, wrong_hsm, p, ImportOptions(kcv="12345"))
    with pytest.raises(InvalidInput, match="together"):
        import_file(engine, wrong_hsm, p, ImportOptions(kcv=TRANSPORT_KCV, no_kcv_check=True))
    assert sims(engine) == 0
    r = import_file(engine, wrong_hsm, p, ImportOptions(kcv=TRANSPORT_KCV.lower()))
    assert r.imported == 3
    with read_session(engine) as s:
        details = json.loads(s.execute(select(AuditEvent.details)).scalar_one())
    assert details["kcv_checked"] is True


def test_no_kcv_check_imports_and_says_so_in_the_audit(engine: Engine, wrong_hsm: SoftHsm,
                                                       tmp_path: Path) -> None:
    r = import_file(engine, wrong_hsm, no_kcv_file(tmp_path), ImportOptions(no_kcv_check=True))
    assert r.imported == 3
    with read_session(engine) as s:
        details = json.loads(s.execute(select(AuditEvent.details)).scalar_one())
    assert details["kcv_checked"] is False and details["check_vector"] is None


def test_check_vector_catches_a_wrong_transport_key(engine: Engine, wrong_hsm: SoftHsm,
                                                    tmp_path: Path) -> None:
    p = no_kcv_file(tmp_path, 5)
    cv = CheckVector.parse(sample_vector(3))
    with pytest.raises(VectorMismatch, match=r"ICCID \d+: RES computed from the unwrapped keys "
                                             "differs"):
        import_file(engine, wrong_hsm, p, ImportOptions(transport_key="vendor2",
                                                        no_kcv_check=True, check_vector=cv,
                                                        chunk=2))
    assert sims(engine) == 0  # chunks before the vector's card were rolled back
    r = import_file(engine, wrong_hsm, p, ImportOptions(no_kcv_check=True, check_vector=cv))
    assert r.imported == 5
    with read_session(engine) as s:
        details = json.loads(s.execute(select(AuditEvent.details)).scalar_one())
    assert details["check_vector"] == cards(4)[3].iccid


def test_check_vector_truncated_res_dry_run_and_missing_iccid(engine: Engine, hsm: SoftHsm,
                                                              tmp_path: Path) -> None:
    p = no_kcv_file(tmp_path)
    cv = CheckVector.parse(sample_vector(1, res_len=4))
    r = import_file(engine, hsm, p, ImportOptions(kcv=TRANSPORT_KCV, check_vector=cv,
                                                  dry_run=True))
    assert r.status == "valid"
    other = CheckVector.parse(sample_vector(7))
    with pytest.raises(InvalidInput, match="is not in the file"):
        import_file(engine, hsm, p, ImportOptions(kcv=TRANSPORT_KCV, check_vector=other))
    assert sims(engine) == 0


@pytest.mark.parametrize("text,needle", [
    ("iccid=8949000000000001001,rand=00", "missing sqn, amf, res"),
    ("iccid=1,rand=" + "00" * 16 + ",sqn=000000000000,amf=8000,res=0011223344556677",
     "iccid is not 19 or 20 digits"),
    ("iccid=8949000000000001001,rand=" + "00" * 15 + ",sqn=0,amf=8000,res=00",
     "rand has 15 bytes"),
    ("iccid=8949000000000001001,foo=1", "unknown or malformed item 'foo=1'"),
])
def test_check_vector_syntax(text: str, needle: str) -> None:
    with pytest.raises(InvalidInput, match=needle):
        CheckVector.parse(text)


@pytest.fixture
def env(engine: Engine, tmp_path: Path) -> Iterator[dict[str, str]]:
    home = tmp_path / "home"
    warnings.simplefilter("ignore")
    h = SoftHsm.dev(home / "hsm")
    h.kek_add("vendor1", KekPurpose.TRANSPORT, [TRANSPORT_KEY])
    h.kek_add("vendor2", KekPurpose.TRANSPORT, [WRONG_KEY])
    yield {"SIMSMITH_HOME": str(home),
           "SIMSMITH_DATABASE_URL": engine.url.render_as_string(hide_password=False)}
    configure("WARNING")


def test_cli_wrong_transport_key_without_kcv_exits_1(env: dict[str, str], engine: Engine,
                                                    tmp_path: Path) -> None:
    """The reproduction: before, this imported every SIM with garbage keys and exited 0."""
    p = no_kcv_file(tmp_path)
    r = runner.invoke(app, ["inventory", "import", str(p), "--transport-key", "vendor2"],
                      env=env)
    assert r.exit_code == 1 and "states no KCV" in r.stderr and "--kcv" in r.stderr
    r = runner.invoke(app, ["inventory", "import", str(p), "--transport-key", "vendor2",
                            "--kcv", kcv(TRANSPORT_KEY).hex()], env=env)
    assert r.exit_code == 1 and "does not match HSM key 'vendor2'" in r.stderr
    r = runner.invoke(app, ["inventory", "import", str(p), "--transport-key", "vendor2",
                            "--no-kcv-check", "--check-vector", sample_vector(0)], env=env)
    assert r.exit_code == 1 and "RES computed from the unwrapped keys differs" in r.stderr
    assert sims(engine) == 0
    r = runner.invoke(app, ["inventory", "import", str(p), "--no-kcv-check", "--json"],
                      env=env)
    assert r.exit_code == 0, r.output
    assert "WARNING: --no-kcv-check" in r.stderr and json.loads(r.stdout)["imported"] == 3
