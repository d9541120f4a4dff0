"""`simsmith smdp`: simsmith's own SM-DP+ side of ES2+ (GSMA SGP.22 v2.5 §5.3) — its listener,
its stock of eSIM profiles and its order book (simcore.smdp.stock, simcore.smdp.access,
api.routers.es2plus)."""

from __future__ import annotations

import sys
from pathlib import Path

import typer

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
    settings,
)

app = typer.Typer(no_args_is_help=True)

ROLES = {"order": "the SM-DP+ functions (DownloadOrder, ConfirmOrder, CancelOrder, "
                  "ReleaseProfile), called by operators",
         "notify": "HandleDownloadProgressInfo, called by an SM-DP+ (the operator's receiver)"}


@app.command("serve")
@handle_errors
def serve(
    host: str = typer.Option("127.0.0.1", "--host", help="Address to listen on."),
    port: int = typer.Option(8443, "--port", min=0, max=65535, help="Port (0: a free one)."),
    role: str = typer.Option("order", "--role", help="What this listener serves: order (the "
                             "SM-DP+ functions) or notify (HandleDownloadProgressInfo). Run one "
                             "listener per role."),
    cert: Path | None = typer.Option(None, "--cert", help="Server certificate (PEM); default "
                                     "the development PKI in $SIMSMITH_HOME/pki."),
    key: Path | None = typer.Option(None, "--key", help="Server private key (PEM)."),
    ca: Path | None = typer.Option(None, "--ca", help="CA bundle client certificates must "
                                   "chain to."),
    access: Path | None = typer.Option(None, "--access", help="Access table (TOML): which "
                                       "certificate may call what for which operator; default "
                                       "SIMSMITH_ES2PLUS_ACCESS, else every client speaks for "
                                       "itself."),
    smdp_address: str | None = typer.Option(None, "--smdp-address", help="SM-DP+ FQDN for "
                                            "ConfirmOrder answers (default "
                                            "SIMSMITH_SMDP_ADDRESS of the API settings)."),
    as_json: bool = JsonOpt,
) -> None:
    """Serve ES2+ over HTTPS with client certificates required (mutual TLS) until Ctrl-C."""
    from api.es2plus_listener import MtlsServer, es2plus_app
    from api.settings import ApiSettings
    from esim.pki import DevPki
    from simcore.smdp.access import (
        Es2PlusAccessSettings,
        Role,
        configured_policy,
        load_access_table,
        warn_plain_http,
    )
    from simcore.smdp.address import check_smdp_address
    from simcore.smdp.es2plus import Es2PlusEndpoint, Es2PlusEndpointSettings
    from simcore.smdp.es2plus_port import SmdpSettings

    if role not in ROLES:
        raise typer.BadParameter(f"--role {role!r}: expected order or notify")
    # The start-up check of the settings path (api.main.build_smdp), before anything is bound:
    # an address no LPA could use is refused unless SIMSMITH_SMDP_ALLOW_LAB_ADDRESS says lab.
    address = check_smdp_address(
        smdp_address if smdp_address is not None else ApiSettings().smdp_address,
        field="--smdp-address" if smdp_address is not None else "SIMSMITH_SMDP_ADDRESS",
        allow_lab=SmdpSettings.from_settings().allow_lab_address)
    given = [p for p in (cert, key, ca) if p is not None]
    if given and len(given) != 3:
        fail("--cert, --key and --ca go together")
    if not given:
        dev = DevPki(settings().home / "pki")
        missing = [p.name for p in (dev.server_cert, dev.server_key, dev.ca) if not p.exists()]
        if missing:
            fail(f"no --cert/--key/--ca and no development PKI in {dev.directory} "
                 f"({', '.join(missing)} missing): run `simsmith pki dev-init` or pass them")
        cert, key, ca = dev.server_cert, dev.server_key, dev.ca
    assert cert is not None and key is not None and ca is not None
    for flag, path in (("--cert", cert), ("--key", key), ("--ca", ca)):
        if not path.is_file():
            fail(f"{flag} {path}: no such file")
    endpoint_settings = Es2PlusEndpointSettings.from_settings()
    policy = (load_access_table(access) if access is not None
              else configured_policy(endpoint_settings.requester_map()))
    eng = engine()
    endpoint = Es2PlusEndpoint(eng, address, authorize=policy.may_act_as,
                               call_window=endpoint_settings.call_window,
                               order_validity=endpoint_settings.order_validity,
                               received_points=endpoint_settings.received_points())
    server = MtlsServer(es2plus_app(endpoint, roles={Role(role)}, policy=policy),
                        cert=cert, key=key, ca=ca, host=host, port=port)
    if Es2PlusAccessSettings.from_settings().allow_plain_http:
        warn_plain_http(server.url)  # this listener is TLS-only; the flag concerns others
    info = {"url": server.url, "role": role, "serves": ROLES[role], "smdp_address": address,
            "access_table": str(access) if access else None,
            "peers": sorted(policy.peers) if policy.peers is not None else None}
    if as_json:
        print_json(info)
    else:
        console.print(f"ES2+ {role} listener on {server.url} (mutual TLS; {ROLES[role]}); "
                      "Ctrl-C stops it")
        if policy.peers is None:
            err_console.print("no access table: every client with a trusted certificate may "
                              "call these functions for the operator named like its CN")
    sys.stdout.flush()
    try:
        server.run()
    finally:
        eng.dispose()


