"""Browser tests: the web client (web/) in Debian's Chromium, driven by Playwright, against the
session's real embedded stack (PostgreSQL, Redis, every service, Envoy serving the client).

Without Chromium (or the playwright package) these tests are not collected, and one line at the
end of the run says how to enable them.
"""

from __future__ import annotations

import itertools
import os
import re
import secrets
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from services.common.config import REPO_ROOT
from tests.browser.helpers import signed_in_script

CHROMIUM = os.environ.get("PICTOR_CHROMIUM", "/usr/bin/chromium")
SCREENSHOTS = REPO_ROOT / "build" / "screenshots"
PHONE = {"width": 390, "height": 844}
DESKTOP = {"width": 1440, "height": 900}
CHROMIUM_ARGS = ["--disable-background-networking", "--disable-component-update", "--disable-sync",
                 "--no-first-run", "--disable-gpu"]


def _missing() -> str | None:
    try:
        import playwright  # noqa: F401
    except ImportError:
        return "the playwright package (`make build` installs it)"
    if not (shutil.which(CHROMIUM) or Path(CHROMIUM).is_file()):
        return f"Chromium at {CHROMIUM}"
    return None


MISSING = _missing()
if MISSING:
    collect_ignore_glob = ["test_*.py"]


def pytest_terminal_summary(terminalreporter) -> None:
    if MISSING:
        terminalreporter.write_line(
            f"tests/browser skipped: no {MISSING}; `sudo apt-get install chromium` "
            "(or PICTOR_CHROMIUM=/path/to/chromium) runs them")


_names = itertools.count()


class Browser:
    """One Chromium for a test module; `page()` opens a new context (a separate person) on the client."""

    def __init__(self, chromium, base_url: str) -> None:
        self.chromium = chromium
        self.base_url = base_url
        self.contexts = []
        self.pages = []

    def page(self, session: dict | None = None, viewport: dict | None = None):
        context = self.chromium.new_context(viewport=viewport or DESKTOP, base_url=self.base_url)
        if session:
            context.add_init_script(signed_in_script(session))
        page = context.new_page()
        page.errors = []
        page.allowed_errors = []
        page.on("console", lambda m: m.type == "error" and page.errors.append(m.text))
        page.on("pageerror", lambda e: page.errors.append(f"uncaught: {e}"))
        self.contexts.append(context)
        self.pages.append(page)
        return page

    def close(self) -> None:
        for context in self.contexts:
            context.close()


def allow_console_error(page, pattern: str) -> None:
    """An error state a test causes on purpose (a 4xx the browser logs as a failed resource)."""
    page.allowed_errors.append(re.compile(pattern))


def cut_off(page, url_glob: str) -> None:
    """Requests matching `url_glob` fail as when the network is gone (the browser logs each)."""
    allow_console_error(page, "ERR_INTERNET_DISCONNECTED")
    page.route(url_glob, lambda route: route.abort("internetdisconnected"))


def unexpected_errors(page) -> list[str]:
    return [e for e in page.errors if not any(p.search(e) for p in page.allowed_errors)]


@pytest.fixture(scope="module")
def chromium(stack) -> Iterator:
    # Module scope: Playwright's sync API runs its own event loop, which must be gone before the
    # suite's asyncio tests run.
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@pytest.fixture
def browser(chromium, stack) -> Iterator[Browser]:
    b = Browser(chromium, f"http://127.0.0.1:{stack.settings.gateway_port}")
    yield b
    problems = {i: unexpected_errors(p) for i, p in enumerate(b.pages)}
    b.close()
    assert not any(problems.values()), f"console errors: {problems}"


def shoot(page, name: str) -> Path:
    """Screenshot of the page as it is, named for the screen and the viewport."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    size = page.viewport_size
    path = SCREENSHOTS / f"{name}-{size['width']}x{size['height']}.png"
    page.screenshot(path=str(path))
    return path


@pytest.fixture
def register(gateway):
    """A fresh account through the API (fast); returns the session JSON for Browser.page()."""

    def make(prefix: str = "web", private: bool = False, **fields: str) -> dict:
        n = f"{os.getpid()}{next(_names)}"
        body = {"username": f"{prefix}{n}", "email": f"{prefix}{n}@example.com", "password": "correct horse",
                "display_name": f"{prefix.title()} {n}", **fields}
        r = gateway.post("/v1/accounts", body)
        assert r.status == 200, r.body
        session = r.json
        if private:
            r = gateway.patch("/v1/users/me", {"is_private": True}, token=session["access_token"])
            assert r.status == 200, r.body
        return session

    return make


@pytest.fixture
def indexed(stack):
    """Wait until the search indexer has handled every event written so far."""
    from services.search.indexer import GROUP, TOPICS
    from tests.e2e.conftest import waiter

    client, wait = waiter(stack, GROUP, TOPICS, "search indexer")
    yield lambda: wait(60)
    client.close()


def word() -> str:
    """A made-up word no other test uses (letters only: it is searched for)."""
    return "q" + "".join(secrets.choice("bcdfghjklmnprstvwz") for _ in range(7))


@pytest.fixture(scope="session")
def gateway(stack):
    from tests.e2e.http import Gateway

    return Gateway(stack.settings.gateway_port)


@pytest.fixture(autouse=True)
def _patient_expectations():
    # The machine running the suite may be busy: wait for what the page shows, never sleep.
    from playwright.sync_api import expect

    expect.set_options(timeout=20_000)
