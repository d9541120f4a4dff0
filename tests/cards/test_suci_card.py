"""SUCI on the cards (issue 20 item 3), in-process on the virtual cards: `card program` writes
DF.5GS (TS 31.102 §4.4.11.8 EF.SUCI_Calc_Info, §4.4.11.11 EF.Routing_Indicator), DF.SAIP and
EF.UST 124/125 keeping the card's other services; `card read` decodes them; the virtual SJA5
answers GET IDENTITY (§7.5) with a SUCI that the TS 33.501 Annex C.4 home-network keys
de-conceal to the card's IMSI; a phone's SUCI from the read files de-conceals too."""

from __future__ import annotations

import pytest

from cards.apdu import Apdu
from cards.commands import Uicc
from cards.drivers.base import USIM_AID
from cards.errors import DriverError
from cards.fs.codecs import decode_bitmap
from cards.personalise import program_card
from cards.profile import SuciFiles
from cards.read import read_card
from cards.status_words import SecurityStatusNotSatisfied, StatusWordError
from cards.virtual.build import FACTORY_UST
from cards.virtual.card import VirtualUicc
from cards.virtual.loopback import LoopbackTransport
from hsm_sim.ecies import HomeNetworkPrivateKey, ProtectionScheme
from simcore.identifiers import Imsi
from simcore.suci import (
    HomeNetworkPublicKey,
    Suci,
    conceal_as_phone,
    msin_from_scheme_input,
    suci_calc_info,
)
from tests.cards.helpers import key_writer, profile, vector
from tests.hsm.vectors import h, load

C4 = {r["set"]: r for r in load("suci/ts33501_annex_c4.txt")}
A, B = C4["C.4.3.1"], C4["C.4.4.1"]
IMSI = "001010000000011"
# Profile B key 27 first, then A key 30, then the null-scheme (TS 31.121 §4.9.4's test file).
CALC_INFO = suci_calc_info([
    HomeNetworkPublicKey(27, ProtectionScheme.PROFILE_B, h(B, "hn_public")),
    HomeNetworkPublicKey(30, ProtectionScheme.PROFILE_A, h(A, "hn_public"))])
PRIVATE = {27: HomeNetworkPrivateKey(ProtectionScheme.PROFILE_B, h(B, "hn_private")),
           30: HomeNetworkPrivateKey(ProtectionScheme.PROFILE_A, h(A, "hn_private"))}


def programmed(card_type: str, suci: SuciFiles) -> tuple[VirtualUicc, LoopbackTransport]:
    card = VirtualUicc(card_type)
    t = LoopbackTransport(card)
    program_card(t, profile(imsi=IMSI, suci=suci), key_writer(), vector())
    return card, t


def identity(t: LoopbackTransport) -> bytes:
    u = Uicc(t)
    u.select_aid(USIM_AID)
    return u.get_identity()


def msin_of(suci: Suci) -> str:
    if suci.scheme is ProtectionScheme.NULL:
        return msin_from_scheme_input(suci.scheme_output)
    return msin_from_scheme_input(PRIVATE[suci.key_id].deconceal(suci.scheme_output))


def test_the_sja5_computes_the_suci_the_home_network_key_deconceals() -> None:
    card, t = programmed("sysmoISIM-SJA5", SuciFiles(CALC_INFO, "17", by_usim=True))
    services = decode_bitmap(bytes(card.node("3F00/7FF0/6F38").data))
    assert set(services) == set(FACTORY_UST) | {125}  # 124 and 125, the others kept
    first, second = Suci.from_bytes(identity(t)), Suci.from_bytes(identity(t))
    # The priority list's first entry: Profile B with key 27, a fresh ephemeral key each time.
    assert (first.scheme, first.key_id, first.routing_indicator) == (ProtectionScheme.PROFILE_B,
                                                                     27, "17")
    assert first.scheme_output != second.scheme_output
    for suci in (first, second):
        assert suci.imsi(msin_of(suci)).digits == IMSI
    info = read_card(t)["suci"]
    assert info["calculated_by"] == "usim" and info["routing_indicator"] == "17"
    assert [(e["scheme"], e["key_id"]) for e in info["calc_info"]] == [(2, 27), (1, 30),
                                                                       (0, None)]
    assert info["usim_calc_info"] == info["calc_info"]
    assert info["calc_info"][1]["public_key"] == A["hn_public"].upper()


