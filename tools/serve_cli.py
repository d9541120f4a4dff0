"""`simsmith serve`: the provisioning API under uvicorn (api.main:create_app)."""

from __future__ import annotations

import typer

from tools.common import engine, handle_errors


def serve(
    host: str = typer.Option("127.0.0.1", "--host", help="Address to listen on."),
    port: int = typer.Option(8000, "--port"),
    workers: int = typer.Option(1, "--workers", min=1, help="Worker processes."),
) -> None:
    """Serve the API (settings from SIMSMITH_* variables; JSON logs on stderr)."""
    import uvicorn

    from api.settings import ApiSettings

    ApiSettings()  # refuse bad settings (e.g. placeholders in production) before starting
    engine().dispose()  # refuse an unmigrated database before starting
    uvicorn.run("api.main:create_app", factory=True, host=host, port=port, workers=workers,
                access_log=False, log_level="warning", server_header=False)


def register(app: typer.Typer) -> None:
    app.command("serve")(handle_errors(serve))
