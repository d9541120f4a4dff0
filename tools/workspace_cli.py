"""`simsmith init`, `simsmith db …` and `simsmith demo`: the workspace and its store."""

from __future__ import annotations

from typing import Any

import typer

from simcore import db, inventory, msisdn_pool, ranges
from simcore.errors import NotFound
from simcore.identifiers import Iccid
from tools.common import JsonOpt, actor, console, engine, handle_errors, print_json, settings

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


DEMO_ESIMS = 200
DEMO_KEY_FILE = "demo-api-key"
DEMO_ES9PLUS_PORT = 8443  # the SM-DP+'s ES9+ listener of `make run` (activation codes name it)


def _open_demo_hsm() -> Any:
    """The dev-mode soft HSM (insecure, sealed on disk; it says so)."""
    import warnings

    from hsm_sim.soft import SoftHsm
    from simcore.hsm_access import hsm_dir

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # `make run` is dev mode by definition
        return SoftHsm.dev(hsm_dir(settings()))


def _demo_hsm() -> None:
    """The dev-mode soft HSM and keys for every SIM."""
    from simcore import keys

    hsm = _open_demo_hsm()
    eng = engine()
    for batch in ("demo", "demo-esim"):
        keys.generate_keys(eng, hsm, actor=actor(), batch=batch)


DEMO_CUSTOMERS = 3


def _demo_activation_key(n: int) -> str:
    return f"demo-activation-{n}"


def _demo_activations(start: bool) -> Any:
    """The demo customers activated as durable workflows (`start`: the first run), carried out
    here through the configured HLR — the embedded one in a fresh workspace, so this works
    with nothing else running. Returns the first customer's run (None in a workspace made
    before the demo activated through workflows)."""
    import time

    from sqlalchemy import select

    from simcore.db import read_session
    from simcore.workflows import service
    from simcore.workflows.engine import Worker
    from simcore.workflows.models import Workflow
    from simcore.workflows.runtime import WorkflowSettings, build_deps

    eng = engine()
    if start:
        ids = [service.start_activation(eng, {"subscriber_ref": f"demo-customer-{n}"},
                                        actor=actor(), idempotency_key=_demo_activation_key(n))
               for n in range(1, DEMO_CUSTOMERS + 1)]
        wf_settings = WorkflowSettings()
        worker = Worker(eng, build_deps(eng, wf_settings, smdp=None, hsm=_open_demo_hsm),
                        policy=wf_settings.policy())
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and not all(
                service.get_workflow(eng, i).finished for i in ids):
            if worker.run_once() == 0:
                time.sleep(0.05)
    with read_session(eng) as s:
        first = s.execute(select(Workflow.id).where(  # type: ignore[call-overload]
            Workflow.idempotency_key == _demo_activation_key(1))).scalar_one_or_none()
    return None if first is None else service.get_workflow(eng, first)


def _show_activation(v: Any) -> None:
    """The demo activation as `make run` prints it: the steps, what it made, the HLR entry."""
    from simcore.config import get_settings, hlr_choice

    steps = " → ".join(f"{s.name} {'✓' if s.status == 'done' else s.status}" for s in v.steps)
    took = (v.finished_at - v.created_at).total_seconds() if v.finished_at else None
    d = v.data
    console.print(f"\nactivation of {v.input['subscriber_ref']} (durable workflow {v.id}): "
                  f"{v.status}" + (f" in {took:.2f} s" if took is not None else ""),
                  soft_wrap=True)
    console.print(f"  {steps}", soft_wrap=True)
    if v.error:
        console.print(f"  error: {v.error}", soft_wrap=True)
    if v.status == "succeeded":
        hlr = hlr_choice(get_settings())
        console.print(f"  SIM {d.get('iccid')}   IMSI {d.get('imsi')}   MSISDN {d.get('msisdn')}"
                      f"\n  HLR ({hlr}): subscriber {d.get('imsi')} with MSISDN "
                      f"{d.get('msisdn')}, access allowed"
                      + (f"   (simsmith hlr show {d.get('msisdn')})" if hlr == "embedded"
                         else ""), soft_wrap=True)


def demo_api_key() -> str:
    """The demo's admin API key: made once, kept in the workspace (dev mode only)."""
    from simcore import apikeys

    path = settings().home / DEMO_KEY_FILE
    if path.is_file():
        key = path.read_text().strip()
        try:
            apikeys.authenticate(engine(), key)
            return key
        except apikeys.InvalidApiKey:
            pass  # revoked or from another database: make a new one
    _, key = apikeys.create(engine(), "demo", ["admin"], actor=actor())
    path.write_text(key + "\n")
    path.chmod(0o600)
    return key


