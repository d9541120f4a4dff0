"""`simsmith apikey`: create (the key is printed once), list, revoke API keys."""

from __future__ import annotations

import typer

from simcore import apikeys
from tools.common import JsonOpt, actor, console, engine, handle_errors, print_json, print_table

app = typer.Typer(no_args_is_help=True)


@app.command("create")
@handle_errors
def create(
    name: str = typer.Option(..., "--name", help="Who or what uses the key."),
    scopes: list[str] = typer.Option(
        ..., "--scopes", "--scope",
        help=f"Scopes, comma-separated or repeated: {', '.join(apikeys.SCOPES)}. admin "
             f"implies all but {', '.join(sorted(apikeys.NOT_IMPLIED_BY_ADMIN))}."),
    as_json: bool = JsonOpt,
) -> None:
    """Create a key. It is shown now and never again (the store keeps only its SHA-256)."""
    wanted = [s.strip() for item in scopes for s in item.split(",") if s.strip()]
    row, key = apikeys.create(engine(), name, wanted, actor=actor())
    if as_json:
        print_json({"id": row.id, "name": row.name, "scopes": row.scopes.split(), "key": key})
    else:
        console.print(f"API key {row.id} ({row.name}; {row.scopes}):\n{key}\n"
                      "Store it now: it cannot be shown again.")


@app.command("list")
@handle_errors
def list_(as_json: bool = JsonOpt) -> None:
    """Keys: id, name, prefix, scopes, created, revoked (never the keys themselves)."""
    keys = apikeys.list_keys(engine())
    if as_json:
        print_json([{"id": k.id, "name": k.name, "prefix": k.prefix, "scopes": k.scopes.split(),
                     "created_at": k.created_at, "revoked_at": k.revoked_at} for k in keys])
    else:
        print_table("API keys", ["id", "name", "prefix", "scopes", "created", "revoked"],
                    [(k.id, k.name, k.prefix, k.scopes, k.created_at, k.revoked_at or "")
                     for k in keys])


@app.command("revoke")
@handle_errors
def revoke(key_id: int = typer.Argument(..., help="The key's id (see `apikey list`).")) -> None:
    """Revoke a key (servers stop accepting it within SIMSMITH_API_KEY_CACHE_SECONDS)."""
    row = apikeys.revoke(engine(), key_id, actor=actor())
    console.print(f"API key {row.id} ({row.name}) revoked")
