"""Each SIM's SQN kept in the store as an AuC keeps it (3GPP TS 33.102 §6.3, Annex C): reserved
atomically by concurrent callers, IND rotating per vector, a first SQN above the time-based SEQ
used before, AUTS resynchronisation stored and audited; checked against the card side (the
virtual UICC's AKA, cards.virtual.aka) and through the real stack (pcscd + vpcd). Runs on SQLite
and PostgreSQL (the `engine` fixture)."""

from __future__ import annotations

import json
import threading
from typing import Any

import pytest
from sqlalchemy import Engine, inspect, select, text
from sqlmodel import col

from cards.pcsc import PcscTransport
from cards.virtual.aka import CardAka, SyncFailure
from cards.virtual.card import VirtualUicc
from cards.virtual.milenage_card import Milenage as CardMilenage
from hsm_sim.errors import AuthenticationFailure
from hsm_sim.milenage import Milenage
from hsm_sim.soft import SoftHsm
from simcore import audit, db, inventory, keys, sqn_store
from simcore.db import read_session
from simcore.errors import InvalidInput
from simcore.models import AuditEvent
from simcore.personalisation import program_sim, verify_sim
from tests.cards.conftest import Insert
from tests.helpers.hsm import clear
from tests.wiring.conftest import seed

M = 1 << 5  # IND values


class Card:
    """The card side: the virtual UICC's AKA (per-IND SEQ array, Δ, AUTS) with the SIM's keys."""

    def __init__(self, hsm: SoftHsm, k: keys.SimKeys) -> None:
        self.m = CardMilenage(clear(hsm, k.ki), clear(hsm, k.opc))
        self.aka = CardAka()

    def accepts(self, v: Any) -> bool:
        try:
            self.aka.authenticate(self.m, v.rand, v.autn)
        except SyncFailure:
            return False
        return True

    def auts(self, v: Any) -> tuple[bytes, bytes]:
        with pytest.raises(SyncFailure) as e:
            self.aka.authenticate(self.m, v.rand, v.autn)
        return v.rand, e.value.auts


def events(engine: Engine, action: str) -> list[dict[str, Any]]:
    with read_session(engine) as s:
        rows = s.execute(select(AuditEvent).where(col(AuditEvent.action) == action)
                         .order_by(col(AuditEvent.seq))).scalars().all()
    return [json.loads(e.details) for e in rows]


def test_first_sqn_is_above_the_time_based_seq_and_ind_rotates(engine: Engine,
                                                               hsm: SoftHsm) -> None:
    iccid = seed(engine, hsm, 1)[0]
    k = keys.load_keys(engine, iccid)
    assert sqn_store.sqn_state(engine, iccid) is None
    before = sqn_store.time_seq()
    pairs = sqn_store.issue_vectors(engine, hsm, k, count=3)
    after = sqn_store.time_seq()
    seqs, inds = [s >> 5 for s, _ in pairs], [s % M for s, _ in pairs]
    assert before + 1 <= seqs[0] <= after + 1 and seqs == [seqs[0], seqs[0] + 1, seqs[0] + 2]
    assert inds == [0, 1, 2]
    m = Milenage(clear(hsm, k.ki), clear(hsm, k.opc))
    for sqn, v in pairs:  # the AUTN carries exactly that SQN
        assert v == m.vector(v.rand, sqn, b"\x80\x00")
    state = sqn_store.sqn_state(engine, iccid)
    assert state is not None and (state.seq, state.ind) == (seqs[-1], 2)
    assert state.sqn == pairs[-1][0]
    # the next call goes on from the store, not from the clock; IND wraps mod 32
    more = [s for s, _ in sqn_store.issue_vectors(engine, hsm, k, count=31)]
    assert [s >> 5 for s in more] == list(range(seqs[-1] + 1, seqs[-1] + 32))
    assert [s % M for s in more] == [(3 + i) % M for i in range(31)]
    assert len(sqn_store.fresh_vectors(engine, hsm, k)) == 1
    # a card that saw the old time-based vectors (same second even) accepts the stored ones
    card = Card(hsm, k)
    old = m.vector(bytes(16), (before << 5) | 17, b"\x80\x00")
    assert card.accepts(old)
    assert all(card.accepts(v) for v in sqn_store.fresh_vectors(engine, hsm, k, count=3))


