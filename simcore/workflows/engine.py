"""The durable workflow engine (design §10; the saga pattern: a sequence of local and remote
steps, each with a compensating action, undone in reverse order on permanent failure).

A run is a `workflow` row and one `workflow_step` row per step (simcore.workflows.models). A step
has up to two halves:

- `call(run)`: the peer's part (HLR, SM-DP+, HSM), run outside any database transaction and
  idempotent at the peer (it may run again after a crash, before its result was recorded);
- `commit(session, run)`: the store's part, run inside the transaction that records the step as
  done — so a local change and "this step is done" commit together, exactly once.

`undo` / `undo_commit` are the same two halves of the compensation.

Workers claim due runs (`claim`): one `UPDATE … WHERE id IN (SELECT … FOR UPDATE SKIP LOCKED
LIMIT n) RETURNING` on PostgreSQL, so several processes share the load; the same statement on
SQLite, where writers queue on one lock. A claim pushes `next_attempt_at` a lease ahead and
stamps a lease token; every record the worker writes is fenced by that token, so a worker whose
lease ran out (killed, or stalled) can no longer write, and the run is due again for another.
Retries are not slept: a transient failure records the error and sets `next_attempt_at` by
exponential backoff with jitter (tenacity's `wait_exponential_jitter`), and the claim is let go.

Cancel (`request_cancel`) only marks the run: the worker reads the mark at the next step
boundary — in the transaction that records a step (and the store steps chained with it), or
when it claims the run — and compensates the finished steps in reverse exactly as after a
permanent failure; the run ends `cancelled` (or `stuck` if an undo keeps failing). A step in
flight is never interrupted.
"""

from __future__ import annotations

import json
import secrets
import time
import uuid
import weakref
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from types import SimpleNamespace
from typing import Any

import tenacity
from sqlalchemy import (
    Engine,
    Integer,
    bindparam,
    case,
    func,
    insert,
    literal_column,
    null,
    or_,
    select,
    text,
    update,
)
from sqlmodel import Session

from simcore import audit, telemetry
from simcore.db import DirectStatement, core, direct, read_session, transaction
from simcore.errors import Conflict, NotFound, SimsmithError
from simcore.log import get_logger
from simcore.models import utcnow
from simcore.records import canonical_json, check_no_secrets
from simcore.workflows import wakeup
from simcore.workflows.models import Workflow, WorkflowStep

log = get_logger(__name__)

PENDING, RUNNING, COMPENSATING = "pending", "running", "compensating"
SUCCEEDED, FAILED, CANCELLED, STUCK = "succeeded", "failed", "cancelled", "stuck"
LIVE = (PENDING, RUNNING, COMPENSATING)
FINISHED = (SUCCEEDED, FAILED, CANCELLED, STUCK)

STEP_PENDING, STEP_DONE, STEP_FAILED, STEP_SKIPPED = "pending", "done", "failed", "skipped"
STEP_COMPENSATED, STEP_COMPENSATION_FAILED = "compensated", "compensation_failed"


class StepFailed(SimsmithError):
    """A step's permanent failure (bad input, nothing in stock, a refusal): not retried; the
    finished steps are compensated."""


class Transient(SimsmithError):
    """A failure worth retrying later (the peer is down, timed out, the row was busy)."""


@dataclass
class Run:
    """What a step sees: the run's input, the data earlier steps recorded (a step's returned
    mapping is merged into `data`), the peers (`deps`), and the step's idempotency key."""

    id: str
    kind: str
    input: dict[str, Any]
    data: dict[str, Any]
    deps: Any
    actor: str
    step_key: str = ""
    attempt: int = 1


StepCall = Callable[[Run], Mapping[str, Any] | None]
StepCommit = Callable[[Session, Run], Mapping[str, Any] | None]


@dataclass(frozen=True)
class Step:
    name: str
    call: StepCall | None = None
    commit: StepCommit | None = None
    undo: Callable[[Run], None] | None = None
    undo_commit: Callable[[Session, Run], None] | None = None
    when: Callable[[Run], bool] | None = None  # the step is skipped when this says False
    # Read in the transaction recording the store steps before it: True when the call's
    # effect is in place already (keys the SIM has), so the step is recorded done with them,
    # without its call.
    already: Callable[[Session, Run], bool] | None = None


@dataclass(frozen=True)
class Definition:
    kind: str
    steps: tuple[Step, ...]
    # Exceptions (besides Transient and OSError) worth a retry: the flows add their ports'.
    transient: tuple[type[BaseException], ...] = ()
    # False for a workflow that only goes forward (termination): stopping it half-way would
    # leave the SIM half out of service, so a cancel is refused.
    cancellable: bool = True

    def __post_init__(self) -> None:
        names = [s.name for s in self.steps]
        if len(set(names)) != len(names):
            raise ValueError(f"workflow {self.kind}: step names repeat")


@dataclass(frozen=True)
class RetryPolicy:
    """Backoff of a failing step: exponential with jitter, `max_attempts` attempts forward
    (then the run is compensated), `max_undo_attempts` for each compensation (then `stuck`)."""

    initial: float = 1.0
    maximum: float = 300.0
    jitter: float = 1.0
    max_attempts: int = 6
    max_undo_attempts: int = 20

    def delay(self, attempt: int) -> float:
        wait = tenacity.wait_exponential_jitter(initial=self.initial, max=self.maximum,
                                                jitter=self.jitter)
        state = tenacity.RetryCallState(None, None, (), {})  # type: ignore[arg-type]
        state.attempt_number = attempt
        return float(wait(state))


@dataclass
class Registry:
    definitions: dict[str, Definition] = field(default_factory=dict)

    def add(self, d: Definition) -> Definition:
        self.definitions[d.kind] = d
        return d

    def get(self, kind: str) -> Definition:
        try:
            return self.definitions[kind]
        except KeyError:
            raise NotFound(f"no workflow kind {kind!r}") from None


REGISTRY = Registry()

WF = Workflow.__table__  # type: ignore[attr-defined]
ST = WorkflowStep.__table__  # type: ignore[attr-defined]


