"""Downloads on brainpoolP256r1 and on a mixed eUICC (SGP.22 §2.6.7, §5.6.1; the rule in
esim.sgp22.curves): simsmith's LPA and virtual eUICC against simsmith's SM-DP+ core in process.

- an SM-DP+ and an eUICC with only a brainpool CI download and install; every certificate and
  both one-time keys of the session are on brainpoolP256r1;
- an SM-DP+ holding a P-256 and a brainpool set and an eUICC with a chain under each: the
  session takes the first CI of the eUICC's euiccCiPKIdListForVerification the SM-DP+ holds
  keys for, in the eUICC's order;
- no common CI: InitiateAuthentication refuses with 8.8.4 / 3.7 (no CERT.DPauth from a CI the
  eUICC verifies), nothing installed.
"""

from __future__ import annotations

import base64
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec

from esim.euicc.identity import dev_euicc
from esim.lpa.download import Es9Refused, download, process_notifications
from esim.lpa.functions import Es10Functions
from esim.rsp_pki import BRAINPOOL_P256R1, DEFAULT_SMDP_OID, NIST_P256, DevRspPki, hierarchy_dir
from esim.sgp22 import bpp, schema
from esim.sgp22 import signatures as sig
from esim.sgp22.certificates import TrustedCis, subject_key_id
from simcore.euicc import EuiccLoopback, es10_session, virtual_euicc
from simcore.smdp.es9plus import (
    DpCredentials,
    Es9PlusCore,
    InMemorySessions,
    ReleasedOrder,
    SmdpIdentity,
)
from tests.euicc.smdp_side import milenage_upp, store_metadata
from tests.smdp.test_es9plus_core import Orders

ICCID, IMSI = "8949440000000000058", "001010000000058"
ADDRESS = "smdp.simsmith.test"
AC = f"LPA:1${ADDRESS}$MATCH-58"


class Recording:
    """The core behind the LPA's Es9Transport, keeping each answer."""

    def __init__(self, core: Es9PlusCore) -> None:
        self.core = core
        self.answers: dict[str, dict[str, Any]] = {}

    def post(self, function: str, body: dict[str, Any]) -> dict[str, Any] | None:
        answer = self.core.handle(function, body)
        if answer.body is not None:
            self.answers[function] = answer.body
        return answer.body

    def certificate(self, function: str, member: str) -> x509.Certificate:
        return x509.load_der_x509_certificate(base64.b64decode(self.answers[function][member]))


def _lab(tmp_path: Path, curve: str) -> DevRspPki:
    return DevRspPki(hierarchy_dir(tmp_path / "rsp", curve), curve)


def _credentials(pki: DevRspPki) -> DpCredentials:
    return DpCredentials(pki.dpauth().cert, sig.software_signer(pki.dpauth().key),
                         pki.dppb().cert, sig.software_signer(pki.dppb().key))


def _core(tmp_path: Path, smdp_curves: list[str], trusted: list[str] | None = None
          ) -> tuple[Recording, Orders]:
    """An SM-DP+ with a CERT.DPauth / DPpb set per curve of `smdp_curves`, trusting their CIs
    (or those of `trusted`) for eUICC chains."""
    sets = [_credentials(_lab(tmp_path, c)) for c in smdp_curves]
    first = sets[0]
    identity = SmdpIdentity(
        address=ADDRESS, oid=DEFAULT_SMDP_OID,
        dpauth_certificate=first.dpauth_certificate, dpauth_signer=first.dpauth_signer,
        dppb_certificate=first.dppb_certificate, dppb_signer=first.dppb_signer,
        cis=TrustedCis([_lab(tmp_path, c).ci().cert for c in trusted or smdp_curves]),
        more_credentials=tuple(sets[1:]))
    released = ReleasedOrder(matching_id="MATCH-58", iccid=ICCID,
                             profile_metadata=store_metadata(ICCID))
    orders = Orders({released.matching_id: released})
    upp = milenage_upp(ICCID, IMSI)
    return Recording(Es9PlusCore(identity, InMemorySessions(), orders, lambda _o: upp)), orders


