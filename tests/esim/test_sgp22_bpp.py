"""SGP.22 §2.5.4–2.5.6 Bound Profile Package (esim.sgp22.bpp): the recorded BPP is rebuilt byte
for byte from upp.der and the session's values (its randomised smdpSign verified instead), opened
back to upp.der, and every tampering is refused with the SGP.22 error reason."""

from __future__ import annotations

from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from hypothesis import given, settings
from hypothesis import strategies as st

from esim.sgp22 import bpp, bsp, schema
from esim.sgp22 import signatures as sig
from esim.sgp22.errors import BppError
from tests.esim.sgp22_vectors import cert_pem, data, h, session

PYSIM_SEGMENT = 1036  # the recorded SM-DP+'s 86 segments (1,008-byte payloads), over 1,020


def _scalar(name: str) -> ec.EllipticCurvePrivateKey:
    return ec.derive_private_key(int(session()["ephemeral_keys"][name], 16), ec.SECP256R1())


def _dppb_key() -> ec.EllipticCurvePrivateKey:
    key = serialization.load_pem_private_key(cert_pem("SK_S_SM_DPpb_ECDSA_NIST.pem"), None)
    assert isinstance(key, ec.EllipticCurvePrivateKey)
    return key


def _dppb_cert() -> x509.Certificate:
    return x509.load_pem_x509_certificate(cert_pem("CERT_S_SM_DPpb_ECDSA_NIST.pem"))


def _ppk() -> bsp.SessionKeys:
    p = session()["profile_protection_keys"]
    return bsp.SessionKeys(s_enc=h(p["ppk_enc"]), s_mac=h(p["ppk_cmac"]),
                           initial_mcv=h(p["initial_mcv"]))


def _rebuild(**overrides: Any) -> bpp.BuiltBpp:
    s = session()
    args: dict[str, Any] = dict(
        upp=data("upp.der"), store_metadata=h(s["bsp_decoded"]["storeMetadataRequest"]),
        transaction_id=h(s["transactionId"]), eid=h(s["eid"]),
        otpk_euicc=h(s["ephemeral_keys"]["otPK.EUICC.ECKA"]),
        dppb_signer=sig.software_signer(_dppb_key()), otsk_dp=_scalar("otSK.DP.ECKA"),
        host_id=bytes.fromhex(s["kdf"]["host_id"]), ppk=_ppk(), upp_segment_payload=1008,
        max_segment_length=PYSIM_SEGMENT)
    args.update(overrides)
    return bpp.build_bpp(**args)


def _open(der: bytes, **overrides: Any) -> bpp.OpenedBpp:
    args: dict[str, Any] = dict(otsk_euicc=_scalar("otSK.EUICC.ECKA"), eid=h(session()["eid"]),
                                dppb_public_key=_dppb_cert(),
                                transaction_id=h(session()["transactionId"]),
                                max_segment_length=PYSIM_SEGMENT)
    args.update(overrides)
    return bpp.open_bpp(der, **args)


def _smdp_sign_span(der: bytes) -> slice:
    start = der.index(b"\x5f\x37\x40")
    return slice(start, start + 67)


def test_recorded_bpp_rebuilt_byte_exact_except_its_random_signature() -> None:
    built = _rebuild()
    recorded = data("bpp.der")
    span = _smdp_sign_span(recorded)
    assert len(built.der) == len(recorded)
    assert built.der[:span.start] == recorded[:span.start]
    assert built.der[span.stop:] == recorded[span.stop:]
    assert built.otpk_dp == h(session()["ephemeral_keys"]["otPK.DP.ECKA"])
    # ours verifies on the eUICC side, and so does the recorded one
    assert _open(built.der).upp == data("upp.der")


def test_recorded_bpp_opens_to_the_upp() -> None:
    opened = _open(data("bpp.der"))
    assert opened.upp == data("upp.der")
    assert opened.transaction_id == h(session()["transactionId"])
    assert opened.host_id == b"mahlzeit"
    assert opened.configure_isdp == h(session()["bsp_decoded"]["configureISDPRequest"])
    assert opened.store_metadata == h(session()["bsp_decoded"]["storeMetadataRequest"])
    assert opened.replaced_keys
    assert opened.segment_counts == {"firstSequenceOf87": 1, "sequenceOf88": 1,
                                     "secondSequenceOf87": 1, "sequenceOf86": 13}
    assert "upp=<12284 bytes>" in repr(opened)


def test_recorded_bpp_segments_exceed_the_limit_and_are_refused_by_default() -> None:
    with pytest.raises(BppError, match="1036 bytes, more than 1020") as info:
        _open(data("bpp.der"), max_segment_length=bpp.MAX_SEGMENT_LENGTH)
    assert (info.value.field, info.value.reason) == ("sequenceOf86[0]", "scp03tStructureError")


def test_default_build_keeps_every_segment_within_1020_bytes() -> None:
    built = _rebuild(upp_segment_payload=None, max_segment_length=bpp.MAX_SEGMENT_LENGTH,
                     otsk_dp=None, host_id=bpp.DEFAULT_HOST_ID)
    value = schema.decode("BoundProfilePackage", built.der)
    for name in ("firstSequenceOf87", "sequenceOf88", "secondSequenceOf87", "sequenceOf86"):
        for segment in value[name]:
            # the whole TLV: tag, length field, value (payload or ciphertext, and the C-MAC)
            length_field = 1 if len(segment) < 0x80 else 2 if len(segment) < 0x100 else 3
            assert 1 + length_field + len(segment) <= bpp.MAX_SEGMENT_LENGTH
    assert max(len(s) for s in value["sequenceOf86"]) == 1016  # 1,007 + padding + MAC
    assert _open(built.der, max_segment_length=bpp.MAX_SEGMENT_LENGTH).upp == data("upp.der")
    assert bpp.max_encrypted_payload() == 1007
    assert bpp.max_mac_only_payload() == 1008