# --- starting ---------------------------------------------------------------------------------


def start(engine: Engine, definition: Definition, input: Mapping[str, Any], *, actor: str,
          subject: str | None = None, idempotency_key: str | None = None,
          trace_id: str | None = None) -> str:
    """Record a new run (status pending, due now) with its steps; returns its id. With an
    `idempotency_key` already used, the existing run's id (Conflict if its input differs)."""
    data = dict(input)
    check_no_secrets(data, "input")
    body = canonical_json(data)
    if engine.dialect.name == "postgresql":
        return _start_pg(engine, definition, body, actor=actor, subject=subject,
                         idempotency_key=idempotency_key, trace_id=trace_id)
    with transaction(engine) as s:
        c = core(s)  # Core and statements built once: the API runs this for every request
        if idempotency_key is not None:
            found = c.execute(_BY_KEY, {"key": idempotency_key}).first()
            if found is not None:
                if found.kind != definition.kind or found.input != body:
                    raise Conflict(f"idempotency key {idempotency_key!r} was used for another "
                                   "request")
                return str(found.id)
        run, steps = _new_run(definition, body, actor=actor, subject=subject,
                              idempotency_key=idempotency_key, trace_id=trace_id)
        wf_id = run["id"]
        c.execute(_INSERT_RUN, run)
        c.execute(_INSERT_STEPS, steps)
        details = {"workflow_id": wf_id, "subject": subject}
        audit.append(s, actor=actor, action=f"workflow.{definition.kind}.started",
                     subject_type="workflow", subject_id=wf_id, details=details,
                     outbox=audit.Outbox(f"workflow.{definition.kind}.started", "workflow",
                                         wf_id, details))
    return _started(run, steps)


def _new_run(definition: Definition, body: str, *, actor: str, subject: str | None,
             idempotency_key: str | None, trace_id: str | None
             ) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """The rows a start writes: the run (pending, due now) and its steps."""
    wf_id = str(uuid.uuid4())
    now = utcnow()
    run = {"id": wf_id, "kind": definition.kind, "status": PENDING, "subject": subject,
           "input": body, "data": "{}", "step": 0, "idempotency_key": idempotency_key,
           "actor": actor, "trace_id": trace_id, "next_attempt_at": now,
           "created_at": now, "updated_at": now}
    steps = [{"workflow_id": wf_id, "seq": i, "name": st.name, "status": STEP_PENDING,
              "idempotency_key": f"{wf_id}/{i}-{st.name}", "attempts": 0,
              "compensation_attempts": 0} for i, st in enumerate(definition.steps)]
    return run, steps


def _started(run: dict[str, Any], steps: list[dict[str, Any]]) -> str:
    """After a start committed: the rows kept for the caller (recording()), the log line."""
    recorded = _RECORDED.get()
    if recorded is not None:  # committed: the caller may answer from what was written
        recorded.append((run, steps))
    log.info("workflow.started", workflow_id=run["id"], kind=run["kind"], subject=run["subject"])
    return str(run["id"])


def _start_pg(engine: Engine, definition: Definition, body: str, *, actor: str,
              subject: str | None, idempotency_key: str | None, trace_id: str | None) -> str:
    """start() on PostgreSQL: the run, its steps, its audit record with the outbox event in one
    statement in autocommit (one round trip; the API runs this for every request), then the
    workers woken (wakeup.announce). A key already used: a read first; a concurrent start
    with the same key loses on the unique key and answers as if it had come second."""
    insert_run, by_key = direct(engine, _START_SQL, write=True), direct(engine, _BY_KEY)
    if idempotency_key is not None:
        found = _found_by_key(by_key, definition, body, idempotency_key)
        if found is not None:
            return found
    run, steps = _new_run(definition, body, actor=actor, subject=subject,
                          idempotency_key=idempotency_key, trace_id=trace_id)
    wf_id = run["id"]
    details = {"workflow_id": wf_id, "subject": subject}
    action = f"workflow.{definition.kind}.started"
    params = audit.pg_append_params(
        actor=actor, action=action, subject_type="workflow", subject_id=wf_id, details=details,
        outbox=audit.Outbox(action, "workflow", wf_id, details))
    params.update({f"r_{k}": v for k, v in run.items()})
    params.update(s_names=[st["name"] for st in steps],
                  s_keys=[st["idempotency_key"] for st in steps])
    try:
        insert_run.rows(**params)
    except engine.dialect.loaded_dbapi.IntegrityError:  # straight from the driver
        if idempotency_key is None:
            raise
        found = _found_by_key(by_key, definition, body, idempotency_key)
        if found is None:
            raise
        return found
    wakeup.announce(engine)  # committed: idle workers are woken
    return _started(run, steps)


def _found_by_key(by_key: DirectStatement, definition: Definition, body: str,
                  key: str) -> str | None:
    rows = by_key.rows(key=key)
    if not rows:
        return None
    found_id, kind, found_input = rows[0]
    if kind != definition.kind or found_input != body:
        raise Conflict(f"idempotency key {key!r} was used for another request")
    return str(found_id)


_RUN_COLUMNS = ("id", "kind", "status", "subject", "input", "data", "step", "idempotency_key",
                "actor", "trace_id", "next_attempt_at", "created_at", "updated_at")
_START_SQL = text(audit.pg_append_sql(
    ", r AS (INSERT INTO workflow (" + ", ".join(_RUN_COLUMNS) + ") VALUES ("
    + ", ".join(f":r_{c}" for c in _RUN_COLUMNS) + "))"
    ", s AS (INSERT INTO workflow_step (workflow_id, seq, name, status, idempotency_key, "
    "attempts, compensation_attempts) SELECT :r_id, t.ord - 1, t.name, 'pending', t.key, 0, 0 "
    "FROM unnest(CAST(:s_names AS varchar[]), CAST(:s_keys AS varchar[])) "
    "WITH ORDINALITY AS t(name, key, ord))")).columns(seq=Integer)