def _euicc(tmp_path: Path, curves: list[str]) -> Any:
    for c in curves:
        _lab(tmp_path, c).ci()
    return virtual_euicc(dev_euicc(tmp_path / "rsp", curves=curves))


def _download(es9: Recording, card: Any) -> Any:
    with es10_session(EuiccLoopback(card)) as es10:
        return download(Es10Functions(es10.call), es9, AC)


def _session_curve(es9: Recording) -> str:
    """The curve of every certificate and one-time key of the recorded session (one)."""
    found = {es9.certificate("initiateAuthentication", "serverCertificate").public_key().curve.name,
             es9.certificate("authenticateClient", "smdpCertificate").public_key().curve.name}
    bpp_der = base64.b64decode(es9.answers["getBoundProfilePackage"]["boundProfilePackage"])
    isc = schema.decode("InitialiseSecureChannelRequest", bpp._split(bpp_der)[0])
    otpk_dp = bytes(isc["smdpOtpk"])
    for name, cls in ((NIST_P256, ec.SECP256R1), (BRAINPOOL_P256R1, ec.BrainpoolP256R1)):
        try:
            ec.EllipticCurvePublicKey.from_encoded_point(cls(), otpk_dp)
            found.add(name)
        except ValueError:
            pass
    assert len(found) == 1, found
    return found.pop()


def test_download_on_brainpool(tmp_path: Path) -> None:
    es9, orders = _core(tmp_path, [BRAINPOOL_P256R1])
    card = _euicc(tmp_path, [BRAINPOOL_P256R1])
    chain = card.core.credentials
    assert chain.certificate.public_key().curve.name == BRAINPOOL_P256R1
    result = _download(es9, card)
    assert result.success and result.iccid == ICCID and result.notification_sent
    assert [e[0] for e in orders.events] == ["delivered", "installed"]
    assert [p.iccid for p in card.core.state.profiles] == [ICCID]
    assert _session_curve(es9) == BRAINPOOL_P256R1


@pytest.mark.parametrize(("smdp", "euicc", "expected"), [
    ([NIST_P256, BRAINPOOL_P256R1], [BRAINPOOL_P256R1, NIST_P256], BRAINPOOL_P256R1),
    ([NIST_P256, BRAINPOOL_P256R1], [NIST_P256, BRAINPOOL_P256R1], NIST_P256),
    ([BRAINPOOL_P256R1, NIST_P256], [NIST_P256, BRAINPOOL_P256R1], NIST_P256),
    ([NIST_P256], [BRAINPOOL_P256R1, NIST_P256], NIST_P256),
    ([BRAINPOOL_P256R1], [NIST_P256, BRAINPOOL_P256R1], BRAINPOOL_P256R1),
])
def test_mixed_euicc_session_takes_the_euiccs_first_common_ci(
        tmp_path: Path, smdp: list[str], euicc: list[str], expected: str) -> None:
    es9, orders = _core(tmp_path, smdp)
    card = _euicc(tmp_path, euicc)
    info1 = schema.decode("EUICCInfo1", card.core.handle(bytes.fromhex("BF2000")))
    cis = [subject_key_id(_lab(tmp_path, c).ci().cert) for c in euicc]
    # both CIs listed, in the eUICC's order, for verification and for signing
    assert info1["euiccCiPKIdListForVerification"] == cis
    assert info1["euiccCiPKIdListForSigning"] == cis
    result = _download(es9, card)
    assert result.success and [e[0] for e in orders.events] == ["delivered", "installed"]
    assert _session_curve(es9) == expected
    announced = schema.decode("SubjectKeyIdentifier", base64.b64decode(
        es9.answers["initiateAuthentication"]["euiccCiPKIdToBeUsed"]))
    assert announced == subject_key_id(_lab(tmp_path, expected).ci().cert)


@pytest.mark.parametrize(("smdp", "euicc"), [([NIST_P256], [BRAINPOOL_P256R1]),
                                             ([BRAINPOOL_P256R1], [NIST_P256])])
