"""`simsmith euicc`: the virtual eUICC (esim.euicc) on pcscd through vsmartcard-vpcd."""

from __future__ import annotations

import signal
from pathlib import Path

import typer

from tools.common import console, fail, handle_errors, settings

app = typer.Typer(no_args_is_help=True)


@app.command("emulate")
@handle_errors
def emulate_cmd(
    eid: str | None = typer.Option(None, "--eid", help="EID (32 digits, SGP.29); default "
                                   "a fixed development EID."),
    state: Path | None = typer.Option(None, "--state", help="State file: installed profiles "
                                      "and notifications survive restarts (mode 0600; holds "
                                      "the profiles' keys)."),
    slot: int = typer.Option(0, "--slot", help="vpcd slot: TCP port 35963 + N."),
    host: str = typer.Option("127.0.0.1", "--host", help="vpcd host."),
    pki_dir: Path | None = typer.Option(None, "--pki", help="Development RSP PKI (CI, EUM, "
                                        "eUICC certificates; default $SIMSMITH_HOME/pki/rsp, "
                                        "created on first use)."),
) -> None:
    """Plug a virtual eUICC (SGP.22 ISD-R with ES10a/b/c, the enabled profile's USIM) into
    pcscd through vsmartcard-vpcd until Ctrl-C."""
    from cards.virtual.vpcd import VPCD_BASE_PORT, VpcdCard, VpcdError
    from esim.euicc.identity import dev_euicc
    from simcore.euicc import virtual_euicc
    from simcore.identifiers import Eid

    if eid is not None:
        eid = Eid.parse(eid).digits
    core = dev_euicc(pki_dir or settings().home / "pki" / "rsp", eid=eid, state=state)
    card = virtual_euicc(core)
    vcard = VpcdCard(card, host=host, port=VPCD_BASE_PORT + slot)
    try:
        vcard.connect(timeout=5)
    except VpcdError as e:
        fail(str(e))
    signal.signal(signal.SIGTERM, lambda *_: vcard.stop())
    signal.signal(signal.SIGINT, signal.default_int_handler)
    console.print(f"emulating eUICC {core.eid} (ATR {card.atr.hex().upper()}) on "
                  f"{host}:{VPCD_BASE_PORT + slot}, {len(core.state.profiles)} profile(s)"
                  + (f", state {state}" if state else "") + "; Ctrl-C to remove", markup=False)
    try:
        vcard.serve()
    except KeyboardInterrupt:
        vcard.stop()
    console.print(f"eUICC removed after {vcard.apdus} APDUs")
