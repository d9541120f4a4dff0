"""Inventory services on SQLite and PostgreSQL."""

from __future__ import annotations

import threading
from datetime import timedelta

import pytest
from sqlalchemy import Engine, select
from sqlmodel import col

from simcore import audit, db, inventory, lifecycle, msisdn_pool, ranges
from simcore.db import read_session
from simcore.errors import Conflict, InvalidInput, NotFound
from simcore.identifiers import Iccid
from simcore.lifecycle import TransitionNotAllowed
from simcore.models import FreeImsi, Sim, utcnow

from .helpers import ICCID_FIRST, IMSI_FIRST, seed

pytestmark = pytest.mark.storage


def test_generate_takes_next_free_identifiers(engine: Engine) -> None:
    r1 = seed(engine, 5)
    r2 = seed(engine, 5, batch="b2")
    assert r1.first_iccid == ICCID_FIRST
    assert Iccid.parse(r2.first_iccid).body == str(int(Iccid.parse(r1.last_iccid).body) + 1)
    sims = inventory.list_sims(engine, limit=100)
    assert len(sims) == 10 and all(s.state == "in_stock" for s in sims)
    assert [s.imsi for s in sims][:2] == [IMSI_FIRST, "001010000000001"]
    assert len({s.imsi for s in sims}) == 10
    assert inventory.list_sims(engine, batch="b2")[0].iccid == r2.first_iccid
    with pytest.raises(Conflict, match="batch 'b2' already exists"):
        seed(engine, 1, batch="b2")


def test_generate_skips_identifiers_already_in_use(engine: Engine) -> None:
    seed(engine, 1)
    # Someone (e.g. a vendor import) took the next ICCID and IMSI.
    nxt = Iccid.from_body(str(int(ICCID_FIRST[:-1]) + 1)).digits
    with db.transaction(engine) as s:
        s.add(Sim(iccid=nxt, imsi="001010000000001", state="in_stock"))
    r = seed(engine, 2, batch="b2")
    assert r.first_iccid != nxt
    with read_session(engine) as s:
        imsis = sorted(x for x in s.execute(select(col(Sim.imsi))).scalars() if x)
    assert imsis == ["001010000000000", "001010000000001", "001010000000002",
                     "001010000000003"]


def test_range_overlap_and_exhaustion(engine: Engine) -> None:
    ranges.add_range(engine, "imsi", "001010000000000", "001010000000009", name="a", actor="t")
    with pytest.raises(ranges.RangeOverlap, match="overlaps range 'a'"):
        ranges.add_range(engine, "imsi", "001010000000005", "001010000000020", name="b",
                         actor="t")
    with pytest.raises(Conflict, match="already taken"):
        ranges.add_range(engine, "imsi", "001010000000100", "001010000000120", name="a",
                         actor="t")
    first = Iccid.from_body("8988280000000000000").digits
    last = Iccid.from_body("8988280000000000004").digits
    ranges.add_range(engine, "iccid", first, last, name="i", actor="t")
    with pytest.raises(ranges.RangeExhausted, match="5 free members left, 6 asked for"):
        inventory.generate_sims(engine, 6, batch="x", actor="t")
    # Nothing was written by the failed generation.
    assert inventory.list_sims(engine) == []
    assert inventory.summary(engine).batches == 0


def test_generate_without_ranges_says_what_to_do(engine: Engine) -> None:
    with pytest.raises(NotFound, match="simsmith range add"):
        inventory.generate_sims(engine, 1, batch="x", actor="t")
    with pytest.raises(InvalidInput, match="count"):
        inventory.generate_sims(engine, 0, batch="x", actor="t")


def test_allocate_by_kind_form_factor_and_batch(engine: Engine) -> None:
    seed(engine, 2, batch="plain", form_factor="2FF")
    seed(engine, 2, batch="nano", form_factor="4FF")
    seed(engine, 1, batch="esim", kind="esim")
    s1 = inventory.allocate(engine, "cust-1", actor="t", form_factor="4FF")
    assert s1.form_factor == "4FF" and s1.state == "allocated" and s1.subscriber_ref == "cust-1"
    s2 = inventory.allocate(engine, "cust-2", actor="t", batch="plain")
    assert s2.form_factor == "2FF"
    s3 = inventory.allocate(engine, "cust-3", actor="t", kind="esim")
    assert s3.kind == "esim"
    with pytest.raises(inventory.NoSimAvailable, match="no esim SIM in stock"):
        inventory.allocate(engine, "cust-4", actor="t", kind="esim")
    with pytest.raises(NotFound, match="no batch named 'nope'"):
        inventory.allocate(engine, "cust-4", actor="t", batch="nope")


