"""Card personalisation against the inventory (design §6): the SIM record from the store, its keys
through the HSM, written by cards/, proven by AUTHENTICATE, and only then recorded.

`program_sim`: pick the record (by ICCID, or from a batch: the card's own ICCID when the batch
holds it, else the next blank SIM), write it with `cards.personalise.program_card` (ADM verified
once, every file read back, AUTHENTICATE with an HSM vector), read the ICCID back, AUTHENTICATE
again with a fresh HSM vector, and only then move the SIM blank → personalised with the driver,
ATR and APDU count in the audit record. `verify_sim`: read a card's ICCID, look the SIM up and
prove its keys. `run_batch`: one worker per reader — wait for a card, program or recognise it,
report, wait for its removal — until the batch has no blank SIM left; a card already personalised
as its record is verified and skipped, so a batch resumes where it stopped.

Vectors use the SIM's SQN kept in the store (simcore.keys). A sync failure (the card's SQN is
ahead of the store's, e.g. after an HSS used the card) is resolved once with the card's AUTS
through the HSM, which also moves the stored SQN to the card's (simcore.sqn_store.resync_vector).

Claims on "the next blank SIM" are held in this process (one `run_batch` with many readers).
Two processes programming the same batch may pick the same record for cards whose ICCID is
writable; the second recording is then refused (the state is no longer blank) and reported.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Engine, func, select
from sqlmodel import col

from cards.errors import CardError, NoCardError, SyncFailureError
from cards.personalise import (
    ProgramResult,
    choose_driver,
    describe_plan,
    personalised_as,
    plan_card,
    program_card,
    read_iccid,
    verify_card,
)
from cards.profile import AuthVector, CardProfile, StaticKeyWriter
from cards.secret import Secret
from cards.transport import Transport
from hsm_sim.errors import HsmError
from hsm_sim.hsm import Hsm
from simcore import suci_keys
from simcore.db import read_session, transaction
from simcore.errors import Conflict, InvalidInput, NotFound, SimsmithError
from simcore.identifiers import Iccid
from simcore.inventory import batch_id
from simcore.key_writers import SimKeyWriter
from simcore.keys import SimKeys, load_keys
from simcore.lifecycle import SimState, apply_transition
from simcore.mnc_length import mnc_length_of
from simcore.models import Sim
from simcore.sqn_store import fresh_vectors, resync_vector
from simcore.suci import parse_suci_calc_info

__all__ = [
    "BatchSummary",
    "CardOutcome",
    "card_profile",
    "plan_sim",
    "program_sim",
    "run_batch",
    "verify_sim",
]


@dataclass(frozen=True)
class CardOutcome:
    """What happened to one card: `programmed`, `skipped` (already personalised as its record,
    keys verified) or `failed` (error says why; nothing was recorded)."""

    status: str
    reader: str
    iccid: str | None = None
    driver: str | None = None
    atr: str | None = None
    apdus: int = 0  # commands the card received: GET RESPONSE, 6Cxx resends, pre-reads included
    seconds: float = 0.0  # from the caller's `started` (before the PC/SC connect) to the record
    error: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return {"status": self.status, "reader": self.reader, "iccid": self.iccid,
                "driver": self.driver, "atr": self.atr, "apdus": self.apdus,
                "seconds": round(self.seconds, 3), "error": self.error}


@dataclass
class BatchSummary:
    batch: str
    outcomes: list[CardOutcome] = field(default_factory=list)
    blank_left: int = 0

    def count(self, status: str) -> int:
        return sum(1 for o in self.outcomes if o.status == status)

    def as_dict(self) -> dict[str, Any]:
        return {"batch": self.batch, "programmed": self.count("programmed"),
                "skipped": self.count("skipped"), "failed": self.count("failed"),
                "blank_left": self.blank_left, "cards": [o.as_dict() for o in self.outcomes]}


class WrongCard(SimsmithError):
    """The card in the reader is not the one the operation is about."""


# --- profiles ---------------------------------------------------------------------------------


def _mnc_length(engine: Engine, imsi: str) -> int:
    """The IMSI range's MNC length (simcore.mnc_length, the rule the eSIM templates use too);
    none recorded: the card profile's default, 2 (as the built-in templates' EF.AD)."""
    return mnc_length_of(engine, imsi) or 2


def card_profile(engine: Engine, sim: Sim, *, spn: str | None = None,
                 suci_by: str | None = None) -> CardProfile:
    """The card files for a SIM record: ICCID, IMSI (MNC length from its IMSI range), MSISDN,
    and the SUCI files from the key registry (simcore.suci_keys.card_files; `suci_by` "me" or
    "usim" overrides the setting)."""
    if not sim.imsi:
        raise InvalidInput("imsi", f"SIM {sim.iccid} has no IMSI", expected="a SIM with an IMSI")
    return CardProfile(iccid=sim.iccid, imsi=sim.imsi, mnc_length=_mnc_length(engine, sim.imsi),
                       msisdn=sim.msisdn, spn=spn,
                       suci=suci_keys.card_files(engine, by=suci_by))


def _auth(v: Any) -> AuthVector:
    """hsm_sim.milenage.AuthVector -> cards.profile.AuthVector (docs/cards.md)."""
    return AuthVector(rand=v.rand, autn=v.autn, res=v.xres, ck=v.ck, ik=v.ik)


def _vector(engine: Engine, hsm: Hsm, keys: SimKeys) -> AuthVector:
    return _auth(fresh_vectors(engine, hsm, keys)[0])


def _sim(engine: Engine, iccid: str) -> Sim | None:
    with read_session(engine) as s:
        return s.get(Sim, iccid)


def _get_sim(engine: Engine, iccid: str) -> Sim:
    iccid = Iccid.parse(iccid).digits
    sim = _sim(engine, iccid)
    if sim is None:
        raise NotFound(f"no SIM with ICCID {iccid}")
    return sim


class Claims:
    """ICCIDs being programmed by some worker of this process: never handed out twice."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._held: set[str] = set()

    def take(self, iccid: str) -> bool:
        with self._lock:
            if iccid in self._held:
                return False
            self._held.add(iccid)
            return True

    def next_blank(self, engine: Engine, batch: str) -> str | None:
        with read_session(engine) as s:
            bid = batch_id(s, batch)
            rows = s.execute(select(col(Sim.iccid)).where(
                col(Sim.batch_id) == bid, col(Sim.state) == SimState.BLANK)
                .order_by(col(Sim.iccid)).limit(len(self._held) + 1)).scalars().all()
        for iccid in rows:
            if self.take(iccid):
                return str(iccid)
        return None

    def release(self, iccid: str) -> None:
        with self._lock:
            self._held.discard(iccid)


