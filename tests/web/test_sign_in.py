"""Signing in to the pages: the session cookie, what it opens and what it does not, its
end (sign-out, expiry, deactivation), the throttle, and the CSRF check of every form."""

from __future__ import annotations

from datetime import timedelta

import httpx
from fastapi import FastAPI

from app.db.base import utcnow
from app.services.accounts import TokenCache
from app.services.login_throttle import Limit, LoginThrottle
from tests.conftest import Account, bearer
from tests.web.conftest import Browser, OpenBrowser, csrf_of
from tests.web.seed import PASSWORD


class TestSignIn:
    async def test_a_signed_out_visit_goes_to_the_sign_in_form_and_back(
        self, open_browser: OpenBrowser, dana_with_password: Account
    ) -> None:
        browser = await open_browser()

        visit = await browser.get("/issues?status=open")
        form = await browser.get(visit.headers["location"])
        posted = await browser.http.post(
            "/login",
            data={
                "csrf": csrf_of(form.text),
                "username": "dana",
                "password": PASSWORD,
                "next": "/issues?status=open",
            },
        )

        assert visit.status_code == 303
        assert visit.headers["location"] == "/login?next=/issues%3Fstatus%3Dopen"
        assert 'name="username"' in form.text and 'name="password"' in form.text
        assert posted.status_code == 303
        assert posted.headers["location"] == "/issues?status=open"
        assert (await browser.get("/issues?status=open")).status_code == 200

    async def test_the_session_cookie_is_httponly_lax_and_lives_as_long_as_the_token(
        self, open_browser: OpenBrowser, dana_with_password: Account, app: FastAPI
    ) -> None:
        browser = await open_browser()

        posted = await browser.sign_in("dana")

        cookie = next(
            c for c in posted.headers.get_list("set-cookie") if c.startswith("wk_session=")
        )
        ttl = app.state.settings.session_token_ttl_minutes * 60
        assert "HttpOnly" in cookie and "SameSite=lax" in cookie and "Path=/" in cookie
        assert f"Max-Age={ttl}" in cookie
        assert "Secure" not in cookie  # plain HTTP here; over HTTPS it is Secure

    async def test_the_cookie_is_secure_over_https(
        self, app: FastAPI, dana_with_password: Account
    ) -> None:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="https://watchkeeper") as http:
            browser = Browser(http)
            posted = await browser.sign_in("dana")

        cookie = next(
            c for c in posted.headers.get_list("set-cookie") if c.startswith("wk_session=")
        )
        assert "Secure" in cookie

    async def test_a_wrong_password_shows_the_form_again_and_sets_no_session(
        self, open_browser: OpenBrowser, dana_with_password: Account
    ) -> None:
        browser = await open_browser()

        posted = await browser.sign_in("dana", "not the password")

        assert posted.status_code == 401
        assert "Incorrect username or password" in posted.text
        assert "wk_session" not in browser.http.cookies
        assert (await browser.get("/issues")).status_code == 303

    async def test_repeated_failures_are_throttled_like_the_api(
        self, open_browser: OpenBrowser, dana_with_password: Account, app: FastAPI
    ) -> None:
        app.state.login_throttle = LoginThrottle(
            per_username=Limit(2, 60.0), per_address=Limit(100, 60.0)
        )
        browser = await open_browser()
        for _ in range(2):
            assert (await browser.sign_in("dana", "guess")).status_code == 401

        posted = await browser.sign_in("dana", PASSWORD)

        assert posted.status_code == 429
        assert "Too many failed logins" in posted.text
        assert int(posted.headers["retry-after"]) >= 1

    async def test_the_sign_in_form_refuses_a_post_without_its_own_token(
        self, open_browser: OpenBrowser, dana_with_password: Account
    ) -> None:
        browser = await open_browser()
        await browser.get("/login")  # the cookie is set, but the post does not repeat it

        posted = await browser.http.post("/login", data={"username": "dana", "password": PASSWORD})

        assert posted.status_code == 403
        assert "wk_session" not in browser.http.cookies


class TestWhatASessionOpens:
    async def test_the_browser_token_opens_no_api_route(
        self, dana_browser: Browser, client: httpx.AsyncClient
    ) -> None:
        token = dana_browser.http.cookies["wk_session"]

        answer = await client.get("/api/v1/users/me", headers=bearer(token))

        assert answer.status_code == 403
        assert "browser session" in answer.json()["detail"]

    async def test_an_api_token_in_the_cookie_opens_no_page(
        self, open_browser: OpenBrowser, dana: Account
    ) -> None:
        browser = await open_browser()
        browser.http.cookies.set("wk_session", dana.token)

        assert (await browser.get("/issues")).status_code == 303


class TestTheEndOfASession:
    async def test_signing_out_revokes_the_session(self, dana_browser: Browser) -> None:
        cookie = dana_browser.http.cookies["wk_session"]

        out = await dana_browser.post("/logout")
        dana_browser.http.cookies.set("wk_session", cookie)  # a copy kept by someone

        assert out.status_code == 303 and out.headers["location"] == "/login"
        assert (await dana_browser.get("/issues")).status_code == 303

    async def test_an_expired_session_asks_to_sign_in_again(
        self, dana_browser: Browser, app: FastAPI
    ) -> None:
        ttl = timedelta(minutes=app.state.settings.session_token_ttl_minutes)
        app.state.token_cache = TokenCache(now=lambda: utcnow() + ttl + timedelta(seconds=1))

        assert (await dana_browser.get("/issues")).status_code == 303

    async def test_deactivating_the_person_ends_their_session(
        self, dana_browser: Browser, client: httpx.AsyncClient, admin_headers: dict[str, str]
    ) -> None:
        off = await client.patch(
            "/api/v1/users/dana", json={"is_active": False}, headers=admin_headers
        )

        assert off.status_code == 200
        assert (await dana_browser.get("/issues")).status_code == 303

    async def test_an_htmx_refresh_of_an_ended_session_is_told_to_sign_in(
        self, open_browser: OpenBrowser
    ) -> None:
        browser = await open_browser()

        refresh = await browser.http.get("/issues", headers={"HX-Request": "true"})

        assert refresh.status_code == 401
        assert refresh.headers["hx-redirect"].startswith("/login")


class TestCsrf:
    async def test_a_form_post_without_the_session_token_is_refused(
        self, rita_browser: Browser
    ) -> None:
        for path, fields in (
            ("/issues", {"title": "Forged", "issue_type": "bug"}),
            ("/logout", {}),
        ):
            missing = await rita_browser.http.post(path, data=fields)
            wrong = await rita_browser.http.post(path, data={**fields, "csrf": "0" * 64})

            assert missing.status_code == 403 and wrong.status_code == 403, path
        listed = await rita_browser.get("/issues")
        assert "Forged" not in listed.text and listed.status_code == 200

    async def test_the_token_of_another_session_is_refused(
        self, rita_browser: Browser, open_browser: OpenBrowser
    ) -> None:
        other = await open_browser()
        await other.sign_in("rita")

        forged = await rita_browser.post(
            "/issues", title="Forged", issue_type="bug", csrf=other.csrf
        )

        assert other.csrf != rita_browser.csrf
        assert forged.status_code == 403
