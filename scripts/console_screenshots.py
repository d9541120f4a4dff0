#!/usr/bin/env python3
"""Screenshots of the console's main pages for docs/console.md (docs/img/console-*.png).

Makes a throw-away demo workspace (`simsmith demo`), serves the console on a free port, logs in
as the demo user in Debian's Chromium (playwright, system browser) and saves small PNGs:

    .venv/bin/python scripts/console_screenshots.py [OUTDIR]     # default docs/img
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def main() -> None:
    out = Path(sys.argv[1] if len(sys.argv) > 1 else ROOT / "docs" / "img")
    out.mkdir(parents=True, exist_ok=True)
    home = Path(tempfile.mkdtemp(prefix="simsmith-shots-"))
    env = {k: v for k, v in os.environ.items() if not k.startswith("SIMSMITH_")}
    env["SIMSMITH_HOME"] = str(home)
    subprocess.run([sys.executable, "-m", "tools.cli", "demo"], env=env, cwd=ROOT, check=True,
                   stdout=subprocess.DEVNULL)
    # Two activations for the workflow pages: the first carried out here (the workspace's
    # embedded HLR); the second left pending, to be cancelled.
    subprocess.run([sys.executable, "-m", "tools.cli", "activate", "customer-41", "--wait",
                    "60"], env=env, cwd=ROOT, stdout=subprocess.DEVNULL)
    subprocess.run([sys.executable, "-m", "tools.cli", "activate", "customer-42"], env=env,
                   cwd=ROOT, stdout=subprocess.DEVNULL, check=True)
    os.environ.update({"SIMSMITH_HOME": str(home), "SIMSMITH_WEBHOOKS_ENABLED": "0",
                       "SIMSMITH_LOG_LEVEL": "WARNING",
                       "SIMSMITH_TRACE_URL": "https://jaeger.example/trace/{trace_id}"})
    sys.path.insert(0, str(ROOT))
    import socket

    import httpx
    import uvicorn

    from api.main import create_app
    from api.settings import ApiSettings

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    app = create_app(ApiSettings(smdp_mode="in-process"))
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="error"))
    threading.Thread(target=server.run, daemon=True).start()
    url = f"http://127.0.0.1:{port}"
    while True:
        try:
            if httpx.get(url + "/healthz").status_code == 200:
                break
        except httpx.HTTPError:
            time.sleep(0.1)
    password = (home / "demo-console-password").read_text().strip()
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path="/usr/bin/chromium",
                                    args=["--no-sandbox"] if os.geteuid() == 0 else [])
        page = browser.new_page(base_url=url, viewport={"width": 1100, "height": 720})

        def shot(name: str) -> None:
            page.screenshot(path=str(out / f"console-{name}.png"))
            print(out / f"console-{name}.png")

        page.goto("/console/login")
        page.get_by_label("User name").fill("demo")
        shot("login")
        page.get_by_label("Password", exact=True).fill(password)
        page.keyboard.press("Enter")
        page.wait_for_url("**/console/")
        shot("dashboard")
        page.goto("/console/sims?q=447700900&field=msisdn")
        shot("search")
        page.get_by_role("link").filter(has_text="8988211").first.click()
        shot("sim")
        page.get_by_role("link", name="Suspend").click()
        shot("confirm")
        page.goto("/console/esim/order")
        page.get_by_label("Customer reference").fill("customer-7")
        page.get_by_role("button", name="Order the eSIM").click()
        page.locator("#activation-code").wait_for()
        shot("esim")
        page.goto("/console/imports")
        shot("imports")
        page.goto("/console/admin/keys")
        shot("admin-keys")
        page.goto("/console/workflows")
        shot("workflows")
        done = page.locator("#runs tbody tr").filter(has_text="succeeded")
        done.get_by_role("link").first.click()
        page.locator("#timeline").wait_for()
        shot("workflow")
        page.goto("/console/workflows?status=pending")
        page.locator("#runs tbody tr").first.get_by_role("link").first.click()
        page.get_by_role("link", name="Cancel this run…").click()
        page.get_by_label("Reason (recorded in the audit trail)").fill("customer called back")
        shot("workflow-cancel")
        browser.close()
    server.should_exit = True


if __name__ == "__main__":
    main()
