"""The API's eSIM order with the SM-DP+ reached over ES2+ (HTTPS, mutual TLS): POST
/v1/esim-profiles runs DownloadOrder and ConfirmOrder against simsmith's ES2+ endpoint and
returns the activation code; the SM-DP+'s download-progress notifications then move the profile
to downloaded and installed, and subscribers hear about it through signed webhooks."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, select
from sqlmodel import Session, col

from api.main import create_app
from api.webhook_worker import WebhookWorker
from esim.activation_code import ActivationCode
from esim.es2plus import FunctionExecutionStatus
from esim.es2plus.messages import ExecutionStatus
from simcore.smdp.es2plus_port import SmdpSettings, es2plus_smdp
from simcore.smdp.models import Es2PlusCall
from tests.api.conftest import make_keys, seed_inventory, settings
from tests.api.receiver import Receiver
from tests.es2plus.conftest import SMDP_ADDRESS, Pki, Server, make_client, profile

pytestmark = pytest.mark.storage


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = Receiver()
    yield r
    r.close()


@pytest.mark.slow
def test_order_over_es2plus_then_notifications_and_webhooks(
    engine: Engine, https_server: Server, pki: Pki, endpoint: object, tmp_path: Path,
    receiver: Receiver,
) -> None:
    seed_inventory(engine, physical=1, esims=3)
    keys = make_keys(engine)
    port = es2plus_smdp(engine, SmdpSettings(
        url=https_server.url, cert=pki.dev.client_cert, key=pki.dev.client_key,
        ca=pki.dev.ca, address=SMDP_ADDRESS, timeout=5))
    app = create_app(settings(tmp_path), engine=engine, smdp=port)
    with TestClient(app) as api:
        hook = api.post("/v1/webhooks", json={"url": receiver.url,
                                              "topics": ["esim_profile.state_changed"]},
                        headers={"Authorization": f"Bearer {keys['webhooks:manage']}"})
        assert hook.status_code == 201, hook.text
        receiver.secret = hook.json()["secret"]
        r = api.post("/v1/esim-profiles", json={"external_ref": "shop-9"},
                     headers={"Authorization": f"Bearer {keys['esim:order']}"})
        assert r.status_code == 201, r.text
    order = r.json()
    iccid = order["iccid"]
    code = ActivationCode.parse(order["activation_code"])
    assert code.smdp_address == SMDP_ADDRESS and order["status"] == "released"
    with Session(engine) as s:
        calls = list(s.execute(select(col(Es2PlusCall.function)).where(
            col(Es2PlusCall.iccid) == iccid).order_by(col(Es2PlusCall.created_at))).scalars())
    assert calls == ["DownloadOrder", "ConfirmOrder"]  # they went over HTTPS

    with make_client(https_server, pki, "smdp-vendor", requester="smdp-vendor") as smdp:
        for point in (3, 4, 4):
            smdp.handle_download_progress_info(
                iccid=iccid, notification_point_id=point, timestamp="2026-11-22T06:00:00Z",
                status=ExecutionStatus(status=FunctionExecutionStatus.EXECUTED_SUCCESS))
    assert profile(engine, iccid).profile_state == "installed"

    worker = WebhookWorker(engine, settings(tmp_path, webhook_backoff_seconds=0.01))
    try:
        for _ in range(50):
            if not worker.run_once():
                if len(receiver.events) >= 4:
                    break
                time.sleep(0.02)
    finally:
        worker.stop()
    assert receiver.bad_signatures == 0
    mine = [e["data"]["to"] for e in receiver.events if e["subject_id"] == iccid]
    assert mine == ["allocated", "released", "downloaded", "installed"]
    port.close()
