from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine

from api.main import create_app
from tests.api.conftest import Api, make_keys, settings, wait_import
from tests.vendor_import.helpers import cards, make_hsm, out_text


@pytest.fixture
def api(engine: Engine, tmp_path: Path) -> Iterator[Api]:
    app = create_app(settings(tmp_path), engine=engine, hsm=make_hsm(tmp_path / "hsm"))
    keys = make_keys(engine)
    with TestClient(app) as client:
        yield Api(client, engine, keys)


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
    done = wait_import(api, _upload(api, text)["id"])
    assert done["status"] == "imported", done
    assert done["rows_done"] == 20 and done["result"]["imported"] == 20
    sims = api.client.get("/v1/sims", params={"batch": done["result"]["batch"]},
                          headers=api.h("sims:read")).json()["items"]
    assert len(sims) == 20 and all(s["has_keys"] for s in sims)
    again = wait_import(api, _upload(api, text, "copy.out")["id"])
    assert again["status"] == "already_imported"
    listed = api.client.get("/v1/imports", headers=api.h("imports:write")).text
    for c in batch:
        assert c.ki.hex() not in listed.lower() and c.opc.hex() not in listed.lower()


@pytest.mark.storage
def test_invalid_file_gives_issues_and_imports_nothing(api: Api) -> None:
    def break_luhn(table: list[list[str]]) -> None:
        table[3][0] = table[3][0][:-1] + str((int(table[3][0][-1]) + 1) % 10)

    done = wait_import(api, _upload(api, out_text(cards(10), mutate=break_luhn))["id"])
    assert done["status"] == "invalid" and done["issue_count"] >= 1
    issue = done["issues"][0]
    assert issue["line"] > 0 and issue["column"] > 0 and issue["rule"]
    assert api.client.get("/v1/sims", headers=api.h("sims:read")).json()["items"] == []
    r = api.client.post("/v1/imports", params={"filename": "x.out"}, content=b"",
                        headers=api.h("imports:write"))
    assert r.status_code == 422 and r.json()["field"] == "body"


@pytest.mark.storage
def test_an_idempotent_upload_is_fingerprinted_as_it_streams(
        api: Api, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """An Idempotency-Key on an upload (up to 1 GiB) must not make the API hold the body whole
    to fingerprint it: the body is hashed as it is sealed. A repeat replays the first job; the
    key with another body, or with the same body and other options (the query), is refused."""
    from starlette.requests import Request

    async def whole_body(self: Request) -> bytes:
        raise AssertionError("the upload's body was read whole")

    monkeypatch.setattr(Request, "body", whole_body)
    text = out_text(cards(5))
    h = api.h("imports:write", **{"Idempotency-Key": "upload-1"})
    first = api.client.post("/v1/imports", params={"filename": "k.out"}, content=text.encode(),
                            headers=h)
    assert first.status_code == 202, first.text
    again = api.client.post("/v1/imports", params={"filename": "k.out"}, content=text.encode(),
                            headers=h)
    assert again.status_code == 202 and again.headers["idempotent-replayed"] == "true"
    assert again.json()["id"] == first.json()["id"]
    other_body = api.client.post("/v1/imports", params={"filename": "k.out"},
                                 content=out_text(cards(6)).encode(), headers=h)
    assert other_body.status_code == 422
    assert other_body.json()["type"].endswith("idempotency-key-reused")
    other_query = api.client.post("/v1/imports", params={"filename": "k.out", "dry_run": "true"},
                                  content=text.encode(), headers=h)
    assert other_query.status_code == 422
    assert other_query.json()["type"].endswith("idempotency-key-reused")
    assert wait_import(api, first.json()["id"])["status"] == "imported"
    jobs = api.client.get("/v1/imports", headers=api.h("imports:write")).json()["items"]
    assert [j["id"] for j in jobs] == [first.json()["id"]]  # the repeats queued nothing
    # A replay or a refusal leaves no sealed upload behind.
    assert not [p for p in (tmp_path / "imports").glob("*") if p.is_file()]
    bad = api.client.post("/v1/imports", params={"filename": "k.out"}, content=text.encode(),
                          headers=api.h("imports:write", **{"Idempotency-Key": "x" * 300}))
    assert bad.status_code == 422 and bad.json()["field"] == "Idempotency-Key"


@pytest.mark.storage
def test_an_upload_refused_before_its_body_is_whole_records_no_key(api: Api) -> None:
    """The key is recorded only once the body is whole: an empty upload (refused while reading)
    leaves the key free for the real file."""
    h = api.h("imports:write", **{"Idempotency-Key": "upload-2"})
    empty = api.client.post("/v1/imports", params={"filename": "e.out"}, content=b"", headers=h)
    assert empty.status_code == 422 and empty.json()["field"] == "body"
    real = api.client.post("/v1/imports", params={"filename": "e.out"},
                           content=out_text(cards(3)).encode(), headers=h)
    assert real.status_code == 202 and "idempotent-replayed" not in real.headers
