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
