"""Uploads for import jobs are sealed at rest (simcore.import_uploads): while a job runs, nothing
under SIMSMITH_HOME holds the file's PINs, PUKs, ADM codes or keys in clear; the sealed file and
its wrapped key go when the job ends; a damaged sealed file fails the job naming it and the byte
offset, with nothing imported. On SQLite and PostgreSQL."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine

from api.main import create_app
from simcore import import_jobs
from simcore.vendor_import import service
from tests.api.conftest import Api, make_keys, settings, wait_import
from tests.vendor_import.helpers import Card, cards, make_hsm, out_text

COLUMNS = ("ICCID", "IMSI", "KI", "OPC", "PIN1", "PUK1", "PIN2", "PUK2", "ADM1")


def clear_rows(n: int) -> list[Card]:
    return cards(n, COLUMNS, encrypted=False, offset=300)


def clear_secrets(rows: list[Card]) -> list[bytes]:
    """What must never be on disk: the keys as the file writes them and as bytes, the codes."""
    out: list[bytes] = []
    for c in rows:
        out += [c.values["KI"].encode(), c.values["OPC"].encode(), c.ki, c.opc,
                c.values["PUK1"].encode(), c.values["PUK2"].encode(), c.values["ADM1"].encode()]
    return out


def scan(home: Path, secrets: list[bytes], *, skip: tuple[str, ...] = ()) -> list[str]:
    """Every file under `home` (but those named in `skip`) holding one of `secrets`: its path
    and which."""
    found = []
    for p in home.rglob("*"):
        if not p.is_file() or p.name in skip:
            continue
        try:
            data = p.read_bytes()
        except OSError:
            continue
        low = data.lower()
        for s in secrets:
            if s in data or s.lower() in low:
                found.append(f"{p.relative_to(home)}: {s[:4]!r}…")
    return found


class Hold:
    """Stops the import at its first chunk until released (the job mid-way, file still open)."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.reached, self.release = threading.Event(), threading.Event()
        real = service._Run._chunk

        def held(run: Any, *args: Any, **kwargs: Any) -> None:
            self.reached.set()
            assert self.release.wait(30), "never released"
            real(run, *args, **kwargs)

        monkeypatch.setattr(service._Run, "_chunk", held)


@pytest.fixture
def api(engine: Engine, tmp_path: Path) -> Iterator[Api]:
    app = create_app(settings(tmp_path), engine=engine, hsm=make_hsm(tmp_path / "hsm"))
    with TestClient(app) as client:
        yield Api(client, engine, make_keys(engine))


def _upload(api: Api, body: bytes, name: str = "B1.out", **params: str) -> dict[str, Any]:
    r = api.client.post("/v1/imports", params={"filename": name} | params, content=body,
                        headers=api.h("imports:write"))
    assert r.status_code == 202, r.text
    return r.json()  # type: ignore[no-any-return]


