"""People who sign in to the pages, and browsers (cookie jars) for each of them.

The HTTP-level page tests run on both stores with the app in process (``client``); each
person gets a client of their own, so their session cookies never mix.
"""

from __future__ import annotations

import asyncio
import re
import shutil
import threading
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine, Iterator
from contextlib import AsyncExitStack
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar

import httpx
import pytest
from fastapi import FastAPI
from playwright.sync_api import Browser as PlaywrightBrowser
from playwright.sync_api import BrowserContext, sync_playwright

from app.core.config import Settings
from app.db.base import utcnow
from app.db.store import Store
from app.main import prepare_store
from app.services import accounts
from app.vocabulary.accounts import Role, TokenKind
from app.web.sessions import SESSION_COOKIE
from tests.conftest import (
    ADMIN_TOKEN,
    STORE_TIMEOUT_SECONDS,
    Account,
    MakeAccount,
    bearer,
    run_blocking,
)
from tests.e2e.watchkeeper_server import STARTUP_SECONDS, serve_watchkeeper
from tests.web.seed import PASSWORD, configured_targets, seed_dashboard

_CSRF = re.compile(r'name="csrf" value="([^"]+)"')


def csrf_of(html: str) -> str:
    """The CSRF token a page's forms carry."""
    found = _CSRF.search(html)
    assert found, "the page has no form with a CSRF token"
    return found.group(1)


class Browser:
    """One person's browser: a cookie jar, and the CSRF token of their session's forms."""

    def __init__(self, http: httpx.AsyncClient) -> None:
        self.http = http
        self.csrf = ""

    async def sign_in(self, username: str, password: str = PASSWORD) -> httpx.Response:
        """Fills the sign-in form and posts it; the answer is not followed."""
        form = await self.http.get("/login")
        posted = await self.http.post(
            "/login",
            data={"csrf": csrf_of(form.text), "username": username, "password": password},
        )
        if posted.status_code == 303:  # every signed-in page's sign-out form has it
            self.csrf = csrf_of((await self.http.get("/issues/new")).text)
        return posted

    async def get(self, path: str) -> httpx.Response:
        return await self.http.get(path)

    async def post(self, path: str, **fields: str | list[str]) -> httpx.Response:
        """Posts a form of this session (with its CSRF token unless one is given)."""
        return await self.http.post(path, data={"csrf": self.csrf, **fields})


OpenBrowser = Callable[[], Awaitable[Browser]]


@pytest.fixture
async def open_browser(app: FastAPI) -> AsyncIterator[OpenBrowser]:
    """Opens a new browser on the app; each has its own cookies."""
    async with AsyncExitStack() as stack:

        async def open_one() -> Browser:
            transport = httpx.ASGITransport(app=app)
            http = httpx.AsyncClient(transport=transport, base_url="http://watchkeeper")
            return Browser(await stack.enter_async_context(http))

        yield open_one


async def signed_in(app: FastAPI, browser: Browser, username: str) -> Browser:
    """Gives ``browser`` a session of ``username`` as signing in would (the password check
    is ``test_sign_in``'s story; the others skip its deliberate slowness)."""
    ttl = timedelta(minutes=app.state.settings.session_token_ttl_minutes)
    async with app.state.store.unit_of_work() as session:
        user = await accounts.get_user(session, username)
        _, token = await accounts.issue_token(
            session, user=user, name="tests", kind=TokenKind.BROWSER, ttl=ttl
        )
    browser.http.cookies.set(SESSION_COOKIE, token)
    browser.csrf = csrf_of((await browser.get("/issues/new")).text)
    return browser


@pytest.fixture
async def dana(make_account: MakeAccount) -> Account:
    """A developer who works the desk and watches the services."""
    return await make_account("dana", Role.DEVELOPER)


@pytest.fixture
async def rita(make_account: MakeAccount) -> Account:
    """A user who reports issues."""
    return await make_account("rita", Role.USER)


@pytest.fixture
async def dana_with_password(make_account: MakeAccount) -> Account:
    """A developer who signs in with a password."""
    return await make_account("dana", Role.DEVELOPER, password=PASSWORD)


@pytest.fixture
async def dana_browser(app: FastAPI, dana: Account, open_browser: OpenBrowser) -> Browser:
    return await signed_in(app, await open_browser(), dana.username)


@pytest.fixture
async def rita_browser(app: FastAPI, rita: Account, open_browser: OpenBrowser) -> Browser:
    return await signed_in(app, await open_browser(), rita.username)


# The browser stories ------------------------------------------------------------------
# One seeded SQLite store, one Watchkeeper served by uvicorn and one Chromium for the whole
# session; each story opens its own browser context (its own cookies).

Result = TypeVar("Result")
CHROMIUM = Path("/usr/bin/chromium")  # Debian's package: `apt-get install chromium`
AXE = Path(__file__).parent / "vendor" / "axe-core-4.14.1" / "axe.min.js"


