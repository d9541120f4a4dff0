"""`simsmith audit`: verify the hash chain, read events."""

from __future__ import annotations

import json

import typer

from simcore import audit
from tools.common import JsonOpt, console, engine, fail, handle_errors, print_json, print_table

app = typer.Typer(no_args_is_help=True)


@app.command("verify")
@handle_errors
def verify(as_json: bool = JsonOpt) -> None:
    """Walk the chain; exit 1 naming the first event that does not verify."""
    try:
        r = audit.verify(engine())
    except audit.AuditChainBroken as e:
        if as_json:
            print_json({"ok": False, "first_broken_seq": e.seq, "reason": e.reason})
            raise typer.Exit(1) from e
        fail(f"audit chain broken at event {e.seq}: {e.reason}")
        return
    if as_json:
        print_json({"ok": True, "events": r.events, "lanes": r.lanes, "digest": r.digest,
                    "heads": {str(k): v for k, v in sorted(r.heads.items())}})
    else:
        console.print(f"audit log OK: {r.events} events in {r.lanes} chains, digest {r.digest}")


@app.command("list")
@handle_errors
def list_(subject: str | None = typer.Option(None, "--subject", help="e.g. an ICCID."),
          action: str | None = typer.Option(None, "--action"),
          after: int = typer.Option(0, "--after", help="Sequence number to start after."),
          limit: int = typer.Option(100, "--limit"), as_json: bool = JsonOpt) -> None:
    """Audit events in order."""
    evs = audit.query(engine(), subject_id=subject, action=action, after_seq=after, limit=limit)
    rows = [{"seq": e.seq, "ts": e.ts, "actor": e.actor, "action": e.action,
             "subject": f"{e.subject_type}:{e.subject_id}", "details": json.loads(e.details)}
            for e in evs]
    if as_json:
        print_json(rows)
    else:
        print_table("audit", ["seq", "ts", "actor", "action", "subject", "details"],
                    [(r["seq"], r["ts"], r["actor"], r["action"], r["subject"],
                      json.dumps(r["details"])) for r in rows])
