"""Complete SGP.22 profile downloads per second into the virtual eUICC, and APDUs per download
(issue 17 item 5).

One download = what the LPA and the SM-DP+ exchange for one profile: GetEUICCChallenge,
InitiateAuthentication's serverSigned1 (signed with SK.DPauth), ES10b.AuthenticateServer (the
eUICC checks CERT.DPauth and serverSignature1, signs euiccSigned1), smdpSigned2 (SK.DPpb),
ES10b.PrepareDownload (CERT.DPpb, smdpSignature2, a fresh otSK.EUICC), the SM-DP+'s BPP
(ECKA, KDF, AES-CBC + CMAC per segment, smdpSign), ES10b.LoadBoundProfilePackage segment by
segment (verify, decrypt, SAIP parse, ICCID check), the signed ProfileInstallationResult.
The SM-DP+ side is esim.sgp22's functions in the same process (no HTTP: ES9+ is issue 16's);
the eUICC side is reached either in process (EuiccLoopback, the APDU layer included) or through
pcscd + vsmartcard-vpcd with pyscard (--pcsc; needs scripts/services/pcscd.sh and, on a shared
machine, `flock /tmp/simsmith-peers.lock`): the card inserted once, one PC/SC connection, each
download on a logical channel of its own; pcscd's own CPU time is read from /proc and reported
beside this process's (the vpcd card runs in this process).

Goal: <= 60 ms per download end to end on this machine; an established open LPA sends 142 APDUs
for a 13 kB package (issue 17). Usage:
  .venv/bin/python bench/euicc/bench_download.py [--quick] [--pcsc] [--block N] [--pcscd-pidfile F]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from cryptography.hazmat.primitives import serialization

from cards.transport import Transport
from esim.build import build_package, get_compiled
from esim.compiled import KeySlot
from esim.euicc.card import VirtualEuicc
from esim.euicc.identity import dev_euicc
from esim.lpa.functions import Es10Functions
from esim.params import SubscriberParams
from esim.rsp_pki import DevRspPki
from esim.saip.coding import iccid_to_ef
from esim.sgp22 import authentication as auth
from esim.sgp22 import schema
from esim.sgp22 import signatures as sig
from esim.sgp22.bpp import build_bpp
from esim.sgp22.certificates import subject_key_id
from esim.sgp22.tlv import encode_tlv
from simcore.euicc import EuiccLoopback, es10_session, virtual_euicc

ICCID, IMSI = "8949440000000000033", "001010000000033"


def _upp() -> bytes:
    def patch(buf: bytearray, slots: Sequence[KeySlot]) -> None:
        for slot in slots:
            buf[slot.offset:slot.offset + slot.length] = os.urandom(slot.length)
    return build_package(get_compiled("usim-isim-milenage"), SubscriberParams(
        iccid=ICCID, imsi=IMSI, pin1="1234", puk1="12345678", pin2="5678", puk2="87654321",
        adm1="12345678"), patch)


class Smdp:
    """The SM-DP+'s cryptography for one download (esim.sgp22), DevRspPki keys."""

    def __init__(self, pki: DevRspPki) -> None:
        self.dpauth, self.dppb, self.ci = pki.dpauth(), pki.dppb(), pki.ci()
        self.metadata = schema.encode("StoreMetadataRequest", {
            "iccid": iccid_to_ef(ICCID), "serviceProviderName": "simsmith",
            "profileName": "bench"})

    def download(self, f: Es10Functions, upp: bytes, eid: str) -> bytes:
        tid = os.urandom(16)
        signed1 = auth.server_signed1(transaction_id=tid, euicc_challenge=f.challenge(),
                                      server_address="smdp.bench", server_challenge=os.urandom(16))
        asr = f.authenticate_server(
            server_signed1=signed1,
            server_signature1=sig.sign(sig.software_signer(self.dpauth.key), signed1,
                                       "serverSignature1"),
            ci_pkid=encode_tlv(b"\x04", subject_key_id(self.ci.cert)),
            server_certificate=self.dpauth.cert.public_bytes(serialization.Encoding.DER),
            ctx_params1={"matchingId": "BENCH", "deviceInfo": {
                "tac": bytes(4), "deviceCapabilities": {}}})
        signature1 = sig.authenticate_server_response_parts(asr).signature_tlv
        signed2 = auth.smdp_signed2(transaction_id=tid, cc_required=False)
        pdr = f.prepare_download(
            smdp_signed2=signed2,
            smdp_signature2=sig.sign(sig.software_signer(self.dppb.key),
                                     sig.smdp_signature2_input(signed2, signature1),
                                     "smdpSignature2"),
            smdp_certificate=self.dppb.cert.public_bytes(serialization.Encoding.DER))
        otpk = bytes(schema.decode("PrepareDownloadResponse", pdr)[1]["euiccSigned2"]["euiccOtpk"])
        bpp = build_bpp(upp=upp, store_metadata=self.metadata, transaction_id=tid,
                        eid=bytes.fromhex(eid), otpk_euicc=otpk,
                        dppb_signer=sig.software_signer(self.dppb.key))
        return f.load_bpp(bpp.der)


