"""`simsmith inventory`: generate SIM records, look them up, move them through their lifecycle."""

from __future__ import annotations

import typer
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

from simcore import inventory
from simcore.config import get_settings
from simcore.lifecycle import SIM_LIFECYCLE
from tools.common import (
    JsonOpt,
    actor,
    console,
    engine,
    handle_errors,
    print_json,
    print_table,
    sim_public,
)
from tools.hsm_cli import hsm_errors, open_hsm

app = typer.Typer(no_args_is_help=True)

LIST_COLUMNS = ("iccid", "imsi", "kind", "state", "subscriber_ref", "msisdn")


def _show(sim: object, as_json: bool, title: str | None = None) -> None:
    data = sim_public(sim)
    if as_json:
        print_json(data)
    else:
        print_table(title, ["field", "value"], list(data.items()))


@app.command("generate")
@handle_errors
@hsm_errors
def generate(
    count: int = typer.Option(..., "--count", "-n", help="How many SIM records."),
    batch: str = typer.Option(..., "--batch", help="Name of the new batch."),
    kind: str = typer.Option("physical", "--kind", help="physical | esim"),
    form_factor: str | None = typer.Option(None, "--form-factor", help="e.g. 2FF, 3FF, 4FF, MFF2"),
    iccid_range: str | None = typer.Option(None, "--iccid-range", help="ICCID range name."),
    imsi_range: str | None = typer.Option(None, "--imsi-range", help="IMSI range name."),
    state: str = typer.Option("in_stock", "--state", help="blank | personalised | in_stock"),
    with_keys: bool = typer.Option(
        False, "--with-keys", help="Also make each SIM's Ki, OPc, PIN1/PUK1/PIN2/PUK2/ADM1 (and "
        "for eSIMs the OTA keys) in the HSM; the store keeps only key references."),
    as_json: bool = JsonOpt,
) -> None:
    """Create SIM records with the next free ICCIDs and IMSIs of the ranges."""
    hsm = None
    if with_keys:  # open the HSM first: a locked HSM must not leave a batch without keys
        hsm = open_hsm()
    with Progress(TextColumn("{task.description}"), BarColumn(), TimeElapsedColumn(),
                  console=console, disable=as_json or not console.is_terminal) as progress:
        task = progress.add_task(f"generating {count} SIMs", total=count)
        eng = engine()
        r = inventory.generate_sims(
            eng, count, batch=batch, actor=actor(), kind=kind, form_factor=form_factor,
            iccid_range=iccid_range, imsi_range=imsi_range, state=state,
            progress=lambda done: progress.update(task, completed=done))
        if hsm is not None:
            from simcore import keys

            ktask = progress.add_task(f"keys for {count} SIMs (HSM)", total=count)
            kr = keys.generate_keys(eng, hsm, actor=actor(), batch=batch, ota=kind == "esim",
                                    progress=lambda done: progress.update(ktask, completed=done))
    result: dict[str, object] = {"batch": r.batch, "count": r.count,
                                 "first_iccid": r.first_iccid, "last_iccid": r.last_iccid}
    if hsm is not None:
        result["keys"] = ", ".join(("Ki", "OPc", *kr.credentials))
    if as_json:
        print_json(result)
    else:
        print_table("generated", list(result), [list(result.values())])


@app.command("show")
@handle_errors
def show(iccid: str = typer.Argument(..., help="ICCID of the SIM."), as_json: bool = JsonOpt,
         ) -> None:
    """Show one SIM."""
    _show(inventory.get_sim(engine(), iccid), as_json)


@app.command("access-codes")
@handle_errors
@hsm_errors
def access_codes(
    iccid: str = typer.Argument(..., help="ICCID of the SIM."),
    reason: str = typer.Option(..., "--reason",
                               help="Why the codes are read (e.g. a ticket number); audited."),
    as_json: bool = JsonOpt,
) -> None:
    """Customer care: show a SIM's PIN1 and PUK1, read by the HSM. Every read is recorded in the
    audit log (who, why; never the values). Refused for SIMs terminated, in quarantine or
    recycled."""
    from simcore import care

    codes = care.reveal_access_codes(engine(), open_hsm, iccid, actor=actor(), reason=reason)
    if as_json:
        print_json({"iccid": codes.iccid, "pin1": codes.pin1, "puk1": codes.puk1})
    else:
        print_table(f"access codes of {codes.iccid}", ["code", "value"],
                    [("PIN1", codes.pin1), ("PUK1", codes.puk1)])


