"""`simsmith events`: the outbox on NATS JetStream — run the relay, watch the subjects, status."""

from __future__ import annotations

import asyncio
import contextlib
import json
import signal
from typing import Any

import typer

from simcore import nats_relay
from tools.common import JsonOpt, console, engine, fail, handle_errors, print_json, settings

app = typer.Typer(no_args_is_help=True)


def _url(url: str | None) -> str:
    chosen = url or settings().nats_url
    if not chosen:
        fail("no NATS server: set SIMSMITH_NATS_URL or pass --url")
    return str(chosen)


@app.command("relay")
@handle_errors
def relay(url: str | None = typer.Option(None, "--url", help="NATS server (default "
                                         "SIMSMITH_NATS_URL)."),
          once: bool = typer.Option(False, "--once", help="Publish what is due, then exit."),
          as_json: bool = JsonOpt) -> None:
    """Publish outbox events to JetStream (subjects <prefix>.<entity>.<event>) until SIGINT or
    SIGTERM; several relays may run, one publishes at a time."""
    from simcore import telemetry

    telemetry.configure_tracing("simsmith-relay")
    cfg = nats_relay.relay_settings(settings())
    cfg.url = _url(url)
    eng = engine()
    r = nats_relay.NatsRelay(eng, cfg)

    async def run() -> int:
        if once:
            total = 0
            try:
                while n := await r.run_once():
                    total += n
            finally:
                await r.close()
            return total
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        await r.run(stop)
        return 0

    try:
        n = asyncio.run(run())
    finally:
        telemetry.shutdown()
    st = nats_relay.status(eng)
    if as_json:
        print_json({"published": n, **st})
    else:
        console.print(f"published {n} events; backlog {st.get('backlog')}")


@app.command("status")
@handle_errors
def status(as_json: bool = JsonOpt) -> None:
    """The relay's position: last event published, how many wait, the last error."""
    st = nats_relay.status(engine())
    if as_json:
        print_json(st)
        return
    if not st["registered"]:
        console.print("the NATS relay has not run yet")
        return
    console.print(f"last event {st['last_event_id']}, {st['relayed_count']} published, "
                  f"backlog {st['backlog']}, lease {st['owner'] or '-'}"
                  + (f", last error: {st['last_error']}" if st["last_error"] else ""))


@app.command("tail")
@handle_errors
def tail(url: str | None = typer.Option(None, "--url", help="NATS server (default "
                                        "SIMSMITH_NATS_URL)."),
         subject: str | None = typer.Option(None, "--subject", help="Subject filter, e.g. "
                                            "simsmith.sim.> (default: every simsmith subject)."),
         from_start: bool = typer.Option(False, "--all", help="Replay the stream from its "
                                         "first message instead of new ones only."),
         count: int = typer.Option(0, "--count", min=0, help="Stop after this many messages "
                                   "(0: until interrupted)."),
         idle: float = typer.Option(0.0, "--idle", min=0, help="Stop after this many seconds "
                                    "without a message (0: never)."),
         as_json: bool = JsonOpt) -> None:
    """Print events as they reach the stream: subject, event id, trace and data (one JSON line
    each with --json)."""
    s = settings()
    target = _url(url)
    subj = subject or f"{s.nats_subject_prefix}.>"

    async def run() -> None:
        import nats
        from nats.js.api import DeliverPolicy

        nc = await nats.connect(target, connect_timeout=2)
        try:
            js = nc.jetstream()
            sub = await js.subscribe(subj, stream=s.nats_stream, ordered_consumer=True,
                                     deliver_policy=DeliverPolicy.ALL if from_start
                                     else DeliverPolicy.NEW)
            seen = 0
            while not count or seen < count:
                try:
                    msg = await sub.next_msg(timeout=idle or None)  # type: ignore[arg-type]
                except TimeoutError:
                    break
                seen += 1
                _print(msg, as_json)
        finally:
            await nc.close()

    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(run())


def _print(msg: Any, as_json: bool) -> None:
    headers = msg.headers or {}
    try:
        body = json.loads(msg.data)
    except ValueError:
        body = {"raw": msg.data.decode("utf-8", "replace")}
    if as_json:
        line = {"subject": msg.subject, "event_id": headers.get("Nats-Msg-Id"),
                "traceparent": headers.get("traceparent"), "event": body}
        typer.echo(json.dumps(line, separators=(",", ":")))
    else:
        typer.echo(f"{msg.subject} id={headers.get('Nats-Msg-Id')} "
                   f"subject_id={body.get('subject_id')} data={json.dumps(body.get('data'))}")
