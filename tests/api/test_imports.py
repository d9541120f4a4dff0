from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine

from api.main import create_app
from tests.api.conftest import Api, make_keys, settings
from tests.vendor_import.helpers import cards, make_hsm, out_text


@pytest.fixture
def api(engine: Engine, tmp_path: Path) -> Iterator[Api]:
    app = create_app(settings(tmp_path), engine=engine, hsm=make_hsm(tmp_path / "hsm"))
    keys = make_keys(engine)
    with TestClient(app) as client:
        yield Api(client, engine, keys)


def _wait(api: Api, job: dict) -> dict:
    for _ in range(200):
        r = api.client.get(f"/v1/imports/{job['id']}", headers=api.h("imports:write"))
        if r.json()["status"] not in ("queued", "running"):
            return r.json()  # type: ignore[no-any-return]
        time.sleep(0.05)
    raise AssertionError("import job did not finish")


def _upload(api: Api, text: str, name: str = "b1.out", **params: str) -> dict:
    r = api.client.post("/v1/imports", params={"filename": name} | params,
                        content=text.encode(), headers=api.h("imports:write"))
    assert r.status_code == 202, r.text
    assert r.headers["location"] == f"/v1/imports/{r.json()['id']}"
    return r.json()  # type: ignore[no-any-return]


@pytest.mark.storage
def test_upload_imports_in_the_background(api: Api) -> None:
    batch = cards(20)
    text = out_text(batch)
    done = _wait(api, _upload(api, text))
    assert done["status"] == "imported", done
    assert done["rows_done"] == 20 and done["result"]["imported"] == 20
    sims = api.client.get("/v1/sims", params={"batch": done["result"]["batch"]},
                          headers=api.h("sims:read")).json()["items"]
    assert len(sims) == 20 and all(s["has_keys"] for s in sims)
    again = _wait(api, _upload(api, text, "copy.out"))
    assert again["status"] == "already_imported"
    listed = api.client.get("/v1/imports", headers=api.h("imports:write")).text
    for c in batch:
        assert c.ki.hex() not in listed.lower() and c.opc.hex() not in listed.lower()


@pytest.mark.storage
def test_invalid_file_gives_issues_and_imports_nothing(api: Api) -> None:
    def break_luhn(table: list[list[str]]) -> None:
        table[3][0] = table[3][0][:-1] + str((int(table[3][0][-1]) + 1) % 10)

    done = _wait(api, _upload(api, out_text(cards(10), mutate=break_luhn)))
    assert done["status"] == "invalid" and done["issue_count"] >= 1
    issue = done["issues"][0]
    assert issue["line"] > 0 and issue["column"] > 0 and issue["rule"]
    assert api.client.get("/v1/sims", headers=api.h("sims:read")).json()["items"] == []
    r = api.client.post("/v1/imports", params={"filename": "x.out"}, content=b"",
                        headers=api.h("imports:write"))
    assert r.status_code == 422 and r.json()["field"] == "body"