def test_service_lifecycle_and_msisdn(engine: Engine) -> None:
    seed(engine, 4)
    msisdn_pool.add_msisdn_range(engine, "+44 7700 900000", "+44 7700 900009", name="m",
                                 actor="t")
    sim = inventory.allocate(engine, "cust-1", actor="t")
    with pytest.raises(TransitionNotAllowed, match="from allocated to suspended"):
        inventory.suspend(engine, sim.iccid, actor="t")
    sim = inventory.activate(engine, sim.iccid, actor="t", msisdn="auto")
    assert sim.state == "active" and sim.msisdn == "447700900000"
    assert msisdn_pool.get(engine, "447700900000").iccid == sim.iccid
    assert inventory.find_sim(engine, msisdn="+447700900000").iccid == sim.iccid
    assert inventory.find_sim(engine, imsi=sim.imsi or "").iccid == sim.iccid
    sim = inventory.suspend(engine, sim.iccid, actor="t", reason="unpaid")
    assert sim.state == "suspended" and sim.reason == "unpaid"
    sim = inventory.resume(engine, sim.iccid, actor="t")
    assert sim.state == "active" and sim.reason is None
    with pytest.raises(InvalidInput, match="reason"):
        inventory.terminate(engine, sim.iccid, actor="t", reason="")
    sim = inventory.terminate(engine, sim.iccid, actor="t", reason="customer left",
                              quarantine_days=30)
    assert sim.state == "terminated" and sim.msisdn is None
    entry = msisdn_pool.get(engine, "447700900000")
    assert entry.state == "quarantine" and entry.iccid is None
    # The number is not handed out again while in quarantine.
    other = inventory.allocate(engine, "cust-2", actor="t")
    other = inventory.activate(engine, other.iccid, actor="t", msisdn="auto")
    assert other.msisdn == "447700900001"
    with pytest.raises(Conflict, match="quarantine, not available"):
        msisdn_pool.assign(engine, "447700900000", inventory.allocate(engine, "c3", actor="t")
                           .iccid, actor="t")
    # "auto" is the lowest available, also below the last number handed out: once its
    # quarantine is over, 447700900000 comes before 447700900002.
    msisdn_pool.recycle(engine, "447700900000", actor="t",
                        now=utcnow() + timedelta(days=31))
    third = inventory.activate(engine, inventory.allocate(engine, "c4", actor="t").iccid,
                               actor="t", msisdn="auto")
    assert third.msisdn == "447700900000"
    audit.verify(engine)


def test_optimistic_version_check(engine: Engine) -> None:
    seed(engine, 1)
    sim = inventory.allocate(engine, "cust-1", actor="t")
    from simcore.lifecycle import StaleVersion

    with pytest.raises(StaleVersion, match=f"version is {sim.version}, not 1"):
        inventory.activate(engine, sim.iccid, actor="t", expected_version=1)
    assert inventory.activate(engine, sim.iccid, actor="t",
                              expected_version=sim.version).state == "active"


def test_sim_swap_moves_msisdn_and_subscriber_in_one_transaction(engine: Engine) -> None:
    seed(engine, 3)
    msisdn_pool.add_msisdn_range(engine, "447700900000", "447700900009", name="m", actor="t")
    old = inventory.activate(engine, inventory.allocate(engine, "cust-1", actor="t").iccid,
                             actor="t", msisdn="auto")
    old2, new = inventory.swap(engine, old.iccid, actor="t")
    assert old2.state == "terminated" and old2.reason == "swapped" and old2.msisdn is None
    assert new.state == "active" and new.msisdn == old.msisdn
    assert new.subscriber_ref == "cust-1"
    assert msisdn_pool.get(engine, old.msisdn or "").iccid == new.iccid
    assert msisdn_pool.get(engine, old.msisdn or "").state == "assigned"
    # Swapping onto a SIM that is not in stock changes nothing.
    third = inventory.allocate(engine, "cust-9", actor="t")
    with pytest.raises(TransitionNotAllowed):
        inventory.swap(engine, new.iccid, actor="t", new_iccid=third.iccid)
    assert inventory.get_sim(engine, new.iccid).state == "active"
    assert inventory.get_sim(engine, new.iccid).msisdn == old.msisdn
    with pytest.raises(Conflict, match="only an allocated, active or suspended"):
        inventory.swap(engine, old.iccid, actor="t")
    audit.verify(engine)