@dataclass(frozen=True)
class Dashboard:
    """The served, seeded Watchkeeper: its address, its frozen clock, its settings."""

    url: str
    now: datetime
    settings: Settings

    def api(self, path: str) -> Any:
        """What the API answers the admin for ``path``."""
        answer = httpx.get(self.url + path, headers=bearer(ADMIN_TOKEN), timeout=30)
        assert answer.status_code == 200, answer.text
        return answer.json()


@pytest.fixture(scope="session")
def dashboard(
    sqlite_template: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Dashboard]:
    """A Watchkeeper on a store seeded with ``seed_dashboard``, its clock frozen at the
    seed's now, served on a free loopback port for the session."""
    folder = tmp_path_factory.mktemp("dashboard")
    path = folder / "watchkeeper.db"
    shutil.copyfile(sqlite_template, path)
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("WATCHKEEPER_CONFIG_FILE", str(folder / "absent.toml"))
        settings = Settings(
            database_url=f"sqlite+aiosqlite:///{path}",
            data_dir=folder,
            admin_token=ADMIN_TOKEN,
            monitor_in_process=False,
            alert_dispatch_in_process=False,
            targets=configured_targets(),
            status_page_enabled=True,
            database_timeout_seconds=STORE_TIMEOUT_SECONDS,
        )
    now = utcnow()

    async def seed() -> None:
        store = Store(settings.database_url)
        await prepare_store(store, settings)
        await seed_dashboard(store, now, resolution_hours=settings.issue_resolution_target_hours)
        await store.dispose()

    run_blocking(seed)
    # Its own thread and loop: Playwright's sync API keeps a loop running in this one.
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, name="dashboard", daemon=True)
    thread.start()

    def call(step: Coroutine[Any, Any, Result]) -> Result:
        return asyncio.run_coroutine_threadsafe(step, loop).result(timeout=STARTUP_SECONDS)

    serving = serve_watchkeeper(settings)
    running = call(serving.__aenter__())
    running.app.state.clock = lambda: now
    try:
        yield Dashboard(running.url, now, settings)
    finally:
        call(serving.__aexit__(None, None, None))
        loop.call_soon_threadsafe(loop.stop)
        thread.join(STARTUP_SECONDS)
        loop.close()


# Module-scoped: Playwright's sync API keeps an event loop running in this thread while it
# is open, so it must close before the async page tests of the next module run.
@pytest.fixture(scope="module")
def chromium() -> Iterator[PlaywrightBrowser]:
    """Headless Chromium, launched once for the browser stories."""
    if not CHROMIUM.exists():
        pytest.fail(f"the browser stories need Debian's chromium at {CHROMIUM}")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=["--no-sandbox"])
        yield browser
        browser.close()


class Person:
    """Someone at the dashboard in a browser context of their own."""

    def __init__(self, context: BrowserContext, dashboard: Dashboard) -> None:
        self.context = context
        self.dashboard = dashboard
        self.page = context.new_page()
        self.problems: list[str] = []
        self.page.on("pageerror", lambda error: self.problems.append(f"page error: {error}"))
        self.page.on(
            "console",
            lambda message: (
                self.problems.append(f"console: {message.text}")
                if message.type == "error"
                else None
            ),
        )

    def visit(self, path: str) -> int:
        """Opens ``path`` (and what htmx pulls into it); the status of the document."""
        answer = self.page.goto(self.dashboard.url + path)
        assert answer is not None
        self.settle()
        return answer.status

    def settle(self) -> None:
        """Waits for what a page pulls in after loading (htmx fragments, scripts)."""
        self.page.wait_for_load_state("networkidle")

    def sign_in(self, username: str, password: str = PASSWORD) -> None:
        self.visit("/login")
        self.page.get_by_label("Username").fill(username)
        self.page.get_by_label("Password").fill(password)
        self.page.get_by_role("button", name="Sign in").click()
        self.page.wait_for_url(lambda url: "/login" not in url)


MeetPerson = Callable[..., Person]


@pytest.fixture(scope="module")
def signed_in_state(chromium: PlaywrightBrowser, dashboard: Dashboard) -> Callable[[str], Any]:
    """A person's signed-in browser state (cookies): signed in once through the form."""
    states: dict[str, Any] = {}

    def state_of(username: str) -> Any:
        if username not in states:
            context = chromium.new_context()
            Person(context, dashboard).sign_in(username)
            states[username] = context.storage_state()
            context.close()
        return states[username]

    return state_of


@pytest.fixture
def meet(
    chromium: PlaywrightBrowser, dashboard: Dashboard, signed_in_state: Callable[[str], Any]
) -> Iterator[MeetPerson]:
    """Opens a browser context for a person, signed in as ``username`` (None: signed out)."""
    contexts: list[BrowserContext] = []

    def open_for(username: str | None = None) -> Person:
        context = chromium.new_context(
            viewport={"width": 1360, "height": 900},
            storage_state=None if username is None else signed_in_state(username),
        )
        contexts.append(context)
        return Person(context, dashboard)

    yield open_for
    for context in contexts:
        context.close()
