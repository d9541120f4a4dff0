"""The root `simsmith` command: one Typer app per noun, joined here.

Each noun lives in its own module (tools/<noun>_cli.py) exposing `app`; register it in NOUNS.
"""

from __future__ import annotations

import importlib

import typer

app = typer.Typer(
    name="simsmith",
    help="eSIM and SIM lifecycle toolkit for MVNOs.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)

# (module, noun, help). Modules are imported lazily so one noun's optional dependency
# (pyscard, python-pkcs11) never breaks the others.
NOUNS: list[tuple[str, str, str]] = []


def _register() -> None:
    for module, noun, help_text in NOUNS:
        sub = importlib.import_module(module).app
        app.add_typer(sub, name=noun, help=help_text)


_register()


def main() -> None:
    app()


if __name__ == "__main__":
    main()
