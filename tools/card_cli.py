"""`simsmith card`: PC/SC readers, reading a card, emulating one, the APDU plan of a
personalisation, and personalisation against the inventory (program, verify, batch: records from
the store, keys through the HSM; simcore.personalisation). pyscard is imported lazily (inside
commands), so `simsmith --help` works without it.
"""

from __future__ import annotations

import signal
import sys
import time
from typing import TYPE_CHECKING, Any

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
from tools.hsm_cli import hsm_errors

if TYPE_CHECKING:
    from cards.secret import Secret

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
        *_suci_rows(info.get("suci")),
        ("applications", ", ".join(f"{a['label'] or '?'} {a['aid']}"
                                   for a in info["applications"])),
    ] + [(f"{k} tries left", _tries(v)) for k, v in info["tries_left"].items()]
    print_table(None, ["field", "value"], rows)


def _schemes(entries: list[dict[str, Any]] | None) -> str:
    if not entries:
        return "-"
    names = {0: "null", 1: "A", 2: "B"}
    return ", ".join(names.get(e["scheme"], f"scheme {e['scheme']}")
                     + (f" key {e['key_id']}" if e["key_id"] is not None else "") for e in entries)


def _suci_rows(suci: dict[str, Any] | None) -> list[tuple[str, Any]]:
    if suci is None:
        return [("SUCI", "no DF.5GS")]
    by = {"me": "the phone", "usim": "the card (GET IDENTITY)"}.get(suci["calculated_by"] or "",
                                                                  "nobody (service 124 off)")
    rows: list[tuple[str, Any]] = [("SUCI computed by", by),
                                   ("SUCI schemes", _schemes(suci.get("calc_info"))),
                                   ("routing indicator", suci.get("routing_indicator") or "-")]
    if suci.get("usim_calc_info") is not None:
        rows.append(("SUCI schemes (card)", _schemes(suci["usim_calc_info"])))
    return rows


@app.command("identity")
@handle_errors
@hsm_errors
def identity_cmd(
    reader: str = ReaderOpt,
    deconceal: bool = typer.Option(False, "--deconceal", help="Also de-conceal it through the "
                                   "HSM (audited as suci.deconcealed)."),
    timeout: float = typer.Option(0.0, "--wait", help="Seconds to wait for a card."),
    trace: bool = TraceOpt,
    as_json: bool = JsonOpt,
) -> None:
    """Ask the card's USIM for its SUCI (GET IDENTITY, TS 31.102 §7.5): the card computes it
    when EF.UST services 124 and 125 are on (`card program --suci-by usim`)."""
    from cards.commands import Uicc
    from cards.drivers.base import USIM_AID
    from cards.errors import CardError
    from cards.pcsc import PcscTransport
    from simcore.suci import Suci

    try:
        with PcscTransport(_reader(reader), timeout=timeout, trace=_trace(trace)) as t:
            u = Uicc(t)
            u.select_aid(USIM_AID)
            raw = u.get_identity()
    except CardError as e:
        fail(str(e))
        return
    suci = Suci.from_bytes(raw)
    out: dict[str, Any] = {"suci": str(suci), "binary": "0x" + raw.hex(),
                           "scheme": int(suci.scheme), "key_id": suci.key_id,
                           "routing_indicator": suci.routing_indicator}
    if deconceal:
        from simcore import suci_keys
        from tools.hsm_cli import open_hsm

        found = suci_keys.deconceal(engine(), open_hsm(), suci, actor=actor())
        out["supi"], out["imsi"] = found.supi, found.imsi.digits
    if as_json:
        print_json(out)
        return
    console.print(out["suci"], markup=False, soft_wrap=True)
    if deconceal:
        console.print(f"-> {out['supi']}", markup=False)


@app.command("emulate")
def emulate_cmd(
    card_type: str = typer.Option("sysmoISIM-SJA2", "--type", help="Card type to present."),
    state: str | None = typer.Option(None, "--state", help="State file: the card survives "
                                     "restarts (created if missing; holds the card's keys)."),
    slot: int = typer.Option(0, "--slot", help="vpcd slot: TCP port 35963 + N."),
    host: str = typer.Option("127.0.0.1", "--host", help="vpcd host."),
    iccid: str = typer.Option("8988211000000000011", "--iccid", help="Factory ICCID (new card)."),
    from_inventory: str | None = typer.Option(
        None, "--from-inventory", metavar="ICCID", help="A new card as its vendor delivers it "
        "for this SIM record: that factory ICCID and the record's ADM1 (through the HSM; a lab "
        "path: audited as card.lab_seed, refused with SIMSMITH_MODE=production)."),
) -> None:
    """Plug a software UICC into pcscd through vsmartcard-vpcd until Ctrl-C.

    A new card's ADM1 comes from SIMSMITH_EMULATE_ADM1 (default 12345678), or with
    --from-inventory from the store through the audited lab path; it is never printed, and the
    state file keeps codes only as verifiers (mode 0600).
    """
    from cards.virtual.card import VirtualUicc
    from cards.virtual.card_types import CARD_TYPES
    from cards.virtual.vpcd import VPCD_BASE_PORT, VpcdCard, VpcdError

    if card_type not in CARD_TYPES:
        fail(f"unknown card type {card_type!r}; types: {', '.join(CARD_TYPES)}")
    adm1: str | Secret = settings().emulate_adm1.get_secret_value()
    if from_inventory is not None:
        iccid, adm1 = _vendor_card(from_inventory)
    try:
        card = VirtualUicc(card_type, iccid=iccid, state_path=state, adm1=adm1)
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


