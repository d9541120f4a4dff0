"""`simsmith pki sgp26-init / csr / load / show` (issue 16 item 5): a lab hierarchy with the DP
keys in the HSM, production certificates from another CI for keys generated in the HSM or
imported under a transport KEK, and refusals that leave the loaded identity as it was."""

from __future__ import annotations

import json
import os
import warnings
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import (
    BestAvailableEncryption,
    Encoding,
    PrivateFormat,
)

from esim.euicc.identity import default_eid
from esim.rsp_pki import make_ci
from esim.sgp22.certificates import RspRole
from esim.sgp26_pki import dp_subject, issue_dp
from hsm_sim.ec_signing import wrap_private_key
from hsm_sim.errors import DevModeWarning
from hsm_sim.soft import SoftHsm
from tests.helpers.cli import ok, refused, run

PASSPHRASE = "pki cli tests only"
pytestmark = pytest.mark.filterwarnings("ignore::hsm_sim.errors.DevModeWarning")


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("SIMSMITH_HOME", str(tmp_path))
    monkeypatch.setenv("SIMSMITH_HSM_PASSPHRASE", PASSPHRASE)
    monkeypatch.setenv("SIMSMITH_HSM_BACKEND", "soft")
    monkeypatch.delenv("SIMSMITH_SMDP_ADDRESS", raising=False)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DevModeWarning)
        SoftHsm.init(tmp_path / "hsm", passphrase=PASSPHRASE, scrypt_n=2**10)
    return tmp_path


def test_sgp26_init_and_show(home: Path) -> None:
    facts = json.loads(ok("pki", "sgp26-init", "--address", "smdp.lab.test:8443", "--eid",
                          default_eid(), "--json"))
    assert facts["address"] == "smdp.lab.test:8443" and facts["oid"] == "2.999.10"
    assert facts["keys"]["dpauth"] == {"backend": "soft", "key_type": "SKDPauth",
                                       "label": "smdp"}
    assert facts["certificates"]["tls"]["names"] == ["smdp.lab.test"]
    assert facts["certificates"]["dppb"]["roles"] == ["DP_PB (2.23.146.1.2.1.5)"]
    assert (home / "pki" / "rsp" / f"euicc-{default_eid()}.pem").exists()
    shown = json.loads(ok("pki", "show", "--json"))
    assert shown["address"] == "smdp.lab.test:8443" and shown["keys"] == facts["keys"]
    text = ok("pki", "show")
    assert "SK.dpauth: SKDPauth 'smdp' in the soft HSM" in text
    assert "error: " in refused("pki", "sgp26-init", "--address", "x.test")  # exists: --force
    assert run("pki", "sgp26-init", "--help").exit_code == 0  # type: ignore[attr-defined]


def _issue_from_csr(ci: object, csr_path: Path, role: RspRole, out: Path) -> Path:
    csr = x509.load_pem_x509_csr(csr_path.read_bytes())
    out.write_bytes(issue_dp(ci, csr, role, "1.3.6.1.4.1.99999.7").public_bytes(  # type: ignore[arg-type]
        Encoding.PEM))
    return out