# Runs recorded by start() in this context (recording()): what was written, so the API answers
# its 202 without reading the run back.
_RECORDED: ContextVar[list[tuple[dict[str, Any], list[dict[str, Any]]]] | None] = ContextVar(
    "simsmith_workflow_recorded", default=None)


@contextmanager
def recording() -> Iterator[list[tuple[dict[str, Any], list[dict[str, Any]]]]]:
    """Collect the rows start() writes for each new run it commits in the block (the run's
    values, its steps' values); a run found by its idempotency key is not collected."""
    got: list[tuple[dict[str, Any], list[dict[str, Any]]]] = []
    token = _RECORDED.set(got)
    try:
        yield got
    finally:
        _RECORDED.reset(token)


_BY_KEY = select(WF.c.id, WF.c.kind, WF.c.input).where(WF.c.idempotency_key == bindparam("key"))
_INSERT_RUN = insert(WF)
_INSERT_STEPS = insert(ST)


# --- claiming ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Lease:
    workflow_id: str
    token: str
    owner: str
    seconds: float
    # The run as the claim left it, with its current step's attempt (no read to start).
    row: Any = field(default=None, compare=False, repr=False)


def claim(engine: Engine, owner: str, *, limit: int = 1, lease: float = 30.0,
          now: datetime | None = None, peek: bool = True) -> list[Lease]:
    """Lease up to `limit` due runs to `owner` for `lease` seconds. `peek`: look with a read
    first (what an idle worker does; a busy one, whose last claim found work, goes straight
    to the claim)."""
    now = now or utcnow()
    token = secrets.token_hex(8)
    until = now + timedelta(seconds=lease)
    if engine.dialect.name == "postgresql":
        # The claim and its attempts as one statement in autocommit: one round trip (no BEGIN
        # and COMMIT), an empty one as cheap as a peek — so no peek first.
        claiming = _claim_direct(engine, limit)
        runs = [SimpleNamespace(**dict(zip(claiming.names, r, strict=True)))
                for r in claiming.rows(now=now, owner=owner, token=token, until=until)]
        return [Lease(run.id, token, owner, lease, run) for run in runs]
    # A read first, without the write lock: idle workers polling must not queue with writers
    # (SQLite has one). One statement in autocommit: idle workers poll every 50 ms each.
    if peek and not _any_due(engine).rows(now=now):
        return []
    with transaction(engine) as s:
        c = core(s)
        rows = c.execute(_CLAIM, {"now": now, "limit": limit, "owner": owner, "token": token,
                                  "until": until}).all()
        ids = [r.id for r in rows]
        attempts: dict[str, int] = {}
        if ids:
            # The attempt starts now: counted even if this worker dies before recording it.
            attempts = dict(c.execute(_COUNT_ATTEMPT.where(ST.c.workflow_id.in_(ids)),
                                      {"now": now}).tuples().all())
    return [Lease(r.id, token, owner, lease,
                  SimpleNamespace(**r._mapping, attempt_hint=attempts.get(r.id)))
            for r in rows]


_ANY_DUE = select(WF.c.id).where(WF.c.next_attempt_at <= bindparam("now")).limit(1)


def _any_due(engine: Engine) -> DirectStatement:
    return direct(engine, _ANY_DUE)


_DUE = (select(WF.c.id).where(WF.c.next_attempt_at <= bindparam("now"))
        # The LIMIT written into the statement, not a parameter: with a parameter PostgreSQL
        # kept a custom plan, planning the claim anew each time (docs/benchmarks.md).
        .order_by(WF.c.next_attempt_at)
        .limit(bindparam("limit", type_=Integer, literal_execute=True))
        .with_for_update(skip_locked=True))
_CLAIM = (update(WF).where(WF.c.id.in_(_DUE.scalar_subquery()))
          .values(lease_owner=bindparam("owner"), lease_token=bindparam("token"),
                  next_attempt_at=bindparam("until"))
          .returning(*WF.c))
# A run with a cancel asked for runs no step on this claim: no attempt is counted.
_CURRENT = (select(WF.c.step).where(WF.c.id == ST.c.workflow_id,
                                    WF.c.status.in_((PENDING, RUNNING)),
                                    WF.c.cancel_requested_at.is_(None))
            .scalar_subquery())
_COUNT_ATTEMPT = (update(ST).where(ST.c.status == STEP_PENDING, ST.c.seq == _CURRENT)
                  .values(attempts=ST.c.attempts + 1,
                          started_at=bindparam("now"))
                  .returning(ST.c.workflow_id, ST.c.attempts))


class _ClaimDirect(DirectStatement):
    def __init__(self, engine: Engine, statement: Any) -> None:
        super().__init__(engine, statement, write=True)
        self.names = tuple(statement.selected_columns.keys())


_CLAIMS: weakref.WeakKeyDictionary[Engine, dict[int, _ClaimDirect]] = (
    weakref.WeakKeyDictionary())


def _claim_direct(engine: Engine, limit: int) -> _ClaimDirect:
    """PostgreSQL: _CLAIM and _COUNT_ATTEMPT as one statement (data-modifying CTEs), its
    LIMIT written in (one prepared statement per batch size)."""
    by_limit = _CLAIMS.get(engine)
    if by_limit is None:
        by_limit = _CLAIMS[engine] = {}
    direct = by_limit.get(limit)
    if direct is None:
        due = (select(WF.c.id).where(WF.c.next_attempt_at <= bindparam("now"))
               .order_by(WF.c.next_attempt_at).limit(literal_column(str(int(limit))))
               .with_for_update(skip_locked=True))
        claimed = (update(WF).where(WF.c.id.in_(due.scalar_subquery()))
                   .values(lease_owner=bindparam("owner"), lease_token=bindparam("token"),
                           next_attempt_at=bindparam("until"))
                   .returning(*WF.c).cte("claimed"))
        # The attempt of the step the run is at starts now (as _COUNT_ATTEMPT): none for a
        # run with a cancel asked, or one past its last step.
        counted = (update(ST).where(ST.c.workflow_id == claimed.c.id,
                                    ST.c.seq == claimed.c.step, ST.c.status == STEP_PENDING,
                                    or_(claimed.c.status == PENDING,
                                        claimed.c.status == RUNNING),
                                    claimed.c.cancel_requested_at.is_(None))
                   .values(attempts=ST.c.attempts + 1, started_at=bindparam("now"))
                   .returning(ST.c.workflow_id, ST.c.attempts).cte("counted"))
        stmt = (select(claimed, counted.c.attempts.label("attempt_hint"))
                .select_from(claimed.outerjoin(counted, counted.c.workflow_id == claimed.c.id)))
        direct = by_limit[limit] = _ClaimDirect(engine, stmt)
    return direct


