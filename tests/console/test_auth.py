"""The console's security, through plain HTTP: login (password, API key), the session cookie's
attributes, CSRF on every form, scopes, login throttling, headers."""

from __future__ import annotations

import re

import pytest
from sqlalchemy import select
from sqlmodel import col

from simcore import audit, inventory
from simcore.console import sessions
from simcore.db import read_session
from simcore.models_console import ConsoleSession
from tests.console.conftest import PASSWORD, Console

# Each test seeds a store with an HSM and logs in (an argon2id hash, ~0.5 s): slow.
pytestmark = pytest.mark.slow


def test_pages_need_a_session(console: Console) -> None:
    r = console.client.get("/console/sims", follow_redirects=False)
    assert r.status_code == 303
    assert r.headers["location"] == "/console/login?next=/console/sims"
    hx = console.client.get("/console/dashboard/panel", headers={"HX-Request": "true"},
                            follow_redirects=False)
    assert hx.status_code == 204 and hx.headers["hx-redirect"].startswith("/console/login")


def test_login_sets_a_strict_cookie_and_stores_only_its_hash(console: Console) -> None:
    c = console.login("ops")
    token = c.cookies.get("simsmith_console")
    assert token
    with read_session(console.engine) as s:
        rows = list(s.execute(select(ConsoleSession)).scalars())
    assert [r.token_hash for r in rows] == [sessions.hash_token(token)]
    assert rows[0].actor == "console:ops"
    page = c.get("/console/")
    assert page.status_code == 200 and "Dashboard" in page.text
    assert token not in page.text


def test_cookie_attributes(console: Console) -> None:
    c = console.client
    pre = re.search(r'name="pre" value="([^"]+)"', c.get("/console/login").text)
    assert pre
    r = c.post("/console/login", data={"pre": pre.group(1), "username": "ops",
                                       "password": PASSWORD}, follow_redirects=False)
    cookie = next(v for k, v in r.headers.multi_items() if k == "set-cookie"
              and v.startswith("simsmith_console=")).lower()
    assert "httponly" in cookie and "samesite=strict" in cookie and "path=/console" in cookie
    assert "secure" not in cookie  # testserver counts as this machine
    # Reached by another name than localhost: Secure.
    far = c.get("https://console.example.net/console/login")
    assert "secure" in far.headers["set-cookie"].lower()


def test_wrong_password_then_throttled(console: Console) -> None:
    c = console.client
    for i in range(sessions.MAX_FAILURES + 1):
        pre = re.search(r'name="pre" value="([^"]+)"', c.get("/console/login").text)
        assert pre
        r = c.post("/console/login", data={"pre": pre.group(1), "username": "viewer",
                                           "password": f"wrong password {i}"},
                   follow_redirects=False)
        if i < sessions.MAX_FAILURES:
            assert r.status_code == 401 and "wrong user name or password" in r.text
    assert r.status_code == 429 and int(r.headers["retry-after"]) > 0
    # Even the right password is refused while throttled.
    r = c.post("/console/login", data={"pre": pre.group(1), "username": "viewer",
                                       "password": PASSWORD}, follow_redirects=False)
    assert r.status_code == 429
    events = audit.query(console.engine, action="console.login_failed")
    assert len(events) == sessions.MAX_FAILURES
    assert all(PASSWORD not in e.details and "wrong password" not in e.details
               for e in events)


def test_login_form_needs_its_own_token(console: Console) -> None:
    c = console.client
    c.get("/console/login")
    r = c.post("/console/login", data={"pre": "forged", "username": "ops",
                                       "password": PASSWORD}, follow_redirects=False)
    assert r.status_code == 403