def test_vectors_used_out_of_order_pass_the_per_ind_check(engine: Engine, hsm: SoftHsm) -> None:
    iccid = seed(engine, hsm, 1)[0]
    k = keys.load_keys(engine, iccid)
    card = Card(hsm, k)
    vs = sqn_store.fresh_vectors(engine, hsm, k, count=M)
    assert all(card.accepts(v) for v in reversed(vs))  # 32 INDs: each slot sees one SEQ
    assert not card.accepts(vs[0])  # replay refused


def test_concurrent_callers_never_share_an_sqn(engine: Engine, hsm: SoftHsm) -> None:
    iccid = seed(engine, hsm, 1)[0]
    k = keys.load_keys(engine, iccid)
    threads, per_thread = 16, 10
    got: dict[int, list[int]] = {}
    errors: list[BaseException] = []
    start = threading.Barrier(threads)

    def caller(n: int) -> None:
        try:
            start.wait()
            mine: list[int] = []
            if n % 2:  # odd threads take two at a time
                for _ in range(per_thread // 2):
                    mine += [s for s, _ in sqn_store.issue_vectors(engine, hsm, k, count=2)]
            else:
                for _ in range(per_thread):
                    mine += [s for s, _ in sqn_store.issue_vectors(engine, hsm, k)]
            got[n] = mine
        except BaseException as e:  # pragma: no cover - reported below
            errors.append(e)

    workers = [threading.Thread(target=caller, args=(n,)) for n in range(threads)]
    for w in workers:
        w.start()
    for w in workers:
        w.join(120)
    assert not errors, errors
    everything = [s for mine in got.values() for s in mine]
    assert len(everything) == len(set(everything)) == threads * per_thread
    seqs = sorted(s >> 5 for s in everything)
    assert seqs == list(range(seqs[0], seqs[0] + threads * per_thread))  # no gap, no repeat
    by_seq = {s >> 5: s % M for s in everything}
    # IND follows the issue order: SEQs of one IND are 32 apart and increase
    assert all(by_seq[s] == (by_seq[seqs[0]] + s - seqs[0]) % M for s in seqs)
    for mine in got.values():  # each caller's SQNs increase
        assert [s >> 5 for s in mine] == sorted(s >> 5 for s in mine)
    state = sqn_store.sqn_state(engine, iccid)
    assert state is not None and state.seq == seqs[-1] and state.ind == by_seq[seqs[-1]]


def test_resync_stores_seq_ms_and_the_next_vectors_pass(engine: Engine, hsm: SoftHsm) -> None:
    iccid = seed(engine, hsm, 1)[0]
    k = keys.load_keys(engine, iccid)
    card = Card(hsm, k)
    v = sqn_store.fresh_vectors(engine, hsm, k)[0]
    assert card.accepts(v)
    # an HSS has used the card meanwhile: its SQN is far ahead of the store's
    hss_seq = sqn_store.time_seq() + 100_000
    card.aka.seq = [hss_seq - 1] * M  # every IND slot above the store's SEQ, the newest at 7
    card.aka.seq[7] = hss_seq
    stale = sqn_store.fresh_vectors(engine, hsm, k)[0]
    rand, auts = card.auts(stale)
    before = sqn_store.sqn_state(engine, iccid)
    assert before is not None
    resynced = sqn_store.resync_vector(engine, hsm, k, rand, auts, actor="ops")
    state = sqn_store.sqn_state(engine, iccid)
    assert state is not None and state.seq == hss_seq + 1  # SEQ_HE := SEQ_MS, then the next
    assert card.accepts(resynced)
    assert all(card.accepts(x) for x in sqn_store.fresh_vectors(engine, hsm, k, count=3))
    state_now = sqn_store.sqn_state(engine, iccid)
    (ev,) = events(engine, "keys.sqn_resync")
    assert ev == {"seq_ms": hss_seq, "ind_ms": 7, "seq_he_before": before.seq,
                  "seq_he": hss_seq + 1, "ind": (before.ind + 1) % M}
    audit.verify(engine)
    # a forged AUTS is refused by the HSM: nothing stored, nothing audited
    with pytest.raises(AuthenticationFailure):
        sqn_store.resync_vector(engine, hsm, k, rand, bytes(14), actor="ops")
    assert sqn_store.sqn_state(engine, iccid) == state_now
    assert len(events(engine, "keys.sqn_resync")) == 1


def test_resync_keeps_a_store_ahead_within_delta(engine: Engine, hsm: SoftHsm) -> None:
    """A card whose newest SEQ is below the store's (its vectors were used out of order) keeps
    the store's SEQ: SQNs issued to other callers stay unique."""
    iccid = seed(engine, hsm, 1)[0]
    k = keys.load_keys(engine, iccid)
    card = Card(hsm, k)
    vs = sqn_store.fresh_vectors(engine, hsm, k, count=M + 1)  # IND of the first and last is equal
    assert card.accepts(vs[-1])
    rand, auts = card.auts(vs[0])  # same IND, lower SEQ: the card refuses it
    top = sqn_store.sqn_state(engine, iccid)
    assert top is not None
    again = sqn_store.resync_vector(engine, hsm, k, rand, auts, actor="ops")
    state = sqn_store.sqn_state(engine, iccid)
    assert state is not None and state.seq == top.seq + 1
    assert card.accepts(again)


def test_resync_resets_a_store_beyond_the_cards_window(engine: Engine, hsm: SoftHsm) -> None:
    """Δ (C.2.1): a store more than 2^28 SEQs ahead of the card (e.g. an SQN chosen by hand)
    would be refused forever; the resync takes the card's SEQ (C.3.4)."""
    iccid = seed(engine, hsm, 1)[0]
    k = keys.load_keys(engine, iccid)
    card = Card(hsm, k)
    far = sqn_store.fresh_vectors(engine, hsm, k, sqn=(sqn_store.DELTA + 10) << 5)[0]
    state = sqn_store.sqn_state(engine, iccid)
    assert state is not None and state.seq == sqn_store.DELTA + 10  # explicit SQNs are recorded
    rand, auts = card.auts(far)  # a new card has seen SEQ 0: a jump beyond Δ
    v = sqn_store.resync_vector(engine, hsm, k, rand, auts, actor="ops")
    state = sqn_store.sqn_state(engine, iccid)
    assert state is not None and state.seq == 1 and card.accepts(v)


def test_explicit_sqns_raise_the_store_never_lower_it(engine: Engine, hsm: SoftHsm) -> None:
    iccid = seed(engine, hsm, 1)[0]
    k = keys.load_keys(engine, iccid)
    rand = bytes(range(16))
    v1, v2 = sqn_store.fresh_vectors(engine, hsm, k, count=2, sqn=0x20, rand=rand)
    m = Milenage(clear(hsm, k.ki), clear(hsm, k.opc))
    assert v1 == m.vector(rand, 0x20, b"\x80\x00") and v2 == m.vector(rand, 0x40, b"\x80\x00")
    state = sqn_store.sqn_state(engine, iccid)
    # a SIM not seen before keeps the time-based floor: SEQ 2 is below it
    assert state is not None and abs(state.seq - sqn_store.time_seq()) <= 2
    high = (state.seq + 1000) << 5 | 9
    sqn_store.fresh_vectors(engine, hsm, k, sqn=high)
    after = sqn_store.sqn_state(engine, iccid)
    assert after is not None and after.seq == state.seq + 1000 and after.ind == state.ind
    sqn_store.fresh_vectors(engine, hsm, k, sqn=0x20)
    lower = sqn_store.sqn_state(engine, iccid)
    assert lower is not None and (lower.seq, lower.ind) == (after.seq, after.ind)
    (nxt, _), = sqn_store.issue_vectors(engine, hsm, k)
    assert nxt >> 5 == after.seq + 1
    with pytest.raises(InvalidInput, match="48 bits"):
        sqn_store.fresh_vectors(engine, hsm, k, sqn=(1 << 48) - 1, count=2)


def test_seq_space_exhausted_is_refused(engine: Engine, hsm: SoftHsm) -> None:
    iccid = seed(engine, hsm, 1)[0]
    k = keys.load_keys(engine, iccid)
    sqn_store.fresh_vectors(engine, hsm, k, sqn=sqn_store.SEQ_MAX << 5)
    with pytest.raises(sqn_store.SqnExhausted, match="used up"):
        sqn_store.fresh_vectors(engine, hsm, k)
    state = sqn_store.sqn_state(engine, iccid)
    assert state is not None and state.seq == sqn_store.SEQ_MAX  # rolled back


@pytest.mark.slow
def test_upgrade_from_the_previous_heads_with_sims(empty_url: str, hsm: SoftHsm) -> None:
    eng = db.make_engine(empty_url)
    for head in db.head_revisions() - {"0600"}:
        db.upgrade(eng, head)
    assert "sim_sqn" not in inspect(eng).get_table_names()
    with eng.begin() as c:
        c.execute(text("INSERT INTO sim (iccid, kind, state, version, created_at, updated_at) "
                       "VALUES ('8988211000000000011', 'physical', 'in_stock', 1, "
                       "CURRENT_TIMESTAMP, CURRENT_TIMESTAMP)"))
    db.upgrade(eng)
    db.check_schema(eng)
    assert "sim_sqn" in inspect(eng).get_table_names()
    assert inventory.get_sim(eng, "8988211000000000011").state == "in_stock"
    iccid = seed(eng, hsm, 1)[0]
    k = keys.load_keys(eng, iccid)
    assert sqn_store.fresh_vectors(eng, hsm, k) and sqn_store.sqn_state(eng, iccid) is not None
    db.downgrade(eng, "0001")
    assert "sim_sqn" not in inspect(eng).get_table_names()
    eng.dispose()


# --- the real stack: pcscd + vpcd + the virtual UICC -------------------------------------------


def test_verify_a_card_an_hss_moved_on(engine: Engine, hsm: SoftHsm, insert: Insert) -> None:
    """Program a card, let an HSS use it (its SQN jumps ahead), verify it again: one AUTS, the
    store takes the card's SEQ, and the next verification needs no resync."""
    from tests.helpers.cards import vendor_card

    iccid = seed(engine, hsm, 1)[0]
    card = vendor_card(engine, hsm, iccid)
    _, reader = insert(card)
    with PcscTransport(reader, timeout=2) as t:
        assert program_sim(engine, hsm, t, actor="t", iccid=iccid).status == "programmed"
    assert not events(engine, "keys.sqn_resync")
    hss_seq = sqn_store.time_seq() + 50_000
    card.aka.seq = [hss_seq - 1] * M
    card.aka.seq[3] = hss_seq
    with PcscTransport(reader, timeout=2) as t:
        assert verify_sim(engine, hsm, t, actor="care")["verified"]
        state = sqn_store.sqn_state(engine, iccid)
        assert state is not None and state.seq == hss_seq + 1
        assert verify_sim(engine, hsm, t, actor="care")["verified"]
    (ev,) = events(engine, "keys.sqn_resync")
    assert ev["seq_ms"] == hss_seq and ev["ind_ms"] == 3
    state = sqn_store.sqn_state(engine, iccid)
    assert state is not None and state.seq == hss_seq + 2
    assert max(card.aka.seq) == hss_seq + 2


def test_card_programmed_with_the_time_based_seq_needs_no_resync(
        engine: Engine, hsm: SoftHsm) -> None:
    """A card verified before the store kept SQNs (time-based SEQ, random IND) accepts the first
    stored-SQN vector: simcore.keys' reasoning, on the virtual card's own AKA."""
    iccid = seed(engine, hsm, 1)[0]
    k = keys.load_keys(engine, iccid)
    card = VirtualUicc("sysmoISIM-SJA2", iccid=iccid)
    m = Milenage(clear(hsm, k.ki), clear(hsm, k.opc))
    cm = CardMilenage(clear(hsm, k.ki), clear(hsm, k.opc))
    now = sqn_store.time_seq()
    for ind in range(M):  # the old scheme, all 32 INDs in this very second
        card.aka.authenticate(cm, bytes(16), m.vector(bytes(16), (now << 5) | ind,
                                                     b"\x80\x00").autn)
    v = sqn_store.fresh_vectors(engine, hsm, k)[0]
    card.aka.authenticate(cm, v.rand, v.autn)  # no SyncFailure