def test_null_scheme_answer_is_the_msin_in_the_5gs_mobile_identity_coding() -> None:
    _, t = programmed("sysmoISIM-SJA5", SuciFiles(suci_calc_info([]), "17", by_usim=True))
    # TS 24.501 §9.11.3.4 from octet 4: SUCI/IMSI, MCC 001 MNC 01, RI 17, null-scheme, key 0,
    # MSIN 0000000011 in swapped BCD; TS 31.102 §7.5.2 wraps it in 'A1'.
    assert identity(t).hex().upper() == "0100F11071FF0000" + "0000000011"
    assert t.send(Apdu(0x80, 0x78, 0, 1, le=0)) == (
        bytes.fromhex("A10D" "0100F11071FF0000" "0000000011"), 0x9000)


def test_computed_by_the_phone_from_the_read_files() -> None:
    card, t = programmed("sysmoISIM-SJA2", SuciFiles(CALC_INFO, "0"))
    services = decode_bitmap(bytes(card.node("3F00/7FF0/6F38").data))
    assert 124 in services and 125 not in services
    with pytest.raises(StatusWordError, match="6985"):
        identity(t)  # the USIM does not compute it: 6985
    info = read_card(t)
    assert info["suci"]["calculated_by"] == "me" and info["suci"]["usim_calc_info"] is None
    raw = bytes(card.node("3F00/7FF0/5FC0/4F07").data)
    ri = info["suci"]["routing_indicator"]
    phone = conceal_as_phone(Imsi.parse(info["imsi"], 2), raw, routing_indicator=ri)
    assert (phone.scheme, phone.key_id) == (ProtectionScheme.PROFILE_B, 27)
    assert phone.imsi(msin_of(phone)).digits == IMSI
    only_a = conceal_as_phone(Imsi.parse(IMSI, 2), raw,
                              supported=(ProtectionScheme.PROFILE_A,))
    assert only_a.key_id == 30 and only_a.imsi(msin_of(only_a)).digits == IMSI


def test_switching_back_to_the_phone_clears_service_125() -> None:
    card, t = programmed("sysmoISIM-SJA5", SuciFiles(CALC_INFO, by_usim=True))
    program_card(t, profile(imsi=IMSI, suci=SuciFiles(CALC_INFO)), key_writer(), vector(seq=2))
    assert 125 not in decode_bitmap(bytes(card.node("3F00/7FF0/6F38").data))


def test_the_sja2_does_not_compute_the_suci() -> None:
    with pytest.raises(DriverError, match="does not compute the SUCI"):
        programmed("sysmoISIM-SJA2", SuciFiles(CALC_INFO, by_usim=True))


def test_get_identity_refusals() -> None:
    card, t = programmed("sysmoISIM-SJA5", SuciFiles(CALC_INFO, by_usim=True))
    card.codes[0x01].enabled = True  # the subscriber turned the PIN on
    card.reset()
    with pytest.raises(SecurityStatusNotSatisfied):
        identity(t)  # PIN1 first
    assert t.send(Apdu(0x80, 0x78, 0, 0x02, le=0))[1] == 0x6A86  # the 5G NSWO context
    assert t.send(Apdu(0x00, 0x78, 0, 0x01, le=0))[1] == 0x6E00  # class 80 only


def test_a_blank_card_without_suci_is_left_alone() -> None:
    card = VirtualUicc("sysmoISIM-SJA5")
    t = LoopbackTransport(card)
    program_card(t, profile(imsi=IMSI), key_writer(), vector())
    assert decode_bitmap(bytes(card.node("3F00/7FF0/6F38").data)) == FACTORY_UST
    suci = read_card(t)["suci"]
    assert (suci["calculated_by"], suci["calc_info"], suci["routing_indicator"]) == ("me", [],
                                                                                   None)