# --- personalisation against the inventory --------------------------------------------------


def _vendor_card(iccid: str) -> tuple[str, Secret]:
    """(ICCID, ADM1) of a stored SIM, for an emulated card shipped for that record: the audited
    lab path (simcore.lab_cards), refused in production mode."""
    from simcore import lab_cards
    from simcore.config import get_settings
    from simcore.errors import SimsmithError
    from tools.hsm_cli import hsm_errors, open_hsm

    @hsm_errors  # HSM errors as one line, dev-mode warnings printed now, not at Ctrl-C
    def fetch() -> lab_cards.CardSeed:
        return lab_cards.card_seed(engine(), open_hsm(), iccid, actor=get_settings().actor)

    try:
        seed = fetch()
    except SimsmithError as e:
        fail(str(e))
        raise AssertionError("unreachable") from e
    return seed.iccid, seed.adm1


def _prompt_adm1() -> Any:
    from cards.secret import CodeFormatError, adm_from_text

    text = typer.prompt("ADM1 (8 digits or 16 hex digits, hidden)", hide_input=True, err=True)
    try:
        return adm_from_text(text.strip())
    except CodeFormatError as e:
        fail(f"--adm1-prompt: {e}")


def _hsm_factory() -> Any:
    """The HSM for one worker: the soft HSM is shared; a PKCS#11 session per thread."""
    from simcore.hsm_access import per_worker
    from tools.hsm_cli import audit_sink, open_hsm

    sink = audit_sink()
    return per_worker(open_hsm(sink), audit=sink)


DriverOpt = typer.Option(None, "--driver", help="Force a driver (sysmoISIM-SJA2, sysmoISIM-SJA5, "
                         "sysmoUSIM-SJS1, generic); default: from the ATR.")
SpnOpt = typer.Option(None, "--spn", help="Service provider name to write (EF.SPN).")
WaitOpt = typer.Option(10.0, "--wait", help="Seconds to wait for a card.")
SuciByOpt = typer.Option(None, "--suci-by", metavar="me|usim",
                         help="Who computes the SUCI (TS 31.102 EF.UST 124/125): the phone from "
                         "EF.SUCI_Calc_Info, or the card on GET IDENTITY (sysmoISIM-SJA5); "
                         "default SIMSMITH_SUCI_CALCULATION (me).")


@app.command("program")
@handle_errors
@hsm_errors
def program_cmd(
    reader: str = ReaderOpt,
    iccid: str | None = typer.Option(None, "--iccid", help="The SIM record to write."),
    batch: str | None = typer.Option(None, "--next-from-batch", metavar="BATCH",
                                     help="The card's own record if the batch holds its ICCID, "
                                     "else the batch's next blank SIM."),
    dry_run: bool = typer.Option(False, "--dry-run", help="Print the APDU plan only (secrets "
                                 "masked); nothing is sent but the ATR is read for the driver."),
    driver: str | None = DriverOpt,
    spn: str | None = SpnOpt,
    adm1_prompt: bool = typer.Option(False, "--adm1-prompt", help="Ask for the card's ADM1 at a "
                                     "hidden prompt instead of taking the stored one."),
    suci_by: str | None = SuciByOpt,
    timeout: float = WaitOpt,
    trace: bool = TraceOpt,
    as_json: bool = JsonOpt,
) -> None:
    """Write a SIM record to the card (keys and ADM1 through the HSM), read it back, prove it with
    AUTHENTICATE, then mark the SIM personalised."""
    from cards.errors import CardError
    from cards.pcsc import PcscTransport
    from simcore.personalisation import detect_driver, plan_sim, program_sim

    if (iccid is None) == (batch is None):
        fail("give exactly one of --iccid and --next-from-batch", 2)
    eng = engine()
    try:
        if dry_run:
            if driver is None:
                with PcscTransport(_reader(reader), timeout=timeout) as t:
                    driver = detect_driver(t)
            sim, lines = plan_sim(eng, driver=driver, iccid=iccid, batch=batch, spn=spn,
                                  suci_by=suci_by)
            if as_json:
                print_json({"iccid": sim.iccid, "driver": driver, "plan": lines})
                return
            console.print(f"plan for SIM {sim.iccid} ({driver}):", markup=False)
            for line in lines:
                console.print(line, markup=False, soft_wrap=True)
            console.print(f"{len(lines)} APDUs", markup=False)
            return
        from tools.hsm_cli import open_hsm

        adm = _prompt_adm1() if adm1_prompt else None
        hsm = open_hsm()
        started = time.perf_counter()  # the card's time includes the PC/SC connect
        with PcscTransport(_reader(reader), timeout=timeout, trace=_trace(trace)) as t:
            out = program_sim(eng, hsm, t, actor=actor(), iccid=iccid, batch=batch,
                              driver=driver, spn=spn, reader=t.reader, adm1=adm,
                              started=started, suci_by=suci_by)
    except CardError as e:
        fail(str(e))
        return
    if as_json:
        print_json(out.as_dict())
        return
    if out.status == "skipped":
        console.print(f"SIM {out.iccid}: already personalised on this card; keys verified "
                      f"({out.apdus} APDUs on the wire)", markup=False)
        return
    console.print(f"SIM {out.iccid}: programmed with {out.driver} ({out.apdus} APDUs on the "
                  f"wire, {out.seconds * 1000:.0f} ms with connect and HSM), read back and "
                  "authenticated once; state personalised", markup=False)