@app.command("stock")
@handle_errors
def stock_cmd(
    batch: str | None = typer.Option(None, "--batch", help="Only this batch's profiles."),
    operator: str | None = typer.Option(None, "--operator", help="Stock them for this operator "
                                        "(functionRequesterIdentifier) only; needs --batch."),
    as_json: bool = JsonOpt,
) -> None:
    """Make in-stock eSIM profiles available at the embedded SM-DP+ (profile state available),
    optionally for one operator."""
    from simcore.smdp.stock import stock

    n = stock(engine(), actor=actor(), batch=batch, operator=operator)
    if as_json:
        print_json({"stocked": n, "batch": batch, "operator": operator})
        return
    whom = f" for operator {operator}" if operator else ""
    console.print(f"{n} profile(s) now available at the SM-DP+{whom}")


@app.command("stock-list")
@handle_errors
def stock_list(as_json: bool = JsonOpt) -> None:
    """eSIM batches at the SM-DP+: their operator and profiles per state."""
    from simcore.smdp.stock import stock_summary

    rows = stock_summary(engine())
    if as_json:
        print_json(rows)
        return
    print_table("SM-DP+ stock", ["batch", "profile type", "operator", "profiles"],
                [(r["batch"], r["profile_type"], r["operator"] or "(any)",
                  ", ".join(f"{k} {v}" for k, v in r["profiles"].items()))  # type: ignore[attr-defined]
                 for r in rows])


@app.command("orders")
@handle_errors
def orders(
    state: str | None = typer.Option(None, "--state", help="Only profiles in this state "
                                     "(allocated, linked, confirmed, released, downloaded, "
                                     "installed, error, …)."),
    requester: str | None = typer.Option(None, "--requester", help="Only this operator's."),
    after: str | None = typer.Option(None, "--after", help="Page: ICCIDs after this one."),
    limit: int = typer.Option(100, "--limit", min=1, max=10_000),
    as_json: bool = JsonOpt,
) -> None:
    """ES2+ orders held by the embedded SM-DP+, with each profile's state."""
    from simcore.smdp.stock import list_orders

    rows = list_orders(engine(), state=state, requester=requester, after=after, limit=limit)
    if as_json:
        print_json([{"iccid": o.iccid, "requester": o.requester,
                     "profile_state": o.profile_state, "profile_type": o.profile_type,
                     "matching_id": o.matching_id, "eid": o.eid,
                     "confirmation_code_required": o.confirmation_code_required,
                     "expires_at": o.expires_at,
                     "created_at": o.created_at, "updated_at": o.updated_at} for o in rows])
        return
    print_table("ES2+ orders", ["iccid", "requester", "state", "profile type", "matching id",
                                "eid", "expires", "updated"],
                [(o.iccid, o.requester, o.profile_state, o.profile_type, o.matching_id, o.eid,
                  o.expires_at.isoformat(timespec="seconds") if o.expires_at else "-",
                  o.updated_at.isoformat(timespec="seconds")) for o in rows])


@app.command("sweep")
@handle_errors
def sweep(as_json: bool = JsonOpt) -> None:
    """Delete expired ES9+ download sessions (RSP sessions past their time to live) and end the
    download orders past their validity (SIMSMITH_SMDP_ORDER_VALIDITY: the profile to error,
    the operator told). `simsmith serve` does this itself every SIMSMITH_ES9PLUS_SWEEP_SECONDS;
    this is for cron."""
    from simcore.smdp.download_service import sweep_orders, sweep_sessions

    eng = engine()
    deleted = sweep_sessions(eng)
    expired = sweep_orders(eng)
    if as_json:
        print_json({"deleted": deleted, "orders_expired": expired})
        return
    console.print(f"{deleted} expired ES9+ session(s) deleted, {expired} expired download "
                  "order(s) ended")


def _receiver_dict(r: object) -> dict[str, object]:
    return {k: getattr(r, k) for k in ("operator", "url", "cert", "key", "ca", "requester_id",
                                       "enabled", "updated_at")}


