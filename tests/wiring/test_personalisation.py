"""Card personalisation against the inventory, end to end through the real stack (pyscard →
pcscd → vpcd → virtual card): program → read → verify, wrong ADM, a resumable batch on two
readers. The virtual cards are made as their vendor would ship them for the store's records
(factory ICCID and ADM1 from the store)."""

from __future__ import annotations

import json
import threading
import time
from typing import Any

import pytest
from sqlalchemy import Engine, select
from sqlmodel import col

from cards.pcsc import PcscTransport
from cards.read import read_card
from cards.status_words import WrongCode
from cards.virtual.card import VirtualUicc
from cards.virtual.loopback import LoopbackTransport
from esim.build import build_package, get_compiled
from esim.saip import ProfilePackage
from hsm_sim.kcv import kcv
from hsm_sim.soft import SoftHsm
from simcore import audit, inventory, key_writers, keys
from simcore.db import read_session
from simcore.models import AuditEvent
from simcore.personalisation import (
    WrongCard,
    pcsc_batch_io,
    program_sim,
    run_batch,
    verify_sim,
)
from tests.cards.conftest import Insert, PcscEnv
from tests.helpers.cards import vendor_card
from tests.wiring.conftest import seed


def test_program_read_verify(engine: Engine, hsm: SoftHsm, insert: Insert) -> None:
    iccid = seed(engine, hsm, 2)[0]
    _, reader = insert(vendor_card(engine, hsm, iccid))
    with PcscTransport(reader, timeout=2) as t:
        out = program_sim(engine, hsm, t, actor="t", iccid=iccid, reader=reader)
        info = read_card(t)
        checked = verify_sim(engine, hsm, t, actor="t")
        again = program_sim(engine, hsm, t, actor="t", iccid=iccid, reader=reader)
    sim = inventory.get_sim(engine, iccid)
    assert out.status == "programmed" and out.driver == "sysmoISIM-SJA2" and out.apdus <= 70
    assert sim.state == "personalised" and info["imsi"] == sim.imsi and info["iccid"] == iccid
    assert checked["verified"] and checked["iccid"] == iccid
    assert again.status == "skipped"
    with read_session(engine) as s:
        ev = s.execute(select(AuditEvent).where(col(AuditEvent.action) == "sim.personalised")
                       ).scalar_one()
    details = json.loads(ev.details)
    assert details["atr"] == out.atr and details["apdus"] == out.apdus
    assert details["from"] == "blank" and details["driver"] == "sysmoISIM-SJA2"
    audit.verify(engine)


def test_next_from_batch_writes_the_iccid(engine: Engine, hsm: SoftHsm, insert: Insert) -> None:
    iccids = seed(engine, hsm, 2)
    # An SJS1 card whose factory ICCID is no record's: it gets the next blank SIM's identity.
    adm = key_writers.SimKeyWriter(hsm, keys.load_keys(engine, iccids[0])).adm1(iccids[0])
    card = VirtualUicc("sysmoUSIM-SJS1", iccid="8988211000000999998",
                       adm1=adm.reveal().decode())
    _, reader = insert(card)
    with PcscTransport(reader, timeout=2) as t:
        out = program_sim(engine, hsm, t, actor="t", batch="b1", reader=reader)
        assert out.iccid == iccids[0] and read_card(t)["iccid"] == iccids[0]
    assert inventory.get_sim(engine, iccids[0]).state == "personalised"
    assert inventory.get_sim(engine, iccids[1]).state == "blank"


def test_wrong_adm_burns_one_try_and_records_nothing(engine: Engine, hsm: SoftHsm,
                                                     insert: Insert) -> None:
    iccid = seed(engine, hsm, 1)[0]
    card = VirtualUicc("sysmoISIM-SJA2", iccid=iccid, adm1="11111111")
    _, reader = insert(card)
    with PcscTransport(reader, timeout=2) as t, pytest.raises(WrongCode, match="2 tries left"):
        program_sim(engine, hsm, t, actor="t", iccid=iccid)
    assert card.codes[0x0A].tries == 2
    assert inventory.get_sim(engine, iccid).state == "blank"
    # a card holding another batch's SIM is never given a new identity
    seed(engine, hsm, 1, batch="b2")
    with PcscTransport(reader, timeout=2) as t, pytest.raises(WrongCard, match="another batch"):
        program_sim(engine, hsm, t, actor="t", batch="b2")