def blank_left(engine: Engine, batch: str) -> int:
    with read_session(engine) as s:
        bid = batch_id(s, batch)
        return int(s.execute(select(func.count()).select_from(Sim).where(
            col(Sim.batch_id) == bid, col(Sim.state) == SimState.BLANK)).scalar_one())


# --- program ----------------------------------------------------------------------------------


def _with_resync(engine: Engine, hsm: Hsm, keys: SimKeys, run: Callable[[AuthVector], Any], *,
                 actor: str) -> Any:
    try:
        return run(_vector(engine, hsm, keys))
    except SyncFailureError as e:
        return run(_auth(resync_vector(engine, hsm, keys, e.rand, e.auts, actor=actor)))


def choose_sim(engine: Engine, transport: Transport, *, iccid: str | None = None,
               batch: str | None = None, claims: Claims | None = None) -> tuple[Sim, bool]:
    """The record for the card in `transport`, and whether this call claimed it (release it
    after). By ICCID; or from a batch: the card's own ICCID if the batch holds it, else the
    next blank SIM of the batch."""
    if (iccid is None) == (batch is None):
        raise InvalidInput("sim", "give an ICCID or a batch, not both or neither")
    if iccid is not None:
        return _get_sim(engine, iccid), False
    assert batch is not None
    claims = claims or Claims()
    with read_session(engine) as s:
        bid = batch_id(s, batch)
    card_iccid = read_iccid(transport)
    own = _sim(engine, card_iccid)
    if own is not None and own.batch_id == bid:
        if own.state != SimState.BLANK or claims.take(own.iccid):
            return own, own.state == SimState.BLANK
        raise Conflict(f"SIM {own.iccid} is being programmed in another reader")
    if own is not None:
        # Never give a card that is some other record's another identity.
        raise WrongCard(f"card ICCID {card_iccid} is a SIM of another batch ({own.state}): "
                        f"not programmed from batch {batch!r}")
    nxt = claims.next_blank(engine, batch)
    if nxt is None:
        raise NotFound(f"batch {batch!r} has no blank SIM left")
    return _get_sim(engine, nxt), True


