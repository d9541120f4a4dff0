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
) -> None:
    """Serve the API (settings from SIMSMITH_* variables; JSON logs on stderr)."""
    import os

    from api import server

    if smdp not in ("es2plus", "in-process"):
        raise typer.BadParameter(f"--smdp {smdp!r}: expected es2plus or in-process")
    os.environ.setdefault("SIMSMITH_SMDP_MODE", smdp)  # read by each worker's ApiSettings

    from api.settings import ApiSettings
    from simcore.smdp.es2plus_port import check_smdp_settings

    # Refuse bad settings (placeholders in production, an SM-DP+ address no LPA could use)
    # before starting, with one clear line.
    check_smdp_settings(ApiSettings().smdp_address)
    engine().dispose()  # refuse an unmigrated database before starting
    # Several workers: one SO_REUSEPORT socket each, so the kernel spreads connections (api.server).
    server.run(host, port, workers, access_log=False, log_level="warning", server_header=False)


def register(app: typer.Typer) -> None:
    app.command("serve")(handle_errors(serve))