@app.command("service-codes")
@handle_errors
@hsm_errors
def service_codes_cmd(
    iccid: str = typer.Argument(..., help="ICCID of the SIM."),
    reason: str = typer.Option(..., "--reason", help="Why the codes are read (e.g. a service "
                               "order number); audited."),
    as_json: bool = JsonOpt,
) -> None:
    """Service centre: show a SIM's PIN2, PUK2 and ADM1 (those it has), read by the HSM, to
    re-program its card. Every read is recorded in the audit log (who, why; never the values).
    Refused for SIMs terminated, in quarantine or recycled."""
    from simcore import service_codes

    codes = service_codes.reveal_service_codes(engine(), open_hsm, iccid, actor=actor(),
                                               reason=reason)
    if as_json:
        print_json({"iccid": codes.iccid, **{k.lower(): v for k, v in codes.codes.items()}})
    else:
        print_table(f"service codes of {codes.iccid}", ["code", "value"],
                    list(codes.codes.items()))


@app.command("find")
@handle_errors
def find(
    imsi: str | None = typer.Option(None, "--imsi"),
    msisdn: str | None = typer.Option(None, "--msisdn"),
    as_json: bool = JsonOpt,
) -> None:
    """Find a SIM by IMSI or MSISDN."""
    _show(inventory.find_sim(engine(), imsi=imsi, msisdn=msisdn), as_json)


@app.command("list")
@handle_errors
def list_(
    state: str | None = typer.Option(None, "--state",
                                     help="One of: " + ", ".join(sorted(SIM_LIFECYCLE.states))),
    kind: str | None = typer.Option(None, "--kind", help="physical | esim"),
    batch: str | None = typer.Option(None, "--batch"),
    after: str | None = typer.Option(None, "--after", help="Start after this ICCID (paging)."),
    limit: int = typer.Option(100, "--limit"),
    as_json: bool = JsonOpt,
) -> None:
    """List SIMs in ICCID order."""
    sims = inventory.list_sims(engine(), state=state, kind=kind, batch=batch, after=after,
                               limit=limit)
    if as_json:
        print_json([sim_public(s) for s in sims])
    else:
        print_table(f"{len(sims)} SIMs", LIST_COLUMNS,
                    [[getattr(s, c) for c in LIST_COLUMNS] for s in sims])


@app.command("summary")
@handle_errors
def summary(as_json: bool = JsonOpt) -> None:
    """Counts by kind and state, ranges used, MSISDN pool."""
    show_summary(as_json)


def show_summary(as_json: bool) -> None:
    s = inventory.summary(engine())
    if as_json:
        print_json({
            "total": s.total, "batches": s.batches,
            "by_state": [{"kind": k, "state": st, "count": n}
                         for (k, st), n in sorted(s.by_kind_state.items())],
            "ranges": [{"name": a, "kind": b, "used": c, "size": d} for a, b, c, d in s.ranges],
            "msisdns": s.msisdns,
        })
        return
    print_table(f"inventory: {s.total} SIMs in {s.batches} batches", ["kind", "state", "SIMs"],
                [(k, st, n) for (k, st), n in sorted(s.by_kind_state.items())])
    print_table("ranges", ["name", "kind", "used", "size"], s.ranges)
    if s.msisdns:
        print_table("MSISDN pool", ["state", "numbers"], sorted(s.msisdns.items()))


@app.command("allocate")
@handle_errors
def allocate(
    subscriber_ref: str = typer.Argument(..., help="The external subscriber reference."),
    kind: str = typer.Option("physical", "--kind", help="physical | esim"),
    form_factor: str | None = typer.Option(None, "--form-factor"),
    batch: str | None = typer.Option(None, "--batch"),
    as_json: bool = JsonOpt,
) -> None:
    """Allocate the next in-stock SIM to a subscriber."""
    _show(inventory.allocate(engine(), subscriber_ref, actor=actor(), kind=kind,
                             form_factor=form_factor, batch=batch), as_json, "allocated")


