"""eSIM orders, vendor-file imports and administration through the console, over HTTP."""

from __future__ import annotations

import re

import httpx
import pytest

from simcore import apikeys, audit, esim_orders, import_jobs, inventory, webhooks
from simcore.console import users
from tests.console.conftest import Console, import_page, known_cards
from tests.vendor_import.helpers import out_text

# Each test seeds a store with an HSM and logs in (an argon2id hash, ~0.5 s): slow.
pytestmark = pytest.mark.slow


def _order(console: Console, ref: str = "customer-7") -> httpx.Response:
    c = console.client
    return c.post("/console/esim/order", data={"csrf_token": console.csrf(),
                                                "external_ref": ref})


def test_order_an_esim_shows_code_links_and_qr(console: Console) -> None:
    console.login("agent")
    r = _order(console)
    assert r.status_code == 200, r.text
    p = esim_orders.list_orders(console.engine, external_ref="customer-7")[0]
    code = p.activation_code.to_string()
    assert f'<code id="activation-code">{code}</code>' in r.text
    assert "LPA:" + code in r.text and "esimsetup.apple.com" in r.text
    png = console.client.get(f"/console/esim/{p.iccid}/qr.png")
    assert png.headers["content-type"] == "image/png" and png.content[:4] == b"\x89PNG"
    svg = console.client.get(f"/console/esim/{p.iccid}/qr.svg?download=true")
    assert svg.headers["content-type"].startswith("image/svg+xml")
    assert svg.headers["content-disposition"] == f'attachment; filename="esim-{p.iccid}.svg"'
    ev = audit.query(console.engine, subject_id=p.iccid)
    assert any(e.actor == "console:agent" for e in ev)


def test_cancel_an_esim_order(console: Console) -> None:
    console.login("agent")
    _order(console, "to-cancel")
    p = esim_orders.list_orders(console.engine, external_ref="to-cancel")[0]
    page = console.client.get(f"/console/sims/{p.iccid}")
    assert "Cancel the eSIM order" in page.text
    r = console.client.post(f"/console/esim/{p.iccid}/cancel",
                            data={"csrf_token": console.csrf()}, follow_redirects=False)
    assert r.status_code == 303
    assert esim_orders.get(console.engine, p.iccid).order_status == "cancelled"


def test_viewer_cannot_order(console: Console) -> None:
    console.login("viewer")
    assert console.client.get("/console/esim/order").status_code == 403
    assert _order(console).status_code == 403


def _upload(console: Console, text: str, name: str = "B1.out", dry_run: bool = True,
            csrf: str | None = None) -> httpx.Response:
    data = {"csrf_token": csrf if csrf is not None else console.csrf(), "batch": "console-b1"}
    if dry_run:
        data["dry_run"] = "on"
    return console.client.post("/console/imports", data=data,
                               files={"file": (name, text.encode(), "text/plain")},
                               follow_redirects=False)


def test_import_dry_run_shows_row_errors_then_imports(console: Console) -> None:
    console.login("ops")
    rows = known_cards(3, offset=10)

    def break_row(table: list[list[str]]) -> None:
        table[1][1] = "00101000000X111"  # IMSI with a letter

    r = _upload(console, out_text(rows, var_in=False, mutate=break_row))
    assert r.status_code == 303, r.text
    page = import_page(console, r.headers["location"])
    assert 'id="job-status">invalid<' in page
    issues = re.findall(r"<tr><td class=\"mono\">(B1\.out:\d+:\d+)</td><td>(\w+)</td>", page)
    assert len(issues) == 1 and issues[0][1] == "IMSI", page
    r = _upload(console, out_text(rows, var_in=False), dry_run=True)
    page = import_page(console, r.headers["location"])
    assert 'id="job-status">valid<' in page, page[page.find('<main'):]
    r = _upload(console, out_text(rows, var_in=False), dry_run=False)
    page = import_page(console, r.headers["location"])
    assert 'id="job-status">imported<' in page and 'id="job-rows">3<' in page
    assert inventory.get_sim(console.engine, rows[0].iccid).batch_id is not None
    # The same job the API shows.
    job_id = int(r.headers["location"].rsplit("/", 1)[1])
    api = console.client.get(f"/v1/imports/{job_id}",
                             headers={"Authorization": f"Bearer {console.keys['admin']}"})
    assert api.json()["status"] == "imported" and api.json()["rows_done"] == 3


def test_upload_needs_csrf_and_is_size_limited(console: Console) -> None:
    console.login("ops")
    r = _upload(console, out_text(known_cards(2, offset=20)), csrf="wrong")
    assert r.status_code == 403
    assert list((console.tmp / "imports").glob("*")) == []
    console.client.app.state.ctx.settings.console_upload_max_bytes = 300  # type: ignore[attr-defined]
    r = _upload(console, out_text(known_cards(2, offset=20)))
    assert r.status_code == 422 and "file too large" in r.text
    assert list((console.tmp / "imports").glob("*")) == []
    assert import_jobs.list_jobs(console.engine) == []


def test_admin_creates_and_revokes_a_key_shown_once(console: Console) -> None:
    c = console.login("ops")
    r = c.post("/console/admin/keys", data={"csrf_token": console.csrf(), "name": "shop",
                                            "scopes": ["esim:order", "sims:read"]})
    key = re.search(r'id="shown-once">(ssk_[^<]+)<', r.text)
    assert key
    row = apikeys.authenticate(console.engine, key.group(1))
    assert row.scopes == "esim:order sims:read"
    listing = c.get("/console/admin/keys").text
    assert key.group(1) not in listing and row.prefix in listing
    c.post(f"/console/admin/keys/{row.id}/revoke", data={"csrf_token": console.csrf()})
    assert apikeys.list_keys(console.engine)[-1].revoked_at is not None


def test_admin_webhooks_and_users(console: Console) -> None:
    c = console.login("ops")
    r = c.post("/console/admin/webhooks", data={"csrf_token": console.csrf(),
                                                "url": "https://hooks.example.net/sim",
                                                "topics": "sim.state_changed"})
    assert "whsec_" in r.text
    sub = webhooks.list_subscriptions(console.engine)[0]
    assert sub.secret not in c.get("/console/admin/webhooks").text
    c.post(f"/console/admin/webhooks/{sub.id}/deactivate", data={"csrf_token": console.csrf()})
    assert not webhooks.get_subscription(console.engine, sub.id).active
    r = c.post("/console/admin/users", data={"csrf_token": console.csrf(), "username": "erin",
                                             "scopes": ["sims:read"]})
    password = re.search(r'id="shown-once">([^<]+)<', r.text)
    assert password
    assert users.authenticate(console.engine, "erin", password.group(1)).scopes == "sims:read"
    c.post("/console/admin/users/erin/disable", data={"csrf_token": console.csrf()})
    assert users.get(console.engine, "erin").disabled_at is not None


def test_agent_is_refused_administration(console: Console) -> None:
    c = console.login("agent")
    for path in ("/console/admin", "/console/admin/keys", "/console/admin/users",
                 "/console/admin/webhooks"):
        assert c.get(path).status_code == 403, path
