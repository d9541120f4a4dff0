"""Odd inputs on every route (admin key): never a 5xx, every error a problem+json with a known
type; schema violations never echo the input (domain errors name the identifier they refuse)."""

from __future__ import annotations

import re
from urllib.parse import quote

import pytest
from fastapi.routing import APIRoute

from api.problems import PROBLEM_TYPES
from tests.api.conftest import Api

VALUES = ["0", "x" * 300, "%00", "\u2603", "9" * 40]
BODIES: list[bytes] = [b"{}", b"[]", b"null", b"{", b'{"subscriber_ref": 123, "version": "a"}',
                       b'{"external_ref": "' + b"a" * 500 + b'"}', b'{"url": "ftp://x"}']
QUERIES = ["limit=0", "limit=abc", "cursor=%%%", "state=\u2603", "limit=100000"]
URIS = {t.uri for t in PROBLEM_TYPES.values()}


@pytest.mark.slow
@pytest.mark.storage
def test_no_5xx_on_odd_input(api: Api) -> None:
    h = api.h("admin")
    routes = [r for r in api.client.app.state.api_routes  # type: ignore[attr-defined]
              if isinstance(r, APIRoute) and r.path.startswith("/v1/")]
    for route in routes:
        for value in VALUES:
            path = re.sub(r"\{\w+\}", quote(value, safe=""), route.path)
            for method in route.methods:
                bodies = BODIES if method == "POST" else [b""]
                for body in bodies:
                    for query in QUERIES[:2] if method == "POST" else QUERIES:
                        r = api.client.request(method, f"{path}?{query}", content=body,
                                               headers=h | {"Content-Type": "application/json"})
                        assert r.status_code < 500, (method, path, query, body, r.text)
                        if r.status_code >= 400:
                            assert r.headers["content-type"] == "application/problem+json"
                            assert r.json()["type"] in URIS
                            if r.json()["type"].endswith("validation-error"):
                                assert "input" not in r.json()["errors"][0]