def test_a_suspended_sims_swap_stays_suspended_unless_resumed(engine: Engine) -> None:
    seed(engine, 4)
    msisdn_pool.add_msisdn_range(engine, "447700900000", "447700900009", name="m", actor="t")
    old = inventory.activate(engine, inventory.allocate(engine, "cust-1", actor="t").iccid,
                             actor="t", msisdn="auto")
    inventory.suspend(engine, old.iccid, actor="t", reason="unpaid")
    _, new = inventory.swap(engine, old.iccid, actor="t")
    assert (new.state, new.reason, new.msisdn) == ("suspended", "unpaid", old.msisdn)
    inventory_new = inventory.get_sim(engine, new.iccid)
    assert inventory_new.state == "suspended"
    _, newer = inventory.swap(engine, new.iccid, actor="t", resume=True)
    assert (newer.state, newer.reason) == ("active", None)
    with pytest.raises(TransitionNotAllowed):  # only a swap takes a SIM to suspended unused
        inventory.suspend(engine, inventory.allocate(engine, "c2", actor="t").iccid,
                          actor="t")
    audit.verify(engine)


def test_quarantine_and_recycle_free_the_imsi(engine: Engine) -> None:
    ranges.add_range(engine, "iccid", ICCID_FIRST, Iccid.from_body("8988280000000000099")
                     .digits, name="i", actor="t")
    ranges.add_range(engine, "imsi", "001010000000000", "001010000000001", name="m", actor="t")
    inventory.generate_sims(engine, 2, batch="b1", actor="t")
    sim = inventory.allocate(engine, "cust-1", actor="t")
    inventory.terminate(engine, sim.iccid, actor="t", reason="lost")
    with pytest.raises(ranges.RangeExhausted):
        inventory.generate_sims(engine, 1, batch="b2", actor="t")
    sim = inventory.quarantine(engine, sim.iccid, actor="t", days=10)
    assert sim.quarantine_until is not None
    with pytest.raises(lifecycle.QuarantineNotOver, match="in quarantine until"):
        inventory.recycle(engine, sim.iccid, actor="t")
    # Nothing in quarantine is reused.
    with pytest.raises(ranges.RangeExhausted):
        inventory.generate_sims(engine, 1, batch="b2", actor="t")
    later = utcnow() + timedelta(days=11)
    assert inventory.recycle_due(engine, actor="t", now=later) == 1
    recycled = inventory.get_sim(engine, sim.iccid)
    assert recycled.state == "recycled" and recycled.imsi is None
    assert recycled.former_imsi == sim.imsi
    with read_session(engine) as s:
        assert s.execute(select(col(FreeImsi.imsi))).scalars().all() == [sim.imsi]
    r = inventory.generate_sims(engine, 1, batch="b2", actor="t")
    assert inventory.get_sim(engine, r.first_iccid).imsi == sim.imsi
    audit.verify(engine)


@pytest.mark.slow
def test_msisdn_pool_release_and_recycle(engine: Engine) -> None:
    seed(engine, 1)
    n = msisdn_pool.add_msisdn_range(engine, "447700900000", "447700900004", name="m", actor="t")
    assert n == 5 and msisdn_pool.counts(engine) == {"available": 5}
    sim = inventory.allocate(engine, "c", actor="t")
    assert msisdn_pool.assign(engine, "447700900003", sim.iccid, actor="t") == "447700900003"
    with pytest.raises(Conflict, match="already has MSISDN"):
        msisdn_pool.assign(engine, "auto", sim.iccid, actor="t")
    msisdn_pool.release(engine, "447700900003", actor="t", quarantine_days=5)
    assert inventory.get_sim(engine, sim.iccid).msisdn is None
    with pytest.raises(lifecycle.QuarantineNotOver):
        msisdn_pool.recycle(engine, "447700900003", actor="t")
    e = msisdn_pool.recycle(engine, "447700900003", actor="t",
                            now=utcnow() + timedelta(days=6))
    assert e.state == "available"
    with pytest.raises(NotFound, match="not in the pool"):
        msisdn_pool.get(engine, "447700900999")
    with pytest.raises(ranges.RangeOverlap):
        msisdn_pool.add_msisdn_range(engine, "447700900004", "447700900010", name="m2",
                                     actor="t")


