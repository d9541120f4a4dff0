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
    ("tools.suci_cli", "suci", "5G SUCI: home-network keys, conceal, de-conceal, export."),
]


def _register() -> None:
    import tools.import_cli  # noqa: F401
    from tools.workspace_cli import register

    register(app)
    from tools.serve_cli import register as register_serve

    register_serve(app)
    for module, noun, help_text in NOUNS:
        sub = importlib.import_module(module).app
        app.add_typer(sub, name=noun, help=help_text)


_register()


def main() -> None:
    app()


if __name__ == "__main__":
    main()