def program_sim(
    engine: Engine,
    hsm: Hsm,
    transport: Transport,
    *,
    actor: str,
    iccid: str | None = None,
    batch: str | None = None,
    driver: str | None = None,
    spn: str | None = None,
    reader: str = "",
    claims: Claims | None = None,
    adm1: Secret | None = None,
    started: float | None = None,
    suci_by: str | None = None,
) -> CardOutcome:
    """Program the card in `transport` with a SIM record and record it personalised. A card
    already personalised as a non-blank record is verified and reported `skipped`. Raises on any
    failure (CardError, WrongCard, VerificationError, …); nothing is recorded then.

    `adm1` replaces the stored ADM1 (a card whose vendor code is not in the store, typed at a
    hidden prompt); Ki and OPc always come from the HSM. `started` is a `time.perf_counter()`
    taken before the caller connected to the card: the outcome's seconds then include the
    PC/SC connect as well as the HSM and database work. The outcome's `apdus` counts every
    command the card received during this call (the ICCID pre-read, GET RESPONSE and 6Cxx
    resends included: the transport's exchanges)."""
    start = time.perf_counter() if started is None else started
    wire = transport.stats.exchanges
    claims = claims or Claims()
    sim, claimed = choose_sim(engine, transport, iccid=iccid, batch=batch, claims=claims)
    try:
        return _program(engine, hsm, transport, sim, actor=actor, driver=driver, spn=spn,
                        reader=reader, adm1=adm1, start=start, wire=wire, suci_by=suci_by)
    finally:
        if claimed:
            claims.release(sim.iccid)


def _program(engine: Engine, hsm: Hsm, t: Transport, sim: Sim, *, actor: str,
             driver: str | None, spn: str | None, reader: str, adm1: Secret | None,
             start: float, wire: int, suci_by: str | None = None) -> CardOutcome:
    profile = card_profile(engine, sim, spn=spn, suci_by=suci_by)
    keys = load_keys(engine, sim.iccid)
    if sim.state != SimState.BLANK:
        if not personalised_as(t, profile):
            raise Conflict(f"SIM {sim.iccid} is {sim.state}, not blank, and the card does not "
                           "hold it: only a blank SIM is programmed")
        _with_resync(engine, hsm, keys, lambda v: verify_card(t, v), actor=actor)
        return CardOutcome("skipped", reader, sim.iccid, None, t.atr.hex().upper(),
                           t.stats.exchanges - wire, time.perf_counter() - start)
    writer = SimKeyWriter(hsm, keys, adm1=adm1)
    # The plan checks (SJA) or writes and reads back (SJS1) the ICCID and ends with AUTHENTICATE
    # (3G in ADF.USIM, RUN GSM ALGORITHM in DF.GSM) against a fresh HSM vector: the card is
    # proven once, here — no second verification round.
    result: ProgramResult = _with_resync(
        engine, hsm, keys, lambda v: program_card(t, profile, writer, v, driver=driver),
        actor=actor)
    apdus = t.stats.exchanges - wire
    auth = "AUTHENTICATE 3G" + (" and RUN GSM ALGORITHM" if profile.write_gsm else "")
    with transaction(engine) as s:
        row = s.execute(select(Sim).where(col(Sim.iccid) == sim.iccid).with_for_update()
                        ).scalar_one()
        apply_transition(s, row, SimState.PERSONALISED, actor=actor, details={
            "driver": result.driver, "atr": result.atr, "apdus": apdus,
            "commands": result.apdus, "reader": reader,
            "verified": f"{auth} with an HSM vector", "suci": _suci_record(profile, result)})
    return CardOutcome("programmed", reader, sim.iccid, result.driver, result.atr, apdus,
                       time.perf_counter() - start)


