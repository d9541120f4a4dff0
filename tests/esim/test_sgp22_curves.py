"""brainpoolP256r1 beside NIST P-256 (SGP.22 §2.6.7, §2.6.4; esim.sgp22.curves): ECKA on the
RFC 7027 §A.1 published vector, the KDF and BSP on its shared secret, signatures and
certificate chains on either curve, and the typed refusal of any other curve."""

from __future__ import annotations

from datetime import timedelta

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from esim.sgp22 import bpp, bsp, curves, schema
from esim.sgp22 import signatures as sig
from esim.sgp22.certificates import (
    RspRole,
    TrustedCis,
    verify_euicc_chain,
    verify_server_certificate,
)
from esim.sgp22.errors import (
    BppError,
    CertificateError,
    KeyAgreementError,
    SignatureError,
    UnsupportedCurveError,
)
from tests.esim import sgp22_pki

# RFC 7027 Appendix A.1 (ECDH on brainpoolP256r1): dA, Q_A, dB, Q_B and the shared point Z
DA = int("81DB1EE100150FF2EA338D708271BE38300CB54241D79950F77B063039804F1D", 16)
QA = ("44106E913F92BC02A1705D9953A8414DB95E1AAA49E81D9E85F929A8E3100BE5",
      "8AB4846F11CACCB73CE49CBDD120F5A900A69FD32C272223F789EF10EB089BDC")
DB = int("55E40BC41E37E3E2AD25C3C6654511FFA8474A91A0032087593852D3E7D76BD3", 16)
QB = ("8D2D688C6CF93E1160AD04CC4429117DC2C41825E1E9FCA0ADDD34E6F1B39F7B",
      "990C57520812BE512641E47034832106BC7D3E8DD0E4C7F1136D7006547CEC6A")
ZX = bytes.fromhex("89AFC39D41D3B327814B80940B042590F96556EC91E6AE7939BCE31F3A18BF2B")

BP = ec.BrainpoolP256R1()
EID = bytes.fromhex(sgp22_pki.EID)
NOW = sgp22_pki.START + timedelta(days=30)
METADATA = schema.encode("StoreMetadataRequest", {
    "iccid": bytes.fromhex("98001032547698103214"), "serviceProviderName": "simsmith",
    "profileName": "brainpool"})


def _point(q: tuple[str, str]) -> bytes:
    return b"\x04" + bytes.fromhex(q[0]) + bytes.fromhex(q[1])