def test_no_common_ci_is_refused(tmp_path: Path, smdp: list[str], euicc: list[str]) -> None:
    es9, orders = _core(tmp_path, smdp)
    card = _euicc(tmp_path, euicc)
    with pytest.raises(Es9Refused) as refused:
        _download(es9, card)
    # SGP.22 §5.6.1: Certificate (8.8.4), Unavailable (3.7)
    assert (refused.value.function, refused.value.subject, refused.value.reason) == (
        "initiateAuthentication", "8.8.4", "3.7")
    assert card.core.state.profiles == [] and orders.events == []


def test_ci_verified_but_not_signed_with_is_not_chosen(tmp_path: Path) -> None:
    """The eUICC verifies with the brainpool CI but signs only under the P-256 one. An SM-DP+
    that trusts only the brainpool CI cannot verify the eUICC (8.8.2 / 3.1); one holding only
    brainpool keys but trusting both CIs has no CI both sides can use (8.8.4 / 3.7); one also
    holding P-256 keys announces the P-256 CI."""
    bp, p256 = (subject_key_id(_lab(tmp_path, c).ci().cert) for c in (BRAINPOOL_P256R1,
                                                                        NIST_P256))
    info1 = base64.b64encode(schema.encode("EUICCInfo1", {
        "svn": b"\x02\x02\x00", "euiccCiPKIdListForVerification": [bp, p256],
        "euiccCiPKIdListForSigning": [p256]})).decode()
    body = {"euiccChallenge": base64.b64encode(bytes(16)).decode(), "euiccInfo1": info1,
            "smdpAddress": ADDRESS}

    def refusal(es9: Recording) -> tuple[str, str]:
        answer = es9.core.handle("initiateAuthentication", dict(body))
        status = answer.body["header"]["functionExecutionStatus"]  # type: ignore[index]
        assert status["status"] == "Failed"
        return status["statusCodeData"]["subjectCode"], status["statusCodeData"]["reasonCode"]

    assert refusal(_core(tmp_path, [BRAINPOOL_P256R1])[0]) == ("8.8.2", "3.1")
    assert refusal(_core(tmp_path, [BRAINPOOL_P256R1],
                         trusted=[BRAINPOOL_P256R1, NIST_P256])[0]) == ("8.8.4", "3.7")
    both, _ = _core(tmp_path, [BRAINPOOL_P256R1, NIST_P256])
    answer = both.core.handle("initiateAuthentication", dict(body))
    assert answer.body["header"]["functionExecutionStatus"]["status"] == \
        "Executed-Success"  # type: ignore[index]
    assert schema.decode("SubjectKeyIdentifier", base64.b64decode(
        answer.body["euiccCiPKIdToBeUsed"])) == p256  # type: ignore[index]


def test_mixed_euicc_signs_a_profiles_notifications_under_its_download_ci(
        tmp_path: Path) -> None:
    """A mixed eUICC (P-256 chain first) downloads from an SM-DP+ that holds and trusts only
    brainpool: the profile's enable, disable and delete notifications are signed with the
    brainpool chain the download authenticated with — the one that SM-DP+ can verify — and
    it accepts all of them (signed with the eUICC's first chain, it refuses them)."""
    es9, orders = _core(tmp_path, [BRAINPOOL_P256R1])
    card = _euicc(tmp_path, [NIST_P256, BRAINPOOL_P256R1])
    assert card.core.credentials.certificate.public_key().curve.name == NIST_P256
    assert _download(es9, card).notification_sent
    with es10_session(EuiccLoopback(card)) as es10:
        functions = Es10Functions(es10.call)
        functions.enable(ICCID)
        functions.disable(ICCID)
        functions.delete(ICCID)
        pending = functions.retrieve_notifications()
        kind, items = schema.decode("RetrieveNotificationsListResponse", pending)
        assert kind == "notificationList" and len(items) == 3
        for alternative, notification in items:
            assert alternative == "otherSignedNotification"
            certificate = x509.load_der_x509_certificate(
                schema.encode("Certificate", notification["euiccCertificate"]))
            assert certificate.public_key().curve.name == BRAINPOOL_P256R1
        sent = process_notifications(functions, lambda _address: es9)
    assert [delivered for _seq, delivered in sent] == [True, True, True]
    assert [e[3].name for e in orders.events if e[0] == "notified"] == [
        "ENABLE", "DISABLE", "DELETE"]
