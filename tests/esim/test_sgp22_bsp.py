"""SGP.22 §2.6.4–2.6.6 key agreement, KDF and segment protection (esim.sgp22.bsp) against the
recorded reference session and its known-answer vectors (tests/vectors/sgp22/download)."""

from __future__ import annotations

from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric import ec
from hypothesis import given, settings
from hypothesis import strategies as st

from esim.sgp22 import bsp
from esim.sgp22.errors import KeyAgreementError, SegmentError
from tests.esim.sgp22_vectors import h, kdf_vectors, segments, session


def _private(scalar_hex: str) -> ec.EllipticCurvePrivateKey:
    return ec.derive_private_key(int(scalar_hex, 16), ec.SECP256R1())


@pytest.mark.parametrize("vector", kdf_vectors()["kdf_vectors"], ids=lambda v: v["name"])
def test_kdf_vectors(vector: dict[str, Any]) -> None:
    assert bsp.shared_info(h(vector["host_id"]), h(vector["eid"])) == h(vector["shared_info"])
    keys = bsp.derive_session_keys(h(vector["shared_secret"]), h(vector["host_id"]),
                                   h(vector["eid"]))
    assert keys.initial_mcv == h(vector["initial_mcv"])
    assert keys.s_enc == h(vector["s_enc"])
    assert keys.s_mac == h(vector["s_mac"])
    assert "<secret>" in repr(keys) and vector["s_enc"] not in repr(keys)


def test_ecdh_vector_both_sides() -> None:
    vector = next(v for v in kdf_vectors()["kdf_vectors"] if "otSK.DP" in v)
    z_dp = bsp.ecka(_private(vector["otSK.DP"]), h(vector["otPK.EUICC"]))
    z_euicc = bsp.ecka(_private(vector["otSK.EUICC"]), h(vector["otPK.DP"]), "otPK.DP.ECKA")
    assert z_dp == z_euicc == h(vector["shared_secret"])


def test_recorded_session_ecka_and_kdf() -> None:
    keys = session()["ephemeral_keys"]
    z = bsp.ecka(_private(keys["otSK.DP.ECKA"]), h(keys["otPK.EUICC.ECKA"]))
    assert z == h(session()["ecka_shared_secret"])
    assert bsp.ecka(_private(keys["otSK.EUICC.ECKA"]), h(keys["otPK.DP.ECKA"])) == z
    kdf = session()["kdf"]
    derived = bsp.derive_session_keys(z, h(kdf["host_id"]), h(kdf["eid"]))
    assert (derived.initial_mcv, derived.s_enc, derived.s_mac) == (
        h(kdf["initial_mcv"]), h(kdf["s_enc"]), h(kdf["s_mac"]))


def test_ecka_refuses_a_point_off_the_curve() -> None:
    point = bytearray(h(session()["ephemeral_keys"]["otPK.EUICC.ECKA"]))
    point[-1] ^= 1
    with pytest.raises(KeyAgreementError, match=r"otPK\.EUICC\.ECKA") as info:
        bsp.ecka(_private(session()["ephemeral_keys"]["otSK.DP.ECKA"]), bytes(point))
    assert info.value.field == "otPK.EUICC.ECKA"
    with pytest.raises(KeyAgreementError):
        bsp.ecka(ec.generate_private_key(ec.SECP256R1()), b"\x04" + bytes(10))


def _channel(cls: type, vector: dict[str, Any]) -> Any:
    keys = bsp.SessionKeys(s_enc=h(vector["s_enc"]), s_mac=h(vector["s_mac"]),
                           initial_mcv=h(vector["mcv_in"]))
    channel = cls(keys)
    channel.block_counter = int(vector["block_counter"]) - 1
    return channel


@pytest.mark.parametrize("vector", kdf_vectors()["bsp_vectors"], ids=lambda v: v["name"])
def test_bsp_vectors_protect_and_verify(vector: dict[str, Any]) -> None:
    tag = int(vector["tag"], 16)
    protector = _channel(bsp.SegmentProtector, vector)
    verifier = _channel(bsp.SegmentVerifier, vector)
    plaintext = h(vector["plaintext"])
    if vector["operation"] == "mac_only":
        tlv = protector.mac_only(tag, plaintext)
        assert verifier.verify_mac_only(tag, tlv) == plaintext
    else:
        tlv = protector.encrypt_and_mac(tag, plaintext)
        assert verifier.decrypt_and_verify(tag, tlv) == plaintext
    assert tlv == h(vector["output_tlv"])
    assert protector.mcv == verifier.mcv == h(vector["mcv_out"])


def _segment_keys(segment: dict[str, Any]) -> bsp.SessionKeys:
    return bsp.SessionKeys(s_enc=h(segment["s_enc"]), s_mac=h(segment["s_mac"]),
                           initial_mcv=h(segment["mcv_in"]))