# --- running ----------------------------------------------------------------------------------


class LeaseLost(SimsmithError):
    """Another worker holds the run now (this one's lease ran out)."""


@contextmanager
def _fenced(engine: Engine, lease: Lease) -> Iterator[tuple[Session, Any]]:
    """A transaction in which the run is still ours: its row, read with the lease checked."""
    with transaction(engine) as s:
        row = core(s).execute(_FENCE, {"id": lease.workflow_id, "token": lease.token}).first()
        if row is None:
            raise LeaseLost(f"workflow {lease.workflow_id}: lease {lease.token} lost")
        yield s, row


_FENCE = (select(WF.c.id, WF.c.subject, WF.c.actor, WF.c.cancel_requested_at,
                 WF.c.cancel_requested_by, WF.c.cancel_reason)
          .where(WF.c.id == bindparam("id"), WF.c.lease_token == bindparam("token"))
          .with_for_update())


def _load(engine: Engine, lease: Lease) -> Any:
    with read_session(engine) as s:
        row = s.execute(_LOAD, {"id": lease.workflow_id}).first()
    return None if row is None else SimpleNamespace(**row._mapping, attempt_hint=None)


_LOAD = select(WF).where(WF.c.id == bindparam("id"))


def _run_of(row: Any, deps: Any, seq: int, attempt: int) -> Run:
    return Run(id=row.id, kind=row.kind, input=json.loads(row.input), data=json.loads(row.data),
               deps=deps, actor=row.actor, step_key=f"{row.id}/{seq}", attempt=attempt)


def _attempts(s: Session, wf_id: str, seq: int) -> tuple[int, int]:
    r = s.execute(select(ST.c.attempts, ST.c.compensation_attempts).where(
        ST.c.workflow_id == wf_id, ST.c.seq == seq)).one()
    return int(r[0]), int(r[1])


def _set_step(s: Session, wf_id: str, seq: int, **values: Any) -> None:
    s.execute(update(ST).where(ST.c.workflow_id == wf_id, ST.c.seq == seq).values(**values))


def _set_run(s: Session, wf_id: str, **values: Any) -> None:
    values.setdefault("updated_at", utcnow())
    s.execute(update(WF).where(WF.c.id == wf_id).values(**values))


def _is_transient(definition: Definition, e: BaseException) -> bool:
    if isinstance(e, StepFailed):
        return False
    return isinstance(e, (Transient, OSError, LeaseLost, *definition.transient))


def _describe(e: BaseException) -> str:
    return f"{type(e).__name__}: {e}"[:1000]


@contextmanager
def _instrument(kind: str, step: str, phase: str, run: Run) -> Iterator[None]:
    """The one place a step's execution is observed: a span `workflow.<kind>.<step>` in the
    run's trace, and the per-step latency histogram by outcome (simcore.telemetry)."""
    started = time.perf_counter()
    name = step if phase == "do" else f"{step}.undo"
    try:
        with telemetry.span(f"workflow.{kind}.{name}", workflow_id=run.id, step=step,
                            phase=phase, attempt=run.attempt, step_key=run.step_key):
            yield
    except BaseException as e:
        telemetry.record_step(kind, name, "error", time.perf_counter() - started)
        log.info("workflow.step.error", workflow_id=run.id, kind=kind, step=step, phase=phase,
                 attempt=run.attempt, error=type(e).__name__)
        raise
    telemetry.record_step(kind, name, "ok", time.perf_counter() - started)


def _traceparent(row: Any) -> dict[str, str] | None:
    """The run's trace as a W3C traceparent: its trace id and a parent span id fixed by the
    run's id, so every step of every attempt, on any worker, joins the request's trace."""
    if not row.trace_id:
        return None
    return {"traceparent": f"00-{row.trace_id}-{uuid.UUID(row.id).hex[:16]}-01"}


def advance(engine: Engine, lease: Lease, deps: Any, *, registry: Registry = REGISTRY,
            policy: RetryPolicy = RetryPolicy()) -> str:
    """Run the leased workflow as far as it goes now: every step until it finishes, or a step
    must wait for a retry. Returns the run's status when this worker lets it go."""
    row = lease.row if lease.row is not None else _load(engine, lease)
    if row is None or row.lease_token != lease.token:
        return "lost"
    definition = registry.get(row.kind)
    with telemetry.continue_trace(_traceparent(row)), telemetry.span(
            f"workflow.{row.kind}", workflow_id=row.id, worker=lease.owner):
        return _advance(engine, lease, definition, row, deps, policy)


def _advance(engine: Engine, lease: Lease, definition: Definition, row: Any, deps: Any,
             policy: RetryPolicy) -> str:
    try:
        while row.status in LIVE:
            if row.status == COMPENSATING:
                row = _compensate_one(engine, lease, definition, row, deps, policy)
            else:
                row = _forward_one(engine, lease, definition, row, deps, policy)
            if row is None:  # waiting for a retry: the lease is let go
                return "waiting"
        return str(row.status)
    except LeaseLost:
        log.warning("workflow.lease_lost", workflow_id=lease.workflow_id, owner=lease.owner)
        return "lost"


