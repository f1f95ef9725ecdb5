"""Screenshots of every console page at a hospital PC's 1366x768, for the README.

    HIS_PACS_OPERATOR=zhang.it HIS_PACS_OPERATOR_PASSWORD=... \\
    .venv/bin/python scripts/console_screenshots.py --url http://127.0.0.1:8000 --out docs/console

Drives Debian's chromium (/usr/bin/chromium) with playwright; an admin operator sees every page.
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from playwright.sync_api import sync_playwright

ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--disable-sync", "--no-first-run"]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--url", default="http://127.0.0.1:8000")
    parser.add_argument("--out", type=Path, default=Path("docs/console"))
    parser.add_argument("--chromium", default="/usr/bin/chromium")
    parser.add_argument("--application-no", help="the application to show (default: the newest call's)")
    args = parser.parse_args()
    user, password = os.environ["HIS_PACS_OPERATOR"], os.environ["HIS_PACS_OPERATOR_PASSWORD"]
    console = args.url.rstrip("/") + "/console"
    args.out.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=args.chromium, args=ARGS)
        page = browser.new_page(viewport={"width": 1366, "height": 768}, locale="zh-CN")

        def shot(name: str) -> None:
            page.screenshot(path=str(args.out / f"{name}.png"))
            print(args.out / f"{name}.png")

        page.goto(console + "/login")
        shot("login")
        page.fill("#name", user)
        page.fill("#password", password)
        page.click("#sign-in")
        page.wait_for_selector("#operator")
        page.goto(console + "/critical")
        shot("critical")
        number = args.application_no
        page.goto(console + "/messages" + (f"?application_no={number}" if number else ""))
        shot("messages")
        page.locator("#calls a.call-link").last.click()
        shot("message")
        if number is None:
            number = page.locator("a[href*='/applications/']").first.inner_text()
        page.goto(f"{console}/applications/{number}")
        shot("application")
        for name in ("deliveries", "systems", "charts", "audit"):
            page.goto(f"{console}/{name}")
            shot(name)
        page.goto(console + "/critical?lang=en")
        shot("critical-en")
        browser.close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
