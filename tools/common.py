"""What every command shares: settings, the store (schema checked), output and errors.

Errors are one line on stderr naming the input at fault, with a non-zero exit: 1 for a refused
operation or bad input, 2 for usage errors (Typer's own).
"""

from __future__ import annotations

import atexit
import functools
import json
import sys
from collections.abc import Callable, Iterable, Sequence
from datetime import datetime
from typing import Any, ParamSpec, TypeVar

import typer
from rich.console import Console
from rich.table import Table
from sqlalchemy import Engine

from simcore import db
from simcore.config import Settings, get_settings
from simcore.errors import SimsmithError
from simcore.log import configure

P = ParamSpec("P")
R = TypeVar("R")

# Piped output is not cut at 80 columns: ICCIDs and hashes stay whole.
console = Console(highlight=False, width=None if sys.stdout.isatty() else 200)
err_console = Console(stderr=True, highlight=False, width=None if sys.stderr.isatty() else 200)

JsonOpt = typer.Option(False, "--json", help="Machine-readable JSON output.")


def settings() -> Settings:
    s = get_settings()
    configure(s.log_level or "WARNING", s.log_json)
    _tracing()
    return s


@functools.cache
def _tracing() -> None:
    # Traces only when OTEL_* asks (docs/observability.md); flushed before the command exits.
    from simcore import telemetry

    if telemetry.configure_tracing("simsmith-cli"):
        atexit.register(telemetry.shutdown)


def engine(check: bool = True) -> Engine:
    """The store from SIMSMITH_DATABASE_URL; refuses an unmigrated database when `check`."""
    eng = db.make_engine(settings().effective_database_url)
    if check:
        db.check_schema(eng)
    return eng


def actor() -> str:
    return settings().actor


def fail(message: str, code: int = 1) -> None:
    err_console.print(f"error: {message}", markup=False, soft_wrap=True)
    raise typer.Exit(code)


def handle_errors(fn: Callable[P, R]) -> Callable[P, R]:
    """Turn simsmith's errors into one line on stderr and exit 1."""

    @functools.wraps(fn)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return fn(*args, **kwargs)
        except SimsmithError as e:
            fail(str(e))
            raise AssertionError("unreachable") from e

    return wrapper


def _default(o: Any) -> Any:
    if isinstance(o, datetime):
        return o.isoformat()
    raise TypeError(f"not JSON serialisable: {type(o).__name__}")


def print_json(value: Any) -> None:
    sys.stdout.write(json.dumps(value, default=_default, indent=2, sort_keys=False) + "\n")


def print_table(title: str | None, columns: Sequence[str], rows: Iterable[Sequence[Any]]) -> None:
    t = Table(title=title)
    for c in columns:
        t.add_column(c)
    for r in rows:
        t.add_row(*("" if v is None else str(v) for v in r))
    console.print(t)


def sim_public(sim: Any) -> dict[str, Any]:
    """A SIM as shown to people and scripts: no key references, only whether keys exist."""
    return {
        "iccid": sim.iccid, "imsi": sim.imsi, "kind": sim.kind, "form_factor": sim.form_factor,
        "state": sim.state, "profile_state": sim.profile_state,
        "subscriber_ref": sim.subscriber_ref, "msisdn": sim.msisdn, "eid": sim.eid,
        "batch_id": sim.batch_id, "has_keys": bool(sim.ki_ref), "reason": sim.reason,
        "former_imsi": sim.former_imsi, "quarantine_until": sim.quarantine_until,
        "version": sim.version, "created_at": sim.created_at, "updated_at": sim.updated_at,
    }
