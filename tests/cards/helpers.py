"""Test helpers: profiles, key writers and network-side vectors (TS 33.102 §6.3.2) for the
virtual cards. The vector is built with the card's own Milenage, which is itself checked
against TS 35.208 in test_milenage_card.py."""

from __future__ import annotations

import os

from cards.profile import AuthVector, CardKeys, CardProfile, StaticKeyWriter
from cards.secret import Secret, adm_from_text
from cards.virtual.milenage_card import Milenage

KI = bytes.fromhex("465b5ce8b199b49faa5f0a2ee238a6bc")
OPC = bytes.fromhex("cd63cb71954a9f4e48a5994e37a02baf")
ADM = "12345678"


def profile(iccid: str = "8988211000000000011", imsi: str = "001010000000011",
            **kw: object) -> CardProfile:
    base: dict[str, object] = {"msisdn": "+491760000443", "spn": "simsmith"}
    base.update(kw)
    return CardProfile(iccid=iccid, imsi=imsi, **base)  # type: ignore[arg-type]


def key_writer(adm: str = ADM, ki: bytes = KI, opc: bytes = OPC) -> StaticKeyWriter:
    return StaticKeyWriter(adm_from_text(adm), CardKeys(Secret(ki, "Ki"), Secret(opc, "OPc")))


def vector(seq: int = 1, ind: int = 0, ki: bytes = KI, opc: bytes = OPC,
           amf: bytes = b"\x80\x00") -> AuthVector:
    m = Milenage(ki, opc)
    rand = os.urandom(16)
    sqn = ((seq << 5) | ind).to_bytes(6, "big")
    mac_a, _ = m.f1(rand, sqn, amf)
    res, ck, ik, ak, _ = m.f2345(rand)
    autn = bytes(a ^ b for a, b in zip(sqn, ak, strict=True)) + amf + mac_a
    return AuthVector(rand, autn, res, ck, ik)
