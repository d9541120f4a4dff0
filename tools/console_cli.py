"""`simsmith console user …`: the operator console's users (add, list, disable, password).

A password is read from the terminal (hidden) or stdin (`--password-stdin`), or generated and
printed once; the store keeps only its argon2id hash.
"""

from __future__ import annotations

import sys

import typer

from simcore import apikeys
from simcore.console import users
from tools.common import JsonOpt, actor, console, engine, handle_errors, print_json, print_table

app = typer.Typer(no_args_is_help=True)
user_app = typer.Typer(no_args_is_help=True, help="Console users: add, list, disable, password.")
app.add_typer(user_app, name="user")

ScopesOpt = typer.Option(
    ..., "--scopes", "--scope",
    help=f"Scopes, comma-separated or repeated (the API's): {', '.join(apikeys.SCOPES)}.")
PasswordStdin = typer.Option(False, "--password-stdin",
                             help="Read the password from stdin (one line).")
Generate = typer.Option(False, "--generate", help="Generate a random password and print it once.")


def _password(from_stdin: bool, generate: bool) -> tuple[str, bool]:
    if generate:
        return users.generate_password(), True
    if from_stdin:
        return sys.stdin.readline().rstrip("\r\n"), False
    return typer.prompt("Password", hide_input=True, confirmation_prompt=True), False


@user_app.command("add")
@handle_errors
def add(username: str = typer.Argument(..., help="The user's login name."),
        scopes: list[str] = ScopesOpt, password_stdin: bool = PasswordStdin,
        generate: bool = Generate, as_json: bool = JsonOpt) -> None:
    """Add a console user with the API's scopes (e.g. sims:read for a read-only user)."""
    wanted = [s.strip() for item in scopes for s in item.split(",") if s.strip()]
    password, shown = _password(password_stdin, generate)
    row = users.create(engine(), username, password, wanted, actor=actor())
    out: dict[str, object] = {"id": row.id, "username": row.username,
                              "scopes": row.scopes.split()}
    if shown:
        out["password"] = password
    if as_json:
        print_json(out)
    else:
        console.print(f"console user {row.username} ({row.scopes})")
        if shown:
            console.print(f"password: {password}\nStore it now: it cannot be shown again.")


@user_app.command("list")
@handle_errors
def list_(as_json: bool = JsonOpt) -> None:
    """Console users: name, scopes, created, disabled (never a password or its hash)."""
    rows = users.list_users(engine())
    if as_json:
        print_json([{"id": u.id, "username": u.username, "scopes": u.scopes.split(),
                     "created_at": u.created_at, "disabled_at": u.disabled_at} for u in rows])
    else:
        print_table("console users", ["id", "user", "scopes", "created", "disabled"],
                    [(u.id, u.username, u.scopes, u.created_at, u.disabled_at or "")
                     for u in rows])


@user_app.command("disable")
@handle_errors
def disable(username: str = typer.Argument(...), as_json: bool = JsonOpt) -> None:
    """Disable a user: no more logins, open sessions end now."""
    row = users.disable(engine(), username, actor=actor())
    if as_json:
        print_json({"username": row.username, "disabled_at": row.disabled_at})
    else:
        console.print(f"console user {row.username} disabled")


@user_app.command("password")
@handle_errors
def password(username: str = typer.Argument(...), password_stdin: bool = PasswordStdin,
             generate: bool = Generate, as_json: bool = JsonOpt) -> None:
    """Set a user's password (their open sessions end)."""
    secret, shown = _password(password_stdin, generate)
    users.set_password(engine(), username, secret, actor=actor())
    if as_json:
        print_json({"username": username, **({"password": secret} if shown else {})})
    else:
        console.print(f"password of {username} set" + (f": {secret}" if shown else ""))