@app.command("verify")
@handle_errors
@hsm_errors
def verify_cmd(
    reader: str = ReaderOpt,
    timeout: float = WaitOpt,
    trace: bool = TraceOpt,
    as_json: bool = JsonOpt,
) -> None:
    """Read the card's ICCID, find its SIM and check it answers AUTHENTICATE (3G and GSM) with
    the HSM's keys."""
    from cards.errors import CardError
    from cards.pcsc import PcscTransport
    from simcore.personalisation import verify_sim
    from tools.hsm_cli import open_hsm

    eng = engine()
    hsm = open_hsm()
    try:
        with PcscTransport(_reader(reader), timeout=timeout, trace=_trace(trace)) as t:
            info = verify_sim(eng, hsm, t, actor=actor())
    except CardError as e:
        fail(str(e))
        return
    if as_json:
        print_json(info)
        return
    console.print(f"SIM {info['iccid']} (IMSI {info['imsi']}, {info['state']}): the card's keys "
                  f"are the HSM's (AUTHENTICATE 3G and GSM, {info['apdus']} APDUs)",
                  markup=False)


@app.command("batch")
@handle_errors
@hsm_errors
def batch_cmd(
    batch: str = typer.Option(..., "--batch", help="The batch to personalise."),
    readers: list[str] = typer.Option(["0"], "--reader", "-r",
                                      help="Reader index or name; repeat for several readers."),
    driver: str | None = DriverOpt,
    spn: str | None = SpnOpt,
    suci_by: str | None = SuciByOpt,
    idle_timeout: float | None = typer.Option(
        None, "--idle-timeout", help="Stop a reader after this many seconds without a card."),
    max_cards: int | None = typer.Option(None, "--max-cards", min=1,
                                         help="Stop after this many cards."),
    as_json: bool = JsonOpt,
) -> None:
    """Personalise a batch card after card on one or more readers: program, verify, report, ask
    for the next card. Resumable: a card already personalised is recognised and skipped.
    Ends when the batch has no blank SIM left (or Ctrl-C), with a summary."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

    from cards.errors import CardError
    from cards.pcsc import list_readers, resolve_reader
    from simcore.personalisation import blank_left, pcsc_batch_io, run_batch

    eng = engine()
    try:
        names = list_readers()
        chosen = list(dict.fromkeys(resolve_reader(_reader(r), names) for r in readers))
    except CardError as e:
        fail(str(e))
        return
    todo = blank_left(eng, batch)
    factory = _hsm_factory()
    open_transport, wait_card = pcsc_batch_io()
    with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                  console=err_console, disable=as_json) as progress:
        task = progress.add_task(f"batch {batch}", total=todo)

        def on_event(kind: str, reader: str, outcome: Any) -> None:
            if kind == "waiting":
                progress.console.print(f"{reader}: insert a card", markup=False)
            elif kind == "remove":
                progress.console.print(f"{reader}: remove the card", markup=False)
            elif kind == "card" and outcome is not None:
                if outcome.status == "programmed":
                    progress.advance(task)
                    line = (f"{reader}: {outcome.iccid} programmed ({outcome.driver}, "
                            f"{outcome.apdus} APDUs)")
                elif outcome.status == "skipped":
                    line = f"{reader}: {outcome.iccid} already personalised, verified, skipped"
                else:
                    line = f"{reader}: failed: {outcome.error}"
                progress.console.print(line, markup=False, soft_wrap=True)

        summary = run_batch(eng, factory, batch, chosen, actor=actor(),
                            open_transport=open_transport, wait_card=wait_card, driver=driver,
                            spn=spn, suci_by=suci_by, idle_timeout=idle_timeout,
                            max_cards=max_cards,
                            on_event=on_event)
    data = summary.as_dict()
    if as_json:
        print_json(data)
    else:
        print_table(f"batch {batch}", ["programmed", "skipped", "failed", "blank left"],
                    [(data["programmed"], data["skipped"], data["failed"], data["blank_left"])])
    if data["failed"]:
        raise typer.Exit(1)