def _suci_record(profile: CardProfile, result: ProgramResult) -> dict[str, Any] | None:
    """The SUCI configuration written, for the audit record: who computes it, key ids in
    priority order (public data only), routing indicator; None when the driver has no DF.5GS."""
    if profile.suci is None or "5gs" not in result.groups:
        return None
    entries = parse_suci_calc_info(profile.suci.calc_info)
    return {"calculated_by": "usim" if profile.suci.by_usim else "me",
            "schemes": [[scheme, None if key is None else key.key_id] for scheme, key in entries],
            "routing_indicator": profile.suci.routing_indicator}


def plan_sim(engine: Engine, *, driver: str, iccid: str | None = None, batch: str | None = None,
             spn: str | None = None, suci_by: str | None = None) -> tuple[Sim, list[str]]:
    """The APDU plan for a SIM record (a dry run: no card, no HSM; secrets masked)."""
    if batch is not None:
        with read_session(engine) as s:
            bid = batch_id(s, batch)
            found = s.execute(select(Sim).where(col(Sim.batch_id) == bid,
                                                col(Sim.state) == SimState.BLANK)
                              .order_by(col(Sim.iccid)).limit(1)).scalar_one_or_none()
        if found is None:
            raise NotFound(f"batch {batch!r} has no blank SIM left")
        sim = found
    elif iccid is not None:
        sim = _get_sim(engine, iccid)
    else:
        raise InvalidInput("sim", "give an ICCID or a batch")
    steps = plan_card(card_profile(engine, sim, spn=spn, suci_by=suci_by),
                      StaticKeyWriter(Secret(b"", "ADM1")), None, driver)
    return sim, describe_plan(steps)


def detect_driver(transport: Transport, driver: str | None = None) -> str:
    return choose_driver(transport, driver).name


# --- verify -----------------------------------------------------------------------------------


def verify_sim(engine: Engine, hsm: Hsm, transport: Transport, *, actor: str
               ) -> dict[str, Any]:
    """Read the card's ICCID, find its SIM, AUTHENTICATE with a fresh HSM vector (3G and GSM).
    `actor` is recorded if the card's SQN has to be resynchronised."""
    wire = transport.stats.exchanges
    iccid = read_iccid(transport)
    sim = _sim(engine, iccid)
    if sim is None:
        raise NotFound(f"card ICCID {iccid} is not in the inventory")
    keys = load_keys(engine, iccid)
    _with_resync(engine, hsm, keys, lambda v: verify_card(transport, v), actor=actor)
    return {"iccid": sim.iccid, "imsi": sim.imsi, "state": sim.state, "verified": True,
            "atr": transport.atr.hex().upper(), "apdus": transport.stats.exchanges - wire}


# --- batch ------------------------------------------------------------------------------------


