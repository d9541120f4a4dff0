"""Complete profile downloads through simsmith's ES9+ core on one core, the SM-DP+'s side and the
eUICC's side timed separately (issue 16 item 8). Each download is what an LPA does — ES9+
InitiateAuthentication, AuthenticateClient, GetBoundProfilePackage, HandleNotification against
`Es9PlusCore` with the real identity (SK.DPauth / SK.DPpb in the soft HSM: three ECDSA
signatures), sessions in the store (SQLite, `StoreSessions`), the subscriber's UPP personalised by
the HSM (`HsmUppSource`), a fresh virtual eUICC per download (its ES10b functions over APDUs,
installing the profile) — without HTTP: the HTTPS transport is the ES9+ listener's (es9http) and
is not in these figures. Orders come from an in-memory `DownloadOrders` (the store's order
bookkeeping is not included either).

    .venv/bin/python bench/smdp/bench_download_core.py [--downloads 100] [--json]

Rates: downloads per CPU-second of this process, split by where the CPU went — inside the
SM-DP+'s `Es9PlusCore.handle` calls, and the rest (the LPA and the eUICC: ES10 APDUs, the eUICC's
ECDSA, ECKA, segment checks and profile installation).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time
import warnings
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_bpp_path import _store, store_metadata  # noqa: E402

from hsm_sim.errors import DevModeWarning  # noqa: E402


class Orders:
    """DownloadOrders in memory: one released order per matching ID."""

    def __init__(self) -> None:
        self.orders: dict[str, Any] = {}
        self.done = 0

    def released(self, matching_id: str) -> Any:
        return self.orders.get(matching_id)

    def confirmation_code_failed(self, order: Any) -> int:
        return 0

    def expired(self, order: Any) -> None:
        raise AssertionError("no order expires here")

    def delivered(self, order: Any, eid: str, transaction_id: bytes) -> None:
        self.orders.pop(order.matching_id, None)

    def installed(self, iccid: str, eid: str | None) -> None:
        self.done += 1

    def install_failed(self, iccid: str, eid: str | None, reason: str) -> None:
        raise AssertionError(f"install failed: {reason}")

    def cancelled(self, iccid: str, eid: str | None, reason: str) -> None:
        raise AssertionError(f"cancelled: {reason}")

    def notified(self, iccid: str | None, eid: str, event: Any) -> None:
        pass


class TimedEs9:
    """The LPA's Es9Transport straight onto the core, with the CPU spent inside it."""

    def __init__(self, core: Any) -> None:
        self.core = core
        self.cpu = 0.0

    def post(self, function: str, body: dict[str, Any]) -> dict[str, Any] | None:
        start = time.process_time()
        try:
            answer = self.core.handle(function, body).body
        finally:
            self.cpu += time.process_time() - start
        return answer  # type: ignore[no-any-return]


def run(n: int, store_sessions: bool) -> dict[str, float]:
    """`n` downloads; CPU seconds inside the SM-DP+ and in total."""
    from esim.euicc.identity import dev_euicc
    from esim.lpa.download import download
    from esim.lpa.functions import Es10Functions
    from esim.rsp_pki import EUM_EID_PREFIX
    from hsm_sim.soft import SoftHsm
    from simcore import inventory
    from simcore.config import Settings
    from simcore.euicc import EuiccLoopback, es10_session, virtual_euicc
    from simcore.identifiers import mod97_check_digits
    from simcore.smdp.es9plus import Es9PlusCore, InMemorySessions, ReleasedOrder, StoreSessions
    from simcore.smdp.identity import smdp_identity
    from simcore.smdp.upp_source import HsmUppSource

    address = "smdp.bench.test"
    with tempfile.TemporaryDirectory() as tmp:
        home = Path(tmp)
        hsm = SoftHsm.init(home / "hsm", components=[os.urandom(32), os.urandom(32)])
        engine = _store(home, hsm, n)
        identity = smdp_identity(address=address, hsm=hsm, home=home,
                                 settings=Settings(home=home, mode="dev"))
        orders = Orders()
        sessions: Any = StoreSessions(engine) if store_sessions else InMemorySessions()
        core = Es9PlusCore(identity, sessions, orders, HsmUppSource(engine, hsm))
        es9 = TimedEs9(core)
        iccids = [s.iccid for s in inventory.list_sims(engine, batch="e", limit=n)]
        cards = []
        for i, iccid in enumerate(iccids):  # set-up, not timed: one eUICC (certificate) each
            body = EUM_EID_PREFIX + f"{i + 1:022d}"
            eid = body + mod97_check_digits(body)
            cards.append(virtual_euicc(dev_euicc(home / "pki" / "rsp", eid=eid, state=None)))
            orders.orders[f"M-{i}"] = ReleasedOrder(f"M-{i}", iccid, store_metadata(iccid))
        start_cpu = time.process_time()
        for i, card in enumerate(cards):
            with es10_session(EuiccLoopback(card)) as es10:
                result = download(Es10Functions(es10.call), es9, f"LPA:1${address}$M-{i}")
            assert result.success and result.iccid == iccids[i]
        assert orders.done == n  # every ProfileInstallationResult verified and taken
        total_cpu = time.process_time() - start_cpu
    return {"smdp": es9.cpu, "total": total_cpu}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--downloads", type=int, default=100)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    warnings.simplefilter("ignore", DevModeWarning)
    n = args.downloads
    store = run(n, store_sessions=True)
    memory = run(n, store_sessions=False)
    euicc_cpu = store["total"] - store["smdp"]
    results = {"downloads": n,
               "smdp_downloads_per_cpu_s": round(n / store["smdp"], 1),
               "smdp_ms_per_download": round(store["smdp"] / n * 1000, 2),
               "smdp_sessions_in_memory_downloads_per_cpu_s": round(n / memory["smdp"], 1),
               "smdp_sessions_in_memory_ms_per_download": round(memory["smdp"] / n * 1000, 2),
               "euicc_lpa_downloads_per_cpu_s": round(n / euicc_cpu, 1),
               "euicc_lpa_ms_per_download": round(euicc_cpu / n * 1000, 2),
               "python": platform.python_version(), "cpus": os.cpu_count()}
    if args.json:
        print(json.dumps(results, indent=2))
        return 0
    print(f"complete downloads through the ES9+ core, one core ({n} downloads, no HTTP)")
    print(f"  SM-DP+ side, sessions in the store (SQLite)  "
          f"{results['smdp_downloads_per_cpu_s']:8,.1f}/s  ({results['smdp_ms_per_download']} ms"
          " each)")
    print(f"  SM-DP+ side, sessions in memory              "
          f"{results['smdp_sessions_in_memory_downloads_per_cpu_s']:8,.1f}/s  "
          f"({results['smdp_sessions_in_memory_ms_per_download']} ms each)")
    print(f"  eUICC + LPA side                             "
          f"{results['euicc_lpa_downloads_per_cpu_s']:8,.1f}/s  "
          f"({results['euicc_lpa_ms_per_download']} ms each)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
