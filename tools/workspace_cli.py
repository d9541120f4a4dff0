"""`simsmith init`, `simsmith db …` and `simsmith demo`: the workspace and its store."""

from __future__ import annotations

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


def _demo_hsm() -> None:
    """The dev-mode soft HSM (insecure, sealed on disk; it says so) and keys for every SIM."""
    import warnings

    from hsm_sim.soft import SoftHsm
    from simcore import keys
    from simcore.hsm_access import hsm_dir

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # `make run` is dev mode by definition
        hsm = SoftHsm.dev(hsm_dir(settings()))
    eng = engine()
    for batch in ("demo", "demo-esim"):
        keys.generate_keys(eng, hsm, actor=actor(), batch=batch)


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
    profiles (keys in the dev-mode soft HSM), a demo API key, and an inventory summary; with
    --serve, the API on 127.0.0.1. Running it again only prints the summary."""
    from simcore import esim_orders

    init_workspace()
    eng = engine()
    if not ranges.list_ranges(eng):
        ranges.add_range(eng, "iccid", *DEMO_ICCIDS, name="demo-iccid", actor=actor())
        ranges.add_range(eng, "imsi", *DEMO_IMSIS, name="demo-imsi", mnc_length=2,
                         actor=actor())
        msisdn_pool.add_msisdn_range(eng, *DEMO_MSISDNS, name="demo-msisdn", actor=actor())
    if not inventory.list_sims(eng, batch=None, limit=1):
        inventory.generate_sims(eng, 1000, batch="demo", actor=actor(), form_factor="3FF")
        for i in range(3):
            sim = inventory.allocate(eng, f"demo-customer-{i + 1}", actor=actor())
            inventory.activate(eng, sim.iccid, actor=actor(), msisdn="auto")
    if not inventory.list_sims(eng, kind="esim", limit=1):
        inventory.generate_sims(eng, DEMO_ESIMS, batch="demo-esim", kind="esim",
                                actor=actor())
        esim_orders.stock_profiles(eng, actor=actor(), batch="demo-esim")
        _demo_hsm()
    key = demo_api_key()
    console_user, console_password = demo_console_user()
    from tools.inventory_cli import show_summary  # the HSM CLI with it: only when run

    show_summary(as_json)
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
                      f"SM-DP+ ES9+   https://127.0.0.1:{DEMO_ES9PLUS_PORT}   (activation codes "
                      f"name 127.0.0.1:{DEMO_ES9PLUS_PORT}; LPAs trust "
                      f"{settings().home / 'pki' / 'rsp' / 'ci.pem'})\n", soft_wrap=True)
        run_server(host="127.0.0.1", port=port, workers=1, smdp="es2plus",
                   es9plus_port=DEMO_ES9PLUS_PORT)


def register(app: typer.Typer) -> None:
    app.command("init")(handle_errors(init))
    app.command("demo")(handle_errors(demo))
    app.add_typer(db_app, name="db")