def test_build_refuses_segments_over_the_limit() -> None:
    with pytest.raises(BppError, match="over 1020") as info:
        _rebuild(max_segment_length=bpp.MAX_SEGMENT_LENGTH)
    assert info.value.field == "sequenceOf86"


def test_without_ppk_the_session_keys_protect_the_profile() -> None:
    built = _rebuild(ppk=None, upp_segment_payload=None,
                     max_segment_length=bpp.MAX_SEGMENT_LENGTH)
    opened = _open(built.der, max_segment_length=bpp.MAX_SEGMENT_LENGTH)
    assert opened.upp == data("upp.der") and not opened.replaced_keys
    assert "secondSequenceOf87" not in opened.segment_counts


def _tamper(der: bytes, offset: int) -> bytes:
    out = bytearray(der)
    out[offset] ^= 0x01
    return bytes(out)


def _segment_offsets() -> dict[str, int]:
    der = data("bpp.der")
    value = schema.decode("BoundProfilePackage", der)
    return {name: der.index(bytes(value[name][0])) + 20
            for name in ("firstSequenceOf87", "sequenceOf88", "secondSequenceOf87",
                         "sequenceOf86")}


@pytest.mark.parametrize(("part", "field"), [
    ("firstSequenceOf87", "firstSequenceOf87[0]"),
    ("sequenceOf88", "sequenceOf88[0]"),
    ("secondSequenceOf87", "secondSequenceOf87[0]"),
    ("sequenceOf86", "sequenceOf86[0]"),
])
def test_tampered_segment_is_a_security_error(part: str, field: str) -> None:
    with pytest.raises(BppError) as info:
        _open(_tamper(data("bpp.der"), _segment_offsets()[part]))
    assert (info.value.field, info.value.reason) == (field, "scp03tSecurityError")


def test_tampered_smdp_sign_or_isc_is_an_invalid_signature() -> None:
    der = data("bpp.der")
    span = _smdp_sign_span(der)
    for offset in (span.start + 10, der.index(b"mahlzeit"), der.index(b"\x5f\x49\x41") + 20):
        with pytest.raises(BppError) as info:
            _open(_tamper(der, offset))
        assert info.value.reason == "invalidSignature", offset
    # another DPpb key
    with pytest.raises(BppError) as info:
        _open(der, dppb_public_key=ec.generate_private_key(ec.SECP256R1()).public_key())
    assert (info.value.field, info.value.reason) == ("initialiseSecureChannelRequest.smdpSign",
                                                     "invalidSignature")


def test_other_transaction_crt_or_operation_is_refused() -> None:
    with pytest.raises(BppError) as info:
        _open(data("bpp.der"), transaction_id=bytes(16))
    assert info.value.reason == "invalidTransactionId"
    der = data("bpp.der")
    with pytest.raises(BppError) as info:  # keyType '88' -> '89'
        _open(_tamper(der, der.index(bytes.fromhex("800188")) + 2))
    assert info.value.reason == "unsupportedCrtValues"
    with pytest.raises(BppError) as info:  # remoteOpId 1 -> 0
        _open(_tamper(der, der.index(bytes.fromhex("820101")) + 2))
    assert info.value.reason == "unsupportedRemoteOperationType"


def test_wrong_euicc_key_or_eid_fails_the_first_mac() -> None:
    with pytest.raises(BppError) as info:
        _open(data("bpp.der"), eid=bytes(16))
    assert (info.value.field, info.value.reason) == ("firstSequenceOf87[0]",
                                                     "scp03tSecurityError")


@pytest.mark.parametrize("cut", [0, 3, 100, 200, 13106])
def test_truncated_or_reordered_bpp_is_a_structure_error(cut: int) -> None:
    with pytest.raises(BppError):
        _open(data("bpp.der")[:cut])
    der = data("bpp.der")
    with pytest.raises(BppError, match="BF36"):
        _open(der + b"\x00")


@settings(max_examples=12, deadline=None)
@given(upp=st.binary(min_size=1, max_size=5000), tid=st.binary(min_size=1, max_size=16),
       eid=st.binary(min_size=16, max_size=16), host_id=st.binary(min_size=1, max_size=16),
       with_ppk=st.booleans())
def test_round_trip_with_random_keys_and_upps(upp: bytes, tid: bytes, eid: bytes,
                                              host_id: bytes, with_ppk: bool) -> None:
    euicc_key = ec.generate_private_key(ec.SECP256R1())
    dppb = ec.generate_private_key(ec.SECP256R1())
    otpk_euicc = euicc_key.public_key().public_bytes(serialization.Encoding.X962,
                                                     serialization.PublicFormat.UncompressedPoint)
    metadata = schema.encode("StoreMetadataRequest", {
        "iccid": bytes(10), "serviceProviderName": "simsmith", "profileName": "random"})
    ppk = bsp.SessionKeys(s_enc=eid, s_mac=eid[::-1], initial_mcv=bytes(16)) if with_ppk else None
    built = bpp.build_bpp(upp=upp, store_metadata=metadata, transaction_id=tid, eid=eid,
                          otpk_euicc=otpk_euicc, dppb_signer=sig.software_signer(dppb),
                          host_id=host_id, ppk=ppk)
    opened = bpp.open_bpp(built.der, otsk_euicc=euicc_key, eid=eid,
                          dppb_public_key=dppb.public_key(), transaction_id=tid)
    assert opened.upp == upp
    assert opened.store_metadata == metadata
    assert opened.replaced_keys == with_ppk
