"""`simsmith pki`: the development PKI for ES2+ mutual TLS (esim.pki)."""

from __future__ import annotations

from pathlib import Path

import typer

from esim.pki import DEFAULT_CLIENT, DEFAULT_HOSTS, dev_init
from tools.common import JsonOpt, console, handle_errors, print_json, settings

app = typer.Typer(no_args_is_help=True)


@app.command("dev-init")
@handle_errors
def dev_init_cmd(
    directory: Path | None = typer.Option(
        None, "--dir", help="Where to write (default $SIMSMITH_HOME/pki)."),
    host: list[str] = typer.Option(
        list(DEFAULT_HOSTS), "--host", help="Server certificate name (repeatable)."),
    client_name: str = typer.Option(
        DEFAULT_CLIENT, "--client-name",
        help="Client certificate CN: the ES2+ functionRequesterIdentifier it speaks for."),
    force: bool = typer.Option(False, "--force", help="Replace an existing development PKI."),
    as_json: bool = JsonOpt,
) -> None:
    """Create a CA, a server and a client certificate (with keys) for ES2+ over mutual TLS.
    Development only: the keys are written unencrypted (mode 0600)."""
    target = directory or settings().home / "pki"
    pki = dev_init(target, hosts=host, client_name=client_name, force=force)
    files = {p.stem + ("_key" if p.suffix == ".key" else ""): str(p) for p in pki.files()}
    if as_json:
        print_json({"directory": str(target), "files": files})
        return
    console.print(f"development PKI written to {target}:")
    for p in pki.files():
        console.print(f"  {p.name}")
    console.print("point simsmith at it: SIMSMITH_SMDP_CA, SIMSMITH_SMDP_CERT, SIMSMITH_SMDP_KEY "
                  "(see docs/es2plus.md)")
