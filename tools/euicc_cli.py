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
    curve: list[str] = typer.Option(
        [], "--curve", help="A CI hierarchy to carry a certificate chain in: secp256r1 or "
        "brainpoolP256r1 (repeatable, in the eUICC's order of preference, SGP.22 §2.6.7; "
        "default P-256, then brainpool when the PKI has that hierarchy)."),
) -> None:
    """Plug a virtual eUICC (SGP.22 ISD-R with ES10a/b/c, the enabled profile's USIM) into
    pcscd through vsmartcard-vpcd until Ctrl-C."""
    from cards.virtual.vpcd import VPCD_BASE_PORT, VpcdCard, VpcdError
    from esim.euicc.identity import dev_euicc
    from simcore.euicc import virtual_euicc
    from simcore.identifiers import Eid

    if eid is not None:
        eid = Eid.parse(eid).digits
    from esim.rsp_pki import LAB_CURVES

    for c in curve:
        if c not in LAB_CURVES:
            fail(f"--curve {c!r}: not one of {', '.join(LAB_CURVES)} (SGP.22 §2.6.7)")
    core = dev_euicc(pki_dir or settings().home / "pki" / "rsp", eid=eid, state=state,
                     curves=curve or None)
    card = virtual_euicc(core)
    vcard = VpcdCard(card, host=host, port=VPCD_BASE_PORT + slot)
    try:
        vcard.connect(timeout=5)
    except VpcdError as e:
        fail(str(e))
    signal.signal(signal.SIGTERM, lambda *_: vcard.stop())
    signal.signal(signal.SIGINT, signal.default_int_handler)
    from cryptography.hazmat.primitives.asymmetric import ec

    curves = ", ".join(k.curve.name for k in (c.certificate.public_key() for c in core.chains)
                       if isinstance(k, ec.EllipticCurvePublicKey))
    console.print(f"emulating eUICC {core.eid} (ATR {card.atr.hex().upper()}; CI chains on "
                  f"{curves}) on "
                  f"{host}:{VPCD_BASE_PORT + slot}, {len(core.state.profiles)} profile(s)"
                  + (f", state {state}" if state else "") + "; Ctrl-C to remove", markup=False)
    try:
        vcard.serve()
    except KeyboardInterrupt:
        vcard.stop()
    console.print(f"eUICC removed after {vcard.apdus} APDUs")