def run_batch(
    engine: Engine,
    hsm_for_worker: Callable[[], Any],
    batch: str,
    readers: Sequence[str],
    *,
    actor: str,
    open_transport: Callable[[str], Any],
    wait_card: Callable[[str, bool, float], bool],
    driver: str | None = None,
    spn: str | None = None,
    suci_by: str | None = None,
    idle_timeout: float | None = None,
    max_cards: int | None = None,
    stop: threading.Event | None = None,
    on_event: Callable[[str, str, CardOutcome | None], None] | None = None,
    poll: float = 0.5,
) -> BatchSummary:
    """Personalise a batch on several readers in parallel until it has no blank SIM left, `stop`
    is set, `max_cards` cards were handled, or no card came for `idle_timeout` seconds.

    `open_transport(reader)` connects to the card in a reader; `wait_card(reader, present,
    timeout)` returns whether the reader reached that state in time. `on_event(kind, reader,
    outcome)` reports `waiting`, `card` (outcome), `remove` and `done`."""
    with read_session(engine) as s:
        batch_id(s, batch)  # NotFound before any thread starts
    stop = stop or threading.Event()
    summary = BatchSummary(batch)
    claims = Claims()
    lock = threading.Lock()
    handled = [0]
    errors: list[BaseException] = []

    def emit(kind: str, reader: str, outcome: CardOutcome | None = None) -> None:
        if on_event:
            on_event(kind, reader, outcome)

    def finished() -> bool:
        with lock:
            if max_cards is not None and handled[0] >= max_cards:
                return True
        return stop.is_set() or blank_left(engine, batch) == 0

    def wait_for(reader: str, present: bool) -> bool:
        deadline = None if idle_timeout is None or not present else time.monotonic() + idle_timeout
        while not finished():
            if wait_card(reader, present, poll):
                return True
            if deadline is not None and time.monotonic() > deadline:
                return False
        return False

    def worker(reader: str) -> None:
        try:
            hsm = hsm_for_worker()
            while not finished():
                emit("waiting", reader)
                if not wait_for(reader, True):
                    break
                with lock:
                    if max_cards is not None and handled[0] >= max_cards:
                        break
                    handled[0] += 1
                outcome = _one_card(reader, hsm)
                with lock:
                    summary.outcomes.append(outcome)
                emit("card", reader, outcome)
                if finished():
                    break
                emit("remove", reader)
                wait_for(reader, False)
        except BaseException as e:  # reported by the caller
            errors.append(e)
            stop.set()

    def _one_card(reader: str, hsm: Hsm) -> CardOutcome:
        start = time.perf_counter()
        try:
            with open_transport(reader) as t:
                return program_sim(engine, hsm, t, actor=actor, batch=batch, driver=driver,
                                   spn=spn, reader=reader, claims=claims, started=start,
                                   suci_by=suci_by)
        except (SimsmithError, CardError, HsmError) as e:  # this card fails, the batch goes on
            return CardOutcome("failed", reader, seconds=time.perf_counter() - start,
                               error=str(e))

    threads = [threading.Thread(target=worker, args=(r,), name=f"batch-{r}", daemon=True)
               for r in readers]
    for th in threads:
        th.start()
    try:
        for th in threads:
            while th.is_alive():
                th.join(0.2)
    except KeyboardInterrupt:
        stop.set()
        for th in threads:
            th.join(10)
    summary.blank_left = blank_left(engine, batch)
    for r in readers:
        emit("done", r)
    if errors:
        raise errors[0]
    return summary


def pcsc_batch_io() -> tuple[Callable[[str], Any], Callable[[str, bool, float], bool]]:
    """`open_transport` and `wait_card` on PC/SC (pyscard imported here, not at module load)."""
    from cards.pcsc import PcscTransport, wait_for_card_state

    def open_transport(reader: str) -> Any:
        return PcscTransport(reader, timeout=2)

    def wait_card(reader: str, present: bool, timeout: float) -> bool:
        try:
            wait_for_card_state(reader, present=present, timeout=timeout)
            return True
        except NoCardError:
            return False

    return open_transport, wait_card
