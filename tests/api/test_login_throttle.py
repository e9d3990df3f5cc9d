"""Failed-login limits: per username, per client address, bounded, and never on the loop.

The HTTP stories run with small limits (each wrong login costs a real argon2 check) and a
fake clock on the app's throttle, so a window passes without sleeping.
"""

from __future__ import annotations

import asyncio
import statistics
import time
from collections.abc import AsyncIterator

import httpx
import pytest
from fastapi import FastAPI

from app.core.config import Settings
from app.core.errors import NotAuthenticated, TooManyRequests
from app.services.login_throttle import Limit, LoginThrottle
from app.vocabulary.accounts import Role
from tests.conftest import MakeAccount

LOGIN = "/api/v1/auth/token"
PASSWORD = "correct horse"


class FakeClock:
    """Monotonic seconds that move only when a test says so."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture
def settings(settings: Settings) -> Settings:
    """The harness's settings with limits small enough to reach in a few logins."""
    return settings.model_copy(
        update={
            "login_failures_per_username": 3,
            "login_username_window_seconds": 300,
            "login_failures_per_address": 5,
            "login_address_window_seconds": 60,
        }
    )


@pytest.fixture
def clock(app: FastAPI, settings: Settings) -> FakeClock:
    """A fake clock driving the app's login throttle (built from the app's settings)."""
    fake = FakeClock()
    app.state.login_throttle = LoginThrottle.from_settings(settings, clock=fake)
    return fake