@app.command("receiver-set")
@handle_errors
def receiver_set(
    operator: str = typer.Option(..., "--operator", help="The operator "
                                 "(functionRequesterIdentifier) whose profiles' progress goes "
                                 "to this receiver."),
    url: str = typer.Option(..., "--url", help="Its ES2+ base URL (https), or the full URL of "
                            "its handleDownloadProgressInfo."),
    cert: Path | None = typer.Option(None, "--cert", help="Our client certificate (PEM) for "
                                     "mutual TLS; default the development PKI's."),
    key: Path | None = typer.Option(None, "--key", help="Its private key (PEM)."),
    ca: Path | None = typer.Option(None, "--ca", help="CA bundle for the receiver's server "
                                   "certificate."),
    requester_id: str | None = typer.Option(None, "--requester-id", help="The function"
                                            "RequesterIdentifier we send; default the client "
                                            "certificate's CN."),
    disabled: bool = typer.Option(False, "--disabled", help="Keep its notifications queued, "
                                  "send nothing until enabled."),
    as_json: bool = JsonOpt,
) -> None:
    """Where an operator receives HandleDownloadProgressInfo from this SM-DP+ (create or
    replace)."""
    from simcore.smdp.progress_notify import set_receiver

    row = set_receiver(engine(), operator, url, cert=str(cert) if cert else None,
                       key=str(key) if key else None, ca=str(ca) if ca else None,
                       requester_id=requester_id, enabled=not disabled)
    if as_json:
        print_json(_receiver_dict(row))
        return
    console.print(f"operator {operator}: notifications to {row.url} "
                  f"({'enabled' if row.enabled else 'disabled'})")


@app.command("receiver-enable")
@handle_errors
def receiver_enable(
    operator: str = typer.Option(..., "--operator", help="The operator."),
    disable: bool = typer.Option(False, "--disable", help="Disable instead."),
    as_json: bool = JsonOpt,
) -> None:
    """Enable (or --disable) an operator's receiver; queued notifications wait while disabled."""
    from simcore.smdp.progress_notify import enable_receiver

    row = enable_receiver(engine(), operator, not disable)
    if as_json:
        print_json(_receiver_dict(row))
        return
    console.print(f"operator {operator}: receiver {'enabled' if row.enabled else 'disabled'}")


@app.command("receivers")
@handle_errors
def receivers(as_json: bool = JsonOpt) -> None:
    """The operators' HandleDownloadProgressInfo receivers."""
    from simcore.smdp.progress_notify import list_receivers

    rows = list_receivers(engine())
    if as_json:
        print_json([_receiver_dict(r) for r in rows])
        return
    print_table("ES2+ receivers", ["operator", "url", "client certificate", "enabled"],
                [(r.operator, r.url, r.cert or "(dev PKI)", "yes" if r.enabled else "no")
                 for r in rows])


@app.command("notifications")
@handle_errors
def notifications(
    state: str | None = typer.Option(None, "--state", help="pending, delivered or dead."),
    iccid: str | None = typer.Option(None, "--iccid", help="Only this profile's."),
    limit: int = typer.Option(100, "--limit", min=1, max=10_000),
    as_json: bool = JsonOpt,
) -> None:
    """HandleDownloadProgressInfo notifications and their delivery state."""
    import json as _json

    from simcore.smdp.progress_notify import list_notifications

    rows = list_notifications(engine(), state=state, iccid=iccid, limit=limit)
    out = [{"id": n.id, "operator": n.operator, "iccid": n.iccid, "call_id": n.call_id,
            "state": n.state, "attempts": n.attempts, "last_status": n.last_status,
            "last_error": n.last_error, "created_at": n.created_at,
            "delivered_at": n.delivered_at, "body": _json.loads(n.body)} for n in rows]
    if as_json:
        print_json(out)
        return
    print_table("ES2+ notifications", ["id", "operator", "iccid", "point", "state", "attempts",
                                       "last error"],
                [(o["id"], o["operator"], o["iccid"],
                  o["body"]["notificationPointId"], o["state"],  # type: ignore[index]
                  o["attempts"], o["last_error"] or "") for o in out])


@app.command("notify")
@handle_errors
def notify(
    once: bool = typer.Option(False, "--once", help="One round (collect, send what is due), "
                              "then exit; without it, loop until Ctrl-C."),
    as_json: bool = JsonOpt,
) -> None:
    """Send HandleDownloadProgressInfo for the SM-DP+'s profile state changes to each
    operator's receiver (what `simsmith serve` does in the background)."""
    import time

    from simcore.smdp.progress_notify import BATCH, Notifier, NotifySettings

    s = settings()
    notifier = Notifier(engine(), NotifySettings.from_settings(s))
    try:
        while True:
            done = notifier.run_once()
            if once:
                break
            if done["events"] < BATCH and not done["sent"]:
                time.sleep(s.es2plus_notify_poll_seconds)
    finally:
        notifier.close()
    if as_json:
        print_json(done)
        return
    console.print(f"{done['events']} event(s) read, {done['sent']} notification(s) sent, "
                  f"{done['delivered']} delivered, {done['failed']} to retry")
