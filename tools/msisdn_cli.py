"""`simsmith msisdn`: the MSISDN pool."""

from __future__ import annotations

import typer

from simcore import msisdn_pool
from simcore.config import get_settings
from tools.common import JsonOpt, actor, engine, handle_errors, print_json, print_table

app = typer.Typer(no_args_is_help=True)

COLUMNS = ("msisdn", "state", "iccid", "quarantine_until")


def _row(e: object) -> dict[str, object]:
    return {c: getattr(e, c) for c in COLUMNS}


@app.command("add-range")
@handle_errors
def add_range(first: str = typer.Argument(...), last: str = typer.Argument(...),
              name: str = typer.Option(..., "--name"), as_json: bool = JsonOpt) -> None:
    """Add an MSISDN range; every number joins the pool as available."""
    n = msisdn_pool.add_msisdn_range(engine(), first, last, name=name, actor=actor())
    print_json({"name": name, "added": n}) if as_json else print_table(
        None, ["name", "numbers added"], [(name, n)])


@app.command("assign")
@handle_errors
def assign(iccid: str = typer.Argument(...),
           msisdn: str = typer.Option("auto", "--msisdn", help="A number, or 'auto'."),
           as_json: bool = JsonOpt) -> None:
    """Give a SIM an MSISDN from the pool."""
    number = msisdn_pool.assign(engine(), msisdn, iccid, actor=actor())
    print_json({"iccid": iccid, "msisdn": number}) if as_json else print_table(
        None, ["iccid", "msisdn"], [(iccid, number)])


@app.command("release")
@handle_errors
def release(msisdn: str = typer.Argument(...),
            days: int | None = typer.Option(None, "--days", help="Quarantine days."),
            as_json: bool = JsonOpt) -> None:
    """Take a number off its SIM into quarantine."""
    d = get_settings().quarantine_days if days is None else days
    e = msisdn_pool.release(engine(), msisdn, actor=actor(), quarantine_days=d)
    print_json(_row(e)) if as_json else print_table(None, COLUMNS, [list(_row(e).values())])


@app.command("recycle")
@handle_errors
def recycle(msisdn: str = typer.Argument(...), as_json: bool = JsonOpt) -> None:
    """Return a number whose quarantine is over to the available pool."""
    e = msisdn_pool.recycle(engine(), msisdn, actor=actor())
    print_json(_row(e)) if as_json else print_table(None, COLUMNS, [list(_row(e).values())])


@app.command("show")
@handle_errors
def show(msisdn: str = typer.Argument(...), as_json: bool = JsonOpt) -> None:
    """One number of the pool."""
    e = msisdn_pool.get(engine(), msisdn)
    print_json(_row(e)) if as_json else print_table(None, COLUMNS, [list(_row(e).values())])


@app.command("list")
@handle_errors
def list_(state: str | None = typer.Option(None, "--state"),
          after: str | None = typer.Option(None, "--after"),
          limit: int = typer.Option(100, "--limit"), as_json: bool = JsonOpt) -> None:
    """Numbers of the pool in order."""
    rows = [_row(e) for e in msisdn_pool.list_msisdns(engine(), state=state, after=after,
                                                        limit=limit)]
    print_json(rows) if as_json else print_table(f"{len(rows)} numbers", COLUMNS,
                                                 [list(r.values()) for r in rows])
