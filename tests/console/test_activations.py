"""Activations and jobs in the console over HTTP (issue 19 item 5): the list filtered and paged,
a run's step timeline with its trace id (and a link to the trace UI), live refresh while it
runs, cancel with confirmation, reason, CSRF and scope; the SIM page and the dashboard lead
there."""

from __future__ import annotations

import re

import pytest

from simcore import audit
from simcore.smdp.in_process import InProcessSmdp
from simcore.workflows import engine as wf
from simcore.workflows.service import get_workflow, start_activation
from simcore.workflows.steps import Deps
from tests.console.conftest import Console
from tests.helpers.fake_hlr import FakeHlr

pytestmark = pytest.mark.slow  # each test seeds a store with an HSM and logs in

FAST = wf.RetryPolicy(initial=0.0, maximum=0.0, jitter=0.0, max_attempts=2, max_undo_attempts=2)


def _work(console: Console, hlr: FakeHlr | None = None) -> FakeHlr:
    hlr = hlr or FakeHlr()
    deps = Deps(console.engine, hlr, InProcessSmdp(console.engine, "smdp.simsmith.test"),
                console.hsm)
    w = wf.Worker(console.engine, deps, policy=FAST)
    for _ in range(30):
        w.run_once()
    return hlr


def _activate(console: Console, n: int = 2, ref: str = "cust-w") -> str:
    """An activation of a SIM in stock with known keys."""
    return start_activation(console.engine, {"subscriber_ref": ref,
                                             "iccid": console.cards[n].iccid}, actor="t")


def test_list_filter_and_the_timeline_of_a_run(console: Console) -> None:
    done = _activate(console)
    _work(console)
    assert get_workflow(console.engine, done).status == wf.SUCCEEDED
    waiting = start_activation(console.engine, {"subscriber_ref": "cust-later"}, actor="t")
    c = console.login("viewer")
    page = c.get("/console/workflows").text
    assert f"/console/workflows/{done}" in page and f"/console/workflows/{waiting}" in page
    only = c.get("/console/workflows?status=succeeded").text
    assert done in only and waiting not in only
    assert "none" in c.get("/console/workflows?kind=swap").text
    bad = c.get("/console/workflows?status=bogus")
    assert bad.status_code == 422 and "status" in bad.text

    page = c.get(f"/console/workflows/{done}").text
    v = get_workflow(console.engine, done)
    assert f'<span id="trace-id">{v.trace_id}</span>' in page
    assert 'id="run-status" class="st st-succeeded">succeeded<' in page
    rows = re.findall(r'<tr data-step="(\w+)">', page)
    assert rows == [s.name for s in v.steps]
    assert "hx-get" not in page.split('id="run-live"')[1].split(">")[0]  # finished: no polling
    assert console.cards[2].iccid in page and "open the trace" not in page
    assert "Cancel this run" not in page

    live = c.get(f"/console/workflows/{waiting}").text
    assert f'hx-get="/console/workflows/{waiting}/live"' in live
    assert "Cancel this run" not in live  # a viewer may not
    part = c.get(f"/console/workflows/{waiting}/live")
    assert part.status_code == 200 and part.text.lstrip().startswith('<section id="run-live"')

    console.client.app.state.ctx.settings.trace_url = (  # type: ignore[attr-defined]
        "https://jaeger.example/trace/{trace_id}")
    page = c.get(f"/console/workflows/{done}").text
    assert f'href="https://jaeger.example/trace/{v.trace_id}"' in page


def test_paging(console: Console) -> None:
    ids = [start_activation(console.engine, {"subscriber_ref": f"p{i}"}, actor="t")
           for i in range(27)]
    c = console.login("viewer")
    first = c.get("/console/workflows").text
    shown = re.findall(r'href="/console/workflows/([0-9a-f-]{36})"', first)
    assert len(shown) == 25
    older = re.search(r'href="(/console/workflows\?[^"]*before=[^"]+)" rel="next"', first)
    assert older
    second = c.get(older.group(1).replace("&amp;", "&")).text
    rest = re.findall(r'href="/console/workflows/([0-9a-f-]{36})"', second)
    assert len(rest) == 2 and set(shown) | set(rest) == set(ids)


def test_cancel_from_the_console(console: Console) -> None:
    wid = _activate(console, ref="cust-cancel")
    c = console.login("viewer")
    assert c.get(f"/console/workflows/{wid}/cancel").status_code == 403
    assert c.post(f"/console/workflows/{wid}/cancel",
                  data={"csrf_token": console.csrf(), "reason": "x"}).status_code == 403
    c = console.login("agent")
    page = c.get(f"/console/workflows/{wid}").text
    assert f'href="/console/workflows/{wid}/cancel"' in page
    confirm = c.get(f"/console/workflows/{wid}/cancel").text
    assert '<label for="reason">' in confirm and "Confirm: cancel the run" in confirm
    assert c.post(f"/console/workflows/{wid}/cancel", data={"reason": "x"}).status_code == 403
    assert c.post(f"/console/workflows/{wid}/cancel",
                  data={"csrf_token": console.csrf(), "reason": ""}).status_code == 422
    assert get_workflow(console.engine, wid).cancel_requested_at is None
    r = c.post(f"/console/workflows/{wid}/cancel",
               data={"csrf_token": console.csrf(), "reason": "customer called back"},
               follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"] == f"/console/workflows/{wid}"
    v = get_workflow(console.engine, wid)
    assert v.cancel_requested_by == "console:agent" and v.cancel_reason == "customer called back"
    ev = [e for e in audit.query(console.engine, subject_id=wid)
          if e.action == "workflow.activation.cancel_requested"]
    assert [e.actor for e in ev] == ["console:agent"]
    page = c.get(f"/console/workflows/{wid}").text
    assert "asked by console:agent" in page and "Cancel this run" not in page
    hlr = _work(console)
    assert hlr.calls["provision"] == 0
    page = c.get(f"/console/workflows/{wid}").text
    assert 'id="run-status" class="st st-cancelled">cancelled<' in page
    # A finished run: the service refuses, the page says why.
    done = _activate(console, n=2, ref="cust-done")
    _work(console)
    r = c.post(f"/console/workflows/{done}/cancel",
               data={"csrf_token": console.csrf(), "reason": "late"})
    assert r.status_code == 409 and "finished (succeeded)" in r.text


def test_sim_page_and_dashboard_lead_to_the_runs(console: Console) -> None:
    wid = _activate(console, ref="cust-sim")
    _work(console)
    c = console.login("viewer")
    iccid = console.cards[2].iccid
    page = c.get(f"/console/sims/{iccid}").text
    assert f'href="/console/workflows/{wid}"' in page
    assert f'href="/console/workflows?subject={iccid}"' in page
    listed = c.get(f"/console/workflows?subject={iccid}").text
    assert wid in listed
    board = c.get("/console/").text
    assert 'href="/console/workflows"' in board and "Workflows, last 24 h" in board
