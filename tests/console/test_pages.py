"""The console's pages over plain HTTP: dashboard, search (prefix, paging, bad input), a SIM's
page, care's PIN1/PUK1 reveal."""

from __future__ import annotations

import re

import pytest

from simcore import audit, inventory
from tests.console.conftest import PIN1, Console

# Each test seeds a store with an HSM and logs in (an argon2id hash, ~0.5 s): slow.
pytestmark = pytest.mark.slow


def test_dashboard_counts_and_charts(console: Console) -> None:
    c = console.login("ops")
    page = c.get("/console/")
    assert page.status_code == 200
    assert 'hx-get="/console/dashboard/panel"' in page.text
    assert re.search(r'aria-label="Physical SIMs by state: [^"]*in_stock 21', page.text)
    panel = c.get("/console/dashboard/panel")
    assert panel.text.lstrip().startswith('<section id="panel"')
    assert "<html" not in panel.text
    assert "NATS relay" in panel.text  # not running in this test: said so


def test_search_by_each_identifier_prefix(console: Console) -> None:
    c = console.login("viewer")
    active = inventory.list_sims(console.engine, state="active", limit=5)
    sim = active[0]
    assert sim.msisdn and sim.imsi
    for q, field in ((sim.iccid[:-2], "iccid"), (sim.imsi, "imsi"),
                     ("+" + sim.msisdn, "msisdn"), (sim.msisdn[:9], "any")):
        r = c.get("/console/sims", params={"q": q, "field": field})
        assert r.status_code == 200
        assert f'href="/console/sims/{sim.iccid}"' in r.text, (q, field)
    none = c.get("/console/sims", params={"q": "4", "field": "eid"})
    assert "No SIM matches" in none.text


def test_search_pages_by_iccid(console: Console) -> None:
    c = console.login("viewer")
    first = c.get("/console/sims", params={"q": "89", "field": "iccid"})
    found = re.findall(r'href="/console/sims/(\d+)"', first.text)
    assert len(found) == 25
    nxt = re.search(r'rel="next" href="([^"]+)"', first.text)
    assert nxt
    second = c.get(nxt.group(1).replace("&amp;", "&"))
    more = re.findall(r'href="/console/sims/(\d+)"', second.text)
    assert more and min(more) > max(found)
    assert sorted(set(found + more)) == sorted(found + more)


def test_search_bad_input_names_the_position(console: Console) -> None:
    c = console.login("viewer")
    r = c.get("/console/sims", params={"q": "8949x1"})
    assert r.status_code == 422
    assert "not a digit (at 4)" in r.text and 'aria-invalid="true"' in r.text


def test_sim_page_shows_identifiers_batch_and_trail(console: Console) -> None:
    c = console.login("agent")
    sim = inventory.list_sims(console.engine, state="active", limit=1)[0]
    page = c.get(f"/console/sims/{sim.iccid}")
    assert page.status_code == 200
    for text in (sim.iccid, sim.imsi, sim.msisdn, "vendor-1", "sim.active", "Suspend"):
        assert text and text in page.text
    assert c.get("/console/sims/8949000000000009999").status_code in (404, 422)


def test_care_reveals_codes_with_a_reason_audited(console: Console) -> None:
    c = console.login("care")
    iccid = console.cards[0].iccid
    page = c.get(f"/console/sims/{iccid}")
    assert "Reveal PIN1 and PUK1" in page.text and PIN1 not in page.text
    token = console.csrf(f"/console/sims/{iccid}")
    no_reason = c.post(f"/console/sims/{iccid}/access-codes", data={"csrf_token": token})
    assert no_reason.status_code == 422
    r = c.post(f"/console/sims/{iccid}/access-codes",
               data={"csrf_token": token, "reason": "ticket 4711"})
    assert r.status_code == 200
    assert f'id="pin1">{PIN1}<' in r.text
    assert console.cards[0].values["PUK1"] in r.text
    ev = audit.query(console.engine, action="sim.access_codes_revealed")[-1]
    assert ev.actor == "console:care" and "ticket 4711" in ev.details
    assert PIN1 not in ev.details


def test_admin_is_not_care(console: Console) -> None:
    c = console.login("ops")
    iccid = console.cards[0].iccid
    assert "Reveal PIN1" not in c.get(f"/console/sims/{iccid}").text
    r = c.post(f"/console/sims/{iccid}/access-codes",
               data={"csrf_token": console.csrf(), "reason": "curious"})
    assert r.status_code == 403


def test_any_identifier_offers_the_next_page_per_identifier(console: Console) -> None:
    c = console.login("viewer")
    r = c.get("/console/sims", params={"q": "0010100", "field": "any"})
    links = re.findall(r'rel="next" href="([^"]+)"', r.text)
    assert len(links) == 1 and "field=imsi" in links[0]
    assert "Next page of IMSI matches" in r.text
    nxt = c.get(links[0].replace("&amp;", "&"))
    imsis = re.findall(r"<td>(00101\d{10})</td>", nxt.text)
    first = re.findall(r"<td>(00101\d{10})</td>", r.text)
    assert imsis and min(imsis) > max(first)


def test_activate_an_allocated_sim_with_the_next_msisdn(console: Console) -> None:
    c = console.login("agent")
    sim = inventory.allocate(console.engine, "walk-in", actor="t")
    page = c.get(f"/console/sims/{sim.iccid}")
    assert "Activate" in page.text
    form = c.get(f"/console/sims/{sim.iccid}/activate?version={sim.version}")
    assert "MSISDN (empty: the next free one of the pool)" in form.text
    r = c.post(f"/console/sims/{sim.iccid}/activate",
               data={"csrf_token": console.csrf(), "version": str(sim.version)},
               follow_redirects=False)
    assert r.status_code == 303
    after = inventory.get_sim(console.engine, sim.iccid)
    assert after.state == "active" and after.msisdn
