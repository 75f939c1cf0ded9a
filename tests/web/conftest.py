"""A real server on loopback with the demo day loaded, and Debian's Chromium driven by Playwright.

Chromium comes from Debian (`make test` installs it); without it the browser tests are skipped
with the reason, except under CI=true, where they fail.
"""

from __future__ import annotations

import os
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import pytest
import uvicorn
from playwright.sync_api import Browser, Page, sync_playwright

from deconfliction.api import create_app
from deconfliction.cli import DEMO_ENCOUNTER
from deconfliction.serving import uvicorn_settings
from deconfliction.sim.demo import load_demo
from deconfliction.store.db import make_engine, migrate

CHROMIUM = Path("/usr/bin/chromium")
ARTIFACTS = Path(__file__).parent / "artifacts"


@dataclass
class Site:
    url: str
    tokens: dict[str, str]  # officer id -> token
    db: str  # the database's URL, for the command line


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@pytest.fixture(scope="session")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    db = tmp_path_factory.mktemp("web") / "demo.db"
    engine = make_engine(f"sqlite:///{db}")
    migrate(engine)
    now = datetime.now(UTC)
    summary = load_demo(engine, now)
    app = create_app(
        engine, demo_replay=(summary.day_start, summary.day_start + DEMO_ENCOUNTER - now)
    )
    port = _free_port()
    # No websocket keepalive pings: they draw from the global `random` in this thread, which
    # hypothesis then reports against whichever test is drawing examples at that moment.
    config = uvicorn.Config(
        app,
        host="127.0.0.1",
        port=port,
        log_level="warning",
        ws_ping_interval=None,
        **uvicorn_settings(),
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("the test server did not start")
        time.sleep(0.05)
    yield Site(
        url=f"http://127.0.0.1:{port}",
        tokens={officer: token for officer, (_, _, token) in summary.tokens.items()},
        db=f"sqlite:///{db}",
    )
    server.should_exit = True
    thread.join(timeout=10)
    engine.dispose()


@pytest.fixture(scope="session")
def browser() -> Iterator[Browser]:
    if not CHROMIUM.exists():
        reason = f"{CHROMIUM} is missing (apt-get install chromium; `make test` does it as root)"
        if os.environ.get("CI") == "true":
            pytest.fail(reason)
        pytest.skip(reason)
    with sync_playwright() as p:
        launched = p.chromium.launch(
            executable_path=str(CHROMIUM),
            args=["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"],
        )
        yield launched
        launched.close()


@pytest.fixture(scope="session")
def artifacts() -> Path:
    ARTIFACTS.mkdir(exist_ok=True)
    return ARTIFACTS


@dataclass
class Screen:
    page: Page
    errors: list[str]  # uncaught errors in the page's scripts: a test ends with none

    def refused_by_policy(self) -> list[str]:
        """What the page's Content-Security-Policy refused so far (directive, then what)."""
        refused: list[str] = self.page.evaluate("window.dcfRefused")
        return refused


# Recorded from the first script on: every refusal of the page's Content-Security-Policy.
RECORD_REFUSALS = """
window.dcfRefused = [];
document.addEventListener("securitypolicyviolation",
  (e) => window.dcfRefused.push(`${e.effectiveDirective} ${e.blockedURI}`));
"""


def log_in(
    browser: Browser,
    site: Site,
    officer: str,
    language: str | None = None,
    size: tuple[int, int] = (1366, 768),
) -> Screen:
    """A fresh browser context (its own storage) logged in as that officer, stream live."""
    context = browser.new_context(
        viewport={"width": size[0], "height": size[1]}, locale="en-GB", has_touch=size[0] < 1100
    )
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.add_init_script(RECORD_REFUSALS)
    if language is not None:
        page.add_init_script(f"localStorage.setItem('dcf.lang', '{language}')")
    page.goto(site.url + "/")
    page.fill("#token", site.tokens[officer])
    page.click("#login-form button[type=submit]")
    page.wait_for_selector("#app:not([hidden])")
    page.wait_for_selector("#stream-state[data-state=live]")
    page.wait_for_selector("#layer-base path.country", state="attached")
    return Screen(page, errors)
