"""The console in a real browser (Debian's Chromium through playwright): log in, search, open
a SIM, suspend and resume it, a form without its CSRF token refused, a read-only user refused.
Everything is done from the keyboard or by the labels a screen reader would announce."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine

from api.main import create_app
from hsm_sim.soft import SoftHsm
from simcore import db, inventory
from tests.api.conftest import settings
from tests.console.browser import browser, serve
from tests.console.conftest import PASSWORD, known_cards, seed_console
from tests.vendor_import.helpers import Card, make_hsm

pytestmark = pytest.mark.slow  # a real browser and server per test


@dataclass
class Live:
    url: str
    engine: Engine
    hsm: SoftHsm
    cards: list[Card]
    tmp: Path
    browser: Any

    def page(self, user: str | None = "ops") -> Any:
        context = self.browser.new_context(base_url=self.url)
        page = context.new_page()
        errors: list[str] = []
        # A CSP violation or a script error shows in the console: the tests fail on any.
        page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
        page.on("pageerror", lambda e: errors.append(str(e)))
        page.errors = errors
        if user:
            login(page, user)
        return page


def login(page: Any, user: str, password: str = PASSWORD) -> None:
    page.goto("/console/login")
    page.get_by_label("User name").fill(user)
    page.get_by_label("Password", exact=True).fill(password)
    page.keyboard.press("Enter")
    page.wait_for_url("**/console/")


@pytest.fixture(scope="module")
def chromium() -> Iterator[Any]:
    with browser() as b:
        yield b


@pytest.fixture
def live(chromium: Any, tmp_path: Path, sqlite_template: Path) -> Iterator[Live]:
    path = tmp_path / "simsmith.db"
    shutil.copy(sqlite_template, path)
    engine = db.make_engine(f"sqlite:///{path}")
    hsm = make_hsm(tmp_path / "hsm")
    rows = seed_console(engine, hsm, tmp_path)
    app = create_app(settings(tmp_path), engine=engine, hsm=hsm)
    with serve(app) as url:
        yield Live(url, engine, hsm, rows, tmp_path, chromium)
    engine.dispose()


def test_log_in_search_open_suspend_resume(live: Live) -> None:
    page = live.page("agent")
    assert page.get_by_role("heading", name="Dashboard").is_visible()
    sim = inventory.list_sims(live.engine, state="active", limit=1)[0]
    assert sim.msisdn
    page.get_by_role("link", name="Search").click()
    page.get_by_label("ICCID, IMSI, MSISDN or EID (first digits)").fill(sim.msisdn[:10])
    page.keyboard.press("Enter")
    page.get_by_role("link", name=sim.iccid).click()
    assert page.locator("#sim-state").inner_text() == "active"
    page.get_by_role("link", name="Suspend").click()
    page.get_by_label("Reason (optional)").fill("lost phone")
    page.get_by_role("button", name="Confirm: suspend").click()
    page.wait_for_url(f"**/console/sims/{sim.iccid}")
    assert page.locator("#sim-state").inner_text() == "suspended"
    # Resume from the keyboard alone: focus the link, Enter, then Enter on the button.
    page.get_by_role("link", name="Resume").focus()
    page.keyboard.press("Enter")
    page.get_by_role("button", name="Confirm: resume").focus()
    page.keyboard.press("Enter")
    page.wait_for_url(f"**/console/sims/{sim.iccid}")
    assert page.locator("#sim-state").inner_text() == "active"
    assert inventory.get_sim(live.engine, sim.iccid).state == "active"
    trail = page.get_by_role("table").filter(has_text="sim.suspended").inner_text()
    assert "console:agent" in trail and "sim.active" in trail
    assert page.errors == []


def test_form_without_csrf_token_is_refused(live: Live) -> None:
    page = live.page("agent")
    sim = inventory.list_sims(live.engine, state="active", limit=1)[0]
    page.goto(f"/console/sims/{sim.iccid}/suspend")
    # What a forged form would be: the same fields, no token.
    page.evaluate("document.querySelectorAll('main input[name=csrf_token]')"
                  ".forEach(e => e.remove())")
    page.get_by_role("button", name="Confirm: suspend").click()
    assert page.get_by_role("alert").inner_text().startswith("The form's CSRF token")
    assert inventory.get_sim(live.engine, sim.iccid).state == "active"


def test_read_only_user_is_refused_an_action(live: Live) -> None:
    page = live.page("viewer")
    sim = inventory.list_sims(live.engine, state="active", limit=1)[0]
    page.goto(f"/console/sims/{sim.iccid}")
    assert page.get_by_role("link", name="Suspend").count() == 0
    response = page.goto(f"/console/sims/{sim.iccid}/suspend")
    assert response.status == 403
    assert "sims:write" in page.get_by_role("alert").inner_text()
    assert inventory.get_sim(live.engine, sim.iccid).state == "active"


__all__ = ["known_cards"]


QR_PIXELS = """img => {
  const c = document.createElement('canvas');
  c.width = img.naturalWidth; c.height = img.naturalHeight;
  const g = c.getContext('2d');
  g.fillStyle = '#fff'; g.fillRect(0, 0, c.width, c.height); g.drawImage(img, 0, 0);
  const d = g.getImageData(0, 0, c.width, c.height).data;
  const lum = new Array(c.width * c.height);
  for (let i = 0; i < lum.length; i++) lum[i] = d[4 * i];
  return {w: c.width, h: c.height, lum: lum};
}"""


def test_order_an_esim_and_decode_the_qr_on_the_page(live: Live) -> None:
    import zxingcpp

    from simcore import esim_orders

    page = live.page("agent")
    page.get_by_role("link", name="Order eSIM").click()
    page.get_by_label("Customer reference").fill("walk-in 42")
    page.get_by_role("button", name="Order the eSIM").click()
    page.get_by_role("heading", name="eSIM ordered for walk-in 42").wait_for()
    shown = page.locator("#activation-code").inner_text()
    order = esim_orders.list_orders(live.engine, external_ref="walk-in 42")[0]
    assert shown == order.activation_code.to_string()
    img = page.get_by_role("img", name=f"QR code of the activation code {shown}")
    img.wait_for()
    assert img.evaluate("i => i.complete && i.naturalWidth > 0")
    px = img.evaluate(QR_PIXELS)
    lum = bytes(px["lum"])  # held while zxing reads it: ImageView does not keep a reference
    found = zxingcpp.read_barcode(zxingcpp.ImageView(lum, px["w"], px["h"],
                                                     zxingcpp.ImageFormat.Lum))
    assert found is not None and found.text == "LPA:" + shown
    assert page.get_by_role("link", name="Android / LPA link").get_attribute("href") == \
        "LPA:" + shown
    with page.expect_download() as dl:
        page.get_by_role("link", name="Download SVG (for e-mail)").click()
    assert dl.value.suggested_filename == f"esim-{order.iccid}.svg"
    assert page.errors == []


def test_import_a_vendor_file_with_an_error_row_then_a_good_one(live: Live) -> None:
    from tests.vendor_import.helpers import out_text

    rows = known_cards(4, offset=30)

    def break_row(table: list[list[str]]) -> None:
        table[2][1] = "0010100000001X9"

    page = live.page("ops")
    page.get_by_role("link", name="Imports").click()
    page.get_by_label("Vendor file").set_input_files(files=[{
        "name": "B30.out", "mimeType": "text/plain",
        "buffer": out_text(rows, var_in=False, mutate=break_row).encode()}])
    page.get_by_label("Batch name (optional)").fill("b30")
    page.get_by_role("button", name="Upload").click()
    # htmx polls the job until it is done; the page updates itself.
    page.locator("#job-status", has_text="invalid").wait_for(timeout=60_000)
    issues = page.locator("#issues tbody tr")
    assert issues.count() == 1
    assert issues.first.inner_text().startswith("B30.out:")
    assert "IMSI" in issues.first.inner_text()
    assert inventory.list_sims(live.engine, batch=None, limit=1000) and not any(
        s.iccid == rows[0].iccid for s in inventory.list_sims(live.engine, limit=1000))

    page.get_by_role("link", name="All imports").click()
    page.get_by_label("Vendor file").set_input_files(files=[{
        "name": "B30.out", "mimeType": "text/plain",
        "buffer": out_text(rows, var_in=False).encode()}])
    page.get_by_label("Batch name (optional)").fill("b30")
    page.get_by_label("Dry run: check every row, write nothing").uncheck()
    page.get_by_role("button", name="Upload").click()
    page.locator("#job-status", has_text="imported").wait_for(timeout=60_000)
    assert page.locator("#job-rows").inner_text() == "4"
    assert inventory.get_sim(live.engine, rows[3].iccid).state == "in_stock"
    assert page.errors == []


def test_open_an_activation_see_its_timeline_and_cancel_it(live: Live) -> None:
    from simcore.smdp.in_process import InProcessSmdp
    from simcore.workflows import engine as wf
    from simcore.workflows.service import get_workflow, start_activation
    from simcore.workflows.steps import Deps
    from tests.helpers.fake_hlr import FakeHlr

    wid = start_activation(live.engine, {"subscriber_ref": "browser-cancel",
                                         "iccid": live.cards[2].iccid}, actor="t")
    trace = get_workflow(live.engine, wid).trace_id
    page = live.page("agent")
    page.get_by_role("link", name="Activations").first.click()
    page.get_by_role("heading", name="Activations and jobs").wait_for()
    page.get_by_label("Kind").select_option("activation")
    page.get_by_role("button", name="Filter").click()
    page.get_by_role("link", name=f"Run activation {wid}").click()
    assert page.locator("#trace-id").inner_text() == trace
    assert page.locator("#run-status").inner_text() == "pending"
    steps = page.locator("#timeline tbody tr")
    assert steps.count() == 8 and "validate" in steps.first.inner_text()
    # Cancel from the keyboard: the link, the reason, Enter on the button.
    page.get_by_role("link", name="Cancel this run…").focus()
    page.keyboard.press("Enter")
    page.get_by_label("Reason (recorded in the audit trail)").fill("customer called back")
    page.get_by_role("button", name="Confirm: cancel the run").focus()
    page.keyboard.press("Enter")
    page.wait_for_url(f"**/console/workflows/{wid}")
    assert "asked by console:agent" in page.locator("#run-cancel").inner_text()
    # A worker carries the cancel out; the page follows by itself (htmx) until it is over.
    deps = Deps(live.engine, FakeHlr(), InProcessSmdp(live.engine, "smdp.simsmith.test"),
                live.hsm)
    wf.drain(live.engine, deps, policy=wf.RetryPolicy(initial=0, maximum=0, jitter=0))
    page.locator("#run-status", has_text="cancelled").wait_for(timeout=20_000)
    assert get_workflow(live.engine, wid).status == "cancelled"
    assert page.errors == []


def test_dry_run_then_one_click_import(live: Live) -> None:
    from tests.vendor_import.helpers import out_text

    rows = known_cards(3, offset=60)
    page = live.page("ops")
    page.get_by_role("link", name="Imports").click()
    page.get_by_label("Vendor file").set_input_files(files=[{
        "name": "B60.out", "mimeType": "text/plain",
        "buffer": out_text(rows, var_in=False).encode()}])
    assert page.get_by_label("Dry run: check every row, write nothing").is_checked()
    page.get_by_role("button", name="Upload").click()
    page.locator("#job-status", has_text="valid").wait_for(timeout=60_000)
    assert not any(s.iccid == rows[0].iccid for s in inventory.list_sims(live.engine,
                                                                         limit=1000))
    page.get_by_role("button", name="Import this file now").click()
    page.locator("#job-status", has_text="imported").wait_for(timeout=60_000)
    assert page.locator("#job-rows").inner_text() == "3"
    assert inventory.get_sim(live.engine, rows[2].iccid).state == "in_stock"
    assert page.errors == []
