"""No page of the console ever shows a Ki, OPc, PIN, PUK or ADM (issue 19, "done when").

The store holds SIMs imported from a vendor file whose keys and codes this test wrote (and so
knows in clear, in every spelling); an import with a broken row (whose issues table shows
masked values), a valid dry run (its file kept for the one-click import), an eSIM order,
workflow runs (their timelines) and a care person's session add their pages. Then a crawler,
logged in as each role, follows every link of every /console page it can reach and scans each
answer (HTML, SVG) for any of those values. Care's reveal is a POST answered once, never a page
a link leads to: it is the one place PIN1/PUK1 may appear, and the test checks that too."""

from __future__ import annotations

import re
import time
from collections import deque
from urllib.parse import urljoin, urlsplit

import pytest

from simcore import import_jobs
from simcore.smdp.in_process import InProcessSmdp
from simcore.workflows import engine as wf
from simcore.workflows.service import start_activation
from simcore.workflows.steps import Deps
from tests.console.conftest import ROLES, Console, known_cards, secrets_of
from tests.helpers.fake_hlr import FakeHlr
from tests.vendor_import.helpers import out_text

# Each test seeds a store with an HSM and logs in (an argon2id hash, ~0.5 s): slow.
pytestmark = pytest.mark.slow

MAX_PAGES = 400
SKIP = re.compile(r"/console/(static/|logout)|\.png")


def _forms(console: Console) -> None:
    """Put pages of every kind in the store: jobs with issues, an order, a revealed code."""
    c = console.login("ops")
    rows = known_cards(3, offset=50)

    def break_row(table: list[list[str]]) -> None:
        table[0][2] = table[0][2][:-1] + "Z"  # EKI not hex: the issue shows it masked

    for text, dry in ((out_text(rows, var_in=False, mutate=break_row), True),
                      (out_text(rows, var_in=False), True),
                      (out_text(rows, var_in=False), False)):
        data = {"csrf_token": console.csrf()}
        if dry:
            data["dry_run"] = "on"
        r = c.post("/console/imports", data=data, files={"file": ("S.out", text.encode())},
                   follow_redirects=False)
        assert r.status_code == 303, r.text
        job_id = int(r.headers["location"].rsplit("/", 1)[1])
        for _ in range(600):
            if import_jobs.get(console.engine, job_id).status in import_jobs.DONE:
                break
            time.sleep(0.05)
    console.cards.extend(rows)
    c = console.login("agent")
    assert c.post("/console/esim/order", data={"csrf_token": console.csrf(),
                                               "external_ref": "scan"}).status_code == 200
    # Workflow runs of the SIMs whose secrets are scanned for: one done, one waiting.
    deps = Deps(console.engine, FakeHlr(), InProcessSmdp(console.engine, "smdp.simsmith.test"),
                console.hsm)
    start_activation(console.engine, {"subscriber_ref": "scan-1",
                                      "iccid": console.cards[2].iccid}, actor="t")
    wf.drain(console.engine, deps, policy=wf.RetryPolicy(initial=0, maximum=0, jitter=0))
    start_activation(console.engine, {"subscriber_ref": "scan-2",
                                      "iccid": rows[0].iccid}, actor="t")


def _crawl(console: Console, user: str, secrets: list[str]) -> set[str]:
    c = console.login(user)
    seen: set[str] = set()
    todo = deque(["/console/", *(f"/console/sims/{card.iccid}" for card in console.cards),
                  *(f"/console/sims?q={card.iccid[:12]}" for card in console.cards[:1])])
    while todo and len(seen) < MAX_PAGES:
        path = todo.popleft()
        if path in seen:
            continue
        seen.add(path)
        r = c.get(path, follow_redirects=False)
        body = r.text if "image/png" not in r.headers.get("content-type", "") else ""
        for s in secrets:
            assert s not in body and s.lower() not in body and s.upper() not in body, \
                f"{s!r} on {path} as {user}"
        for href in re.findall(r'href="([^"]+)"', body):
            url = urljoin(path, href.replace("&amp;", "&"))
            parts = urlsplit(url)
            if parts.netloc or not parts.path.startswith("/console") or SKIP.search(url):
                continue
            todo.append(parts.path + (f"?{parts.query}" if parts.query else ""))
    return seen


def test_no_page_shows_a_key_or_code(console: Console) -> None:
    _forms(console)
    secrets = secrets_of(console.cards)
    assert len(secrets) == 8 * len(console.cards)
    for user in ROLES:
        pages = _crawl(console, user, secrets)
        assert len(pages) >= (20 if user == "ops" else 5), (user, len(pages))
        runs = [p for p in pages if re.fullmatch(r"/console/workflows/[0-9a-f-]{36}", p)]
        assert len(runs) == 2, (user, runs)  # every run's timeline was scanned


def test_care_reveal_is_the_one_answer_with_codes(console: Console) -> None:
    c = console.login("care")
    card = console.cards[0]
    r = c.post(f"/console/sims/{card.iccid}/access-codes",
               data={"csrf_token": console.csrf(), "reason": "ticket 1"})
    assert card.values["PIN1"] in r.text and card.values["PUK1"] in r.text
    assert r.headers["cache-control"] == "no-store"
    others = [s for s in secrets_of([card]) if s not in (card.values["PIN1"],
                                                         card.values["PUK1"])]
    assert not any(s in r.text or s.lower() in r.text for s in others)
    assert len(_crawl(console, "care", secrets_of(console.cards))) >= 5