def _forward_one(engine: Engine, lease: Lease, d: Definition, row: Any, deps: Any,
                 policy: RetryPolicy) -> Any:
    seq = int(row.step)
    if seq >= len(d.steps):
        return _finish(engine, lease, d, SUCCEEDED, None)
    if row.cancel_requested_at is not None:  # read at the claim: nothing runs
        return _cancel_at_claim(engine, lease, d, row, seq)
    step = d.steps[seq]
    attempt = row.attempt_hint
    if attempt is None:
        with read_session(engine) as s:
            attempt = max(1, _attempts(s, row.id, seq)[0])
    run = _run_of(row, deps, seq, attempt)
    if step.when is not None and not step.when(run):
        return _record(engine, lease, d, row, run, None)
    result: dict[str, Any] = {}
    called = False
    try:
        with _instrument(d.kind, step.name, "do", run):
            if step.call is not None:
                result.update(step.call(run) or {})
                run.data.update(result)
            called = True
            return _record(engine, lease, d, row, run, result)
    except LeaseLost:
        raise
    except Exception as e:
        # Did the peer perhaps act? Then the step is undone too if the run is compensated.
        reached = step.call is not None and (called or getattr(e, "maybe_executed", True))
        _failed(engine, lease, d, row.id, seq, step, e, attempt, policy, reached)
        if _is_transient(d, e) and attempt < policy.max_attempts:
            return None
    return _load(engine, lease)


class _Unchain(Exception):
    """A store step recorded after the first one of a transaction failed: that transaction is
    rolled back and recorded again up to the step before it (which then runs on its own)."""

    def __init__(self, seq: int) -> None:
        super().__init__(seq)
        self.seq = seq


def _record(engine: Engine, lease: Lease, d: Definition, row: Any, run: Run,
            result: dict[str, Any] | None) -> Any:
    """Record the step `row.step` (done with its call's `result`, or skipped for None) and,
    in the same transaction, the store steps after it (a step without a peer call, or whose
    `already` says its call's effect is in place) and the run's finish after the last step.
    Each step keeps its own record; they commit together or not at all, so a worker killed
    in between redoes them all (the first one's call again: idempotent at the peer). The
    lease is checked by the run's UPDATE at the end (its row count): a worker whose lease ran
    out rolls everything back."""
    seq = int(row.step)
    called = dict(run.data)
    limit = len(d.steps)
    while True:
        run.data = dict(called)
        records: list[dict[str, Any]] = []
        try:
            with transaction(engine) as s, audit.deferred(s):
                if result is None:
                    records.append(_skipped(row.id, seq))
                else:
                    records.append(_commit(s, d.steps[seq], run, result, row.id, seq, 0))
                n = seq + 1
                while n < limit and _chain(s, d, run, row.id, n, records):
                    n += 1
                c = core(s)
                data = canonical_json(run.data)
                now = utcnow()
                cancelled = False
                pg = c.dialect.name == "postgresql"
                if pg:
                    # The step records, the run's move (or finish), the next step's attempt
                    # and the transaction's audit and outbox records (taken from
                    # audit.deferred, the run's finish with them) in one statement.
                    if n >= len(d.steps):
                        _finished_audit(s, d, row.id, SUCCEEDED, None, row.subject, row.actor)
                    params = _pg_move_params(records, row.id, lease, n, data, now)
                    batch = audit.take_deferred(s)
                    if batch is not None:
                        params.update(batch)
                    moved, nxt = c.execute(_PG_FINAL[n < len(d.steps), batch is not None],
                                           params).one()[:2]
                else:
                    c.execute(_STEP_RECORD, records)
                    if n < len(d.steps):
                        moved = c.execute(_NEXT_RUN, {
                            "w": row.id, "token": lease.token, "n": n, "d": data, "t": now,
                            "until": now + timedelta(seconds=lease.seconds)}).rowcount
                    else:
                        moved = c.execute(_FINISH_RUN, {
                            "w": row.id, "token": lease.token, "s": SUCCEEDED, "e": None,
                            "t": now, "n": n, "d": data}).rowcount
                if moved != 1 and n < len(d.steps):  # the lease lost, or a cancel asked
                    asked = c.execute(_CANCEL_ASKED, {"w": row.id,
                                                      "token": lease.token}).first()
                    if asked is not None:
                        _compensate_from(s, lease, asked, n - 1, data=data)
                        moved, cancelled = 1, True
                if moved != 1:
                    raise LeaseLost(f"workflow {row.id}: lease {lease.token} lost")
                if n >= len(d.steps) and not pg:
                    _finished_audit(s, d, row.id, SUCCEEDED, None, row.subject, row.actor)
                elif not cancelled and not pg:
                    nxt = int(c.execute(_NEXT_STEP, {"w": row.id, "n": n, "t": now}
                                        ).scalar_one())
        except _Unchain as u:
            limit = u.seq
            continue
        if cancelled:
            return _load(engine, lease)
        if n < len(d.steps):
            return SimpleNamespace(**{**vars(row), "step": n, "status": RUNNING, "data": data,
                                      "attempt_hint": nxt})
        _finished(lease, d, SUCCEEDED)
        return SimpleNamespace(**{**vars(row), "step": n, "status": SUCCEEDED, "data": data})


def _pg_move_params(records: list[dict[str, Any]], wf_id: str, lease: Lease, n: int,
                    data: str, now: datetime) -> dict[str, Any]:
    return {"w": wf_id, "token": lease.token, "n": n, "d": data, "t": now,
            "until": now + timedelta(seconds=lease.seconds),
            "ns": [r["n"] for r in records], "sts": [r["st"] for r in records],
            "ts": [r["t"] for r in records], "rs": [r["r"] for r in records],
            "keeps": [r["keep"] for r in records], "incs": [r["inc"] for r in records],
            "starts": [r["start"] for r in records]}