@pytest.mark.storage
def test_nothing_in_clear_under_home_while_the_import_runs(
        api: Api, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    rows = clear_rows(30)
    body = out_text(rows, COLUMNS, transport=None, var_in=False).encode()
    assert all(s in body or s.upper() in body for s in clear_secrets(rows)[:2])
    hold = Hold(monkeypatch)
    job = _upload(api, body)
    assert hold.reached.wait(30)
    try:
        assert scan(tmp_path, clear_secrets(rows)) == []
        row = import_jobs.get(api.engine, job["id"])
        assert row.status == "running" and row.upload_key and Path(row.path).is_file()
        assert Path(row.path).read_bytes()[:8] == b"SSSEAL1\n"
        assert [p.name for p in (tmp_path / "imports").iterdir()] == [Path(row.path).name]
        assert "upload_key" not in api.client.get(f"/v1/imports/{job['id']}",
                                                  headers=api.h("imports:write")).text
    finally:
        hold.release.set()
    done = wait_import(api, job["id"])
    assert done["status"] == "imported" and done["rows_done"] == 30, done
    row = import_jobs.get(api.engine, job["id"])
    assert row.upload_key is None and not Path(row.path).exists()
    assert list((tmp_path / "imports").iterdir()) == []
    assert scan(tmp_path, clear_secrets(rows)) == []


@pytest.mark.storage
def test_a_damaged_upload_fails_its_job_naming_it_and_the_offset(
        api: Api, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    rows = clear_rows(1200)
    body = out_text(rows, COLUMNS, transport=None, var_in=False).encode()
    assert len(body) > 2 * 65_536  # three chunks
    gate = threading.Event()
    real = import_jobs.claim

    def claim_after_gate(engine: Engine, job_id: int | None = None) -> int | None:
        assert gate.wait(30)
        return real(engine, job_id)

    monkeypatch.setattr(import_jobs, "claim", claim_after_gate)
    job = _upload(api, body)
    sealed = Path(import_jobs.get(api.engine, job["id"]).path)
    raw = bytearray(sealed.read_bytes())
    start = 12 + int.from_bytes(raw[8:12], "big")
    chunk1 = start + 65_536 + 16
    raw[chunk1 + 1000] ^= 0x40  # a byte of chunk 1's ciphertext
    sealed.write_bytes(bytes(raw))
    gate.set()
    done = wait_import(api, job["id"])
    assert done["status"] == "failed", done
    assert done["error"].startswith(f"upload of import job {job['id']}: the sealed file is "
                                    "altered") and f"byte offset {chunk1}" in done["error"]
    assert api.client.get("/v1/sims", headers=api.h("sims:read")).json()["items"] == []
    row = import_jobs.get(api.engine, job["id"])
    assert row.upload_key is None and not sealed.exists()


@pytest.mark.storage
def test_an_upload_refused_at_preflight_leaves_nothing(api: Api, tmp_path: Path) -> None:
    rows = clear_rows(3)
    r = api.client.post("/v1/imports", params={"filename": "B2.out"},
                        content=out_text(rows, COLUMNS, kcv_value=None, var_in=False).encode(),
                        headers=api.h("imports:write"))
    assert r.status_code == 422 and r.json()["field"] == "kcv"
    assert list((tmp_path / "imports").iterdir()) == []


@pytest.mark.storage
def test_a_queued_upload_is_imported_by_the_next_process(
        engine: Engine, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The process that took the upload stops before running it; the next one (its own HSM
    opened from the keystore) picks the job up at start-up and unwraps the key again."""
    from api.import_runner import ImportRunner
    from hsm_sim.soft import SoftHsm

    rows = clear_rows(8)
    first = create_app(settings(tmp_path), engine=engine, hsm=make_hsm(tmp_path / "hsm"))
    keys = make_keys(engine)
    with monkeypatch.context() as m:
        # dies before running it (nor does its start-up pass pick it up)
        m.setattr(ImportRunner, "submit", lambda self, job_id=None: None)
        m.setattr(ImportRunner, "resume", lambda self: None)
        with TestClient(first) as client:
            r = client.post("/v1/imports", params={"filename": "B1.out"},
                            content=out_text(rows, COLUMNS, transport=None,
                                             var_in=False).encode(),
                            headers={"Authorization": f"Bearer {keys['imports:write']}"})
            assert r.status_code == 202, r.text
    job_id = r.json()["id"]
    queued = import_jobs.get(engine, job_id)
    assert queued.status == "queued" and queued.upload_key and Path(queued.path).is_file()
    assert scan(tmp_path, clear_secrets(rows)) == []

    reopened = SoftHsm.open(tmp_path / "hsm", components=[bytes(range(1, 33)),
                                                          bytes(range(7, 39))])
    second = create_app(settings(tmp_path), engine=engine, hsm=reopened)
    with TestClient(second) as client:
        api = Api(client, engine, keys)
        done = wait_import(api, job_id)
    assert done["status"] == "imported" and done["rows_done"] == 8, done
    row = import_jobs.get(engine, job_id)
    assert row.upload_key is None and not Path(row.path).exists()
