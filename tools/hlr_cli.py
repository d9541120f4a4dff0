"""`simsmith hlr show|list`: the embedded HLR's subscriber register (simcore.ports.embedded_hlr)
— what the workflows provisioned when no osmo-hlr is configured. Keys appear only as
fingerprints of their HSM references, never in clear. osmo-hlr's own register is read with its
tools (osmo-hlr's VTY/CTRL), not here."""

from __future__ import annotations

import typer

from tools.common import JsonOpt, console, engine, handle_errors, print_json, print_table

app = typer.Typer(no_args_is_help=True)


@app.command("show")
@handle_errors
def show(subscriber: str = typer.Argument(..., help="IMSI or MSISDN."),
         as_json: bool = JsonOpt) -> None:
    """One subscriber of the embedded HLR: IMSI, MSISDN, ICCID, CS/PS access, key references."""
    from simcore.ports.embedded_hlr import EmbeddedHlr

    v = EmbeddedHlr(engine()).lookup(subscriber)
    if as_json:
        print_json(v.as_dict())
        return
    print_table(f"HLR subscriber {v.imsi}", ["", ""], [
        ("IMSI", v.imsi), ("MSISDN", v.msisdn or "-"), ("ICCID", v.iccid),
        ("access", f"{v.access} (CS {'allowed' if v.cs_allowed else 'barred'}, "
                   f"PS {'allowed' if v.ps_allowed else 'barred'})"),
        ("K", f"HSM reference sha256:{v.ki_ref_sha256}"),
        ("OPc", f"HSM reference sha256:{v.opc_ref_sha256}"),
        ("updated", v.updated_at)])


@app.command("list")
@handle_errors
def list_(limit: int = typer.Option(50, "--limit"), as_json: bool = JsonOpt) -> None:
    """The embedded HLR's subscribers, by IMSI."""
    from simcore.ports.embedded_hlr import EmbeddedHlr

    views = EmbeddedHlr(engine()).list(limit=limit)
    if as_json:
        print_json([v.as_dict() for v in views])
        return
    if not views:
        console.print("the embedded HLR holds no subscriber")
        return
    print_table(None, ["imsi", "msisdn", "iccid", "access"],
                [(v.imsi, v.msisdn, v.iccid, v.access) for v in views])
