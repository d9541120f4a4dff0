"""A real HTTPS server with mutual TLS on a loopback port (uvicorn, CERT_REQUIRED) serving only
the ES2+ router, a development PKI with good and faulty client certificates, and eSIM profiles
in the store."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.serialization import load_pem_private_key
from fastapi import FastAPI
from sqlalchemy import Engine, select, update
from sqlmodel import Session, col

from api.es2plus_listener import MtlsServer
from api.routers.es2plus import es2plus_router
from esim.es2plus import Es2PlusClient
from esim.pki import DevPki, Issued, dev_init, issue, make_ca
from simcore.lifecycle import ProfileState
from simcore.models import Batch, Sim
from simcore.smdp.es2plus import Es2PlusEndpoint
from tests.simcore.helpers import seed

SMDP_ADDRESS = "smdp.simsmith.test"
REQUESTER = "simsmith-operator"
PROFILE_TYPE = "generic-v1"


@dataclass
class Pki:
    dev: DevPki
    directory: Path

    def pair(self, name: str) -> tuple[Path, Path]:
        return self.directory / f"{name}.pem", self.directory / f"{name}.key"


@pytest.fixture(scope="session")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    d = tmp_path_factory.mktemp("pki")
    dev = dev_init(d)
    p = Pki(dev, d)
    ca = Issued(x509.load_pem_x509_certificate(dev.ca.read_bytes()),
                load_pem_private_key(dev.ca_key.read_bytes(), None))  # type: ignore[arg-type]
    long_ago = datetime.now(UTC) - timedelta(days=30)
    issue(ca, REQUESTER, days=1, not_before=long_ago).write(*p.pair("expired"))
    issue(make_ca("some other CA"), REQUESTER).write(*p.pair("foreign"))
    issue(ca, "intruder").write(*p.pair("intruder"))
    issue(ca, "smdp-vendor").write(*p.pair("smdp-vendor"))
    return p


@dataclass
class Server:
    app: FastAPI
    port: int

    @property
    def url(self) -> str:
        return f"https://127.0.0.1:{self.port}"


@pytest.fixture(scope="session")
def https_server(pki: Pki) -> Iterator[Server]:
    app = FastAPI()
    app.include_router(es2plus_router())
    server = MtlsServer(app, cert=pki.dev.server_cert, key=pki.dev.server_key,
                        ca=pki.dev.ca).start()
    yield Server(app, server.port)
    server.stop()


@pytest.fixture
def endpoint(https_server: Server, engine: Engine) -> Es2PlusEndpoint:
    ep = Es2PlusEndpoint(engine, SMDP_ADDRESS)
    https_server.app.state.es2plus = ep
    https_server.app.state.es2plus_credentials = {"proxy-op": "s3cret-pass"}
    return ep


def make_client(server: Server, pki: Pki, cert: str = "client", *,
                requester: str = REQUESTER, **kw: object) -> Es2PlusClient:
    cert_path, key_path = pki.pair(cert)
    return Es2PlusClient(server.url, requester, ca=pki.dev.ca, cert=cert_path, key=key_path,
                         timeout=5, retry_backoff=0, **kw)  # type: ignore[arg-type]


@pytest.fixture
def client(https_server: Server, pki: Pki, endpoint: Es2PlusEndpoint) -> Iterator[Es2PlusClient]:
    c = make_client(https_server, pki)
    yield c
    c.close()


def add_profiles(engine: Engine, count: int = 3, *, batch: str = "esim-1",
                 profile_type: str | None = PROFILE_TYPE,
                 state: str = ProfileState.AVAILABLE) -> list[str]:
    """`count` eSIM profiles in stock, profile state `state`, of `profile_type`."""
    seed(engine, count, batch=batch, kind="esim")
    with engine.begin() as c:
        c.execute(update(Batch).where(col(Batch.name) == batch).values(profile=profile_type))
        batch_id = select(col(Batch.id)).where(col(Batch.name) == batch).scalar_subquery()
        c.execute(update(Sim).where(col(Sim.batch_id) == batch_id).values(profile_state=state))
        return list(c.execute(select(col(Sim.iccid)).where(col(Sim.batch_id) == batch_id)
                              .order_by(col(Sim.iccid))).scalars())


def profile(engine: Engine, iccid: str) -> Sim:
    with Session(engine) as s:
        sim = s.get(Sim, iccid)
        assert sim is not None
        return sim
