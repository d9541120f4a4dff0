"""The SM-DP+ identity from settings and the HSM (simcore.smdp.identity) over an SGP.26-style
lab PKI made by simcore.smdp.rsp_pki: the certificates have SGP.22 §4.5.2's profiles and pass
cryptography's X.509 validation, the HSM keys sign for them, and every inconsistency is refused
with the setting named."""

from __future__ import annotations

import ipaddress
import json
import os
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import Encoding
from cryptography.x509.oid import ExtendedKeyUsageOID

from esim.euicc.identity import default_eid
from esim.rsp_pki import DEFAULT_SMDP_OID, make_ci
from esim.sgp22 import signatures
from esim.sgp22.certificates import (
    RspRole,
    TrustedCis,
    rsp_roles,
    subject_key_id,
    verify_euicc_chain,
    verify_server_certificate,
)
from hsm_sim.keyref import KeyType
from hsm_sim.soft import SoftHsm
from simcore.config import Settings
from simcore.smdp.identity import IdentityError, load_identity
from simcore.smdp.rsp_pki import LabPki, sgp26_init
from tests.helpers.hsm import Recorder
from tests.hsm.conftest import p11hsm  # noqa: F401  (fixture)

ADDRESS = "smdp.lab.test:8443"


@pytest.fixture
def soft(tmp_path: Path) -> SoftHsm:
    return SoftHsm.init(tmp_path / "hsm", components=[b"\x11" * 32, b"\x2c" * 32],
                        audit=Recorder())


def _lab(tmp_path: Path, hsm: Any, **kw: Any) -> tuple[Settings, LabPki]:
    settings = Settings(home=tmp_path, smdp_address=ADDRESS)
    return settings, sgp26_init(settings, hsm, address=ADDRESS, eids=[default_eid()], **kw)


def _with(settings: Settings, **kw: Any) -> Settings:
    return Settings(**(settings.model_dump() | kw))


def test_lab_pki_profiles_and_identity(tmp_path: Path, soft: SoftHsm) -> None:
    settings, lab = _lab(tmp_path, soft)
    identity = load_identity(settings, soft)
    assert identity.address == ADDRESS and identity.oid == DEFAULT_SMDP_OID
    d = lab.directory
    ci = x509.load_pem_x509_certificate((d / "ci.pem").read_bytes())
    cis = TrustedCis([ci])
    for name, role in (("smdp-dpauth", RspRole.DP_AUTH), ("smdp-dppb", RspRole.DP_PB),
                       ("smdp-tls", RspRole.DP_TLS)):
        cert = x509.load_pem_x509_certificate((d / f"{name}.pem").read_bytes())
        assert verify_server_certificate(cert, role, cis) == cert  # cryptography's validator
        assert rsp_roles(cert) == {role}
        ext = cert.extensions
        policies = ext.get_extension_for_class(x509.CertificatePolicies)
        assert policies.critical is (role is not RspRole.DP_TLS)
        usage = ext.get_extension_for_class(x509.KeyUsage)
        assert usage.critical and usage.value.digital_signature and not usage.value.key_cert_sign
        aki = ext.get_extension_for_class(x509.AuthorityKeyIdentifier).value.key_identifier
        assert aki == subject_key_id(ci)
        assert subject_key_id(cert) == x509.SubjectKeyIdentifier.from_public_key(
            cert.public_key()).digest
        sans = ext.get_extension_for_class(x509.SubjectAlternativeName).value
        assert x509.RegisteredID(x509.ObjectIdentifier(DEFAULT_SMDP_OID)) in sans
        if role is RspRole.DP_TLS:
            assert sans.get_values_for_type(x509.DNSName) == ["smdp.lab.test"]
            assert ExtendedKeyUsageOID.SERVER_AUTH in ext.get_extension_for_class(
                x509.ExtendedKeyUsage).value
    # the CSRs were signed by the HSM keys, and the identity's signers are those keys
    for cert, signer in ((identity.dpauth_certificate, identity.dpauth_signer),
                         (identity.dppb_certificate, identity.dppb_signer)):
        key = cert.public_key()
        assert isinstance(key, ec.EllipticCurvePublicKey)
        signatures.verify(key, b"m", signatures.sign(signer, b"m", "s"), "s")
        csr = x509.load_pem_x509_csr(
            (d / ("smdp-dpauth.csr" if cert is identity.dpauth_certificate
                  else "smdp-dppb.csr")).read_bytes())
        assert csr.is_signature_valid and csr.public_key() == key
    # the eUICC side of the lab verifies against the same CI
    euicc = d / f"euicc-{default_eid()}.pem"
    verify_euicc_chain(euicc.read_bytes(), (d / "eum.pem").read_bytes(), cis, eid=default_eid())
    # no private key file for DPauth / DPpb; the lab's own key files are 0600
    assert not list(d.glob("smdp-dp*.key"))
    for key_file in d.glob("*.key"):
        assert key_file.stat().st_mode & 0o077 == 0
    assert (d / "smdp.json").stat().st_mode & 0o077 == 0
    assert "key.sign" in {a for a, _, _ in soft._audit.records}  # type: ignore[attr-defined]


