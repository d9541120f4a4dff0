"""SGP.22 §4.5.2 certificate chains (esim.sgp22.certificates): the recorded session's chains are
accepted; each broken chain is refused with CertificateError naming the certificate and reason."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization

from esim.sgp22 import certificates as certs
from esim.sgp22.certificates import RspRole, TrustedCis
from esim.sgp22.errors import CertificateError
from tests.esim import sgp22_pki as pki
from tests.esim.sgp22_vectors import cert_pem, field, session

NOW = datetime(2026, 12, 7, tzinfo=UTC)


def _recorded(name: str) -> x509.Certificate:
    return x509.load_pem_x509_certificate(cert_pem(name))


def _recorded_cis() -> TrustedCis:
    return TrustedCis([_recorded("CERT_CI_ECDSA_NIST.pem")])


def test_recorded_euicc_chain_from_the_wire_is_accepted() -> None:
    """The eUICC and EUM certificates as the eUICC sent them in AuthenticateServerResponse."""
    from esim.sgp22 import schema
    resp = schema.decode("AuthenticateServerResponse",
                         field("AuthenticateClient", "request.authenticateServerResponse"))[1]
    identity = certs.verify_euicc_chain(resp["euiccCertificate"], resp["eumCertificate"],
                                        _recorded_cis(), eid=session()["eid"], now=NOW)
    assert identity.eid == session()["eid"]
    assert identity.certificate == _recorded("CERT_EUICC_ECDSA_NIST.pem")
    assert certs.subject_key_id(identity.ci).hex().startswith("c528f01f")


@pytest.mark.parametrize(("name", "role"), [
    ("CERT_S_SM_DPauth_ECDSA_NIST.pem", RspRole.DP_AUTH),
    ("CERT_S_SM_DPpb_ECDSA_NIST.pem", RspRole.DP_PB),
])
def test_recorded_smdp_certificates_are_accepted(name: str, role: RspRole) -> None:
    der = _recorded(name).public_bytes(serialization.Encoding.DER)
    assert certs.verify_server_certificate(der, role, _recorded_cis(), now=NOW) == _recorded(name)


def test_recorded_dpauth_is_not_a_dppb_and_expires_in_2030() -> None:
    dpauth = _recorded("CERT_S_SM_DPauth_ECDSA_NIST.pem")
    with pytest.raises(CertificateError) as info:
        certs.verify_server_certificate(dpauth, RspRole.DP_PB, _recorded_cis(), now=NOW)
    assert (info.value.certificate, info.value.reason) == ("CERT.DPpb.ECDSA", "wrong-role")
    with pytest.raises(CertificateError, match="expired") as info:
        certs.verify_server_certificate(dpauth, RspRole.DP_AUTH, _recorded_cis(),
                                        now=datetime(2031, 1, 1, tzinfo=UTC))
    assert info.value.reason == "expired"


def test_recorded_eid_mismatch() -> None:
    with pytest.raises(CertificateError, match="89049032123451234512345678901235") as info:
        certs.verify_euicc_chain(_recorded("CERT_EUICC_ECDSA_NIST.pem"),
                                 _recorded("CERT_EUM_ECDSA_NIST.pem"), _recorded_cis(),
                                 eid="89049032123451234512345678901243", now=NOW)
    assert (info.value.certificate, info.value.reason) == ("CERT.EUICC.ECDSA", "eid-mismatch")


def test_chain_to_an_untrusted_ci_is_refused() -> None:
    other = pki.ci()
    with pytest.raises(CertificateError) as info:
        certs.verify_euicc_chain(_recorded("CERT_EUICC_ECDSA_NIST.pem"),
                                 _recorded("CERT_EUM_ECDSA_NIST.pem"), TrustedCis([other.cert]),
                                 now=NOW)
    assert (info.value.certificate, info.value.reason) == ("CERT.EUM.ECDSA", "unknown-ci")


def test_generated_chain_is_accepted() -> None:
    ci = pki.ci()
    eum = pki.eum(ci)
    euicc = pki.euicc(eum)
    identity = certs.verify_euicc_chain(euicc.cert, eum.cert, TrustedCis([ci.cert]),
                                        eid=pki.EID, now=NOW)
    assert identity.eid == pki.EID
    dpauth = pki.dp(ci, RspRole.DP_AUTH)
    certs.verify_server_certificate(dpauth.cert, RspRole.DP_AUTH, TrustedCis([ci.cert]), now=NOW)


def _refusal(build: str) -> tuple[str, str]:
    ci = pki.ci()
    eum = pki.eum(ci)
    euicc = pki.euicc(eum)
    cis = TrustedCis([ci.cert])
    now = NOW
    if build == "euicc-expired":
        euicc = pki.euicc(eum, days=30)
    elif build == "eum-expired":
        eum = pki.eum(ci, days=30)
        euicc = pki.euicc(eum)
    elif build == "euicc-not-yet-valid":
        euicc = pki.euicc(eum, start=datetime(2030, 1, 1, tzinfo=UTC))
    elif build == "euicc-from-other-eum":
        euicc = pki.euicc(pki.eum(ci))
    elif build == "euicc-signed-by-impostor":
        # same EUM name, another key: its key identifier gives it away
        impostor = pki.Party(eum.cert, pki.ec.generate_private_key(pki.ec.SECP256R1()))
        euicc = pki.euicc(impostor)
    elif build == "eum-role":
        eum = pki.eum(ci, role=RspRole.DP_AUTH)
        euicc = pki.euicc(eum)
    elif build == "euicc-role":
        euicc = pki.euicc(eum, role=RspRole.EUM)
    elif build == "outside-name-constraints":
        euicc = pki.euicc(eum, eid="89001012012341234012345678901224")
    elif build == "other-organisation":
        euicc = pki.euicc(eum, org="Someone Else")
    elif build == "eum-not-ca":
        eum = pki.issue(eum.cert.subject, RspRole.EUM, ci, ca=False)
        euicc = pki.euicc(eum)
    elif build == "eid-mismatch":
        return _call(euicc, eum, cis, now, eid="89049032123451234512345678901243")
    return _call(euicc, eum, cis, now)


def _call(euicc: pki.Party, eum: pki.Party, cis: TrustedCis, now: datetime,
          eid: str | None = None) -> tuple[str, str]:
    with pytest.raises(CertificateError) as info:
        certs.verify_euicc_chain(euicc.cert, eum.cert, cis, eid=eid, now=now)
    assert info.value.certificate in str(info.value)
    return info.value.certificate, info.value.reason


@pytest.mark.parametrize(("build", "expected"), [
    ("euicc-expired", ("CERT.EUICC.ECDSA", "expired")),
    ("eum-expired", ("CERT.EUM.ECDSA", "expired")),
    ("euicc-not-yet-valid", ("CERT.EUICC.ECDSA", "not-yet-valid")),
    ("euicc-from-other-eum", ("CERT.EUICC.ECDSA", "wrong-issuer")),
    ("euicc-signed-by-impostor", ("CERT.EUICC.ECDSA", "wrong-issuer")),
    ("eum-role", ("CERT.EUM.ECDSA", "wrong-role")),
    ("euicc-role", ("CERT.EUICC.ECDSA", "wrong-role")),
    ("outside-name-constraints", ("CERT.EUICC.ECDSA", "name-constraints")),
    ("other-organisation", ("CERT.EUICC.ECDSA", "name-constraints")),
    ("eum-not-ca", ("CERT.EUM.ECDSA", "invalid-path")),
    ("eid-mismatch", ("CERT.EUICC.ECDSA", "eid-mismatch")),
])
def test_broken_euicc_chains_are_refused(build: str, expected: tuple[str, str]) -> None:
    assert _refusal(build) == expected


def test_broken_smdp_certificates_are_refused() -> None:
    ci = pki.ci()
    cis = TrustedCis([ci.cert])
    for party, role, reason in [
        (pki.dp(ci, RspRole.DP_PB), RspRole.DP_AUTH, "wrong-role"),
        (pki.dp(ci, RspRole.DP_AUTH, days=10), RspRole.DP_AUTH, "expired"),
        (pki.dp(pki.ci(), RspRole.DP_AUTH), RspRole.DP_AUTH, "unknown-ci"),
    ]:
        with pytest.raises(CertificateError) as info:
            certs.verify_server_certificate(party.cert, role, cis, now=NOW)
        assert (info.value.certificate, info.value.reason) == (role.certificate_name, reason)


def test_tampered_certificate_bytes_are_refused() -> None:
    der = bytearray(_recorded("CERT_EUICC_ECDSA_NIST.pem").public_bytes(
        serialization.Encoding.DER))
    eum = _recorded("CERT_EUM_ECDSA_NIST.pem")
    with pytest.raises(CertificateError) as info:
        certs.verify_euicc_chain(bytes(der[:100]), eum, _recorded_cis(), now=NOW)
    assert info.value.reason == "malformed"
    # flip a bit of the signature's s: still parses, no longer verifies
    der[-1] ^= 0x01
    with pytest.raises(CertificateError) as info:
        certs.verify_euicc_chain(bytes(der), eum, _recorded_cis(), now=NOW)
    assert (info.value.certificate, info.value.reason) == ("CERT.EUICC.ECDSA", "bad-signature")


def test_trusted_cis_lookup_and_roles() -> None:
    cis = _recorded_cis()
    key_id = bytes.fromhex("c528f01fcb51330014799f97493782829e1e55f5")
    assert cis.key_ids == [key_id]
    assert cis.by_key_id(key_id) == _recorded("CERT_CI_ECDSA_NIST.pem")
    with pytest.raises(CertificateError, match="unknown-ci"):
        cis.by_key_id(bytes(20))
    with pytest.raises(CertificateError, match="wrong-role"):
        TrustedCis([_recorded("CERT_EUM_ECDSA_NIST.pem")])
    assert certs.rsp_roles(_recorded("CERT_EUM_ECDSA_NIST.pem")) == {RspRole.EUM}
    assert certs.certificate_eid(_recorded("CERT_EUICC_ECDSA_NIST.pem")) == session()["eid"]
    with pytest.raises(CertificateError, match="serialNumber"):
        certs.certificate_eid(_recorded("CERT_EUM_ECDSA_NIST.pem"))


def test_an_eum_verified_once_is_still_checked_at_every_use() -> None:
    """The SM-DP+ keeps the EUMs it has verified (the same few in every download): their
    validity is still checked each time, every eUICC certificate is verified against them, and
    an EUM with the same name but another key is not taken for the one verified."""
    ci = pki.ci()
    eum = pki.eum(ci, days=3000)  # ends before its CI
    cis = TrustedCis([ci.cert])
    certs.verify_euicc_chain(pki.euicc(eum).cert, eum.cert, cis, now=NOW)
    with pytest.raises(CertificateError) as info:
        certs.verify_euicc_chain(pki.euicc(eum).cert, eum.cert, cis,
                                 now=eum.cert.not_valid_after_utc + timedelta(days=1))
    assert (info.value.certificate, info.value.reason) == ("CERT.EUM.ECDSA", "expired")
    assert _call(pki.euicc(pki.eum(ci)), eum, cis, NOW) == ("CERT.EUICC.ECDSA", "wrong-issuer")
    impostor = pki.Party(eum.cert, pki.ec.generate_private_key(pki.ec.SECP256R1()))
    assert _call(pki.euicc(impostor), eum, cis, NOW) == ("CERT.EUICC.ECDSA", "wrong-issuer")
