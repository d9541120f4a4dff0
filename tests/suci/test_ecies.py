"""hsm_sim.ecies against TS 33.501 Annex C.4, both ways, and its refusals."""

from __future__ import annotations

import pytest

from hsm_sim import ecies
from hsm_sim.ecies import (
    HomeNetworkPrivateKey,
    MacFailure,
    MalformedSchemeOutput,
    ProtectionScheme,
    conceal,
    deconceal,
)
from hsm_sim.errors import AuthenticationFailure, BadLength
from tests.hsm.vectors import cases, h

C4 = cases("suci/ts33501_annex_c4.txt")
ECIES_SETS = [c for c in C4 if c.values[0]["scheme"] != "0"]


@pytest.mark.parametrize("rec", C4)
def test_conceal_gives_the_annex_scheme_output(rec: dict[str, str]) -> None:
    scheme = ProtectionScheme(int(rec["scheme"]))
    eph = h(rec, "eph_private") if "eph_private" in rec else None
    hn_public = h(rec, "hn_public") if "hn_public" in rec else b""
    out = conceal(scheme, hn_public, h(rec, "scheme_input"), ephemeral_private=eph)
    assert out == h(rec, "scheme_output")


@pytest.mark.parametrize("rec", ECIES_SETS)
def test_deconceal_gives_the_annex_scheme_input(rec: dict[str, str]) -> None:
    key = HomeNetworkPrivateKey(ProtectionScheme(int(rec["scheme"])), h(rec, "hn_private"))
    assert deconceal(key, h(rec, "scheme_output")) == h(rec, "scheme_input")


@pytest.mark.parametrize("rec", ECIES_SETS)
def test_intermediate_values(rec: dict[str, str]) -> None:
    scheme = ProtectionScheme(int(rec["scheme"]))
    hn = HomeNetworkPrivateKey(scheme, h(rec, "hn_private"))
    eph = HomeNetworkPrivateKey(scheme, h(rec, "eph_private"))
    assert eph.public_bytes() == h(rec, "eph_public")
    assert hn.shared_secret(h(rec, "eph_public")) == h(rec, "shared")
    enc_key, icb, mac_key = ecies._keys(h(rec, "shared"), h(rec, "eph_public"))
    assert enc_key == h(rec, "enc_key")
    assert mac_key == h(rec, "mac_key")
    if "icb" in rec:
        assert icb == h(rec, "icb")
    assert ecies._ctr(enc_key, icb, h(rec, "scheme_input")) == h(rec, "ciphertext")
    assert ecies._tag(mac_key, h(rec, "ciphertext")) == h(rec, "mac_tag")


@pytest.mark.parametrize("rec", ECIES_SETS)
def test_public_key_of_the_private_key(rec: dict[str, str]) -> None:
    scheme = ProtectionScheme(int(rec["scheme"]))
    hn = HomeNetworkPrivateKey(scheme, h(rec, "hn_private"))
    want = h(rec, "hn_public_compressed") if scheme is ProtectionScheme.PROFILE_B \
        else h(rec, "hn_public")
    assert hn.public_bytes() == want
    assert ecies.public_key_of(scheme, h(rec, "hn_public")) == want
    assert hn.private_bytes() == h(rec, "hn_private")
    if scheme is ProtectionScheme.PROFILE_B:
        assert hn.public_bytes(compressed=False) == h(rec, "hn_public")


@pytest.mark.parametrize("scheme", [ProtectionScheme.PROFILE_A, ProtectionScheme.PROFILE_B])
def test_fresh_ephemeral_keys_round_trip(scheme: ProtectionScheme) -> None:
    hn = HomeNetworkPrivateKey.generate(scheme)
    a = conceal(scheme, hn.public_bytes(), b"\x00\x01\x20\x80\xf6")
    b = conceal(scheme, hn.public_bytes(), b"\x00\x01\x20\x80\xf6")
    assert a != b  # a new ephemeral key each time: two SUCIs of one SUPI cannot be linked
    assert hn.deconceal(a) == hn.deconceal(b) == b"\x00\x01\x20\x80\xf6"


