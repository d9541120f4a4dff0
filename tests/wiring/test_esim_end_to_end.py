"""An eSIM end to end, every piece real and each command the README tour's (issues 16 and 17):
PostgreSQL and pcscd + vpcd from scripts/services, `simsmith pki sgp26-init` (the SM-DP+'s lab
hierarchy, DP keys in the HSM), `simsmith serve` with its ES9+ listener and its SM-DP+ reached
over ES2+ as `make run` has it, an order POSTed to the API, `simsmith euicc emulate` in a vpcd
reader, `simsmith lpa download` with the activation code from the API's answer over HTTPS ES9+,
the order then `installed` in the API and in a signed webhook, `simsmith lpa enable`, `simsmith
lpa notifications --process` (the SM-DP+ hears of it: `enabled`), and `simsmith card verify`:
the enabled profile's USIM answers AUTHENTICATE with the RES, CK and IK of a fresh HSM Milenage
vector for that subscriber. Then, with osmo-hlr from scripts/services/osmohlr.sh, `simsmith
export osmo-hlr` provisions the subscriber and the card answers the HLR's own vector (GSUP
SendAuthInfo) too."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import Engine

from cards.pcsc import PcscTransport, wait_for_card_state
from cards.personalise import verify_card
from cards.profile import AuthVector
from hsm_sim.hsm import KekPurpose
from hsm_sim.soft import SoftHsm
from simcore import apikeys, keys
from simcore.export.gsup import GsupClient
from simcore.export.osmo_ctrl import CtrlClient
from tests.api.conftest import seed_inventory
from tests.api.live import LiveServer, free_port
from tests.api.receiver import Receiver
from tests.cards.conftest import PcscEnv
from tests.conftest import reset_pg

pytestmark = pytest.mark.slow
ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def store(pg_engine: Engine) -> Engine:
    """The PostgreSQL store of scripts/services/postgres.sh, emptied (the deployed database;
    the SQLite path of the same download is tests/smdp's serve test)."""
    reset_pg(pg_engine)
    return pg_engine


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = Receiver()
    yield r
    r.close()


def _env(engine: Engine, home: Path) -> dict[str, str]:
    """The CLI's environment: this store and this workspace, nothing else of simsmith's."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("SIMSMITH_")}
    env.update({"SIMSMITH_DATABASE_URL": engine.url.render_as_string(hide_password=False),
                "SIMSMITH_HOME": str(home)})
    return env


def simsmith(env: dict[str, str], *args: str) -> dict[str, Any]:
    """One `simsmith … --json` command in its own process; its JSON answer."""
    ran = subprocess.run([sys.executable, "-m", "tools.cli", *args, "--json"], env=env,
                         cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert ran.returncode == 0, f"simsmith {' '.join(args)}: {ran.stdout}\n{ran.stderr}"
    answer = json.loads(ran.stdout)
    assert isinstance(answer, dict)
    return answer


def _until(what: str, check: Callable[[], bool], seconds: float = 60) -> None:
    """Wait for something another process does (webhook delivery); bounded."""
    deadline = time.monotonic() + seconds
    while not check():
        assert time.monotonic() < deadline, f"{what}: not within {seconds:g} s"
        time.sleep(0.1)


def test_esim_ordered_downloaded_enabled_and_authenticating(
        store: Engine, tmp_path: Path, pcsc: PcscEnv, receiver: Receiver,
        osmohlr: tuple[str, int, int]) -> None:
    seed_inventory(store, physical=1, esims=3)
    with warnings.catch_warnings():  # the dev HSM warns loudly, by design
        warnings.simplefilter("ignore")
        hsm = SoftHsm.dev(tmp_path / "hsm")  # `make run`'s HSM: $SIMSMITH_HOME/hsm, sealed
    keys.generate_keys(store, hsm, actor="t", batch="esim", ota=True)
    hsm.kek_add("lab-hlr", KekPurpose.EXPORT, insecure_clear=True)  # osmo-hlr keeps keys clear
    _, api_key = apikeys.create(store, "t", ["admin"], actor="t")
    env = _env(store, tmp_path)
    es9_port = free_port()
    address = f"127.0.0.1:{es9_port}"
    lab = simsmith(env, "pki", "sgp26-init", "--address", address)
    # the SM-DP+'s keys in the HSM, its certificates and the CI beside the virtual eUICC's EUM
    assert lab["address"] == address and lab["rsp_dir"] == str(tmp_path / "pki" / "rsp")
    assert {k["backend"] for k in lab["keys"].values()} == {"soft"}
    server = LiveServer(env["SIMSMITH_DATABASE_URL"], tmp_path, workers=1,
                        env={"SIMSMITH_ES9PLUS_PORT": str(es9_port),
                             "SIMSMITH_SMDP_MODE": "es2plus"})
    reader = pcsc.readers[0]
    emulate: subprocess.Popen[bytes] | None = None
    try:
        api = httpx.Client(base_url=server.url, timeout=60,
                           headers={"Authorization": f"Bearer {api_key}"})
        hook = api.post("/v1/webhooks", json={"url": receiver.url,
                                              "topics": ["esim_profile.state_changed"]})
        assert hook.status_code == 201, hook.text
        receiver.secret = hook.json()["secret"]
        ordered = api.post("/v1/esim-profiles", json={"external_ref": "tour"},
                           headers={"Idempotency-Key": "tour-0001"})
        assert ordered.status_code == 201, ordered.text
        iccid, lpa_uri = ordered.json()["iccid"], ordered.json()["install"]["lpa"]
        assert lpa_uri.startswith(f"LPA:1${address}$")

        wait_for_card_state(reader, present=False, timeout=10)
        emulate = subprocess.Popen(
            [sys.executable, "-m", "tools.cli", "euicc", "emulate",
             "--state", str(tmp_path / "euicc.json"), "--slot", "0"],
            env=env, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_for_card_state(reader, present=True, timeout=60)

        ca = str(tmp_path / "pki" / "rsp" / "ci.pem")  # the lab CI: it issued CERT.DP.TLS
        result = simsmith(env, "lpa", "download", lpa_uri, "--ca-bundle", ca, "-r", reader)
        assert result["success"] and result["iccid"] == iccid and result["notification_sent"]
        assert api.get(f"/v1/esim-profiles/{iccid}").json()["status"] == "installed"

        assert simsmith(env, "lpa", "enable", iccid, "-r", reader)["result"] == "ok"
        sent = simsmith(env, "lpa", "notifications", "--process", "--ca-bundle", ca,
                        "-r", reader)
        assert sent["notifications"] == [] and all(sent["delivered"].values())
        assert api.get(f"/v1/esim-profiles/{iccid}").json()["status"] == "enabled"

        verified = simsmith(env, "card", "verify", "-r", reader)
        assert verified["iccid"] == iccid and verified["verified"] is True

        host, ctrl, gsup = osmohlr
        imsi = str(verified["imsi"])
        with CtrlClient(host, ctrl) as c:
            c.pipeline([("SET", "subscriber.delete", imsi)])  # a previous run's
        exported = simsmith(env, "export", "osmo-hlr", "--target", "lab-hlr", "--iccid", iccid,
                            "--host", host, "--port", str(ctrl), "--gsup-port", str(gsup))
        assert (exported["count"], exported["failed"]) == (1, 0)
        with GsupClient(host, gsup, name="simsmith-e2e") as g:
            [hlr] = g.send_auth_info(imsi, 1)
        assert hlr.autn and hlr.res and hlr.ck and hlr.ik
        with PcscTransport(reader) as card:
            verify_card(card, AuthVector(hlr.rand, hlr.autn, hlr.res, hlr.ck, hlr.ik))

        def seen() -> list[object]:
            return [e["data"]["to"] for e in list(receiver.events)
                    if e["subject_id"] == iccid]
        _until("the webhooks up to enabled", lambda: "enabled" in seen())
        assert seen()[-3:] == ["downloaded", "installed", "enabled"]
        assert receiver.bad_signatures == 0
        api.close()
        # ES9+ ran on the lab identity `pki sgp26-init` made (not one of its own)
        assert simsmith(env, "pki", "show")["certificates"] == lab["certificates"]
    finally:
        if emulate is not None:
            emulate.terminate()
            emulate.wait(timeout=30)
            wait_for_card_state(reader, present=False, timeout=10)
        server.stop()
    assert "Traceback" not in server.log()