def test_login_with_an_api_key_takes_its_scopes(console: Console) -> None:
    c = console.client
    pre = re.search(r'name="pre" value="([^"]+)"', c.get("/console/login").text)
    assert pre
    r = c.post("/console/login", data={"pre": pre.group(1), "api_key": console.keys["sims:read"]},
               follow_redirects=False)
    assert r.status_code == 303
    iccid = inventory.list_sims(console.engine, state="active", limit=1)[0].iccid
    assert c.get(f"/console/sims/{iccid}").status_code == 200
    assert c.get(f"/console/sims/{iccid}/suspend").status_code == 403


def test_csrf_refused_without_or_with_another_sessions_token(console: Console) -> None:
    c = console.login("agent")
    sim = inventory.list_sims(console.engine, state="active", limit=1)[0]
    url = f"/console/sims/{sim.iccid}/suspend"
    r = c.post(url, data={"version": str(sim.version)}, follow_redirects=False)
    assert r.status_code == 403 and "CSRF" in r.text
    r = c.post(url, data={"version": str(sim.version), "csrf_token": "x" * 43},
               follow_redirects=False)
    assert r.status_code == 403
    assert inventory.get_sim(console.engine, sim.iccid).state == "active"
    token = console.csrf()
    r = c.post(url, data={"version": str(sim.version), "csrf_token": token},
               follow_redirects=False)
    assert r.status_code == 303
    after = inventory.get_sim(console.engine, sim.iccid)
    assert after.state == "suspended"
    last = audit.query(console.engine, subject_id=sim.iccid)[-1]
    assert last.action == "sim.suspended" and last.actor == "console:agent"


def test_read_only_user_refused_an_action(console: Console) -> None:
    c = console.login("viewer")
    sim = inventory.list_sims(console.engine, state="active", limit=1)[0]
    page = c.get(f"/console/sims/{sim.iccid}")
    assert page.status_code == 200 and "Suspend" not in page.text
    token = console.csrf()
    r = c.post(f"/console/sims/{sim.iccid}/suspend",
               data={"version": str(sim.version), "csrf_token": token}, follow_redirects=False)
    assert r.status_code == 403 and "sims:write" in r.text
    assert inventory.get_sim(console.engine, sim.iccid).state == "active"


def test_stale_version_is_refused(console: Console) -> None:
    c = console.login("agent")
    sim = inventory.list_sims(console.engine, state="active", limit=1)[0]
    inventory.suspend(console.engine, sim.iccid, actor="someone-else")
    r = c.post(f"/console/sims/{sim.iccid}/resume",
               data={"version": str(sim.version), "csrf_token": console.csrf()})
    assert r.status_code == 409 and "changed" in r.text.lower()
    assert inventory.get_sim(console.engine, sim.iccid).state == "suspended"


def test_logout_ends_the_session(console: Console) -> None:
    c = console.login("ops")
    token = console.csrf()
    assert c.post("/console/logout", data={"csrf_token": token},
                  follow_redirects=False).status_code == 303
    with read_session(console.engine) as s:
        assert s.execute(select(col(ConsoleSession.token_hash))).first() is None
    assert c.get("/console/", follow_redirects=False).status_code == 303


def test_security_headers(console: Console) -> None:
    c = console.login("ops")
    for path in ("/console/", "/console/login", "/console/static/htmx.min.js"):
        r = c.get(path)
        csp = r.headers["content-security-policy"]
        assert "script-src 'self'" in csp and "unsafe-inline" not in csp
        assert "frame-ancestors 'none'" in csp
        assert r.headers["x-frame-options"] == "DENY"
    assert c.get("/console/").headers["cache-control"] == "no-store"
    # The API's routes keep their own headers.
    assert "content-security-policy" not in c.get("/healthz").headers


def test_no_inline_script_or_style_in_any_template() -> None:
    from pathlib import Path

    here = Path(__file__).resolve().parents[2] / "api" / "console" / "templates"
    for path in here.glob("*.html"):
        text = path.read_text()
        assert re.search(r"<script(?![^>]*\bsrc=)", text) is None, path.name
        assert "<style" not in text and " style=" not in text, path.name
        assert re.search(r"\son[a-z]+=", text) is None, path.name  # no event handlers