# PostgreSQL: _STEP_RECORD for every record of the transaction (arrays, unnest), then
# _NEXT_RUN and _NEXT_STEP (or _FINISH_RUN) as one statement. Returns the runs moved (0: the
# lease lost or a cancel asked; the records stand, as with separate statements — the caller
# rolls back on a lost lease) and the next step's attempt count.
_PG_RECORDS = (
    "rec AS (UPDATE workflow_step AS s SET status = v.st, finished_at = v.t, result = v.r, "
    "last_error = NULL, attempts = s.attempts * v.keep + v.inc, "
    "started_at = CASE WHEN v.keep = 0 THEN NULL ELSE coalesce(v.start, s.started_at) END "
    "FROM unnest(CAST(:ns AS integer[]), CAST(:sts AS varchar[]), "
    "CAST(:ts AS timestamptz[]), CAST(:rs AS varchar[]), CAST(:keeps AS integer[]), "
    "CAST(:incs AS integer[]), CAST(:starts AS timestamptz[])) "
    "AS v(n, st, t, r, keep, inc, start) "
    "WHERE s.workflow_id = :w AND s.seq = v.n RETURNING 1)")
_PG_MOVE = (
    "WITH " + _PG_RECORDS + ", "
    "run AS (UPDATE workflow SET step = :n, status = 'running', data = :d, updated_at = :t, "
    "next_attempt_at = :until WHERE id = :w AND lease_token = :token "
    "AND cancel_requested_at IS NULL RETURNING id), "
    "nxt AS (UPDATE workflow_step SET attempts = attempts + 1, started_at = :t "
    "WHERE workflow_id = (SELECT id FROM run) AND seq = :n RETURNING attempts) "
    "SELECT (SELECT count(*) FROM run), (SELECT attempts FROM nxt)")
_PG_FINISH = (
    "WITH " + _PG_RECORDS + ", "
    "run AS (UPDATE workflow SET status = 'succeeded', error = NULL, next_attempt_at = NULL, "
    "lease_owner = NULL, lease_token = NULL, finished_at = :t, updated_at = :t, step = :n, "
    "data = :d WHERE id = :w AND lease_token = :token RETURNING id) "
    "SELECT (SELECT count(*) FROM run), CAST(NULL AS integer)")
# (moves on, has deferred records) -> the statement; the records' call evaluated once, with
# the rest of the statement (a run not moved rolls it back, or a cancel commits it as before).
_PG_FINAL = {(move, records): text((_PG_MOVE if move else _PG_FINISH)
                                   + (", " + audit.PG_BATCH_CALL if records else ""))
             for move in (True, False) for records in (True, False)}


def _commit(s: Session, step: Step, run: Run, result: dict[str, Any], wf_id: str, seq: int,
            chained: int) -> dict[str, Any]:
    """The step's store half; returns its record (for _STEP_RECORD)."""
    if step.commit is not None:
        result.update(step.commit(s, run) or {})
        run.data.update(result)
    check_no_secrets(result, f"{step.name}.result")
    t = utcnow()
    return {"w": wf_id, "n": seq, "st": STEP_DONE, "t": t, "r": canonical_json(result),
            "keep": 1, "inc": chained, "start": t if chained else None}


def _skipped(wf_id: str, seq: int) -> dict[str, Any]:
    return {"w": wf_id, "n": seq, "st": STEP_SKIPPED, "t": utcnow(), "r": None, "keep": 0,
            "inc": 0, "start": None}


def _chain(s: Session, d: Definition, run: Run, wf_id: str, n: int,
           records: list[dict[str, Any]]) -> bool:
    """Record step `n` in the open transaction if it needs no peer call; False if it does."""
    step = d.steps[n]
    run.step_key, run.attempt = f"{wf_id}/{n}", 1
    try:
        if step.when is not None and not step.when(run):
            records.append(_skipped(wf_id, n))
            return True
        if step.call is not None and (step.already is None or not step.already(s, run)):
            return False
        with _instrument(d.kind, step.name, "do", run):
            records.append(_commit(s, step, run, {}, wf_id, n, 1))
    except Exception as e:
        raise _Unchain(n) from e
    return True


# A failed step's result when one of its attempts may have reached the peer.
_PEER_REACHED = '{"peer_reached":true}'


# The hot path's statements, built once (building one costs more than running it on SQLite).
# One statement records every step of a transaction (executemany: one round trip): done (the
# first step's attempt was counted when it started; a chained step's starts and ends here) or
# skipped (no attempt).
_STEP_RECORD = (
    update(ST).where(ST.c.workflow_id == bindparam("w"), ST.c.seq == bindparam("n"))
    .values(status=bindparam("st"), finished_at=bindparam("t"), result=bindparam("r"),
            last_error=None,
            attempts=ST.c.attempts * bindparam("keep", type_=Integer)
            + bindparam("inc", type_=Integer),
            started_at=case((bindparam("keep", type_=Integer) == 0, null()),
                            else_=func.coalesce(bindparam("start", type_=ST.c.started_at.type),
                                                ST.c.started_at))))
# The run moves on (or finishes), fenced: no row when the lease is no longer this worker's —
# or, to move on, when a cancel was asked (read then with _CANCEL_ASKED).
_NEXT_RUN = (update(WF).where(WF.c.id == bindparam("w"), WF.c.lease_token == bindparam("token"),
                              WF.c.cancel_requested_at.is_(None))
             .values(step=bindparam("n"), status=RUNNING, data=bindparam("d"),
                     updated_at=bindparam("t"), next_attempt_at=bindparam("until")))
_FINISH_RUN = (update(WF).where(WF.c.id == bindparam("w"),
                                WF.c.lease_token == bindparam("token"))
               .values(status=bindparam("s"), error=bindparam("e"), next_attempt_at=None,
                       lease_owner=None, lease_token=None, finished_at=bindparam("t"),
                       updated_at=bindparam("t"), step=bindparam("n"), data=bindparam("d")))
_CANCEL_ASKED = (select(WF.c.cancel_requested_by, WF.c.cancel_reason)
                 .where(WF.c.id == bindparam("w"), WF.c.lease_token == bindparam("token"),
                        WF.c.cancel_requested_at.is_not(None))
                 .with_for_update())
_NEXT_STEP = (update(ST).where(ST.c.workflow_id == bindparam("w"), ST.c.seq == bindparam("n"))
              .values(attempts=ST.c.attempts + 1, started_at=bindparam("t"))
              .returning(ST.c.attempts))


