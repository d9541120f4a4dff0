"""Package files are exports (issue 13 item 1): `esim build` / `build-batch` need a target, write
envelopes encrypted to it unless --clear (to an insecure-clear target only), create every file
with mode 0600 and audit each SIM before its file exists. Plus audit.append_many, which those
per-SIM records go through."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import keywrap
from sqlalchemy import Engine

from esim.saip import ProfilePackage
from hsm_sim.kcv import kcv
from hsm_sim.soft import SoftHsm
from simcore import audit, keys
from simcore.db import transaction
from simcore.esim_export import EnvelopeError, open_envelope, write_private
from tests.helpers.cli import cli_env, ok, refused, runner  # noqa: F401  (cli_env: fixture)
from tests.helpers.hsm import clear
from tests.wiring.conftest import hsm  # noqa: F401  (fixture)
from tools.cli import app

KEK = bytes(range(16))  # the receiving SM-DP+'s export key, entered as one component


def _setup() -> list[str]:
    ok("hsm", "kek", "add", "smdp-a", "--purpose", "export", "--component", KEK.hex())
    ok("hsm", "kek", "add", "lab", "--purpose", "export", "--insecure-clear")
    ok("inventory", "generate", "-n", "3", "--batch", "e1", "--kind", "esim", "--with-keys")
    return [s["iccid"] for s in json.loads(ok("inventory", "list", "--batch", "e1", "--json"))]


def _exports(engine: Engine, iccid: str) -> list[dict[str, object]]:
    return [json.loads(e.details) for e in audit.query(engine, subject_id=iccid,
                                                       action="esim.package_export")]


@pytest.mark.slow
@pytest.mark.usefixtures("cli_env")
def test_a_target_is_required_and_clear_only_when_asked(tmp_path: Path) -> None:
    iccid = _setup()[0]
    out = str(tmp_path / "p.der")
    result = runner.invoke(app, ["esim", "build", "-t", "ts48", "--iccid", iccid, "-o", out])
    assert result.exit_code == 2 and "--target" in result.output  # no target: usage error
    assert "clear packages go only to an export target marked insecure-clear" in refused(
        "esim", "build", "-t", "ts48", "--iccid", iccid, "-o", out, "--target", "smdp-a",
        "--clear")
    assert "ask for clear packages explicitly (--clear)" in refused(
        "esim", "build", "-t", "ts48", "--iccid", iccid, "-o", out, "--target", "lab")
    assert "no export target 'nope'" in refused(
        "esim", "build", "-t", "ts48", "--iccid", iccid, "-o", out, "--target", "nope")
    assert not Path(out).exists()


@pytest.mark.slow
def test_encrypted_envelope_opens_with_the_targets_key(cli_env: SoftHsm, engine: Engine,  # noqa: F811
                                                       tmp_path: Path) -> None:
    iccids = _setup()
    out = tmp_path / "p.der.sspe"
    info = json.loads(ok("esim", "build", "-t", "usim-isim-milenage", "--iccid", iccids[0],
                         "-o", str(out), "--target", "smdp-a", "--json"))
    assert info["form"] == "encrypted" and info["kek_kcv"] == kcv(KEK).hex()
    data = out.read_bytes()
    header, der = open_envelope(data, KEK)
    assert header["iccid"] == iccids[0] and header["target"] == "smdp-a"
    package = ProfilePackage.from_der(der)
    assert package.iccid == iccids[0]
    k = keys.load_keys(engine, iccids[0])
    _, algo = package.all("akaParameter")[0].value["algoConfiguration"]
    assert algo["key"] == clear(cli_env, k.ki)  # the package inside carries the real keys
    assert clear(cli_env, k.ki) not in data and der[:200] not in data  # the file does not
    with pytest.raises(EnvelopeError, match="does not unwrap"):
        open_envelope(data, bytes(16))
    for offset in (20, len(data) - 1):  # the header and the ciphertext are both authenticated
        bad = bytearray(data)
        bad[offset] ^= 1
        with pytest.raises(EnvelopeError):
            open_envelope(bytes(bad), KEK)
    with pytest.raises(EnvelopeError, match="offset 0"):
        open_envelope(b"PK\x03\x04", KEK)
    # the receiver needs nothing from simsmith: RFC 5649 and AES-GCM from any library
    n = int.from_bytes(data[5:7], "big")
    w = int.from_bytes(data[7 + n:9 + n], "big")
    dek = keywrap.aes_key_unwrap_with_padding(KEK, data[9 + n:9 + n + w])
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM

    start = 9 + n + w
    assert AESGCM(dek).decrypt(data[start:start + 12], data[start + 12:],
                               data[:start + 12]) == der


@pytest.mark.slow
def test_batch_audited_per_sim_and_files_0600(cli_env: SoftHsm, engine: Engine,  # noqa: F811
                                              tmp_path: Path) -> None:
    iccids = _setup()
    out_dir = tmp_path / "pkgs"
    summary = json.loads(ok("esim", "build-batch", "-t", "usim-isim-milenage", "--batch", "e1",
                            "-o", str(out_dir), "--target", "smdp-a", "--json"))
    assert summary["packages"] == 3 and summary["form"] == "encrypted"
    assert stat.S_IMODE(out_dir.stat().st_mode) == 0o700
    for iccid in iccids:
        path = out_dir / f"{iccid}.der.sspe"
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
        assert ProfilePackage.from_der(open_envelope(path.read_bytes(), KEK)[1]).iccid == iccid
        [record] = _exports(engine, iccid)
        assert record["target"] == "smdp-a" and record["form"] == "encrypted"
        assert record["run"] == summary["run"] and record["kek_kcv"] == kcv(KEK).hex()
    [batch] = audit.query(engine, subject_id="e1", action="esim.package_batch_export")
    assert json.loads(batch.details)["packages"] == 3
    # clear, asked for: audited as clear
    ok("esim", "build-batch", "-t", "ts48", "--batch", "e1", "-o", str(out_dir), "--target",
       "lab", "--clear")
    assert [r["form"] for r in _exports(engine, iccids[1])] == ["encrypted", "clear"]
    assert _exports(engine, iccids[1])[1]["insecure_clear"] is True
    assert audit.verify(engine).events > 0


@pytest.mark.slow
def test_existing_file_replaced_with_mode_0600(cli_env: SoftHsm, engine: Engine,  # noqa: F811
                                               tmp_path: Path) -> None:
    iccid = _setup()[0]
    out = tmp_path / "p.der"
    out.write_bytes(b"old")
    os.chmod(out, 0o644)  # a file left readable by others: its mode must not survive
    ok("esim", "build", "-t", "ts48", "--iccid", iccid, "-o", str(out), "--target", "lab",
       "--clear")
    assert stat.S_IMODE(out.stat().st_mode) == 0o600
    assert ProfilePackage.from_der(out.read_bytes()).iccid == iccid
    [record] = _exports(engine, iccid)
    assert record["form"] == "clear" and record["target"] == "lab"
    assert record["output"] == str(out)


def test_write_private_under_a_permissive_umask(tmp_path: Path) -> None:
    old = os.umask(0)
    try:
        write_private(tmp_path / "f", b"x")
    finally:
        os.umask(old)
    assert stat.S_IMODE((tmp_path / "f").stat().st_mode) == 0o600


def test_append_many_chains_like_append(engine: Engine) -> None:
    details = {"target": "smdp-a", "form": "encrypted"}
    with transaction(engine) as s:
        audit.append(s, actor="t", action="x", subject_type="sim", subject_id="s-0")
    with transaction(engine) as s:
        n = audit.append_many(s, actor="t", action="esim.package_export",
                              events=[("sim", f"s-{i}", details) for i in range(50)])
    assert n == 50
    with transaction(engine) as s:
        audit.append(s, actor="t", action="y", subject_type="sim", subject_id="s-1")
    report = audit.verify(engine)
    assert report.events == 52
    assert [e.action for e in audit.query(engine, subject_id="s-1")] == [
        "esim.package_export", "y"]
    with pytest.raises(audit.SecretInAudit), transaction(engine) as s:
        audit.append_many(s, actor="t", action="z", events=[("sim", "s-2", {"ki": "00"})])


def test_export_batch_in_worker_processes(engine: Engine, hsm: SoftHsm,  # noqa: F811
                                          tmp_path: Path) -> None:
    from hsm_sim.hsm import KekPurpose
    from simcore.esim_build import compiled_template
    from simcore.esim_export import export_batch, package_target
    from tests.wiring.conftest import seed

    iccids = seed(engine, hsm, 5, batch="e1", kind="esim")
    hsm.kek_add("smdp-a", KekPurpose.EXPORT, [KEK])
    out_dir = tmp_path / "pkgs"
    summary = export_batch(engine, hsm, compiled_template("usim-isim-milenage"), "e1",
                           package_target(hsm, "smdp-a"), out_dir, workers=2, chunk=2,
                           verify_every=1)
    assert summary.packages == 5
    for iccid in iccids:
        der = open_envelope((out_dir / f"{iccid}.der.sspe").read_bytes(), KEK)[1]
        assert ProfilePackage.from_der(der).iccid == iccid
        assert [r["run"] for r in _exports(engine, iccid)] == [summary.run]
    assert len(audit.query(engine, action="esim.package_batch_export")) == 1
    audit.verify(engine)  # the chains hold