@pytest.mark.parametrize("workers", [32])
def test_concurrent_allocators_never_share_a_sim(engine: Engine, workers: int) -> None:
    """32 allocators at once, over 4 engines (connection pools) so that both the in-process
    queue and the database's own locking are exercised: no SIM is handed out twice."""
    per_worker = 8
    seed(engine, workers * per_worker - 10)  # fewer SIMs than requests: some must fail cleanly
    engines = [engine] + [db.make_engine(engine.url.render_as_string(hide_password=False))
                          for _ in range(3)]
    got: list[str] = []
    failures: list[BaseException] = []
    none_left = 0
    lock = threading.Lock()
    start = threading.Barrier(workers)

    def worker(n: int) -> None:
        nonlocal none_left
        eng = engines[n % len(engines)]
        start.wait()
        for i in range(per_worker):
            try:
                sim = inventory.allocate(eng, f"w{n}-{i}", actor=f"worker-{n}")
                with lock:
                    got.append(sim.iccid)
            except inventory.NoSimAvailable:
                with lock:
                    none_left += 1
            except BaseException as e:
                with lock:
                    failures.append(e)

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(workers)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for e in engines[1:]:
        e.dispose()
    assert failures == []
    assert len(got) == len(set(got)) == workers * per_worker - 10
    assert none_left == 10
    with read_session(engine) as s:
        refs = s.execute(select(col(Sim.subscriber_ref)).where(col(Sim.state) == "allocated"))
        assert len(set(refs.scalars())) == len(got)
    assert audit.verify(engine).events == 3 + len(got)


def test_services_log_structured_lines_to_stderr(engine: Engine,
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    import json

    from simcore.log import configure

    seed(engine, 2)
    configure("INFO", json=True)
    try:
        sim = inventory.allocate(engine, "cust-log", actor="t")
    finally:
        configure("WARNING")
    out = capsys.readouterr()
    assert out.out == ""
    lines = [json.loads(x) for x in out.err.splitlines() if x.startswith("{")]
    ev = next(x for x in lines if x["event"] == "sim.allocated")
    assert ev["iccid"] == sim.iccid and ev["level"] == "info" and "timestamp" in ev


@pytest.mark.slow
def test_generation_reports_progress_as_rows_are_written(engine: Engine) -> None:
    seen: list[int] = []
    ranges.add_range(engine, "iccid", ICCID_FIRST, Iccid.from_body("8988280000000999999")
                     .digits, name="i", actor="t")
    ranges.add_range(engine, "imsi", "001010000000000", "001010000999999", name="m", actor="t")
    inventory.generate_sims(engine, 120_000, batch="big", actor="t", progress=seen.append)
    assert seen == [50_000, 100_000, 120_000]
    assert inventory.summary(engine).total == 120_000


def test_allocation_moves_on_and_wraps_around_for_returned_sims(engine: Engine) -> None:
    seed(engine, 3)
    a = inventory.allocate(engine, "c1", actor="t").iccid
    b = inventory.allocate(engine, "c2", actor="t").iccid
    assert a < b
    inventory.release(engine, a, actor="t")  # back in stock, behind this process's cursor
    c = inventory.allocate(engine, "c3", actor="t").iccid
    assert c > b
    assert inventory.allocate(engine, "c4", actor="t").iccid == a  # found by the full scan
    with pytest.raises(inventory.NoSimAvailable):
        inventory.allocate(engine, "c5", actor="t")


def test_a_rolled_back_claim_leaves_its_sim_next_in_line(engine: Engine) -> None:
    from simcore.lifecycle import claim_transition

    seed(engine, 3)
    first = inventory.allocate(engine, "c1", actor="t").iccid
    with pytest.raises(RuntimeError), db.connection_transaction(engine) as conn:
        lost = claim_transition(conn, "in_stock", "allocated", actor="t",
                                where={"kind": "physical"}).iccid
        raise RuntimeError("the caller fails after claiming")
    assert inventory.get_sim(engine, lost).state == "in_stock"
    again = inventory.allocate(engine, "c2", actor="t").iccid
    assert again == lost and again != first


@pytest.mark.slow
def test_generate_streams_in_bounded_memory(engine: Engine, monkeypatch: pytest.MonkeyPatch
                                            ) -> None:
    """generate_sims writes in chunks: its peak memory follows the chunk, not the count, and the
    batch still lands whole (range cursors, rows, one audit event)."""
    import tracemalloc

    seed(engine, 1)  # the ranges
    monkeypatch.setattr(inventory, "GENERATE_CHUNK", 1_000)
    seen: list[int] = []
    tracemalloc.start()
    try:
        r = inventory.generate_sims(engine, 40_000, batch="big", actor="t", progress=seen.append)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert r.count == 40_000 and seen[-1] == 40_000 and seen == sorted(seen)
    # 40,000 rows held at once cost ~11 MB under tracemalloc; 1,000-row chunks stay far below
    assert peak < 4_000_000, peak
    assert inventory.summary(engine).by_kind_state[("physical", "in_stock")] == 40_001
    sims = inventory.list_sims(engine, batch="big", limit=2)
    assert sims[0].iccid == r.first_iccid
