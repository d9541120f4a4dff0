"""`simsmith serve --es9plus-port` (issue 16 item 6): a real two-worker server, its SM-DP+ the
embedded one behind ES2+ as `make run` has it, whose activation codes (ES2+ ConfirmOrder's
address) name its own ES9+ listener; an eSIM ordered through the API is downloaded over HTTPS by
simsmith's LPA into the virtual eUICC and the API then reports it installed."""

from __future__ import annotations

import warnings
from pathlib import Path

import httpx
import pytest
from sqlalchemy import Engine

from esim.activation_code import ActivationCode
from esim.euicc.identity import dev_euicc
from esim.lpa.download import download
from esim.lpa.es9_client import HttpEs9
from hsm_sim.soft import SoftHsm
from simcore import apikeys, keys
from simcore.euicc import virtual_euicc
from tests.api.conftest import seed_inventory
from tests.api.live import LiveServer, free_port
from tests.smdp.es9_http import lpa

pytestmark = [pytest.mark.storage, pytest.mark.slow]


def test_serve_hands_out_codes_its_es9plus_listener_redeems(engine: Engine,
                                                            tmp_path: Path) -> None:
    seed_inventory(engine, physical=1, esims=3)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        hsm = SoftHsm.dev(tmp_path / "hsm")
    keys.generate_keys(engine, hsm, actor="t", batch="esim", ota=True)
    _, key = apikeys.create(engine, "t", ["admin"], actor="t")
    port = free_port()
    server = LiveServer(engine.url.render_as_string(hide_password=False), tmp_path, workers=2,
                        env={"SIMSMITH_ES9PLUS_PORT": str(port),
                             # `make run`'s SM-DP+: orders over ES2+ (mutual TLS, loopback) to
                             # simsmith's own endpoint, whose ConfirmOrder names the address
                             "SIMSMITH_SMDP_MODE": "es2plus"})
    try:
        with httpx.Client(base_url=server.url, timeout=30,
                          headers={"Authorization": f"Bearer {key}"}) as api:
            ordered = api.post("/v1/esim-profiles", json={"external_ref": "lpa-user"})
            assert ordered.status_code == 201, ordered.text
            code = ActivationCode.parse(ordered.json()["activation_code"], lab=True)
            assert code.smdp_address == f"127.0.0.1:{port}"
            card = virtual_euicc(dev_euicc(tmp_path / "pki" / "rsp",
                                           state=tmp_path / "euicc.json"))
            lab_ci = tmp_path / "pki" / "rsp" / "ci.pem"  # issued CERT.DP.TLS
            with lpa(card) as functions, HttpEs9(code.smdp_address, ca_bundle=lab_ci) as es9:
                result = download(functions, es9, code.to_uri())
            assert result.success and result.iccid == ordered.json()["iccid"]
            shown = api.get(f"/v1/esim-profiles/{result.iccid}").json()
            assert shown["status"] == "installed"
            assert "simsmith_es9plus_sessions_swept_total" in api.get("/metrics").text
    finally:
        server.stop()
    assert "Traceback" not in server.log()
