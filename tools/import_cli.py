"""`simsmith inventory import` and `simsmith inventory order`: vendor files in and out
(registered on the inventory app; docs/import.md)."""

from __future__ import annotations

import time
import warnings
from pathlib import Path
from typing import Any

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from hsm_sim.eki import EkiScheme
from simcore.vendor_order import DEFAULT_COLUMNS
from tools.common import (
    JsonOpt,
    actor,
    console,
    engine,
    err_console,
    fail,
    handle_errors,
    print_json,
    print_table,
)
from tools.inventory_cli import app


def _hsm(optional: bool) -> Any:
    """The configured HSM (its dev-mode warnings as one `warning:` line each); a dry run goes
    on without one (then the KCV is not checked)."""
    from simcore.hsm_access import HsmUnavailable

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            if not optional:
                from tools.hsm_cli import open_hsm

                return open_hsm()
            from simcore.hsm_access import open_hsm as open_configured

            return open_configured()
        except HsmUnavailable as e:
            err_console.print(f"note: transport key KCV not checked ({e})", markup=False)
            return None
        finally:
            for w in {str(w.message) for w in caught}:
                err_console.print(f"warning: {w}", markup=False)


@app.command("import")
@handle_errors
def import_(
    file: Path = typer.Argument(..., help="The vendor output file (.out) or card-key CSV."),
    fmt: str | None = typer.Option(None, "--format", help="out | csv (default: by extension)."),
    transport_key: str | None = typer.Option(
        None, "--transport-key", help="HSM transport KEK name (default: the file's "
        "Transport_key)."),
    scheme: EkiScheme = typer.Option(EkiScheme.AES128_ECB, "--scheme",
                                     help="How the vendor encrypted EKI/EOPC."),
    batch: str | None = typer.Option(None, "--batch", help="Batch name (default: the file's "
                                     "Batch, else the file name)."),
    vendor: str | None = typer.Option(None, "--vendor", help="SIM vendor name for the batch."),
    profile: str | None = typer.Option(None, "--profile", help="Card profile name."),
    columns: Path | None = typer.Option(None, "--columns", help="TOML file of column aliases."),
    kcv: str | None = typer.Option(
        None, "--kcv", help="The transport key's KCV (6 hex digits, from the key ceremony): "
        "required when the file states none."),
    no_kcv_check: bool = typer.Option(
        False, "--no-kcv-check", help="Import keys under a transport key no KCV confirms "
        "(a wrong key imports garbage keys; audited)."),
    check_vector: str | None = typer.Option(
        None, "--check-vector", help="The vendor's sample Milenage vector for one card, "
        "checked inside the HSM before the import commits: iccid=…,rand=…,sqn=…,amf=…,res=…"
        "[,autn=…][,ck=…][,ik=…] (hex)."),
    dry_run: bool = typer.Option(False, "--dry-run", help="Validate and report; write nothing."),
    as_json: bool = JsonOpt,
) -> None:
    """Import SIMs from a vendor file: validated, keys re-wrapped inside the HSM, all or
    nothing."""
    from simcore.vendor_import import (
        CheckVector,
        ColumnMap,
        ImportOptions,
        InvalidFile,
        import_file,
    )

    opts = ImportOptions(fmt=fmt, transport_key=transport_key, scheme=scheme, dry_run=dry_run,
                         batch=batch, vendor=vendor, profile=profile,
                         columns=ColumnMap.load(columns), actor=actor(), kcv=kcv,
                         no_kcv_check=no_kcv_check,
                         check_vector=CheckVector.parse(check_vector) if check_vector else None)
    if no_kcv_check:
        err_console.print("WARNING: --no-kcv-check: the transport key is NOT checked against a "
                          "KCV; a wrong key imports every SIM with garbage keys (audited as "
                          "kcv_checked: false)", markup=False)
    eng = engine()
    hsm = _hsm(optional=dry_run)
    started = time.monotonic()
    with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                  TextColumn("{task.fields[rate]} rows/s"), TimeElapsedColumn(),
                  console=err_console, transient=True,
                  disable=as_json or not err_console.is_terminal) as bar:
        task = bar.add_task(f"importing {file.name}", total=None, rate="-")

        def progress(done: int, total: int | None) -> None:
            rate = done / max(time.monotonic() - started, 1e-6)
            bar.update(task, completed=done, total=total, rate=f"{rate:,.0f}")

        try:
            r = import_file(eng, hsm, file, opts, progress)
        except InvalidFile as e:
            if as_json:
                print_json({"status": "invalid", "file": str(file), "imported": 0,
                            "rejected": e.report.bad_rows, "issue_count": e.report.total,
                            "issues": [i.as_dict() for i in e.report.issues]})
                raise typer.Exit(1) from None
            for issue in e.report.issues[1:]:
                err_console.print(str(issue), markup=False, soft_wrap=True)
            fail(f"{e}; nothing imported")
            return
    if as_json:
        print_json(r.as_dict())
    else:
        if r.report is not None:
            for issue in r.report.issues:
                err_console.print(str(issue), markup=False, soft_wrap=True)
        row = {"status": r.status, "batch": r.batch, "batch_id": r.batch_id, "rows": r.rows,
               "imported": r.imported, "rejected": r.rejected, "seconds": f"{r.seconds:.2f}"}
        print_table(file.name, list(row), [list(row.values())])
    if r.status == "invalid":
        raise typer.Exit(1)
    if r.status == "already_imported" and not as_json:
        console.print(f"already imported as batch {r.batch!r} (same SHA-256): nothing to do",
                      markup=False)