def _failed(engine: Engine, lease: Lease, d: Definition, wf_id: str, seq: int, step: Step,
            e: Exception, attempt: int, policy: RetryPolicy, reached: bool) -> None:
    error = _describe(e)
    retry = _is_transient(d, e) and attempt < policy.max_attempts
    log.info("workflow.step.failed", workflow_id=wf_id, step=step.name, attempt=attempt,
             retry=retry, error=error)
    if retry:
        telemetry.count_retry(d.kind, step.name)
    with _fenced(engine, lease) as (s, fence):
        if reached:  # sticky over the attempts: any one of them may have reached the peer
            _set_step(s, wf_id, seq, result=_PEER_REACHED)
        if retry:
            # A cancel asked while this attempt ran: no backoff, the next claim compensates.
            delay = 0.0 if fence.cancel_requested_at is not None else policy.delay(attempt)
            _set_step(s, wf_id, seq, last_error=error)
            _set_run(s, wf_id, status=RUNNING, lease_owner=None, lease_token=None,
                     next_attempt_at=utcnow() + timedelta(seconds=delay))
        else:
            _set_step(s, wf_id, seq, status=STEP_FAILED, last_error=error,
                      finished_at=utcnow())
            _set_run(s, wf_id, status=COMPENSATING, error=f"{step.name}: {error}",
                     step=seq, next_attempt_at=utcnow() + timedelta(seconds=lease.seconds))


def _compensate_one(engine: Engine, lease: Lease, d: Definition, row: Any, deps: Any,
                    policy: RetryPolicy) -> Any:
    # The next step to undo, last first, from `row.step` down: a done step with a
    # compensation (a step without one, like a check, stays done), and the step that failed
    # if it has a peer half to undo — its peer call may have taken effect before it failed
    # (a timeout after the peer executed); its store half never committed.
    with read_session(engine) as s:
        rows = s.execute(select(ST.c.seq, ST.c.compensation_attempts, ST.c.status,
                                ST.c.result).where(
            ST.c.workflow_id == row.id, ST.c.seq <= row.step, ST.c.compensated_at.is_(None),
            ST.c.status.in_((STEP_DONE, STEP_FAILED))).order_by(ST.c.seq.desc())).all()
    todo = [(int(q), int(t), st == STEP_FAILED) for q, t, st, res in rows
            if (st == STEP_DONE and (d.steps[q].undo is not None
                                     or d.steps[q].undo_commit is not None))
            or (st == STEP_FAILED and res == _PEER_REACHED and d.steps[q].undo is not None)]
    if not todo:
        return _finish(engine, lease, d, CANCELLED if _by_cancel(row.error) else FAILED,
                       row.error)
    seq, tried, failed_step = todo[0]
    step = d.steps[seq]
    run = _run_of(row, deps, seq, tried + 1)
    try:
        with _instrument(d.kind, step.name, "undo", run):
            with _fenced(engine, lease) as (s, _):
                _set_step(s, row.id, seq, compensation_attempts=tried + 1)
            if step.undo is not None:
                step.undo(run)
            with _fenced(engine, lease) as (s, _):
                if step.undo_commit is not None and not failed_step:
                    step.undo_commit(s, run)
                _set_step(s, row.id, seq, compensated_at=utcnow(),
                          status=STEP_FAILED if failed_step else STEP_COMPENSATED)
                _set_run(s, row.id, step=seq - 1,
                         next_attempt_at=utcnow() + timedelta(seconds=lease.seconds))
        telemetry.count_compensation(d.kind, step.name, "ok")
    except LeaseLost:
        raise
    except Exception as e:
        error = _describe(e)
        if tried + 1 < policy.max_undo_attempts:
            with _fenced(engine, lease) as (s, _):
                _set_step(s, row.id, seq, last_error=f"undo: {error}")
                _set_run(s, row.id, lease_owner=None, lease_token=None,
                         next_attempt_at=utcnow() + timedelta(seconds=policy.delay(tried + 1)))
            return None
        telemetry.count_compensation(d.kind, step.name, "failed")
        with _fenced(engine, lease) as (s, _):
            _set_step(s, row.id, seq, status=STEP_COMPENSATION_FAILED,
                      last_error=f"undo: {error}")
        return _finish(engine, lease, d, STUCK, f"{row.error}; undo {step.name}: {error}")
    return _load(engine, lease)


def _finish(engine: Engine, lease: Lease, d: Definition, status: str, error: str | None) -> Any:
    with _fenced(engine, lease) as (s, row):
        _finish_in(s, lease, d, status, error, row)
    _finished(lease, d, status)
    return _load(engine, lease)


def _finish_in(s: Session, lease: Lease, d: Definition, status: str, error: str | None,
               fence: Any) -> None:
    """The run's end, in the caller's fenced transaction (`fence`: its row)."""
    _set_run(s, lease.workflow_id, status=status, error=error, next_attempt_at=None,
             lease_owner=None, lease_token=None, finished_at=utcnow())
    _finished_audit(s, d, lease.workflow_id, status, error, fence.subject, fence.actor)


def _finished_audit(s: Session, d: Definition, wf_id: str, status: str, error: str | None,
                    subject: str | None, actor: str) -> None:
    details = {"workflow_id": wf_id, "subject": subject, "status": status, "error": error}
    audit.append(s, actor=actor, action=f"workflow.{d.kind}.{status}", subject_type="workflow",
                 subject_id=wf_id, details=details,
                 outbox=audit.Outbox(f"workflow.{d.kind}.{status}", "workflow", wf_id, details))


def _finished(lease: Lease, d: Definition, status: str) -> None:
    telemetry.record_workflow(d.kind, status)
    log.info("workflow.finished", workflow_id=lease.workflow_id, kind=d.kind, status=status)


# --- cancelling -------------------------------------------------------------------------------

# The run's error once a cancel stopped it; a step's failure reads "<step>: …", and step names
# have no spaces, so the prefix tells the two apart.
_CANCEL_PREFIX = "cancelled by "


