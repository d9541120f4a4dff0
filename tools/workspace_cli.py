"""`simsmith init`, `simsmith db …` and `simsmith demo`: the workspace and its store."""

from __future__ import annotations

import typer

from simcore import db, inventory, msisdn_pool
from simcore.identifiers import Iccid
from tools.common import JsonOpt, actor, console, engine, handle_errors, print_json, settings
from tools.inventory_cli import show_summary

db_app = typer.Typer(no_args_is_help=True, help="The inventory database: migrations.")

# The demo network: test PLMN 001-01 (3GPP TS 23.003 / E.212 test MCC), ICCIDs with the
# "88" country code of the ITU's test allocation, UK drama numbers (Ofcom 07700 900xxx).
DEMO_ICCIDS = (Iccid.from_body("8988211000000000000").digits,
               Iccid.from_body("8988211000000999999").digits)
DEMO_IMSIS = ("001010000000000", "001010000999999")
DEMO_MSISDNS = ("447700900000", "447700900999")


def init_workspace() -> str:
    s = settings()
    s.home.mkdir(parents=True, exist_ok=True)
    eng = engine(check=False)
    db.upgrade(eng)
    return eng.url.render_as_string(hide_password=True)


def init(as_json: bool = JsonOpt) -> None:
    """Create the workspace (SIMSMITH_HOME) and migrate its database."""
    url = init_workspace()
    home = settings().home.resolve()
    if as_json:
        print_json({"home": str(home), "database": url, "revision": db.head_revision()})
    else:
        console.print(f"workspace {home}\ndatabase  {url} (schema {db.head_revision()})")


@db_app.command("upgrade")
@handle_errors
def upgrade(revision: str = typer.Argument("heads", help="Target revision.")) -> None:
    """Migrate the database (SIMSMITH_DATABASE_URL) to the latest schema."""
    eng = engine(check=False)
    db.upgrade(eng, revision)
    console.print(f"database at schema revision {db.current_revision(eng)}")


@db_app.command("current")
@handle_errors
def current(as_json: bool = JsonOpt) -> None:
    """Show the database's schema revision and the one this simsmith needs."""
    eng = engine(check=False)
    cur, head = db.current_revision(eng), db.head_revision()
    if as_json:
        print_json({"current": cur, "head": head, "up_to_date": cur == head})
    else:
        console.print(f"current {cur or '(none)'}, head {head}")


def demo(as_json: bool = JsonOpt) -> None:
    """The main job of `make run`: a workspace with demo ranges and 1,000 demo SIMs, and an
    inventory summary. Running it again only prints the summary."""
    init_workspace()
    eng = engine()
    if not inventory.list_ranges(eng):
        inventory.add_range(eng, "iccid", *DEMO_ICCIDS, name="demo-iccid", actor=actor())
        inventory.add_range(eng, "imsi", *DEMO_IMSIS, name="demo-imsi", mnc_length=2,
                            actor=actor())
        msisdn_pool.add_msisdn_range(eng, *DEMO_MSISDNS, name="demo-msisdn", actor=actor())
    if not inventory.list_sims(eng, batch=None, limit=1):
        inventory.generate_sims(eng, 1000, batch="demo", actor=actor(), form_factor="3FF")
        for i in range(3):
            sim = inventory.allocate(eng, f"demo-customer-{i + 1}", actor=actor())
            inventory.activate(eng, sim.iccid, actor=actor(), msisdn="auto")
    show_summary(as_json)


def register(app: typer.Typer) -> None:
    app.command("init")(handle_errors(init))
    app.command("demo")(handle_errors(demo))
    app.add_typer(db_app, name="db")
