"""Shared setup for the ES9+ HTTP tests: simsmith's SM-DP+ on the store (SQLite and PostgreSQL)
behind the real HTTPS listener (api.es9plus_listener), eSIM profiles ordered through the order
service, the virtual eUICC of the same development RSP PKI, and simsmith's LPA."""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import Engine, select
from sqlmodel import Session, col

from api.es9plus_listener import Es9PlusListener, start_es9plus
from esim.euicc.card import VirtualEuicc
from esim.euicc.identity import dev_euicc
from esim.lpa.es9_client import HttpEs9, tls_context
from esim.lpa.functions import Es10Functions
from esim.sgp22 import es9plus as wire
from hsm_sim.soft import SoftHsm
from simcore import esim_orders
from simcore.config import Settings
from simcore.euicc import EuiccLoopback, es10_session, virtual_euicc
from simcore.models import AuditEvent, OutboxEvent, Sim
from simcore.smdp.es9plus_settings import Es9PlusSettings
from simcore.smdp.in_process import InProcessSmdp
from tests.api.live import free_port
from tests.wiring.conftest import seed


@dataclass
class Smdp:
    engine: Engine
    listener: Es9PlusListener
    home: Path
    hsm: SoftHsm
    iccids: list[str]

    @property
    def address(self) -> str:  # a lab address: the listener's, in CERT.DP.TLS as iPAddress
        return self.listener.address

    @property
    def host(self) -> str:
        return self.address

    @property
    def ca(self) -> Path:  # the lab CI that issued CERT.DP.TLS
        return self.listener.tls.ca

    def es9(self) -> HttpEs9:
        return HttpEs9(self.host, ca_bundle=self.ca)

    def http(self) -> httpx.Client:
        return httpx.Client(base_url=f"https://{self.host}", verify=tls_context(self.ca),
                            timeout=30)

    def order(self, *, confirmation_code: bool = False, eid: str | None = None
              ) -> esim_orders.EsimProfile:
        return esim_orders.order(self.engine, InProcessSmdp(self.engine, self.address), "cust",
                                 actor="t", confirmation_code=confirmation_code, eid=eid)

    def euicc(self, tmp_path: Path, name: str = "euicc", eid: str | None = None,
              curves: list[str] | None = None) -> VirtualEuicc:
        return virtual_euicc(dev_euicc(self.home / "pki" / "rsp", eid=eid,
                                       state=tmp_path / f"{name}.json", curves=curves))

    def state(self, iccid: str) -> str | None:
        with Session(self.engine) as s:
            sim = s.get(Sim, iccid)
            assert sim is not None
            return sim.profile_state

    def actions(self, iccid: str) -> list[str]:
        with Session(self.engine) as s:
            return list(s.execute(select(col(AuditEvent.action)).where(
                col(AuditEvent.subject_id) == iccid).order_by(col(AuditEvent.seq))).scalars())

    def events(self, iccid: str) -> list[tuple[str, str | None]]:
        """The outbox events (webhooks) about `iccid`: topic and, for state changes, the new
        state."""
        with Session(self.engine) as s:
            rows = s.execute(select(col(OutboxEvent.topic), col(OutboxEvent.payload)).where(
                col(OutboxEvent.subject_id) == iccid).order_by(col(OutboxEvent.id))).all()
        return [(topic, json.loads(payload).get("to")) for topic, payload in rows]


@contextlib.contextmanager
def running_smdp(engine: Engine, hsm: SoftHsm, home: Path, count: int = 3,
                 brainpool: bool = False, **settings: Any) -> Iterator[Smdp]:
    """`brainpool`: the lab identity gets a brainpoolP256r1 CI hierarchy beside P-256's (made
    here for the listener's address, as the service would make the P-256 one)."""
    iccids = seed(engine, hsm, count, batch="e1", kind="esim", state="in_stock")
    esim_orders.stock_profiles(engine, actor="t", batch="e1")
    port = free_port()
    if brainpool:
        from simcore.smdp.rsp_pki import sgp26_init

        sgp26_init(Settings(home=home), hsm, address=f"127.0.0.1:{port}", auto=True,
                   brainpool=True)
    options: dict[str, Any] = {"port": port, "sweep_seconds": 3600.0, **settings}
    listener = start_es9plus(engine, address=f"127.0.0.1:{port}", settings=Settings(home=home),
                             hsm=lambda: hsm, es9=Es9PlusSettings(**options), reuse_port=False)
    try:
        yield Smdp(engine, listener, home, hsm, iccids)
    finally:
        listener.close()


@contextlib.contextmanager
def lpa(card: VirtualEuicc) -> Iterator[Es10Functions]:
    with es10_session(EuiccLoopback(card)) as es10:
        yield Es10Functions(es10.call)


def post(client: httpx.Client, function: str, body: Any, **headers: str) -> httpx.Response:
    hdrs = {wire.ADMIN_PROTOCOL_HEADER: wire.ADMIN_PROTOCOL, "Content-Type": "application/json",
            **headers}
    content = body if isinstance(body, bytes) else httpx.Request(
        "POST", "http://x", json=body).content
    return client.post(f"{wire.PATH_PREFIX}/{function}", content=content, headers=hdrs)


def status_code(answer: dict[str, Any]) -> tuple[str, str] | None:
    _, code = wire.status_of(answer)
    return (code.subject, code.reason) if code else None
