"""`simsmith export`: subscribers to osmo-hlr (CTRL) or to files for Open5GS, free5GC and
generic loaders (docs/import.md "Export")."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer
from rich.progress import MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from tools.common import JsonOpt, actor, engine, err_console, handle_errors, print_json, print_table

app = typer.Typer(no_args_is_help=True)

BatchOpt = typer.Option(None, "--batch", help="Only SIMs of this batch.")
IccidOpt = typer.Option(None, "--iccid", help="Only these ICCIDs (repeat).")
StateOpt = typer.Option(None, "--state", help="Only SIMs in this state.")
TargetOpt = typer.Option(..., "--target", help="HSM export target (KEK) the keys are for.")


def _progress(as_json: bool) -> Progress:
    return Progress(TextColumn("{task.description}"), MofNCompleteColumn(), TimeElapsedColumn(),
                    console=err_console, transient=True,
                    disable=as_json or not err_console.is_terminal)


def _summary(report: Any, as_json: bool, title: str) -> None:
    if as_json:
        print_json(report.as_dict())
        return
    failed = [r for r in report.results if r.status == "failed"]
    for r in failed:
        err_console.print(f"{r.iccid} {r.imsi}: {r.error}", markup=False)
    d = report.as_dict(with_results=False)
    d["keys"] = d["keys"]["algorithm"]
    print_table(title, list(d), [list(d.values())])


@app.command("osmo-hlr")
@handle_errors
def osmo_hlr(
    target: str = TargetOpt,
    host: str = typer.Option("127.0.0.1", "--host", help="osmo-hlr CTRL address."),
    port: int = typer.Option(4259, "--port", help="osmo-hlr CTRL port."),
    batch: str | None = BatchOpt,
    iccid: list[str] | None = IccidOpt,
    state: str | None = StateOpt,
    check: int = typer.Option(0, "--check", help="Then fetch vectors over GSUP for this many "
                              "subscribers and compare them with the HSM's Milenage."),
    gsup_port: int = typer.Option(4222, "--gsup-port", help="osmo-hlr GSUP port: --check, and "
                                  "raising a subscriber's SQN where setting keys reset it."),
    as_json: bool = JsonOpt,
) -> None:
    """Provision SIMs into osmo-hlr over CTRL (Milenage K/OPc, MSISDN, CS/PS), idempotently.
    osmo-hlr keeps keys in clear: the target must be marked insecure."""
    from simcore.export import Selection, export_osmo_hlr
    from tools.hsm_cli import open_hsm

    hsm = open_hsm()
    sel = Selection(batch, iccid or None, state)
    with _progress(as_json) as bar:
        task = bar.add_task("osmo-hlr", total=None)
        r = export_osmo_hlr(engine(), hsm, target=target, host=host, port=port, selection=sel,
                            actor=actor(), progress=lambda n: bar.update(task, completed=n),
                            gsup_port=gsup_port)
    if check:
        _check(hsm, host, gsup_port, sel, check)
    _summary(r, as_json, f"osmo-hlr {host}")
    if r.failed:
        raise typer.Exit(1)


def _check(hsm: Any, host: str, port: int, sel: Any, count: int) -> None:
    from simcore.export import select_sims
    from simcore.export.gsup import GsupClient
    from simcore.export.verify import check_vector
    from tools.common import fail

    done = 0
    with GsupClient(host, port) as g:
        for sims in select_sims(engine(), batch=sel.batch, iccids=sel.iccids, state=sel.state,
                                page=min(count, 500)):
            for sim in sims[: count - done]:
                for t in g.send_auth_info(sim.imsi or "", 1):
                    c = check_vector(hsm, sim, t)
                    if not c.ok:
                        fail(f"{sim.iccid}: osmo-hlr's vector differs from the HSM's in "
                             f"{', '.join(c.mismatched)}")
                done += 1
            if done >= count:
                break
    err_console.print(f"checked {done} subscribers: osmo-hlr's vectors match the HSM's",
                      markup=False)


@app.command("file")
@handle_errors
def file(
    fmt: str = typer.Option(..., "--format", help="open5gs-dbctl | open5gs-json | "
                            "free5gc-json | csv"),
    target: str = TargetOpt,
    out: Path = typer.Option(..., "--output", "-o", help="File to write (mode 0600)."),
    scheme: str | None = typer.Option(None, "--scheme", help="For an encrypted target: kwp "
                                      "(default) or an EKI scheme such as aes128-ecb."),
    plmn: str | None = typer.Option(None, "--plmn", help="free5GC plmnID (default: from IMSI)."),
    batch: str | None = BatchOpt,
    iccid: list[str] | None = IccidOpt,
    state: str | None = StateOpt,
    as_json: bool = JsonOpt,
) -> None:
    """Write subscribers to a file; keys in clear only for a target marked insecure."""
    from simcore.export import Selection, export_file
    from tools.hsm_cli import open_hsm

    hsm = open_hsm()
    with _progress(as_json) as bar:
        task = bar.add_task(fmt, total=None)
        r = export_file(engine(), hsm, fmt=fmt, target=target, out=out, scheme=scheme,
                        selection=Selection(batch, iccid or None, state), plmn=plmn,
                        actor=actor(), progress=lambda n: bar.update(task, completed=n))
    _summary(r, as_json, str(out))