@pytest.mark.slow
def test_production_load_generated_and_imported_keys(home: Path,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    ci = make_ci()
    (home / "prod-ci.pem").write_bytes(ci.cert.public_bytes(Encoding.PEM))
    auth = json.loads(ok("pki", "csr", "--role", "dpauth", "--org", "Operator",
                         "--out", str(home / "dpauth.csr"), "--json"))
    pb = json.loads(ok("pki", "csr", "--role", "dppb", "--org", "Operator",
                       "--out", str(home / "dppb.csr"), "--json"))
    dpauth = _issue_from_csr(ci, home / "dpauth.csr", RspRole.DP_AUTH, home / "dpauth.pem")
    dppb = _issue_from_csr(ci, home / "dppb.csr", RspRole.DP_PB, home / "dppb.pem")
    args = ["pki", "load", "--address", "smdp.operator.example", "--dpauth-cert", str(dpauth),
            "--ci", str(home / "prod-ci.pem")]
    # the DPauth certificate given as DPpb: refused, nothing loaded
    error = refused(*args, "--dppb-cert", str(dpauth), "--dpauth-key", auth["key"],
                    "--dppb-key", pb["key"])
    assert "smdp_dppb_cert" in error and "2.23.146.1.2.1.5" in error
    assert not (home / "pki" / "rsp" / "smdp.json").exists()
    assert not (home / "pki" / "rsp.loading").exists()
    facts = json.loads(ok(*args, "--dppb-cert", str(dppb), "--dpauth-key", auth["key"],
                          "--dppb-key", pb["key"], "--json"))
    assert facts["oid"] == "1.3.6.1.4.1.99999.7" and facts["address"] == "smdp.operator.example"
    # an operator's existing DPpb key, imported under a transport KEK
    tk = os.urandom(32)
    ok("hsm", "kek", "add", "op-transport", "--purpose", "transport", "--component", tk.hex())
    key = ec.generate_private_key(ec.SECP256R1())
    csr = (x509.CertificateSigningRequestBuilder().subject_name(dp_subject("DPpb", "Operator"))
           .sign(key, hashes.SHA256()))
    (home / "op.csr").write_bytes(csr.public_bytes(Encoding.PEM))
    own = _issue_from_csr(ci, home / "op.csr", RspRole.DP_PB, home / "op-dppb.pem")
    (home / "op-dppb.wrapped").write_bytes(wrap_private_key(key, tk))
    facts = json.loads(ok(*args, "--dppb-cert", str(own), "--dpauth-key", auth["key"],
                          "--dppb-wrapped", str(home / "op-dppb.wrapped"),
                          "--transport", "op-transport", "--json"))
    serial = x509.load_pem_x509_certificate(own.read_bytes()).serial_number
    assert facts["certificates"]["dppb"]["serial"] == f"{serial:x}"
    # the wrapped key with another certificate: refused by the HSM's pair check
    assert "does not belong" in refused(*args, "--dppb-cert", str(dppb), "--dpauth-key",
                                        auth["key"], "--dppb-wrapped",
                                        str(home / "op-dppb.wrapped"), "--transport",
                                        "op-transport")
    # or from a password-encrypted PKCS#8 file
    (home / "op-dppb.p8").write_bytes(key.private_bytes(
        Encoding.PEM, PrivateFormat.PKCS8, BestAvailableEncryption(b"op secret")))
    monkeypatch.setenv("SIMSMITH_PKCS8_PASSPHRASE", "op secret")
    facts = json.loads(ok(*args, "--dppb-cert", str(own), "--dpauth-key", auth["key"],
                          "--dppb-pkcs8", str(home / "op-dppb.p8"), "--json"))
    assert facts["certificates"]["dppb"]["serial"] == f"{serial:x}"
    error = refused(*args, "--dppb-cert", str(dppb), "--dpauth-key", auth["key"])
    assert "give --dppb-key, --dppb-wrapped or --dppb-pkcs8" in error
    # no private key of the SM-DP+ anywhere in the workspace's files
    scalar = key.private_numbers().private_value.to_bytes(32, "big")
    for p in home.rglob("*"):
        if p.is_file():
            assert scalar not in p.read_bytes()


def test_sgp26_init_with_a_brainpool_hierarchy(home: Path) -> None:
    """`--brainpool`: a second CI hierarchy on brainpoolP256r1 (SGP.22 §2.6.7) with its own
    CERT.DPauth / CERT.DPpb over brainpool keys in the HSM, each chain valid — the P-256 one
    through cryptography's path validator, the brainpool one link by link (cryptography's
    validator refuses brainpool keys) — and loaded by the SM-DP+ beside the P-256 set."""
    from esim.sgp22.certificates import (
        TrustedCis,
        verify_euicc_chain,
        verify_server_certificate,
    )

    eid = default_eid()
    facts = json.loads(ok("pki", "sgp26-init", "--address", "smdp.lab.test:8443", "--eid", eid,
                          "--brainpool", "--json"))
    assert facts["certificates"]["dpauth"]["curve"] == "secp256r1"
    assert facts["certificates"]["tls"]["curve"] == "secp256r1"  # TLS clients verify P-256
    [more] = facts["more_credentials"]
    assert more["curve"] == "brainpoolP256r1"
    assert more["dpauth_key"] == {"backend": "soft", "key_type": "SKDPauth", "label": "smdp"}
    assert more["dppb"]["curve"] == "brainpoolP256r1"
    assert more["dppb"]["roles"] == ["DP_PB (2.23.146.1.2.1.5)"]
    assert sorted(ci["curve"] for ci in facts["trusted_cis"]) == ["brainpoolP256r1",
                                                                  "secp256r1"]
    rsp = home / "pki" / "rsp"
    bp = rsp / "brainpoolP256r1"

    def load(path: Path) -> x509.Certificate:
        return x509.load_pem_x509_certificate(path.read_bytes())

    bp_ci = load(bp / "ci.pem")
    bp_cis = TrustedCis([bp_ci])
    assert bp_ci.public_key().curve.name == "brainpoolP256r1"  # type: ignore[union-attr]
    for name, role in (("smdp-dpauth.pem", RspRole.DP_AUTH), ("smdp-dppb.pem", RspRole.DP_PB)):
        cert = load(bp / name)
        verify_server_certificate(cert, role, bp_cis)
        cert.verify_directly_issued_by(bp_ci)
    assert verify_euicc_chain(load(bp / f"euicc-{eid}.pem"), load(bp / "eum.pem"), bp_cis,
                              eid=eid).eid == eid
    # the P-256 hierarchy is unchanged, and still passes cryptography's path validation
    p256_ci = load(rsp / "ci.pem")
    verify_server_certificate(load(rsp / "smdp-dpauth.pem"), RspRole.DP_AUTH,
                              TrustedCis([p256_ci]))
    text = ok("pki", "show")
    assert "brainpoolP256r1 CERT.dpauth" in text and "SKDPpb 'smdp' in the soft HSM" in text
    # the virtual eUICC of this lab carries a chain in each hierarchy, P-256's first
    from esim.euicc.identity import dev_euicc

    core = dev_euicc(rsp, eid=eid)
    assert [c.certificate.public_key().curve.name for c in core.chains] == [  # type: ignore[union-attr]
        "secp256r1", "brainpoolP256r1"]
    assert run("pki", "csr", "--help").exit_code == 0  # type: ignore[attr-defined]


def test_euicc_emulate_curve_option_checked(home: Path) -> None:
    """`simsmith euicc emulate --curve` names a lab hierarchy (SGP.22 §2.6.7's two curves);
    another curve is refused by name before any reader is touched."""
    assert "secp384r1" in refused("euicc", "emulate", "--curve", "secp384r1")
    assert "--curve" in ok("euicc", "emulate", "--help")


@pytest.mark.slow
def test_production_load_with_a_brainpool_set_replaces_the_lab(home: Path) -> None:
    """A second production set from a brainpoolP256r1 CI (keys made in the HSM by `pki csr
    --curve`), loaded beside the P-256 one; and a load without it leaves nothing of the lab's
    brainpool hierarchy behind — its CI would otherwise stay trusted."""
    from esim.rsp_pki import BRAINPOOL_P256R1

    ok("pki", "sgp26-init", "--address", "smdp.lab.test:8443", "--brainpool")
    assert (home / "pki" / "rsp" / BRAINPOOL_P256R1).is_dir()
    cis = {"p256": make_ci(), "bp": make_ci(curve=BRAINPOOL_P256R1)}
    for name, ci in cis.items():
        (home / f"{name}-ci.pem").write_bytes(ci.cert.public_bytes(Encoding.PEM))
    certs: dict[str, Path] = {}
    keys: dict[str, str] = {}
    for name, curve in (("p256", "secp256r1"), ("bp", BRAINPOOL_P256R1)):
        for role, rsp_role in (("dpauth", RspRole.DP_AUTH), ("dppb", RspRole.DP_PB)):
            csr = home / f"{name}-{role}.csr"
            keys[f"{name}-{role}"] = json.loads(ok(
                "pki", "csr", "--role", role, "--org", "Operator", "--curve", curve,
                "--out", str(csr), "--json"))["key"]
            certs[f"{name}-{role}"] = _issue_from_csr(cis[name], csr, rsp_role,
                                                      home / f"{name}-{role}.pem")
    base = ["pki", "load", "--address", "smdp.operator.example",
            "--dpauth-cert", str(certs["p256-dpauth"]), "--dppb-cert", str(certs["p256-dppb"]),
            "--dpauth-key", keys["p256-dpauth"], "--dppb-key", keys["p256-dppb"],
            "--ci", str(home / "p256-ci.pem"), "--json"]
    # the lab's CERT.DP.TLS is from the lab CI, which the production identity does not trust:
    # refused until the operator gives one (not this test's subject), nothing changed
    assert "smdp_tls_cert" in refused(*base)
    assert (home / "pki" / "rsp" / BRAINPOOL_P256R1).is_dir()
    (home / "pki" / "rsp" / "smdp-tls.pem").unlink()
    facts = json.loads(ok(*base))
    assert not (home / "pki" / "rsp" / BRAINPOOL_P256R1).exists()
    assert facts["more_credentials"] == []
    assert [c["subject"] for c in facts["trusted_cis"]] == [
        cis["p256"].cert.subject.rfc4514_string()]
    bp = ["--brainpool-dpauth-cert", str(certs["bp-dpauth"]),
          "--brainpool-dppb-cert", str(certs["bp-dppb"]),
          "--brainpool-dpauth-key", keys["bp-dpauth"], "--brainpool-dppb-key", keys["bp-dppb"]]
    assert "an incomplete further set" in refused(*base, *bp[:6])
    wrong = list(bp)
    wrong[1], wrong[3] = str(certs["p256-dpauth"]), str(certs["p256-dppb"])
    assert "further_dpauth_cert" in refused(*base, "--ci", str(home / "bp-ci.pem"), *wrong)
    facts = json.loads(ok(*base, "--ci", str(home / "bp-ci.pem"), *bp))
    assert [m["curve"] for m in facts["more_credentials"]] == [BRAINPOOL_P256R1]
    assert len(facts["trusted_cis"]) == 2
    shown = json.loads(ok("pki", "show", "--json"))
    assert shown["more_credentials"] == facts["more_credentials"]