def test_ip_address_lands_in_ip_san(tmp_path: Path, soft: SoftHsm) -> None:
    settings = Settings(home=tmp_path, smdp_address="127.0.0.1:8443")
    lab = sgp26_init(settings, soft, address="127.0.0.1:8443")
    tls = x509.load_pem_x509_certificate((lab.directory / "smdp-tls.pem").read_bytes())
    sans = tls.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert sans.get_values_for_type(x509.IPAddress) == [ipaddress.ip_address("127.0.0.1")]
    assert load_identity(settings, soft).address == "127.0.0.1:8443"


def test_refusals_name_the_setting(tmp_path: Path, soft: SoftHsm) -> None:
    settings, lab = _lab(tmp_path, soft)
    d = lab.directory

    def refused(**kw: Any) -> IdentityError:
        with pytest.raises(IdentityError) as info:
            load_identity(_with(settings, **kw), soft)
        return info.value

    e = refused(smdp_dpauth_cert=tmp_path / "nope.pem")
    assert e.field == "smdp_dpauth_cert" and "cannot read" in str(e)
    e = refused(smdp_dpauth_cert=d / "smdp-dppb.pem")  # wrong role
    assert e.field == "smdp_dpauth_cert" and "2.23.146.1.2.1.4" in str(e)
    other, _ = soft.ec_generate("other", KeyType.SK_DPAUTH)
    e = refused(smdp_dpauth_key=other.to_token())  # certificate key ≠ HSM key
    assert e.field == "smdp_dpauth_key" and "not the HSM key" in str(e)
    e = refused(smdp_dpauth_key=lab.dppb_key.to_token())  # the other role's key
    assert e.field == "smdp_dpauth_key" and "SKDPpb" in str(e)
    e = refused(smdp_address="other.example")  # address not in CERT.DP.TLS
    assert e.field == "smdp_tls_cert" and "other.example" in str(e)
    e = refused(smdp_oid="2.999.99")
    assert e.field == "smdp_dpauth_cert" and "2.999.10" in str(e)
    stranger = make_ci()
    (tmp_path / "other-ci.pem").write_bytes(stranger.cert.public_bytes(Encoding.PEM))
    e = refused(smdp_trusted_cis=str(tmp_path / "other-ci.pem"))
    assert e.field == "smdp_dpauth_cert" and "not a trusted CI" in str(e)
    e = refused(smdp_trusted_cis=str(d / "smdp-dpauth.pem"))
    assert e.field == "smdp_trusted_cis"
    e = refused(smdp_dppb_key="kr1.nonsense")
    assert e.field == "smdp_dppb_key"
    with pytest.raises(IdentityError) as again:
        sgp26_init(settings, soft, address=ADDRESS)  # an identity is there: --force only
    assert again.value.field == "smdp_rsp_dir"
    assert sgp26_init(settings, soft, address=ADDRESS, force=True).dpauth_key != lab.dpauth_key


@pytest.mark.slow
def test_identity_on_softhsm2(tmp_path: Path, p11hsm: Any) -> None:  # noqa: F811
    label = f"smdp-{os.getpid()}"
    settings, lab = _lab(tmp_path, p11hsm, label=label)
    try:
        identity = load_identity(settings, p11hsm)
        assert lab.dpauth_key.backend == "pkcs11" and lab.dpauth_key.owner == label
        key = identity.dppb_certificate.public_key()
        assert isinstance(key, ec.EllipticCurvePublicKey)
        signatures.verify(key, b"m", signatures.sign(identity.dppb_signer, b"m", "s"), "s")
        # a soft-HSM ref is refused by the token's identity
        soft = SoftHsm.init(tmp_path / "hsm2", components=[b"\x11" * 32, b"\x2c" * 32])
        other, _ = soft.ec_generate("smdp", KeyType.SK_DPAUTH)
        with pytest.raises(IdentityError) as e:
            load_identity(_with(settings, smdp_dpauth_key=other.to_token()), p11hsm)
        assert e.value.field == "smdp_dpauth_key" and "soft" in str(e.value)
    finally:
        p11hsm.ec_destroy(lab.dpauth_key)
        p11hsm.ec_destroy(lab.dppb_key)


