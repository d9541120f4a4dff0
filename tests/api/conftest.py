"""API test fixtures: an app on the `engine` fixture (SQLite, then PostgreSQL) with a seeded
inventory and one API key per scope."""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine

from api.main import create_app
from api.settings import ApiSettings
from simcore import apikeys, esim_orders, inventory, msisdn_pool
from tests.simcore.helpers import seed

MSISDNS = ("447700900000", "447700900099")


@dataclass
class Api:
    client: TestClient
    engine: Engine
    keys: dict[str, str]  # scope -> key holding only that scope ("admin": all but care)

    def h(self, scope: str = "admin", **extra: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.keys[scope]}", **extra}


def wait_import(api: Api, job_id: int) -> dict[str, Any]:
    """The import job once it has ended (polled over the API, at most 20 s)."""
    for _ in range(400):
        r = api.client.get(f"/v1/imports/{job_id}", headers=api.h("imports:write")).json()
        if r["status"] not in ("queued", "running"):
            return r  # type: ignore[no-any-return]
        time.sleep(0.05)
    raise AssertionError("import job did not finish")


def seed_inventory(engine: Engine, physical: int = 20, esims: int = 20) -> None:
    seed(engine, physical, batch="phys", form_factor="3FF")
    seed(engine, esims, batch="esim", kind="esim")
    esim_orders.stock_profiles(engine, actor="t")
    msisdn_pool.add_msisdn_range(engine, *MSISDNS, name="m1", actor="t")


def make_keys(engine: Engine) -> dict[str, str]:
    return {scope: apikeys.create(engine, f"k-{scope}", [scope], actor="t")[1]
            for scope in apikeys.SCOPES}


def settings(tmp_path: Path, **overrides: object) -> ApiSettings:
    values: dict[str, object] = {"home": tmp_path, "webhooks_enabled": False,
                                 "api_key_cache_seconds": 0, "log_json": True}
    values.update(overrides)
    return ApiSettings(**values)  # type: ignore[arg-type]


@pytest.fixture
def api(engine: Engine, tmp_path: Path) -> Iterator[Api]:
    seed_inventory(engine)
    keys = make_keys(engine)
    app = create_app(settings(tmp_path), engine=engine)
    with TestClient(app) as client:
        yield Api(client, engine, keys)


__all__ = ["Api", "inventory"]