def test_resumable_batch_on_two_readers(engine: Engine, hsm: SoftHsm, insert: Insert,
                                        pcsc: PcscEnv) -> None:
    iccids = seed(engine, hsm, 3)
    cards = [vendor_card(engine, hsm, i) for i in iccids]
    open_transport, wait_card = pcsc_batch_io()
    # run 1: one card, then the operator stops
    _, r0 = insert(cards[0], slot=0)
    first = run_batch(engine, lambda: hsm, "b1", [r0], actor="t",
                      open_transport=open_transport, wait_card=wait_card, max_cards=1)
    assert first.as_dict()["programmed"] == 1 and first.blank_left == 2
    # run 2 on two readers: the first card (still in reader 0) is recognised and skipped; the
    # other reader programs the two cards left, one after the other
    vcard1, r2 = insert(cards[1], slot=2)
    swaps: list[threading.Thread] = []

    def on_event(kind: str, reader: str, outcome: object) -> None:
        if kind == "remove" and reader == r2 and not swaps:
            vcard1.stop()  # the operator pulls the card and puts the next one in
            swaps.append(threading.Thread(target=insert, args=(cards[2],), kwargs={"slot": 2}))
            swaps[0].start()

    second = run_batch(engine, lambda: hsm, "b1", [r0, r2], actor="t",
                       open_transport=open_transport, wait_card=wait_card, idle_timeout=10,
                       on_event=on_event)
    for th in swaps:
        th.join(10)
    summary = second.as_dict()
    assert (summary["skipped"], summary["programmed"], summary["failed"]) == (1, 2, 0), summary
    assert second.blank_left == 0
    assert {inventory.get_sim(engine, i).state for i in iccids} == {"personalised"}
    assert {c["reader"] for c in summary["cards"] if c["status"] == "programmed"} == {r2}


def test_pkcs11_backend_end_to_end(engine: Engine, p11hsm: Any, insert: Insert) -> None:
    """The same wiring on a SoftHSM2 token: codes as generic secrets, keys patched from the
    token into the package and the card's APDUs, vectors computed in the token."""
    iccid = seed(engine, p11hsm, 1, kind="esim")[0]
    k = keys.load_keys(engine, iccid)
    assert k.ki.backend == "pkcs11" and k.credentials["ADM1"].backend == "pkcs11"
    compiled = get_compiled("usim-isim-milenage")
    der = build_package(compiled, key_writers.package_params(iccid, "001010000000001"),
                        key_writers.package_patcher(p11hsm, k, compiled), verify=True)
    _, algo = ProfilePackage.from_der(der).all("akaParameter")[0].value["algoConfiguration"]
    assert kcv(algo["key"]) == p11hsm.kcv(k.ki) and kcv(algo["opc"]) == p11hsm.kcv(k.opc)
    _, reader = insert(vendor_card(engine, p11hsm, iccid, "sysmoUSIM-SJS1"))
    with PcscTransport(reader, timeout=2) as t:
        out = program_sim(engine, p11hsm, t, actor="t", iccid=iccid, reader=reader)
        assert verify_sim(engine, p11hsm, t, actor="t")["verified"]
    assert out.status == "programmed" and out.driver == "sysmoUSIM-SJS1"


def test_batch_reports_a_failed_card_and_goes_on(engine: Engine, hsm: SoftHsm, insert: Insert
                                                 ) -> None:
    iccids = seed(engine, hsm, 2)
    _, reader = insert(VirtualUicc("sysmoISIM-SJA2", iccid=iccids[0], adm1="11111111"))
    open_transport, wait_card = pcsc_batch_io()
    seen: list[str] = []
    summary = run_batch(engine, lambda: hsm, "b1", [reader], actor="t",
                        open_transport=open_transport, wait_card=wait_card, max_cards=1,
                        on_event=lambda kind, r, o: seen.append(kind))
    [card] = summary.outcomes
    assert card.status == "failed" and "2 tries left" in (card.error or "")
    assert summary.blank_left == 2 and seen[:2] == ["waiting", "card"] and seen[-1] == "done"


@pytest.mark.slow
@pytest.mark.storage
def test_program_counts_every_command_on_the_wire_and_authenticates_once(
        engine: Engine, hsm: SoftHsm) -> None:
    """Issue 14: the APDU count is what the card receives (the batch's ICCID pre-read, GET
    RESPONSE, 6Cxx resends included); the time runs from the caller's start (before the PC/SC
    connect) through the HSM and database work; AUTHENTICATE runs once."""
    iccid = seed(engine, hsm, 1)[0]
    card = vendor_card(engine, hsm, iccid)
    received: list[bytes] = []
    process = card.process

    def on_the_wire(raw: bytes) -> bytes:
        received.append(raw)
        return process(raw)

    card.process = on_the_wire  # type: ignore[method-assign]
    out = program_sim(engine, hsm, LoopbackTransport(card), actor="t", batch="b1",
                      started=time.perf_counter() - 100.0)
    assert out.status == "programmed" and out.apdus == len(received)
    assert any(raw[1] == 0xC0 for raw in received)  # GET RESPONSE
    dir_reads = [raw for raw in received if raw[1:3] == b"\xb2\x01" and raw[3] == 0x04]
    assert len(dir_reads) == 2  # Le 00 -> 6Cxx -> resent
    assert received[0][1] == 0xA4 and received[1][1] == 0xB0  # the ICCID pre-read
    assert sum(1 for raw in received if raw[:2] == b"\x00\x88") == 1  # AUTHENTICATE 3G
    assert sum(1 for raw in received if raw[:2] == b"\xa0\x88") == 1  # RUN GSM ALGORITHM
    assert out.seconds >= 100.0
    (ev,) = audit.query(engine, subject_id=iccid, action="sim.personalised")
    assert json.loads(ev.details)["apdus"] == len(received)
