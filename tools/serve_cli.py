"""`simsmith serve`: the provisioning API under uvicorn (api.main:create_app)."""

from __future__ import annotations

import typer

from tools.common import engine, handle_errors


def serve(
    host: str = typer.Option("127.0.0.1", "--host", help="Address to listen on."),
    port: int = typer.Option(8000, "--port"),
    workers: int = typer.Option(1, "--workers", min=1, help="Worker processes (on Linux each "
                                "with its own SO_REUSEPORT socket: connections spread evenly)."),
    smdp: str = typer.Option("es2plus", "--smdp", help="SM-DP+ when SIMSMITH_SMDP_URL is unset: "
                             "es2plus (simsmith's own ES2+ endpoint over mutual TLS on loopback) "
                             "or in-process."),
    es9plus_port: int | None = typer.Option(
        None, "--es9plus-port", min=0, max=65535, envvar="SIMSMITH_ES9PLUS_PORT",
        help="Serve the SM-DP+'s ES9+ (profile download for LPAs) over HTTPS on this port of "
        "SIMSMITH_ES9PLUS_HOST (127.0.0.1; `make run`: 8443); unset or 0: no ES9+ listener. "
        "In a development workspace with the demo SM-DP+ address, activation codes then name "
        "127.0.0.1:<port>."),
) -> None:
    """Serve the API (settings from SIMSMITH_* variables; JSON logs on stderr)."""
    import os

    from api import server

    if smdp not in ("es2plus", "in-process"):
        raise typer.BadParameter(f"--smdp {smdp!r}: expected es2plus or in-process")
    os.environ.setdefault("SIMSMITH_SMDP_MODE", smdp)  # read by each worker's ApiSettings
    _es9plus_address(es9plus_port)

    from api.settings import ApiSettings
    from simcore.smdp.es2plus_port import check_smdp_settings

    # Refuse bad settings (placeholders in production, an SM-DP+ address no LPA could use)
    # before starting, with one clear line.
    check_smdp_settings(ApiSettings().smdp_address)
    engine().dispose()  # refuse an unmigrated database before starting
    # Several workers: one SO_REUSEPORT socket each, so the kernel spreads connections (api.server).
    server.run(host, port, workers, access_log=False, log_level="warning", server_header=False)


def _es9plus_address(port: int | None) -> None:
    """Tell each worker to serve ES9+ on `port` (SIMSMITH_ES9PLUS_PORT), and — in a development
    workspace still on the demo SM-DP+ address, which no LPA can reach — make the listener's
    `host:port` the SM-DP+ address, so the activation codes handed out point at it (a lab
    address: SIMSMITH_SMDP_ALLOW_LAB_ADDRESS, logged)."""
    import os

    if not port:
        os.environ.pop("SIMSMITH_ES9PLUS_PORT", None)
        return
    from api.settings import DEMO_SMDP_ADDRESS, ApiSettings
    from simcore.smdp.es2plus_port import SmdpSettings
    from simcore.smdp.es9plus_settings import Es9PlusSettings

    if SmdpSettings().url:
        os.environ.pop("SIMSMITH_ES9PLUS_PORT", None)
        return
    os.environ["SIMSMITH_ES9PLUS_PORT"] = str(port)
    api = ApiSettings()
    if api.mode == "dev" and api.smdp_address == DEMO_SMDP_ADDRESS:
        host = Es9PlusSettings().host
        reach = "127.0.0.1" if host in ("", "0.0.0.0") else host  # a bind-all: reach it on loopback
        os.environ["SIMSMITH_SMDP_ADDRESS"] = f"{reach}:{port}"
        os.environ["SIMSMITH_SMDP_ALLOW_LAB_ADDRESS"] = "1"


def register(app: typer.Typer) -> None:
    app.command("serve")(handle_errors(serve))
