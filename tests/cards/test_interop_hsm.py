"""The virtual card and the HSM's Milenage (hsm_sim, TS 35.206) agree: a card programmed with
K/OPc authenticates vectors the HSM computes, and a batch can tell a finished card."""

from __future__ import annotations

import os

from cards.personalise import personalised_as, program_card, verify_card
from cards.profile import AuthVector
from cards.virtual.card import VirtualUicc
from cards.virtual.loopback import LoopbackTransport
from hsm_sim import milenage
from tests.cards.helpers import KI, OPC, key_writer, profile


def hsm_vector(seq: int) -> AuthVector:
    v = milenage.vector(KI, OPC, os.urandom(16), seq << 5, b"\x80\x00")
    return AuthVector(rand=v.rand, autn=v.autn, res=v.xres, ck=v.ck, ik=v.ik)


def test_program_and_verify_with_hsm_vectors() -> None:
    card = VirtualUicc("sysmoISIM-SJA2")
    t = LoopbackTransport(card)
    assert not personalised_as(t, profile())
    program_card(t, profile(), key_writer(), hsm_vector(1))
    assert personalised_as(t, profile())
    assert not personalised_as(t, profile(imsi="001010000000099"))
    verify_card(t, hsm_vector(2))