DEMO_CONSOLE_USER = "demo"
DEMO_CONSOLE_FILE = "demo-console-password"


def demo_console_user() -> tuple[str, str]:
    """The demo's console user and password: a random password made once per workspace, kept
    in the workspace (0600, dev mode only); the store holds only its argon2id hash."""
    from simcore.console import users

    path = settings().home / DEMO_CONSOLE_FILE
    eng = engine()
    try:
        users.get(eng, DEMO_CONSOLE_USER)
        if path.is_file():
            return DEMO_CONSOLE_USER, path.read_text().strip()
        password = users.generate_password()
        users.set_password(eng, DEMO_CONSOLE_USER, password, actor=actor())
    except NotFound:
        password = users.generate_password()
        users.create(eng, DEMO_CONSOLE_USER, password, ["admin", "care:access-codes"],
                     actor=actor())
    path.write_text(password + "\n")
    path.chmod(0o600)
    return DEMO_CONSOLE_USER, password


def demo(
    as_json: bool = JsonOpt,
    serve: bool = typer.Option(False, "--serve", help="Then serve the API on 127.0.0.1."),
    port: int = typer.Option(8000, "--port", help="Port for --serve."),
) -> None:
    """The main job of `make run`: a workspace with demo ranges, 1,000 demo SIMs and 200 eSIM
    profiles (keys in the dev-mode soft HSM), three demo customers activated end to end as
    durable workflows (the embedded HLR unless SIMSMITH_HLR_HOST names an osmo-hlr), a demo API
    key, an inventory summary and the first activation's result; with --serve, the API on
    127.0.0.1. Running it again only prints the summary and that result."""
    from simcore import esim_orders

    init_workspace()
    eng = engine()
    fresh = not inventory.list_sims(eng, batch=None, limit=1)
    if not ranges.list_ranges(eng):
        ranges.add_range(eng, "iccid", *DEMO_ICCIDS, name="demo-iccid", actor=actor())
        ranges.add_range(eng, "imsi", *DEMO_IMSIS, name="demo-imsi", mnc_length=2,
                         actor=actor())
        msisdn_pool.add_msisdn_range(eng, *DEMO_MSISDNS, name="demo-msisdn", actor=actor())
    if fresh:
        inventory.generate_sims(eng, 1000, batch="demo", actor=actor(), form_factor="3FF")
    if not inventory.list_sims(eng, kind="esim", limit=1):
        inventory.generate_sims(eng, DEMO_ESIMS, batch="demo-esim", kind="esim",
                                actor=actor())
        esim_orders.stock_profiles(eng, actor=actor(), batch="demo-esim")
        _demo_hsm()
    # The demo customers are activated end to end: reserve, MSISDN, keys, HLR, active, notify.
    activation = _demo_activations(start=fresh)
    key = demo_api_key()
    console_user, console_password = demo_console_user()
    from tools.inventory_cli import show_summary  # the HSM CLI with it: only when run

    show_summary(as_json)
    if activation is not None and not as_json:
        _show_activation(activation)
    if serve:
        from tools.serve_cli import serve as run_server

        url = f"http://127.0.0.1:{port}"
        console.print(f"\nsimsmith API   {url}\nAPI docs       {url}/docs\n"
                      f"console        {url}/console/   user {console_user}, password "
                      f"{console_password}   (also in {settings().home / DEMO_CONSOLE_FILE})\n"
                      f"demo API key   {key}   (admin; also in {settings().home / DEMO_KEY_FILE})"
                      f"\ntry           curl -s -X POST {url}/v1/esim-profiles "
                      f"-H 'Authorization: Bearer {key}' -H 'Content-Type: application/json' "
                      "-d '{\"external_ref\": \"me\"}'\n"
                      f"activate      curl -s -X POST {url}/v1/activations "
                      f"-H 'Authorization: Bearer {key}' -H 'Content-Type: application/json' "
                      "-d '{\"subscriber_ref\": \"me\"}'   (or: simsmith activate me --wait 30)\n"
                      f"SM-DP+ ES9+   https://127.0.0.1:{DEMO_ES9PLUS_PORT}   (activation codes "
                      f"name 127.0.0.1:{DEMO_ES9PLUS_PORT}; LPAs trust "
                      f"{settings().home / 'pki' / 'rsp' / 'ci.pem'})\n", soft_wrap=True)
        run_server(host="127.0.0.1", port=port, workers=1, smdp="es2plus",
                   es9plus_port=DEMO_ES9PLUS_PORT)


def register(app: typer.Typer) -> None:
    app.command("init")(handle_errors(init))
    app.command("demo")(handle_errors(demo))
    app.add_typer(db_app, name="db")