def _uncompressed(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.public_key().public_bytes(serialization.Encoding.X962,
                                         serialization.PublicFormat.UncompressedPoint)


def test_ecka_on_brainpool_matches_rfc7027_vector() -> None:
    a = ec.derive_private_key(DA, BP)
    b = ec.derive_private_key(DB, BP)
    assert _uncompressed(a) == _point(QA)
    assert _uncompressed(b) == _point(QB)
    # ECKA-DH's shared secret is Z's x-coordinate (BSI TR-03111), both directions
    assert bsp.ecka(a, _point(QB)) == ZX
    assert bsp.ecka(b, _point(QA), "otPK.DP.ECKA") == ZX


def test_kdf_and_segments_run_on_the_brainpool_secret() -> None:
    keys = bsp.derive_session_keys(ZX, b"simsmith", EID)
    again = bsp.derive_session_keys(bsp.ecka(ec.derive_private_key(DB, BP), _point(QA)),
                                    b"simsmith", EID)
    assert (keys.s_enc, keys.s_mac, keys.initial_mcv) == (again.s_enc, again.s_mac,
                                                          again.initial_mcv)
    segment = bsp.SegmentProtector(keys).encrypt_and_mac(bsp.TAG_PROFILE_86, b"profile")
    assert bsp.SegmentVerifier(again).decrypt_and_verify(bsp.TAG_PROFILE_86, segment) == \
        b"profile"


def test_ecka_refuses_a_point_of_the_other_curve() -> None:
    a = ec.derive_private_key(DA, BP)
    p256_point = _uncompressed(ec.generate_private_key(ec.SECP256R1()))
    with pytest.raises(KeyAgreementError) as info:
        bsp.ecka(a, p256_point, "otPK.EUICC.ECKA")
    assert info.value.field == "otPK.EUICC.ECKA"
    assert "brainpoolP256r1" in str(info.value)


def test_other_curves_are_refused_naming_field_and_oid() -> None:
    p384 = ec.generate_private_key(ec.SECP384R1())
    with pytest.raises(UnsupportedCurveError) as info:
        bsp.ecka(p384, _uncompressed(p384), "otPK.EUICC.ECKA")
    assert (info.value.field, info.value.oid) == ("otPK.EUICC.ECKA", "1.3.132.0.34")
    with pytest.raises(UnsupportedCurveError) as info:
        curves.curve_by_name("secp521r1", "--curve")
    assert info.value.field == "--curve"
    assert curves.curve_by_name("brainpoolP256r1").name == "brainpoolP256r1"
    assert curves.curve_by_name("1.2.840.10045.3.1.7").name == "secp256r1"
    assert curves.curve_oid(BP) == "1.3.36.3.3.2.8.1.1.7"
    # a certificate on P-384: CertificateError naming the certificate and the curve's OID
    ci = sgp22_pki.ci(key=ec.generate_private_key(ec.SECP384R1()))
    dp = sgp22_pki.dp(ci, RspRole.DP_AUTH, key=ec.generate_private_key(ec.SECP384R1()))
    with pytest.raises(CertificateError) as cert_info:
        verify_server_certificate(dp.cert, RspRole.DP_AUTH, TrustedCis([ci.cert]), now=NOW)
    assert (cert_info.value.certificate, cert_info.value.reason) == ("CERT.DPauth.ECDSA",
                                                                     "unsupported-curve")
    assert "1.3.132.0.34" in str(cert_info.value)


def _hierarchy(curve: ec.EllipticCurve) -> dict[str, sgp22_pki.Party]:
    ci = sgp22_pki.ci(key=ec.generate_private_key(curve))
    eum = sgp22_pki.eum(ci, key=ec.generate_private_key(curve))
    return {"ci": ci, "eum": eum,
            "euicc": sgp22_pki.euicc(eum, key=ec.generate_private_key(curve)),
            "dpauth": sgp22_pki.dp(ci, RspRole.DP_AUTH, key=ec.generate_private_key(curve)),
            "dppb": sgp22_pki.dp(ci, RspRole.DP_PB, key=ec.generate_private_key(curve))}


def test_brainpool_chains_verify_and_their_faults_are_named() -> None:
    h = _hierarchy(BP)
    cis = TrustedCis([h["ci"].cert])
    for role in (RspRole.DP_AUTH, RspRole.DP_PB):
        cert = h["dpauth" if role is RspRole.DP_AUTH else "dppb"].cert
        assert verify_server_certificate(cert, role, cis, now=NOW) == cert
    assert verify_euicc_chain(h["euicc"].cert, h["eum"].cert, cis, now=NOW).eid == \
        sgp22_pki.EID
    # without cryptography's validator (it refuses brainpool), the named rules still hold:
    with pytest.raises(CertificateError) as info:  # the wrong role
        verify_server_certificate(h["dppb"].cert, RspRole.DP_AUTH, cis, now=NOW)
    assert info.value.reason == "wrong-role"
    other = _hierarchy(BP)
    forged = sgp22_pki.dp(h["ci"], RspRole.DP_AUTH, key=ec.generate_private_key(BP))
    forged_by_other = sgp22_pki.issue(forged.cert.subject, RspRole.DP_AUTH, other["ci"],
                                      ca=False, key=forged.key)
    with pytest.raises(CertificateError) as info:  # issued by an untrusted CI
        verify_server_certificate(forged_by_other.cert, RspRole.DP_AUTH, cis, now=NOW)
    assert info.value.reason == "unknown-ci"
    with pytest.raises(CertificateError) as info:  # expired
        verify_server_certificate(h["dpauth"].cert, RspRole.DP_AUTH, cis,
                                  now=NOW + timedelta(days=4000))
    assert info.value.reason == "expired"
    ca_dp = sgp22_pki.issue(forged.cert.subject, RspRole.DP_AUTH, h["ci"], ca=True,
                            key=ec.generate_private_key(BP))
    with pytest.raises(CertificateError) as info:  # a CA where an end entity belongs
        verify_server_certificate(ca_dp.cert, RspRole.DP_AUTH, cis, now=NOW)
    assert info.value.reason == "invalid-path"


def test_one_chain_one_curve() -> None:
    """A P-256 certificate under a brainpool CI (or the reverse) is refused (§4.5.2.0)."""
    bp = _hierarchy(BP)
    mixed_dp = sgp22_pki.dp(bp["ci"], RspRole.DP_PB, key=ec.generate_private_key(ec.SECP256R1()))
    with pytest.raises(CertificateError) as info:
        verify_server_certificate(mixed_dp.cert, RspRole.DP_PB, TrustedCis([bp["ci"].cert]),
                                  now=NOW)
    assert info.value.reason == "unsupported-curve"
    mixed_euicc = sgp22_pki.euicc(bp["eum"], key=ec.generate_private_key(ec.SECP256R1()))
    with pytest.raises(CertificateError) as info:
        verify_euicc_chain(mixed_euicc.cert, bp["eum"].cert, TrustedCis([bp["ci"].cert]),
                           now=NOW)
    assert (info.value.certificate, info.value.reason) == ("CERT.EUICC.ECDSA",
                                                           "unsupported-curve")


def test_signatures_on_brainpool() -> None:
    key = ec.derive_private_key(DA, BP)
    tlv = sig.sign(sig.software_signer(key), b"serverSigned1", "serverSignature1")
    sig.verify(key.public_key(), b"serverSigned1", tlv, "serverSignature1")
    with pytest.raises(SignatureError):
        sig.verify(key.public_key(), b"serverSigned1!", tlv, "serverSignature1")
    # the same r ‖ s checked with a P-256 key of the same x: mismatch, not a crash
    with pytest.raises(SignatureError):
        sig.verify(ec.generate_private_key(ec.SECP256R1()).public_key(), b"serverSigned1", tlv,
                   "serverSignature1")


def test_bpp_on_brainpool_both_ways_and_the_wrong_curve_refused() -> None:
    h = _hierarchy(BP)
    otsk_euicc = ec.generate_private_key(BP)
    built = bpp.build_bpp(upp=b"\x30\x03\x02\x01\x00" * 500, store_metadata=METADATA,
        transaction_id=b"\x01" * 16,
        eid=EID, otpk_euicc=_uncompressed(otsk_euicc),
        dppb_signer=sig.software_signer(h["dppb"].key), curve=BP)
    assert len(built.otpk_dp) == 65
    ec.EllipticCurvePublicKey.from_encoded_point(BP, built.otpk_dp)  # otPK.DP on brainpool
    opened = bpp.open_bpp(built.der, otsk_euicc=otsk_euicc, eid=EID,
                          dppb_public_key=h["dppb"].cert)
    assert opened.upp == b"\x30\x03\x02\x01\x00" * 500
    # an otPK.EUICC of the other curve cannot be agreed with
    with pytest.raises(KeyAgreementError):
        bpp.build_bpp(upp=b"x", store_metadata=METADATA,
                      transaction_id=b"\x01" * 16, eid=EID,
                      otpk_euicc=_uncompressed(ec.generate_private_key(ec.SECP256R1())),
                      dppb_signer=sig.software_signer(h["dppb"].key), curve=BP)
    # a one-time key of another curve than the session's
    with pytest.raises(BppError):
        bpp.build_bpp(upp=b"x", store_metadata=METADATA,
                      transaction_id=b"\x01" * 16, eid=EID,
                      otpk_euicc=_uncompressed(otsk_euicc),
                      dppb_signer=sig.software_signer(h["dppb"].key),
                      otsk_dp=ec.generate_private_key(ec.SECP256R1()), curve=BP)