def test_service_factory_makes_a_lab_identity_in_dev_mode_only(tmp_path: Path,
                                                                soft: SoftHsm) -> None:
    from simcore.smdp.identity import smdp_identity

    dev = Settings(home=tmp_path, mode="dev")
    first = smdp_identity(address="127.0.0.1:8443", hsm=lambda: soft, home=tmp_path,
                          settings=Settings(home=tmp_path / "elsewhere", mode="dev"))
    assert first.address == "127.0.0.1:8443"
    ci = (tmp_path / "pki" / "rsp" / "ci.pem").read_bytes()
    again = smdp_identity(address="127.0.0.1:8443", hsm=soft, settings=dev)
    assert again.dpauth_certificate == first.dpauth_certificate  # made once
    moved = smdp_identity(address="localhost:9443", hsm=soft, settings=dev)
    assert moved.address == "localhost:9443" and moved.dppb_certificate != first.dppb_certificate
    assert (tmp_path / "pki" / "rsp" / "ci.pem").read_bytes() == ci  # the lab CI is kept
    with pytest.raises(IdentityError) as e:
        smdp_identity(address="smdp.example", hsm=soft,
                      settings=Settings(home=tmp_path / "prod", mode="production"))
    assert e.value.field == "smdp_trusted_cis" and "pki sgp26-init" in str(e.value)


@pytest.mark.slow
def test_workers_starting_together_share_one_lab_identity(tmp_path: Path) -> None:
    """Three processes (API workers) asking for the dev identity at the same moment: one makes
    it, all load that one (no second lab, no certificate of one lab read with another's keys)."""
    import multiprocessing

    SoftHsm.init(tmp_path / "hsm", components=[b"\x11" * 32, b"\x2c" * 32])
    ctx = multiprocessing.get_context("spawn")
    barrier, results = ctx.Barrier(3), ctx.Queue()
    procs = [ctx.Process(target=_worker_identity, args=(str(tmp_path), barrier, results))
             for _ in range(3)]
    for p in procs:
        p.start()
    got = [results.get(timeout=120) for _ in procs]
    for p in procs:
        p.join(30)
    assert all(isinstance(g, int) for g in got), got
    assert len(set(got)) == 1


def _worker_identity(home: str, barrier: Any, results: Any) -> None:
    from simcore.smdp.identity import smdp_identity

    hsm = SoftHsm.open(Path(home) / "hsm", components=[b"\x11" * 32, b"\x2c" * 32])
    barrier.wait()
    try:
        identity = smdp_identity(address="127.0.0.1:8443", hsm=hsm,
                                 settings=Settings(home=Path(home), mode="dev"))
        results.put(identity.dpauth_certificate.serial_number)
    except Exception as e:  # reported to the test, which shows it
        results.put(f"{type(e).__name__}: {e}")


def test_brainpool_set_on_softhsm2(tmp_path: Path, p11hsm: Any) -> None:  # noqa: F811
    """A lab with a brainpoolP256r1 hierarchy: its DPauth / DPpb keys made in SoftHSM2
    (CKA_EC_PARAMS = the brainpool OID), loaded as the identity's second set, signing r ‖ s
    that verify with its certificates; a key reference of the wrong curve is refused by name."""
    label = f"smdp-bp-{os.getpid()}"
    settings, lab = _lab(tmp_path, p11hsm, label=label, brainpool=True)
    assert lab.more_keys is not None
    bp_auth, bp_pb = lab.more_keys["brainpoolP256r1"]
    try:
        identity = load_identity(settings, p11hsm)
        [more] = identity.more_credentials
        assert more.curve.name == "brainpoolP256r1"
        assert identity.dppb_certificate.public_key().curve.name == "secp256r1"  # type: ignore[union-attr]
        for cert, signer in ((more.dpauth_certificate, more.dpauth_signer),
                             (more.dppb_certificate, more.dppb_signer)):
            key = cert.public_key()
            assert isinstance(key, ec.EllipticCurvePublicKey)
            signatures.verify(key, b"m", signatures.sign(signer, b"m", "s"), "s")
        # smdp.json naming the P-256 key where the brainpool one belongs
        manifest = lab.directory / "smdp.json"
        data = json.loads(manifest.read_text())
        data["more"][0]["dpauth_key"] = lab.dpauth_key.to_token()
        manifest.write_text(json.dumps(data))
        with pytest.raises(IdentityError) as e:
            load_identity(settings, p11hsm)
        assert e.value.field == "smdp_rsp_dir.more[0].dpauth_key"
    finally:
        for ref in (lab.dpauth_key, lab.dppb_key, bp_auth, bp_pb):
            p11hsm.ec_destroy(ref)
