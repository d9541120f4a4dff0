"""`simsmith audit`: verify the hash chain, read events."""

from __future__ import annotations

import json

import typer
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from simcore import audit, audit_checkpoint
from tools.common import (
    JsonOpt,
    console,
    engine,
    fail,
    handle_errors,
    print_json,
    print_table,
    settings,
)

app = typer.Typer(no_args_is_help=True)


def _public_key() -> Ed25519PublicKey | None:
    path = settings().home / audit_checkpoint.KEY_FILE
    return audit_checkpoint.load_or_create_key(settings().home).public if path.exists() else None


@app.command("verify")
@handle_errors
def verify(full: bool = typer.Option(False, "--full", help="Walk every event, ignoring "
                                     "checkpoints."), as_json: bool = JsonOpt) -> None:
    """Walk the chain from the last signed checkpoint (or all of it with --full); exit 1 naming
    the first event that does not verify."""
    try:
        r = audit_checkpoint.verify(engine(), public=_public_key(), full=full)
    except audit.AuditChainBroken as e:
        if as_json:
            print_json({"ok": False, "first_broken_seq": e.seq, "reason": e.reason})
            raise typer.Exit(1) from e
        fail(f"audit chain broken at event {e.seq}: {e.reason}")
        return
    rep = r.report
    if as_json:
        print_json({"ok": True, "events": rep.events, "lanes": rep.lanes, "digest": rep.digest,
                    "from_checkpoint": r.from_checkpoint, "walked": r.walked,
                    "heads": {str(k): v for k, v in sorted(rep.heads.items())}})
    else:
        since = (f"{r.walked} walked since checkpoint {r.from_checkpoint}"
                 if r.from_checkpoint else "all walked")
        console.print(f"audit log OK: {rep.events} events in {rep.lanes} chains ({since}), "
                      f"digest {rep.digest}")


@app.command("checkpoint")
@handle_errors
def checkpoint(as_json: bool = JsonOpt) -> None:
    """Verify from the last checkpoint, then sign and record a new one (run it daily: later
    verifies walk only what came after). The Ed25519 key lives in
    <SIMSMITH_HOME>/audit/checkpoint-ed25519.pem (created on first use, mode 0600)."""
    key = audit_checkpoint.load_or_create_key(settings().home)
    try:
        cp, r = audit_checkpoint.checkpoint(engine(), key)
    except audit.AuditChainBroken as e:
        fail(f"audit chain broken at event {e.seq}: {e.reason}; no checkpoint written")
        return
    out = {"id": cp.id, "events": cp.events, "key_id": cp.key_id, "walked": r.walked,
           "digest": r.report.digest}
    if as_json:
        print_json(out)
    else:
        console.print(f"checkpoint {cp.id}: {cp.events} events (key {cp.key_id}, "
                      f"{r.walked} walked)")


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