def _transport_kcv(name: str) -> str:
    """The AES-CMAC KCV of a transport KEK, read from the keystore (or the token)."""
    from simcore.hsm_access import HsmUnavailable, kek_list

    try:
        keks = kek_list()
    except HsmUnavailable as e:
        fail(str(e))
        raise AssertionError("unreachable") from e
    info = next((k for k in keks if k.name == name), None)
    if info is None or str(info.purpose) != "transport":
        fail(f"--transport-key: no transport KEK named {name!r} (simsmith hsm kek list)")
        raise AssertionError("unreachable")
    return str(info.kcv)


@app.command("order")
@handle_errors
def order(
    quantity: int = typer.Option(..., "--quantity", "-n", help="How many cards."),
    profile: str = typer.Option(..., "--profile", help="The card profile the vendor applies."),
    transport_key: str = typer.Option(..., "--transport-key",
                                      help="HSM transport KEK the vendor encrypts keys under."),
    out: Path = typer.Option(..., "--output", "-o", help="Where to write the order file."),
    iccid_start: str | None = typer.Option(None, "--iccid-start", help="First ICCID (default: "
                                           "the next free one of the ICCID ranges)."),
    imsi_start: str | None = typer.Option(None, "--imsi-start", help="First IMSI (default: the "
                                          "next free one of the IMSI ranges)."),
    batch: str | None = typer.Option(None, "--batch", help="Batch name (default: order-<ICCID>)."),
    vendor: str | None = typer.Option(None, "--vendor", help="SIM vendor name."),
    columns: str = typer.Option("/".join(DEFAULT_COLUMNS), "--columns",
                                help="var_out columns the vendor returns, slash-separated."),
    as_json: bool = JsonOpt,
) -> None:
    """Write a vendor order (input) file and reserve its ICCID and IMSI blocks."""
    from simcore.vendor_order import create_order

    o = create_order(engine(), quantity=quantity, profile=profile, transport_key=transport_key,
                     transport_kcv=_transport_kcv(transport_key), out=out, actor=actor(),
                     batch=batch, iccid_start=iccid_start, imsi_start=imsi_start, vendor=vendor,
                     columns=tuple(c.strip().upper() for c in columns.split("/") if c.strip()))
    result = {"batch": o.batch, "batch_id": o.batch_id, "quantity": o.quantity,
              "iccids": f"{o.first_iccid}..{o.last_iccid}", "imsis": f"{o.first_imsi}.."
              f"{o.last_imsi}", "file": o.path}
    if as_json:
        print_json(result)
    else:
        print_table("order", list(result), [list(result.values())])