@pytest.mark.parametrize("rec", ECIES_SETS)
def test_any_altered_octet_is_a_mac_failure_or_a_bad_point(rec: dict[str, str]) -> None:
    key = HomeNetworkPrivateKey(ProtectionScheme(int(rec["scheme"])), h(rec, "hn_private"))
    out = h(rec, "scheme_output")
    n = ecies.ephemeral_key_length(key.scheme)
    for i in range(len(out)):
        bad = bytearray(out)
        bad[i] ^= 0x01
        with pytest.raises((MacFailure, MalformedSchemeOutput)) as e:
            deconceal(key, bytes(bad))
        if i >= n:  # ciphertext or tag: always the MAC
            assert isinstance(e.value, MacFailure)
            assert isinstance(e.value, AuthenticationFailure)
            assert "MAC tag" in str(e.value)


def test_another_key_is_a_mac_failure() -> None:
    rec = ECIES_SETS[0].values[0]
    other = HomeNetworkPrivateKey.generate(ProtectionScheme.PROFILE_A)
    with pytest.raises(MacFailure, match="Profile A: the MAC tag"):
        deconceal(other, h(rec, "scheme_output"))


@pytest.mark.parametrize("scheme,length", [(ProtectionScheme.PROFILE_A, 40),
                                           (ProtectionScheme.PROFILE_B, 41)])
def test_short_scheme_output(scheme: ProtectionScheme, length: int) -> None:
    key = HomeNetworkPrivateKey.generate(scheme)
    with pytest.raises(MalformedSchemeOutput, match=f"{length} octets is too short"):
        deconceal(key, bytes(length))


def test_profile_b_refuses_an_uncompressed_ephemeral_key() -> None:
    rec = next(c.values[0] for c in C4 if c.values[0]["set"] == "C.4.4.1")
    key = HomeNetworkPrivateKey(ProtectionScheme.PROFILE_B, h(rec, "hn_private"))
    eph = HomeNetworkPrivateKey(ProtectionScheme.PROFILE_B, h(rec, "eph_private"))
    out = eph.public_bytes(compressed=False) + h(rec, "ciphertext") + h(rec, "mac_tag")
    with pytest.raises(MalformedSchemeOutput, match="compressed secp256r1 point"):
        deconceal(key, out)


def test_profile_a_refuses_a_low_order_ephemeral_key() -> None:
    key = HomeNetworkPrivateKey.generate(ProtectionScheme.PROFILE_A)
    with pytest.raises(MalformedSchemeOutput, match="low-order"):
        deconceal(key, bytes(32) + b"\x01" + bytes(8))


def test_keys_are_checked() -> None:
    with pytest.raises(BadLength, match="32 octets, not 31"):
        HomeNetworkPrivateKey(ProtectionScheme.PROFILE_A, bytes(31))
    with pytest.raises(ecies.EciesError, match=r"\[1, n-1\]"):
        HomeNetworkPrivateKey(ProtectionScheme.PROFILE_B, bytes(32))
    with pytest.raises(ecies.EciesError, match="null-scheme has no"):
        HomeNetworkPrivateKey(ProtectionScheme.NULL, bytes(32))
    with pytest.raises(BadLength, match="compressed"):
        ecies.public_key_of(ProtectionScheme.PROFILE_B, b"\x05" + bytes(32))
    with pytest.raises(BadLength, match="scheme input is empty"):
        conceal(ProtectionScheme.PROFILE_A, bytes(32), b"")
    assert "hidden" in repr(HomeNetworkPrivateKey.generate(ProtectionScheme.PROFILE_B))


def test_conceal_refuses_bad_home_network_keys() -> None:
    with pytest.raises(BadLength, match="Profile A home-network public key is 32 octets"):
        conceal(ProtectionScheme.PROFILE_A, bytes(31), b"\x01")
    with pytest.raises(ecies.EciesError, match="low-order point"):
        conceal(ProtectionScheme.PROFILE_A, bytes(32), b"\x01")
    with pytest.raises(ecies.EciesError, match="not on secp256r1"):
        conceal(ProtectionScheme.PROFILE_B, b"\x02" + b"\xff" * 32, b"\x01")
