"""`simsmith card`: PC/SC readers, reading a card, emulating one, and printing the APDU plan
of a personalisation. pyscard is imported lazily (inside commands), so `simsmith --help` works
without it. Library entry points for program/verify: cards.personalise.
"""

from __future__ import annotations

import os
import signal
import sys
from typing import Any

import typer

from tools.common import JsonOpt, console, fail, print_json, print_table

app = typer.Typer(no_args_is_help=True)

TraceOpt = typer.Option(False, "--trace", help="Print every APDU to stderr (secrets masked).")
ReaderOpt = typer.Option("0", "--reader", "-r", help="Reader index (see list-readers) or name.")


def _reader(value: str) -> int | str:
    return int(value) if value.isdigit() else value


def _trace(enabled: bool) -> Any:
    return (lambda line: sys.stderr.write(line + "\n")) if enabled else None


@app.command("list-readers")
def list_readers_cmd(as_json: bool = JsonOpt) -> None:
    """List the PC/SC readers pcscd knows, with their index."""
    from cards.errors import CardError
    from cards.pcsc import list_readers

    try:
        names = list_readers()
    except CardError as e:
        fail(str(e))
    if as_json:
        print_json([{"index": i, "name": n} for i, n in enumerate(names)])
        return
    if not names:
        console.print("no readers")
        return
    print_table(None, ["#", "reader"], enumerate(names))


def _tries(value: int | None) -> str:
    return "disabled or verified" if value is None else str(value)


@app.command("read")
def read_cmd(
    reader: str = ReaderOpt,
    as_json: bool = JsonOpt,
    trace: bool = TraceOpt,
    timeout: float = typer.Option(0.0, "--wait", help="Seconds to wait for a card."),
) -> None:
    """Read ICCID, IMSI, SPN, ACC, PLMN lists, MSISDN, services, card type and tries left."""
    from cards.errors import CardError
    from cards.pcsc import PcscTransport
    from cards.read import read_card

    try:
        with PcscTransport(_reader(reader), timeout=timeout, trace=_trace(trace)) as t:
            info = read_card(t)
    except CardError as e:
        fail(str(e))
    if as_json:
        print_json(info)
        return

    def plmns(entries: list[dict[str, Any]] | None) -> str:
        if not entries:
            return "-"
        return ", ".join(f"{e['mcc']}-{e['mnc']}" + (f" ({'/'.join(e['act'])})" if e.get("act")
                                                     else "") for e in entries)

    spn = info.get("spn") or {}
    msisdn = info.get("msisdn") or {}
    rows = [
        ("card type", info["card_type"]), ("ATR", info["atr"]), ("ICCID", info["iccid"]),
        ("IMSI", info.get("imsi")), ("MSISDN", msisdn.get("number")),
        ("SPN", spn.get("name")), ("ACC", ", ".join(map(str, info.get("acc") or []))),
        ("MNC length", (info.get("ad") or {}).get("mnc_length")),
        ("HPLMNwAcT", plmns(info.get("hplmn_act"))), ("OPLMNwAcT", plmns(info.get("oplmn_act"))),
        ("PLMNwAcT", plmns(info.get("plmn_act"))), ("FPLMN", plmns(info.get("fplmn"))),
        ("USIM services", " ".join(map(str, info.get("services") or []))),
        ("applications", ", ".join(f"{a['label'] or '?'} {a['aid']}"
                                   for a in info["applications"])),
    ] + [(f"{k} tries left", _tries(v)) for k, v in info["tries_left"].items()]
    print_table(None, ["field", "value"], rows)


@app.command("emulate")
def emulate_cmd(
    card_type: str = typer.Option("sysmoISIM-SJA2", "--type", help="Card type to present."),
    state: str | None = typer.Option(None, "--state", help="State file: the card survives "
                                     "restarts (created if missing; holds the card's keys)."),
    slot: int = typer.Option(0, "--slot", help="vpcd slot: TCP port 35963 + N."),
    host: str = typer.Option("127.0.0.1", "--host", help="vpcd host."),
    iccid: str = typer.Option("8988211000000000011", "--iccid", help="Factory ICCID (new card)."),
) -> None:
    """Plug a software UICC into pcscd through vsmartcard-vpcd until Ctrl-C.

    A new card's ADM1 comes from SIMSMITH_EMULATE_ADM1 (default 12345678); it is never printed.
    """
    from cards.virtual.card import VirtualUicc
    from cards.virtual.card_types import CARD_TYPES
    from cards.virtual.vpcd import VPCD_BASE_PORT, VpcdCard, VpcdError

    if card_type not in CARD_TYPES:
        fail(f"unknown card type {card_type!r}; types: {', '.join(CARD_TYPES)}")
    try:
        card = VirtualUicc(card_type, iccid=iccid, state_path=state,
                           adm1=os.environ.get("SIMSMITH_EMULATE_ADM1", "12345678"))
    except (ValueError, KeyError, OSError) as e:
        fail(f"cannot create the card: {e}")
    vcard = VpcdCard(card, host=host, port=VPCD_BASE_PORT + slot)
    try:
        vcard.connect(timeout=5)
    except VpcdError as e:
        fail(str(e))
    signal.signal(signal.SIGTERM, lambda *_: vcard.stop())
    signal.signal(signal.SIGINT, signal.default_int_handler)  # even when started with `&`
    console.print(f"emulating {card.type.name} (ATR {card.atr.hex().upper()}) on "
                  f"{host}:{VPCD_BASE_PORT + slot}" + (f", state {state}" if state else "")
                  + "; Ctrl-C to remove", markup=False)
    try:
        vcard.serve()
    except KeyboardInterrupt:
        vcard.stop()
    console.print(f"card removed after {vcard.apdus} APDUs")


@app.command("plan")
def plan_cmd(
    driver: str = typer.Option(..., "--driver", help="Driver: sysmoISIM-SJA2, sysmoISIM-SJA5, "
                               "sysmoUSIM-SJS1, generic."),
    iccid: str = typer.Option(..., "--iccid"),
    imsi: str = typer.Option(..., "--imsi"),
    msisdn: str | None = typer.Option(None, "--msisdn"),
    spn: str | None = typer.Option(None, "--spn"),
    mnc_length: int = typer.Option(2, "--mnc-length"),
    no_gsm: bool = typer.Option(False, "--no-gsm", help="Skip DF.GSM (USIM only)."),
) -> None:
    """Print the APDU plan of a personalisation (a dry run: no card, secrets masked)."""
    from cards.errors import CardError
    from cards.personalise import describe_plan, plan_card
    from cards.profile import CardProfile, StaticKeyWriter
    from cards.secret import Secret

    try:
        profile = CardProfile(iccid=iccid, imsi=imsi, msisdn=msisdn, spn=spn,
                              mnc_length=mnc_length, write_gsm=not no_gsm)
        steps = plan_card(profile, StaticKeyWriter(Secret(b"", "ADM1")), None, driver)
    except (CardError, ValueError) as e:
        fail(str(e))
    for line in describe_plan(steps):
        console.print(line, markup=False, soft_wrap=True)
    console.print(f"{len(steps)} APDUs", markup=False)
