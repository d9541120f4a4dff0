"""`simsmith suci`: 5G SUCI home-network keys, de-concealment and (for labs) concealment.

Keys live in the HSM (hsm_sim.suci_keys); the store keeps each identifier's public key, state
and wrapped private key reference (simcore.suci_keys). No command prints a private key; the
audited export to a core is `simsmith suci export`.
"""

from __future__ import annotations

from pathlib import Path

import typer

from hsm_sim.eki import EkiScheme
from simcore import suci_keys
from tools.common import JsonOpt, actor, engine, fail, handle_errors, print_json, print_table
from tools.hsm_cli import open_hsm

app = typer.Typer(no_args_is_help=True)
key_app = typer.Typer(no_args_is_help=True, help="Home-network key pairs: generate, import, "
                                                 "list, retire.")
app.add_typer(key_app, name="key")

KEY_COLUMNS = ("key_id", "profile", "state", "source", "public_key", "created_at", "retired_at")
ProfileOpt = typer.Option(..., "--profile", help="A (X25519) or B (secp256r1).")


def _show_keys(infos: list[suci_keys.SuciKeyInfo], as_json: bool) -> None:
    rows = [i.as_dict() for i in infos]
    if as_json:
        print_json(rows)
    else:
        print_table(None, KEY_COLUMNS, [[r[c] for c in KEY_COLUMNS] for r in rows])


@key_app.command("generate")
@handle_errors
def key_generate(key_id: int = typer.Option(..., "--key-id", help="Identifier 0-255."),
                 profile: str = ProfileOpt, as_json: bool = JsonOpt) -> None:
    """Make a key pair inside the HSM for a home network public key identifier."""
    info = suci_keys.generate_key(engine(), open_hsm, key_id, profile, actor=actor())
    _show_keys([info], as_json)


@key_app.command("import")
@handle_errors
def key_import(
    key_id: int = typer.Option(..., "--key-id", help="Identifier 0-255."),
    profile: str = ProfileOpt,
    encrypted: str = typer.Option(..., "--encrypted", help="The private key (32 octets) "
                                  "encrypted under the transport KEK, hex."),
    transport: str = typer.Option(..., "--transport", help="Name of the transport KEK."),
    scheme: EkiScheme = typer.Option(EkiScheme.AES128_ECB, "--scheme",
                                     help="How it was encrypted."),
    as_json: bool = JsonOpt,
) -> None:
    """Import a private key encrypted under a transport KEK (never typed in clear)."""
    try:
        data = bytes.fromhex(encrypted)
    except ValueError:
        fail("--encrypted: not hex")
        return
    info = suci_keys.import_key(engine(), open_hsm, key_id, profile, data, transport,
                                actor=actor(), eki_scheme=scheme)
    _show_keys([info], as_json)


@key_app.command("list")
@handle_errors
def key_list(state: str | None = typer.Option(None, "--state", help="active or retired."),
             as_json: bool = JsonOpt) -> None:
    """The home-network keys: identifier, profile, state and public key."""
    _show_keys(suci_keys.list_keys(engine(), state=state), as_json)


@key_app.command("retire")
@handle_errors
def key_retire(key_id: int = typer.Argument(..., help="Identifier 0-255."),
               as_json: bool = JsonOpt) -> None:
    """Retire a key: SUCIs made with it are refused from now on (its row stays)."""
    _show_keys([suci_keys.retire_key(engine(), key_id, actor=actor())], as_json)


@key_app.command("calc-info")
@handle_errors
def key_calc_info(as_json: bool = JsonOpt) -> None:
    """EF.SUCI_Calc_Info (TS 31.102 §4.4.11.8) for the active keys, hex."""
    data = suci_keys.calc_info(engine())
    print_json({"suci_calc_info": data.hex()}) if as_json else typer.echo(data.hex())


@app.command("conceal")
@handle_errors
def conceal(
    imsi: str = typer.Option(..., "--imsi"),
    profile: str = typer.Option(..., "--profile", help="A, B or null."),
    key_id: int = typer.Option(0, "--key-id", help="Identifier of the public key (A/B)."),
    routing_indicator: str = typer.Option("0", "--routing-indicator", help="1-4 digits."),
    mnc_length: int | None = typer.Option(None, "--mnc-length", help="2 or 3."),
    as_json: bool = JsonOpt,
) -> None:
    """Conceal an IMSI as a UE would (labs and tests): string and binary form."""
    s = suci_keys.conceal(engine(), imsi, profile, key_id, routing_indicator=routing_indicator,
                          mnc_length=mnc_length)
    if as_json:
        print_json({"suci": str(s), "binary": s.to_bytes().hex()})
    else:
        typer.echo(str(s))


@app.command("deconceal")
@handle_errors
def deconceal(suci: str = typer.Argument(..., help="suci-0-… or 0x<binary form>."),
              as_json: bool = JsonOpt) -> None:
    """De-conceal a SUCI to its IMSI through the HSM (audited)."""
    got = suci_keys.deconceal(engine(), open_hsm, suci, actor=actor())
    print_json(got.as_dict()) if as_json else typer.echo(got.supi)


@app.command("export")
@handle_errors
def export(
    target: str = typer.Option(..., "--target", help="Export target (an HSM export KEK name)."),
    fmt: str = typer.Option(..., "--format", help="open5gs, free5gc or pkcs11-kwp."),
    out: Path = typer.Option(..., "--out", help="Directory to write into."),
    key_ids: list[int] | None = typer.Option(None, "--key-id", help="Repeat; default: every "
                                             "active key."),
    as_json: bool = JsonOpt,
) -> None:
    """Audited export of home-network private keys to a core's UDM configuration."""
    from simcore.export.suci import export_keys

    result = export_keys(engine(), open_hsm, target, fmt, out, key_ids or None, actor=actor())
    print_json(result) if as_json else print_table(None, ["file", "key ids"], [
        (f, ", ".join(str(k) for k in ids)) for f, ids in result["files"].items()])