def _by_cancel(error: str | None) -> bool:
    return bool(error) and str(error).startswith(_CANCEL_PREFIX)


def request_cancel(engine: Engine, workflow_id: str, *, actor: str, reason: str,
                   registry: Registry = REGISTRY) -> bool:
    """Ask a run that has not finished to stop: marked now (audited, `workflow.<kind>.
    cancel_requested` in the outbox), acted on by the worker at the next step boundary.
    False if a cancel was already asked (nothing more is done); Conflict if the run has
    finished, is already being compensated after a failure, or is of a kind that only goes
    forward."""
    with transaction(engine) as s:
        row = s.execute(select(WF.c.kind, WF.c.status, WF.c.subject, WF.c.error,
                               WF.c.lease_token, WF.c.cancel_requested_at)
                        .where(WF.c.id == workflow_id).with_for_update()).first()
        if row is None:
            raise NotFound(f"no workflow {workflow_id}")
        if row.cancel_requested_at is not None:
            return False
        if row.status in FINISHED:
            raise Conflict(f"workflow {workflow_id} has finished ({row.status}): nothing to "
                           "cancel")
        if not registry.get(row.kind).cancellable:
            raise Conflict(f"workflow {workflow_id}: a {row.kind} goes forward until it is "
                           "done; it cannot be cancelled")
        if row.status == COMPENSATING:
            raise Conflict(f"workflow {workflow_id} is already being compensated after a "
                           f"failure ({row.error})")
        now = utcnow()
        values: dict[str, Any] = {"cancel_requested_at": now, "cancel_requested_by": actor,
                                  "cancel_reason": reason, "updated_at": now}
        if row.lease_token is None:  # pending, or waiting for a retry: act on it now
            values["next_attempt_at"] = now
            wakeup.notify(core(s))
        s.execute(update(WF).where(WF.c.id == workflow_id).values(**values))
        details = {"workflow_id": workflow_id, "subject": row.subject, "status": row.status,
                   "reason": reason}
        action = f"workflow.{row.kind}.cancel_requested"
        audit.append(s, actor=actor, action=action, subject_type="workflow",
                     subject_id=workflow_id, details=details,
                     outbox=audit.Outbox(action, "workflow", workflow_id, details))
    log.info("workflow.cancel_requested", workflow_id=workflow_id, actor=actor)
    return True


def _compensate_from(s: Session, lease: Lease, asked: Any, seq: int, **values: Any) -> None:
    """Turn the run (fenced by the caller) to compensating from step `seq` down."""
    error = f"{_CANCEL_PREFIX}{asked.cancel_requested_by}: {asked.cancel_reason}"[:1000]
    _set_run(s, lease.workflow_id, status=COMPENSATING, step=seq, error=error,
             next_attempt_at=utcnow() + timedelta(seconds=lease.seconds), **values)
    log.info("workflow.cancelling", workflow_id=lease.workflow_id, at_step=seq)


def _cancel_at_claim(engine: Engine, lease: Lease, d: Definition, row: Any, seq: int) -> Any:
    """A claimed run with a cancel asked: step `seq` is not run. If an attempt of it started
    before (a worker may have died after its peer call and before the record) and it has a
    peer half, it is undone too, as a failed step that may have reached its peer: undoing is
    idempotent at the peer, so undoing what never happened is harmless."""
    with _fenced(engine, lease) as (s, fence):
        attempts, _ = _attempts(s, row.id, seq)
        if attempts > 0 and d.steps[seq].call is not None:
            _set_step(s, row.id, seq, status=STEP_FAILED, result=_PEER_REACHED,
                      last_error="cancelled before this attempt was recorded",
                      finished_at=utcnow())
        _compensate_from(s, lease, fence, seq)
    return _load(engine, lease)


# --- the worker -------------------------------------------------------------------------------


@dataclass
class Worker:
    """Claims due runs and advances them. `run_once` for tests and loops; `run_until` for a
    process (simsmith worker, the API's background thread)."""

    engine: Engine
    deps: Any
    owner: str = field(default_factory=lambda: f"w-{uuid.uuid4().hex[:12]}")
    lease: float = 30.0
    batch: int = 4
    policy: RetryPolicy = field(default_factory=RetryPolicy)
    registry: Registry = field(default_factory=lambda: REGISTRY)
    _busy: bool = field(default=False, init=False, repr=False)  # the last claim found work

    def run_once(self) -> int:
        """Claim and advance what is due now; returns how many runs were claimed."""
        leases = claim(self.engine, self.owner, limit=self.batch, lease=self.lease,
                       peek=not self._busy)
        self._busy = bool(leases)
        for lease in leases:
            advance(self.engine, lease, self.deps, registry=self.registry, policy=self.policy)
        return len(leases)

    def run_until(self, stopped: Callable[[], bool], *, idle: float = 0.2,
                  sleep: Callable[[float], Any] | None = None) -> None:
        import time

        nap = sleep or time.sleep
        while not stopped():
            try:
                n = self.run_once()
            except Exception as e:  # the loop survives a bad run or a database blip
                log.error("workflow.worker.error", owner=self.owner, error=_describe(e))
                n = 0
            if n == 0:
                nap(idle)


def drain(engine: Engine, deps: Any, *, policy: RetryPolicy = RetryPolicy(),
          registry: Registry = REGISTRY, rounds: int = 1000) -> None:
    """Run everything due until nothing is (tests, the CLI's --wait)."""
    w = Worker(engine, deps, policy=policy, registry=registry)
    for _ in range(rounds):
        if w.run_once() == 0:
            return


__all__: Sequence[str] = (
    "CANCELLED", "COMPENSATING", "FAILED", "PENDING", "REGISTRY", "RUNNING", "STUCK", "SUCCEEDED",
    "Definition", "Lease", "Registry", "RetryPolicy", "Run", "Step", "StepFailed", "Transient",
    "Worker", "advance", "claim", "drain", "request_cancel", "start",
)
