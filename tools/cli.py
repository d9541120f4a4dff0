"""The root `simsmith` command: one Typer app per noun, joined here.

Each noun lives in its own module (tools/<noun>_cli.py) exposing `app`; register it in NOUNS.
A noun's module is imported only when that noun is invoked (or for the root `--help`), so
`simsmith id check …` does not pay for the SAIP compiler, the vendor importer and the HSM backends.
"""

from __future__ import annotations

import importlib
from typing import Any

import typer
from typer.core import TyperGroup

# Modules that add commands to a noun's app besides the noun's own module.
EXTRA_MODULES: dict[str, tuple[str, ...]] = {"inventory": ("tools.import_cli",)}


class LazyNouns(TyperGroup):
    """The root group: eager commands as Typer registers them, nouns imported on first use."""

    def list_commands(self, ctx: Any) -> list[str]:
        return sorted({*super().list_commands(ctx), *(noun for _, noun, _ in NOUNS)})

    # ctx and the command are click's types (Typer vendors click since 0.2x: typed Any here)
    def get_command(self, ctx: Any, cmd_name: str) -> Any:
        found = super().get_command(ctx, cmd_name)
        if found is not None:
            return found
        for module, noun, help_text in NOUNS:
            if noun == cmd_name:
                for extra in EXTRA_MODULES.get(noun, ()):
                    importlib.import_module(extra)
                sub: Any = importlib.import_module(module).app
                command = typer.main.get_group(sub)
                command.name = noun
                command.help = help_text
                # A Typer app turned into a command on its own grows the completion options;
                # as a noun under the root it must look as add_typer made it.
                command.params = [p for p in command.params
                                  if p.name not in ("install_completion", "show_completion")]
                self.commands[noun] = command  # imported once per process
                return command
        return None


app = typer.Typer(
    name="simsmith",
    cls=LazyNouns,
    help="eSIM and SIM lifecycle toolkit for MVNOs.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)

# (module, noun, help). A noun's optional dependency (pyscard, python-pkcs11) is imported inside
# its commands, never at module level, so one missing extra never breaks the others.
NOUNS: list[tuple[str, str, str]] = [
    ("tools.id_cli", "id", "Check and explain ICCID, IMSI, MSISDN and EID values."),
    ("tools.range_cli", "range", "ICCID and IMSI number ranges."),
    ("tools.inventory_cli", "inventory", "SIM records: generate, list, allocate, lifecycle."),
    ("tools.msisdn_cli", "msisdn", "The MSISDN pool: ranges, assign, release, recycle."),
    ("tools.audit_cli", "audit", "The hash-chained audit log: verify, list."),
    ("tools.esim_cli", "esim", "eSIM: SAIP profile packages, activation codes, QR codes."),
    ("tools.hsm_cli", "hsm", "Key custody: ceremony, KEKs, Milenage/TUAK calculators."),
    ("tools.card_cli", "card", "PC/SC cards: read, emulate, program, verify."),
    ("tools.euicc_cli", "euicc", "The virtual eUICC (SGP.22) on pcscd + vpcd: emulate."),
    ("tools.lpa_cli", "lpa", "Local Profile Assistant over PC/SC: info, profiles, enable, ..."),
    ("tools.export_cli", "export", "Subscribers to osmo-hlr and to Open5GS/free5GC/CSV files."),
    ("tools.pki_cli", "pki", "Development PKI (CA, server and client certificates) for ES2+ mTLS."),
    ("tools.apikey_cli", "apikey", "API keys for the provisioning API: create, list, revoke."),
    ("tools.smdp_cli", "smdp", "The embedded SM-DP+'s ES2+: listener, profile stock, orders."),
    ("tools.console_cli", "console", "The operator console (/console): its users."),
    ("tools.suci_cli", "suci", "5G SUCI: home-network keys, conceal, de-conceal, export."),
    ("tools.events_cli", "events", "Outbox events on NATS JetStream: relay, tail, status."),
    ("tools.workflow_cli", "workflows", "Durable workflows: list, show, suspend, swap, worker."),
    ("tools.hlr_cli", "hlr", "The embedded HLR's subscriber register: show, list."),
]


def _register() -> None:
    from tools.workspace_cli import register

    register(app)
    from tools.serve_cli import register as register_serve

    register_serve(app)
    from tools.workflow_cli import register as register_workflows

    register_workflows(app)


_register()


def main() -> None:
    app()


if __name__ == "__main__":
    main()