@pytest.fixture
async def other_client(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    """A client of the same app from another address."""
    transport = httpx.ASGITransport(app=app, client=("192.0.2.7", 4321))
    async with httpx.AsyncClient(transport=transport, base_url="http://watchkeeper") as http:
        yield http


async def login(client: httpx.AsyncClient, username: str, password: str) -> httpx.Response:
    return await client.post(LOGIN, data={"username": username, "password": password})


def assert_throttled(response: httpx.Response, retry_after: int) -> None:
    assert response.status_code == 429
    assert response.headers["retry-after"] == str(retry_after)
    assert response.json() == {"detail": "Too many failed logins; try again later"}


class TestUsernameLimit:
    async def test_wrong_passwords_get_401_until_the_limit_then_429(
        self, client: httpx.AsyncClient, make_account: MakeAccount, clock: FakeClock
    ) -> None:
        await make_account("dana", Role.USER, password=PASSWORD)

        answers = [(await login(client, "dana", "guess")).status_code for _ in range(3)]
        refused = await login(client, "dana", "guess")

        assert answers == [401, 401, 401]
        assert_throttled(refused, retry_after=300)

    async def test_right_password_while_locked_is_refused_until_the_window_passes(
        self, client: httpx.AsyncClient, make_account: MakeAccount, clock: FakeClock
    ) -> None:
        await make_account("dana", Role.USER, password=PASSWORD)
        for _ in range(3):
            await login(client, "dana", "guess")
            clock.advance(10)

        locked = await login(client, "dana", PASSWORD)
        clock.advance(300 - 30)
        unlocked = await login(client, "dana", PASSWORD)

        # The lock ends when the oldest failure leaves the window, 300 s after it.
        assert_throttled(locked, retry_after=300 - 30)
        assert unlocked.status_code == 200

    async def test_lock_covers_every_spelling_of_the_username(
        self, client: httpx.AsyncClient, make_account: MakeAccount, clock: FakeClock
    ) -> None:
        await make_account("dana", Role.USER, password=PASSWORD)
        for spelling in ("dana", "Dana", "DANA"):
            await login(client, spelling, "guess")

        assert (await login(client, "dAnA", "guess")).status_code == 429

    async def test_success_forgives_that_addresses_failures(
        self, client: httpx.AsyncClient, make_account: MakeAccount, clock: FakeClock
    ) -> None:
        await make_account("dana", Role.USER, password=PASSWORD)
        for _ in range(2):
            await login(client, "dana", "typo")

        assert (await login(client, "dana", PASSWORD)).status_code == 200
        answers = [(await login(client, "dana", "typo")).status_code for _ in range(3)]

        assert answers == [401, 401, 401]

    async def test_concurrent_guesses_cannot_slip_past_the_limit(
        self, client: httpx.AsyncClient, make_account: MakeAccount, clock: FakeClock
    ) -> None:
        await make_account("dana", Role.USER, password=PASSWORD)

        burst = await asyncio.gather(*(login(client, "dana", f"guess {n}") for n in range(10)))

        statuses = sorted(response.status_code for response in burst)
        assert statuses == [401] * 3 + [429] * 7


class TestAddressLimit:
    async def test_many_usernames_from_one_address_hit_the_address_limit(
        self,
        client: httpx.AsyncClient,
        other_client: httpx.AsyncClient,
        make_account: MakeAccount,
        clock: FakeClock,
    ) -> None:
        await make_account("dana", Role.USER, password=PASSWORD)
        answers = [(await login(client, f"user{n}", "guess")).status_code for n in range(5)]

        refused = await login(client, "dana", PASSWORD)
        elsewhere = await login(other_client, "dana", PASSWORD)

        assert answers == [401] * 5
        assert_throttled(refused, retry_after=60)
        assert elsewhere.status_code == 200

    async def test_address_limit_is_not_reset_by_a_good_login(
        self, client: httpx.AsyncClient, make_account: MakeAccount, clock: FakeClock
    ) -> None:
        await make_account("dana", Role.USER, password=PASSWORD)
        for n in range(4):
            await login(client, f"user{n}", "guess")

        assert (await login(client, "dana", PASSWORD)).status_code == 200
        assert (await login(client, "user9", "guess")).status_code == 401
        assert (await login(client, "user10", "guess")).status_code == 429


class TestEventLoopStaysResponsive:
    async def test_healthz_stays_fast_during_50_concurrent_wrong_logins(
        self, app: FastAPI, client: httpx.AsyncClient
    ) -> None:
        # Limits out of the way: every one of the 50 logins really checks a password.
        app.state.login_throttle = LoginThrottle(
            per_username=Limit(1000, 60), per_address=Limit(1000, 60)
        )
        logins = asyncio.gather(*(login(client, f"user{n}", "guess") for n in range(50)))
        timings: list[float] = []
        while not logins.done():
            # Timed from when the probe is due, as a real client's request would be: an
            # in-process request never waits for the loop, the wake-up does.
            due = time.perf_counter() + 0.02
            await asyncio.sleep(0.02)
            alive = await client.get("/healthz")
            timings.append(time.perf_counter() - due)
            assert alive.status_code == 200

        answers = await logins
        p95_ms = statistics.quantiles(timings, n=20)[-1] * 1000
        print(f"\n/healthz during 50 wrong logins: {len(timings)} calls, p95 {p95_ms:.1f} ms")
        assert [answer.status_code for answer in answers] == [401] * 50
        assert len(timings) >= 20
        assert p95_ms < 50


class TestLoginThrottle:
    """The limiter alone, with a fake clock."""

    @staticmethod
    def throttle(clock: FakeClock, *, max_keys: int = 100) -> LoginThrottle:
        return LoginThrottle(
            per_username=Limit(2, 300), per_address=Limit(4, 60), max_keys=max_keys, clock=clock
        )

    @staticmethod
    def fail(throttle: LoginThrottle, username: str, address: str | None) -> None:
        with pytest.raises(NotAuthenticated), throttle.attempt(username, address):
            raise NotAuthenticated()

    def test_sliding_window_frees_a_slot_when_the_oldest_failure_leaves(self) -> None:
        clock = FakeClock()
        throttle = self.throttle(clock)
        self.fail(throttle, "dana", "10.0.0.1")
        clock.advance(100)
        self.fail(throttle, "dana", "10.0.0.1")

        assert throttle.retry_after("dana", "10.0.0.1") == 200
        clock.advance(200)
        assert throttle.retry_after("dana", "10.0.0.1") == 0

    def test_refusal_carries_whole_seconds_and_is_not_counted(self) -> None:
        clock = FakeClock()
        throttle = self.throttle(clock)
        for _ in range(2):
            self.fail(throttle, "dana", "10.0.0.1")
        clock.advance(0.5)

        for _ in range(5):
            with pytest.raises(TooManyRequests) as refused, throttle.attempt("dana", "10.0.0.1"):
                pytest.fail("a locked username must not reach the password check")
            assert refused.value.retry_after == 300

        # Refused attempts added nothing: the lock still ends with the window.
        clock.advance(299.5)
        assert throttle.retry_after("dana", "10.0.0.1") == 0

    def test_success_forgives_only_failures_from_its_own_address(self) -> None:
        clock = FakeClock()
        throttle = self.throttle(clock)
        self.fail(throttle, "dana", "10.0.0.1")
        with throttle.attempt("dana", "10.0.0.1"):
            pass
        self.fail(throttle, "dana", "10.0.0.2")
        with throttle.attempt("dana", "10.0.0.1"):
            pass

        # The first failure was forgiven, the one from 10.0.0.2 still counts.
        self.fail(throttle, "dana", "10.0.0.3")
        assert throttle.retry_after("dana", "10.0.0.3") == 300

    def test_attempts_in_flight_count_against_the_limit(self) -> None:
        throttle = self.throttle(FakeClock())

        with throttle.attempt("dana", "10.0.0.1"), throttle.attempt("dana", "10.0.0.2"):
            assert throttle.retry_after("dana", "10.0.0.3") > 0
        assert throttle.retry_after("dana", "10.0.0.3") == 0

    def test_other_errors_count_for_nothing(self) -> None:
        throttle = self.throttle(FakeClock())

        for _ in range(3):
            with pytest.raises(OSError), throttle.attempt("dana", "10.0.0.1"):
                raise OSError("the store went away")

        assert throttle.retry_after("dana", "10.0.0.1") == 0

    def test_unknown_addresses_share_one_limit(self) -> None:
        throttle = self.throttle(FakeClock())
        for n in range(4):
            self.fail(throttle, f"user{n}", None)

        assert throttle.retry_after("someone", None) == 60
        assert throttle.retry_after("someone", "10.0.0.1") == 0

    def test_memory_stays_bounded_under_a_flood_of_names_and_addresses(self) -> None:
        clock = FakeClock()
        throttle = self.throttle(clock, max_keys=50)
        self.fail(throttle, "x" * 1_000_000, "10.0.0.1")

        for n in range(5000):
            self.fail(throttle, f"user{n}", f"10.{n // 256 % 256}.{n % 256}.{n // 65536}")

        assert throttle.tracked_keys <= 100
        # The oldest were forgotten to make room; the newest still count.
        assert throttle.retry_after("x" * 1_000_000, "192.0.2.1") == 0
        self.fail(throttle, "user4999", "192.0.2.1")
        assert throttle.retry_after("user4999", "192.0.2.1") == 300

    def test_huge_usernames_are_keyed_by_their_first_64_characters(self) -> None:
        throttle = self.throttle(FakeClock())
        self.fail(throttle, "a" * 64 + "1" * 1_000_000, "10.0.0.1")
        self.fail(throttle, "A" * 64 + "2", "10.0.0.2")

        assert throttle.retry_after("a" * 64, "10.0.0.3") == 300

    def test_expired_failures_free_their_memory(self) -> None:
        clock = FakeClock()
        throttle = self.throttle(clock)
        self.fail(throttle, "dana", "10.0.0.1")
        clock.advance(300)

        assert throttle.retry_after("dana", "10.0.0.1") == 0
        assert throttle.tracked_keys == 0