Connect = Callable[[VirtualEuicc], tuple[Transport, Callable[[], None]]]


def _cpu_seconds(pid: int | None) -> float:
    """utime + stime of another process (pcscd), from /proc; 0 when unknown."""
    if pid is None:
        return 0.0
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def run(n: int, connect: Connect, block: int, pki: DevRspPki, upp: bytes,
        other_pid: int | None = None) -> dict[str, float]:
    """`n` downloads into one eUICC, over one connection (as an LPA keeps its reader); the
    eUICC forgets the profile between downloads (outside the ES10 traffic, so the same ICCID
    installs again), each download opens and closes its own logical channel."""
    smdp = Smdp(pki)
    card = virtual_euicc(dev_euicc(pki.directory))
    transport, done = connect(card)
    apdus = 0
    try:
        cpu0, wall0 = time.process_time(), time.perf_counter()
        other0 = _cpu_seconds(other_pid)
        for _ in range(n):
            card.core.state.profiles.clear()
            card.core.state.notifications.clear()
            before = transport.stats.apdus
            with es10_session(transport, block) as es10:
                smdp.download(Es10Functions(es10.call), upp, card.core.eid)
            apdus += transport.stats.apdus - before
        cpu, wall = time.process_time() - cpu0, time.perf_counter() - wall0
        other = _cpu_seconds(other_pid) - other0
    finally:
        done()
    return {"ms_cpu": 1000 * cpu / n, "ms_wall": 1000 * wall / n, "apdus": apdus / n,
            "ms_cpu_other": 1000 * other / n}


def _in_process(card: VirtualEuicc) -> tuple[Transport, Callable[[], None]]:
    return EuiccLoopback(card), lambda: None


def _through_pcscd(card: VirtualEuicc) -> tuple[Transport, Callable[[], None]]:
    """The card inserted once into the first vpcd reader, one PC/SC connection to it."""
    from cards.pcsc import PcscTransport, wait_for_card_state
    from cards.virtual.vpcd import VPCD_BASE_PORT, VpcdCard

    reader = os.environ["SIMSMITH_VPCD_READERS"].split("|")[0]
    port = int(os.environ.get("SIMSMITH_VPCD_PORTS", str(VPCD_BASE_PORT)).split()[0])
    wait_for_card_state(reader, present=False, timeout=5)
    vcard = VpcdCard(card, port=port).start()
    wait_for_card_state(reader, present=True, timeout=5)
    transport = PcscTransport(reader)

    def done() -> None:
        transport.close()
        vcard.stop()
        wait_for_card_state(reader, present=False, timeout=5)
    return transport, done


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--pcsc", action="store_true")
    parser.add_argument("--block", type=int, default=120)
    parser.add_argument("--pcscd-pidfile", type=Path,
                        default=Path(__file__).resolve().parents[2] / "build/pcscd/pcscd.pid",
                        help="to add pcscd's CPU time per download (scripts/services/pcscd.sh)")
    args = parser.parse_args()
    n = 5 if args.quick else 30
    with tempfile.TemporaryDirectory() as tmp:
        pki = DevRspPki(Path(tmp) / "rsp")
        upp = _upp()
        run(1, _in_process, args.block, pki, upp)  # warm-up (schemas compiled, keys made)
        rows = [("in process", run(n, _in_process, args.block, pki, upp))]
        if args.pcsc:
            pid = (int(args.pcscd_pidfile.read_text().strip())
                   if args.pcscd_pidfile.is_file() else None)
            rows.append(("pcscd + vpcd", run(n, _through_pcscd, args.block, pki, upp, pid)))
    print(f"profile package {len(upp)} bytes, STORE DATA blocks of {args.block} bytes, "
          f"{n} downloads")
    for name, r in rows:
        print(f"{name:14s} {r['ms_wall']:7.1f} ms/download wall ({1000 / r['ms_wall']:5.1f}/s), "
              f"{r['ms_cpu']:6.1f} ms CPU"
              + (f" + pcscd {r['ms_cpu_other']:.1f} ms CPU" if r["ms_cpu_other"] else "")
              + f", {r['apdus']:.0f} APDUs/download"
              f" — goal <= 60 ms: {'met' if r['ms_wall'] <= 60 else 'NOT met'}")


if __name__ == "__main__":
    main()