def test_every_recorded_segment_is_reproduced_and_reversed_in_sequence() -> None:
    """The 16 segments of the recorded BPP, in order through one protector and one verifier,
    switching to the PPK (ReplaceSessionKeys) before the first 86 segment."""
    recorded = segments()["segments"]
    first = _segment_keys(recorded[0])
    protector, verifier = bsp.SegmentProtector(first), bsp.SegmentVerifier(first)
    for segment in recorded:
        tag = int(segment["tag"], 16)
        if tag == bsp.TAG_PROFILE_86 and int(segment["index"]) == 3:
            ppk = _segment_keys(segment)
            protector.replace_keys(ppk)
            verifier.replace_keys(ppk)
        plaintext = h(segment["plaintext"])
        assert protector.mcv == h(segment["mcv_in"])
        if tag == bsp.TAG_MAC_ONLY_88:
            tlv = protector.mac_only(tag, plaintext)
            assert verifier.verify_mac_only(tag, tlv) == plaintext
        else:
            tlv = protector.encrypt_and_mac(tag, plaintext)
            assert verifier.decrypt_and_verify(tag, tlv) == plaintext
        assert tlv == h(segment["tlv"]), f"segment {segment['index']}"
        assert protector.block_counter == int(segment["block_counter"])
        assert protector.mcv == verifier.mcv == h(segment["mcv_out"])


def _first_segment() -> tuple[bsp.SessionKeys, bytes]:
    segment = segments()["segments"][0]
    return _segment_keys(segment), h(segment["tlv"])


@pytest.mark.parametrize("position", [0, 1, 2, 10, 17, 25])
def test_tampered_segment_is_refused(position: int) -> None:
    keys, tlv = _first_segment()
    tampered = bytearray(tlv)
    tampered[position] ^= 0x01
    verifier = bsp.SegmentVerifier(keys)
    with pytest.raises(SegmentError) as info:
        verifier.decrypt_and_verify(0x87, bytes(tampered), "firstSequenceOf87[0]")
    assert info.value.where == "firstSequenceOf87[0]"
    assert info.value.reason in ("security", "structure")
    # a refused segment does not move the channel on
    assert verifier.mcv == keys.initial_mcv and verifier.block_counter == 0


def test_wrong_keys_fail_the_mac_and_wrong_tag_is_structural() -> None:
    keys, tlv = _first_segment()
    wrong = bsp.SessionKeys(s_enc=keys.s_enc, s_mac=bytes(16), initial_mcv=keys.initial_mcv)
    with pytest.raises(SegmentError, match="C-MAC") as info:
        bsp.SegmentVerifier(wrong).decrypt_and_verify(0x87, tlv)
    assert info.value.reason == "security"
    with pytest.raises(SegmentError, match="tag 87 where 86") as info:
        bsp.SegmentVerifier(keys).decrypt_and_verify(0x86, tlv)
    assert info.value.reason == "structure"
    for short in (b"", b"\x87", b"\x87\x05abc", b"\x87\x82\x00", b"\x87\x03abc"):
        with pytest.raises(SegmentError):
            bsp.SegmentVerifier(keys).decrypt_and_verify(0x87, short)


def test_bad_padding_with_a_valid_mac_is_structural() -> None:
    keys, _ = _first_segment()
    protector = bsp.SegmentProtector(keys)
    # a MAC-only segment read as an encrypted one: MAC fine, ciphertext garbage
    tlv = protector.mac_only(0x87, bytes(16))
    with pytest.raises(SegmentError, match="padding") as info:
        bsp.SegmentVerifier(keys).decrypt_and_verify(0x87, tlv)
    assert info.value.reason == "structure"


@settings(max_examples=40, deadline=None)
@given(key=st.binary(min_size=48, max_size=48),
       payloads=st.lists(st.tuples(st.sampled_from([0x86, 0x87, 0x88]),
                                   st.binary(max_size=600)), min_size=1, max_size=6))
def test_round_trip_with_random_keys(key: bytes, payloads: list[tuple[int, bytes]]) -> None:
    keys = bsp.SessionKeys(initial_mcv=key[:16], s_enc=key[16:32], s_mac=key[32:])
    protector, verifier = bsp.SegmentProtector(keys), bsp.SegmentVerifier(keys)
    for tag, payload in payloads:
        if tag == 0x88:
            assert verifier.verify_mac_only(tag, protector.mac_only(tag, payload)) == payload
        else:
            tlv = protector.encrypt_and_mac(tag, payload)
            _, _, value = bsp.split_tlv(tlv, "segment")
            assert len(value) == (len(payload) // 16 + 1) * 16 + bsp.MAC_LENGTH
            assert verifier.decrypt_and_verify(tag, tlv) == payload
    assert protector.mcv == verifier.mcv


def test_kdf_input_checks() -> None:
    with pytest.raises(ValueError, match="hostId"):
        bsp.shared_info(b"", bytes(16))
    with pytest.raises(ValueError, match="EID"):
        bsp.shared_info(b"h", bytes(15))
    with pytest.raises(ValueError, match="AES-128"):
        bsp.derive_session_keys(bytes(32), b"h", bytes(16), key_length=32)
