"""The console tier: Debian's headless Chromium, driven by playwright, against the SOAP tier's
real server, with operators added by `his-pacs-ws operators add`."""

from __future__ import annotations

import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.soap.conftest import run_cli

HERE = Path(__file__).resolve().parent
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]
ADMIN, ADMIN_PASSWORD = "it-admin", "it-admin-password-1"
VIEWER, VIEWER_PASSWORD = "qc-viewer", "qc-viewer-password-1"


@dataclass
class Console:
    url: str  # .../console


@pytest.fixture(scope="session")
def chromium():
    """Debian's chromium, installed by install.sh where missing."""
    subprocess.run(["bash", str(HERE / "install.sh")], check=True)
    return CHROMIUM


@pytest.fixture(scope="package")
def console(server, database_url):
    for name, password, role in ((ADMIN, ADMIN_PASSWORD, "admin"), (VIEWER, VIEWER_PASSWORD, "viewer")):
        added = run_cli("operators", "add", name, "--role", role, "--password-stdin", "--database-url", database_url,
                        env=server.env, stdin=password + "\n")
        assert added.returncode == 0, added.stderr
    return Console(server.url + "/console")


@pytest.fixture(scope="session")
def browser(chromium):
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@pytest.fixture
def page(browser):
    """A fresh browser profile at a hospital PC's screen size."""
    context = browser.new_context(viewport={"width": 1366, "height": 768}, locale="zh-CN", accept_downloads=True)
    page = context.new_page()
    page.set_default_timeout(15_000)
    yield page
    context.close()


def sign_in(page, console: Console, name: str, password: str, path: str = "/") -> None:
    page.goto(console.url + path)
    page.fill("#name", name)
    page.fill("#password", password)
    page.click("#sign-in")
    page.wait_for_selector("#operator")


def session_cookie(page) -> str | None:
    return next((c["value"] for c in page.context.cookies() if c["name"] == "hpw_session"), None)
