"""Issue #13 item 4 on the API: `POST /v1/imports` refuses a file whose keys no KCV confirms
(422, field `kcv`, no job queued) unless `kcv` or `no_kcv_check=true` is given."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine

from api.main import create_app
from tests.api.conftest import Api, make_keys, settings, wait_import

from .helpers import TRANSPORT_KCV, cards, make_hsm, out_text


@pytest.fixture
def api(engine: Engine, tmp_path: Path) -> Iterator[Api]:
    app = create_app(settings(tmp_path), engine=engine, hsm=make_hsm(tmp_path / "hsm"))
    with TestClient(app) as client:
        yield Api(client, engine, make_keys(engine))


def _post(api: Api, text: str, **params: str) -> tuple[int, dict]:
    r = api.client.post("/v1/imports", params={"filename": "b.out"} | params,
                        content=text.encode(), headers=api.h("imports:write"))
    return r.status_code, r.json()


@pytest.mark.storage
def test_upload_without_kcv_is_refused(api: Api, tmp_path: Path) -> None:
    text = out_text(cards(4), kcv_value=None)
    status, body = _post(api, text)
    assert status == 422 and body["field"] == "kcv", body
    assert "states no KCV" in body["detail"]
    listed = api.client.get("/v1/imports", headers=api.h("imports:write")).json()["items"]
    assert listed == []  # no job queued
    assert not list((tmp_path).rglob("imports/*b.out"))  # the upload was removed
    status, body = _post(api, text, kcv="abcdef")
    assert status == 202
    done = wait_import(api, body['id'])
    assert done["status"] == "failed" and "does not match" in done["error"]
    status, body = _post(api, text, kcv=TRANSPORT_KCV)
    assert status == 202 and wait_import(api, body['id'])["status"] == "imported"


@pytest.mark.storage
def test_upload_with_no_kcv_check(api: Api) -> None:
    status, body = _post(api, out_text(cards(4), kcv_value=None), no_kcv_check="true")
    assert status == 202
    assert wait_import(api, body['id'])["result"]["imported"] == 4
    status, body = _post(api, out_text(cards(4), kcv_value=None), kcv="12")
    assert status == 422
