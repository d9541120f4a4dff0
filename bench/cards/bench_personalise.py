"""Full personalisation with verification per card, on the virtual card through the real
PC/SC stack (pyscard -> pcscd -> vpcd -> `simsmith card emulate` in its own process), per driver
and per field group: APDUs, exchanges (with GET RESPONSE / 6Cxx resends) and wall time.
Card insertion is excluded. A loopback line (card in-process, no pcscd) separates card logic
from the PC/SC path.

Run: .venv/bin/python bench/cards/bench_personalise.py [--cards N]
(needs build/services/pcscd.env from scripts/services/pcscd.sh start; make bench does it)
"""

from __future__ import annotations

import argparse
import os
import platform
import signal
import statistics
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from cards.personalise import ProgramResult, program_card  # noqa: E402
from cards.profile import AuthVector, CardKeys, CardProfile, StaticKeyWriter  # noqa: E402
from cards.secret import Secret, adm_from_text  # noqa: E402
from cards.virtual.card import VirtualUicc  # noqa: E402
from cards.virtual.loopback import LoopbackTransport  # noqa: E402
from cards.virtual.milenage_card import Milenage  # noqa: E402

DRIVERS = ["sysmoISIM-SJA2", "sysmoISIM-SJA5", "sysmoUSIM-SJS1"]
KI, OPC = os.urandom(16), os.urandom(16)
WRITER = StaticKeyWriter(adm_from_text("12345678"), CardKeys(Secret(KI, "Ki"), Secret(OPC, "OPc")))
PROFILE = CardProfile(iccid="8988211000000000011", imsi="001010000000011",
                      msisdn="+491760000443", spn="simsmith")


def vector(seq: int) -> AuthVector:
    m = Milenage(KI, OPC)
    rand, amf = os.urandom(16), b"\x80\x00"
    sqn = (seq << 5).to_bytes(6, "big")
    mac, _ = m.f1(rand, sqn, amf)
    res, ck, ik, ak, _ = m.f2345(rand)
    return AuthVector(rand, bytes(a ^ b for a, b in zip(sqn, ak, strict=True)) + amf + mac,
                      res, ck, ik)


GROUP_ROWS: list[str] = []


def summarise(name: str, path: str, runs: list[ProgramResult]) -> None:
    ms = sorted(r.seconds * 1000 for r in runs)
    p95 = ms[min(len(ms) - 1, int(len(ms) * 0.95))]
    r = runs[0]
    print(f"| {name} | {path} | {r.apdus} | {r.exchanges} | {statistics.median(ms):.2f} | "
          f"{p95:.2f} |")
    cells = " | ".join(
        f"{s.apdus}/{s.exchanges}, "
        f"{statistics.median(x.groups[g].seconds for x in runs) * 1000:.2f}"
        for g, s in r.groups.items())
    GROUP_ROWS.append(f"| {name} | {path} | {cells} |")


def bench_loopback(n: int) -> None:
    for name in DRIVERS:
        card = VirtualUicc(name, adm1="12345678")
        runs = [program_card(LoopbackTransport(card), PROFILE, WRITER, vector(i + 1))
                for i in range(n)]
        summarise(name, "loopback", runs)


def bench_pcsc(n: int) -> None:
    from cards.pcsc import PcscTransport, wait_for_card_state

    readers = os.environ["SIMSMITH_VPCD_READERS"].split("|")
    for name, with_state in [(d, s) for s in (False, True) for d in DRIVERS]:
        slot = 0
        card_file = Path(ROOT, "build", f"bench-{name}.json")
        card_file.unlink(missing_ok=True)
        env = {**os.environ, "SIMSMITH_EMULATE_ADM1": "12345678"}
        state = ["--state", str(card_file)] if with_state else []
        proc = subprocess.Popen([sys.executable, "-m", "tools.cli", "card", "emulate", "--type",
                                 name, "--slot", str(slot), *state],
                                cwd=ROOT, env=env, stdout=subprocess.DEVNULL)
        try:
            wait_for_card_state(readers[slot], present=True, timeout=10)
            runs = []
            for i in range(n):
                with PcscTransport(readers[slot], timeout=2) as t:
                    runs.append(program_card(t, PROFILE, WRITER, vector(i + 1)))
            summarise(name, "pcscd+vpcd" + (", state file" if with_state else ""), runs)
        finally:
            proc.send_signal(signal.SIGINT)
            proc.wait(10)
            wait_for_card_state(readers[slot], present=False, timeout=5)
            card_file.unlink(missing_ok=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cards", type=int, default=50, help="personalisations per driver")
    args, _ = ap.parse_known_args()
    print(f"# cards: personalise + verify, {args.cards} cards per driver; "
          f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}")
    print("| driver | path | APDUs | exchanges | median ms | p95 ms |")
    print("|---|---|---|---|---|---|")
    bench_loopback(args.cards)
    if os.environ.get("SIMSMITH_TEST_PCSC") == "1":
        bench_pcsc(args.cards)
    else:
        print("(pcscd not started: PC/SC rows skipped; run scripts/services/pcscd.sh start "
              "and source build/services/pcscd.env)")
    print("\nper field group: APDUs/exchanges, median ms")
    print("| driver | path | detect | adm | iccid | keys | gsm | auth | usim |")
    print("|---|---|---|---|---|---|---|---|---|")
    for row in GROUP_ROWS:
        print(row)


if __name__ == "__main__":
    main()