@app.command("activate")
@handle_errors
def activate(
    iccid: str = typer.Argument(...),
    msisdn: str | None = typer.Option(None, "--msisdn",
                                      help="Assign this MSISDN, or 'auto' for the next free."),
    as_json: bool = JsonOpt,
) -> None:
    """allocated → active."""
    _show(inventory.activate(engine(), iccid, actor=actor(), msisdn=msisdn), as_json, "active")


@app.command("suspend")
@handle_errors
def suspend(iccid: str = typer.Argument(...),
            reason: str | None = typer.Option(None, "--reason"),
            as_json: bool = JsonOpt) -> None:
    """active → suspended."""
    _show(inventory.suspend(engine(), iccid, actor=actor(), reason=reason), as_json, "suspended")


@app.command("resume")
@handle_errors
def resume(iccid: str = typer.Argument(...), as_json: bool = JsonOpt) -> None:
    """suspended → active."""
    _show(inventory.resume(engine(), iccid, actor=actor()), as_json, "active")


@app.command("release")
@handle_errors
def release(iccid: str = typer.Argument(...), as_json: bool = JsonOpt) -> None:
    """allocated → in_stock (an allocation never activated)."""
    _show(inventory.release(engine(), iccid, actor=actor()), as_json, "in stock")


@app.command("terminate")
@handle_errors
def terminate(iccid: str = typer.Argument(...),
              reason: str = typer.Option(..., "--reason", help="Why the service ends."),
              as_json: bool = JsonOpt) -> None:
    """End the service; the MSISDN goes to quarantine."""
    _show(inventory.terminate(engine(), iccid, actor=actor(), reason=reason,
                              quarantine_days=get_settings().quarantine_days),
          as_json, "terminated")


@app.command("swap")
@handle_errors
def swap(old_iccid: str = typer.Argument(..., help="The SIM being replaced."),
         new_iccid: str | None = typer.Option(None, "--to", help="The replacement SIM "
                                              "(default: next in stock)."),
         resume: bool = typer.Option(False, "--resume", help="Resume a suspended "
                                     "subscription with the swap (default: the new SIM takes "
                                     "over suspended)."),
         as_json: bool = JsonOpt) -> None:
    """SIM swap: the new SIM takes over MSISDN, subscriber and the subscription's state
    (suspended stays suspended unless --resume); the old one is terminated."""
    old, new = inventory.swap(engine(), old_iccid, actor=actor(), new_iccid=new_iccid,
                              resume=resume)
    if as_json:
        print_json({"old": sim_public(old), "new": sim_public(new)})
    else:
        print_table("swapped", ["", "iccid", "state", "msisdn", "subscriber_ref"],
                    [("old", old.iccid, old.state, old.msisdn, old.subscriber_ref),
                     ("new", new.iccid, new.state, new.msisdn, new.subscriber_ref)])


@app.command("quarantine")
@handle_errors
def quarantine(iccid: str = typer.Argument(...),
               days: int | None = typer.Option(None, "--days",
                                               help="Default: SIMSMITH_QUARANTINE_DAYS."),
               as_json: bool = JsonOpt) -> None:
    """terminated → quarantine: the IMSI rests before reuse."""
    d = get_settings().quarantine_days if days is None else days
    _show(inventory.quarantine(engine(), iccid, actor=actor(), days=d), as_json, "quarantine")


@app.command("recycle")
@handle_errors
def recycle(iccid: str | None = typer.Argument(None, help="One SIM; omit with --due."),
            due: bool = typer.Option(False, "--due", help="Recycle every SIM and MSISDN whose "
                                     "quarantine is over."),
            as_json: bool = JsonOpt) -> None:
    """quarantine → recycled: frees the IMSI (the card itself is never reused)."""
    if due:
        n = inventory.recycle_due(engine(), actor=actor())
        print_json({"recycled": n}) if as_json else console.print(f"recycled {n}")
        return
    if iccid is None:
        raise typer.BadParameter("give an ICCID or --due")
    _show(inventory.recycle(engine(), iccid, actor=actor()), as_json, "recycled")
