"""Alerts, end to end: a watched service goes down and comes back; the webhook receiver, the
mailbox and the issue desk show what an on-call person would see."""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import AsyncIterator, Iterator
from datetime import timedelta
from typing import Any, NamedTuple

import httpx
import pytest
from fastapi import FastAPI
from pydantic import SecretStr

from app.core.config import Settings
from app.db.base import utcnow
from app.main import create_app
from app.schemas.alerts import AlertRules
from app.services.alerts.dispatcher import Dispatcher
from app.services.alerts.engine import channels_of
from app.services.health.checks.http import HttpTarget
from app.services.health.checks.system import CpuMeter
from app.vocabulary.health import ComponentKind
from tests.api.maintenance.receivers import (
    HEADERS,
    MAINTENANCE,
    Desk,
    LocalPeer,
    Mailbox,
    quiet_system,
)

SECRET = "webhook-signing-secret"
# The health rules alone: the error-budget rules (tested on their own) would page too.
HEALTH_RULES_ONLY = AlertRules(
    cpu_percent=100, memory_percent=100, disk_percent=100, burn_windows=()
)


@pytest.fixture
def mailbox() -> Iterator[Mailbox]:
    box = Mailbox()
    box.start()
    yield box
    box.stop()


def watched(peer: LocalPeer, name: str = "shop", path: str = "/target") -> HttpTarget:
    return HttpTarget(kind=ComponentKind.HTTP, name=name, url=peer.url(path), timeout_s=2)


@pytest.fixture
def alert_settings(settings: Settings, peer: LocalPeer, mailbox: Mailbox) -> Settings:
    return settings.model_copy(
        update={
            "targets": [quiet_system(), watched(peer)],
            "alert_webhooks": [peer.url("/hook")],
            "alert_webhook_secret": SecretStr(SECRET),
            "alert_apprise_urls": [mailbox.apprise_url()],
            "alert_rules": HEALTH_RULES_ONLY,
        }
    )


@pytest.fixture
async def alerting(alert_settings: Settings) -> AsyncIterator[tuple[FastAPI, httpx.AsyncClient]]:
    application = create_app(alert_settings)
    async with application.router.lifespan_context(application):
        transport = httpx.ASGITransport(app=application)
        async with httpx.AsyncClient(transport=transport, base_url="http://wk") as http:
            yield application, http


@pytest.fixture
def desk(alerting: tuple[FastAPI, httpx.AsyncClient]) -> Desk:
    return Desk(*alerting)


class TestRaisingAndClearing:
    async def test_two_failures_raise_nothing_the_third_raises_one_alert(
        self, desk: Desk, peer: LocalPeer
    ) -> None:
        peer.up = False
        await desk.sweeps(2)
        await desk.deliver()
        assert await desk.alerts(rule="component_down", component="shop") == []

        await desk.sweeps(3)
        await desk.deliver()

        [alert] = await desk.alerts(rule="component_down", component="shop")
        assert alert["component"] == "shop"
        assert alert["state"] == "firing"
        assert alert["count"] == 3
        assert alert["figures"]["consecutive_failures"] == 3
        assert peer.events("shop") == [("firing", "shop")]

    async def test_webhook_carries_a_valid_hmac_signature(
        self, desk: Desk, peer: LocalPeer
    ) -> None:
        peer.up = False
        await desk.sweeps(3)
        await desk.deliver()

        [hook] = [h for h in peer.hooks if h.json["component"] == "shop"]
        expected = hmac.new(
            SECRET.encode(),
            hook.headers["x-watchkeeper-timestamp"].encode() + b"." + hook.body,
            hashlib.sha256,
        ).hexdigest()
        assert hook.headers["x-watchkeeper-signature"] == f"sha256={expected}"
        assert hook.json["alert"]["rule"] == "component_down"

    async def test_recovery_is_sent_once_after_two_healthy_sweeps(
        self, desk: Desk, peer: LocalPeer
    ) -> None:
        peer.up = False
        await desk.sweeps(3)
        peer.up = True
        await desk.sweeps(1)
        assert (await desk.alerts(rule="component_down", component="shop"))[0]["state"] == "firing"

        await desk.sweeps(3)
        await desk.deliver()

        [alert] = await desk.alerts(rule="component_down", component="shop")
        assert alert["state"] == "resolved"
        assert peer.events("shop") == [("firing", "shop"), ("resolved", "shop")]

    async def test_flapping_target_raises_one_alert_and_one_incident_not_a_storm(
        self, desk: Desk, peer: LocalPeer
    ) -> None:
        for up in [False, False, False, True, False, True, False, True, False, True, False]:
            peer.up = up
            await desk.sweeps(1)
        await desk.deliver()

        assert len(await desk.alerts(rule="component_down", component="shop")) == 1
        [flapping] = await desk.alerts(rule="flapping", component="shop")
        assert flapping["figures"]["flips"] >= 4
        assert len(await desk.incidents()) == 1
        assert peer.events("shop").count(("firing", "shop")) == 2  # down, then flapping


class TestChannels:
    async def test_receiver_that_fails_first_gets_it_on_a_retry(
        self, desk: Desk, peer: LocalPeer
    ) -> None:
        peer.hook_failures = [500, 502]
        peer.up = False
        await desk.sweeps(3)
        offset = [timedelta(0)]
        dispatcher = Dispatcher(
            desk.app.state.store,
            channels_of(desk.app.state.settings),
            clock=lambda: utcnow() + offset[0],
        )

        for seconds in (0, 10, 30):  # each round after the previous one's backoff
            offset[0] = timedelta(seconds=seconds)
            await dispatcher.deliver_due()

        [alert] = await desk.alerts(rule="component_down", component="shop")
        detail = (
            await desk.http.get(f"{MAINTENANCE}/alerts/{alert['id']}", headers=HEADERS)
        ).json()
        webhook = next(d for d in detail["deliveries"] if d["channel"].startswith("http"))
        assert webhook["state"] == "delivered"
        assert webhook["attempts"] == 3
        assert len([h for h in peer.hooks if h.json["component"] == "shop"]) == 3

    async def test_mail_goes_out_through_apprise(
        self, desk: Desk, peer: LocalPeer, mailbox: Mailbox
    ) -> None:
        peer.up = False
        await desk.sweeps(3)
        await desk.deliver()

        [mail] = [m for m in mailbox.messages if "shop" in m]
        assert "shop is down" in mail
        assert "To: oncall@example.com" in mail

    async def test_channels_are_listed_masked_and_testable(
        self, desk: Desk, peer: LocalPeer
    ) -> None:
        channels = (await desk.http.get(f"{MAINTENANCE}/alerts/channels", headers=HEADERS)).json()
        webhook = next(c["name"] for c in channels if c["kind"] == "webhook")

        sent = await desk.http.post(
            f"{MAINTENANCE}/alerts/test", json={"channel": webhook}, headers=HEADERS
        )
        unknown = await desk.http.post(
            f"{MAINTENANCE}/alerts/test", json={"channel": "nope"}, headers=HEADERS
        )

        assert {c["kind"] for c in channels} == {"webhook", "apprise"}
        assert sent.json()["state"] == "delivered"
        assert peer.events("watchkeeper") == [("test", "watchkeeper")]
        assert unknown.status_code == 404


class PeggedCpu:
    """``cpu_times()`` of a host whose every CPU second is busy: the load under which a
    momentary sample once read "system is down" and cost this story its 100% uptime."""

    def __init__(self) -> None:
        self.busy_s = 0.0

    def __call__(self) -> Any:
        self.busy_s += 60.0
        return CpuTimes(user=self.busy_s, idle=0.0)


class CpuTimes(NamedTuple):
    user: float
    idle: float


def peg_the_cpu(app: FastAPI) -> None:
    """The host check of ``app``'s monitor reads a fully busy CPU from now on."""
    app.state.monitor.context.shared(("system", "cpu"), lambda: CpuMeter(times=PeggedCpu()))


class TestMaintenanceWindows:
    async def test_alerts_in_a_window_are_recorded_but_not_sent(
        self, desk: Desk, peer: LocalPeer
    ) -> None:
        peg_the_cpu(desk.app)  # the host check stays in, on a host as busy as it gets
        opened = await desk.http.post(
            f"{MAINTENANCE}/maintenance-windows",
            json={
                "name": "deploy 42",
                "starts_at": "2020-01-01T00:00:00Z",
                "ends_at": "2099-01-01T00:00:00Z",
                "components": ["shop"],
            },
            headers=HEADERS,
        )
        assert opened.status_code == 201
        assert opened.json()["active"] is True

        peer.up = False
        await desk.sweeps(3)
        await desk.deliver()

        [alert] = await desk.alerts(rule="component_down", component="shop")
        assert alert["suppressed"] is True
        assert peer.events("shop") == []
        health = await desk.http.get(f"{MAINTENANCE}/health?hours=1", headers=HEADERS)
        trend = health.json()["trend"]
        shop = next(c for c in trend["components"] if c["name"] == "shop")
        assert shop["unhealthy_s"] == 0
        assert shop["maintenance_s"] > 0
        host = next(c for c in trend["components"] if c["name"] == "system")
        assert host["degraded_s"] > 0 and host["unhealthy_s"] == 0  # busy, not down
        assert trend["uptime_percent"] == 100  # the planned outage is not downtime

        ended = await desk.http.post(
            f"{MAINTENANCE}/maintenance-windows/{opened.json()['id']}/end", headers=HEADERS
        )
        await desk.sweeps(1)
        await desk.deliver()
        assert ended.json()["active"] is False
        assert peer.events("shop") == [("firing", "shop")]  # still down once the window ends

    async def test_a_window_naming_a_rule_holds_back_that_rule_only(
        self, desk: Desk, peer: LocalPeer
    ) -> None:
        opened = await desk.http.post(
            f"{MAINTENANCE}/maintenance-windows",
            json={
                "name": "flaky network",
                "starts_at": "2020-01-01T00:00:00Z",
                "ends_at": "2099-01-01T00:00:00Z",
                "rules": ["flapping"],
            },
            headers=HEADERS,
        )
        assert opened.status_code == 201
        assert opened.json()["rules"] == ["flapping"]

        peer.up = False
        await desk.sweeps(3)
        await desk.deliver()

        [alert] = await desk.alerts(rule="component_down", component="shop")
        assert alert["suppressed"] is False
        assert peer.events("shop") == [("firing", "shop")]
        listed = await desk.http.get(f"{MAINTENANCE}/maintenance-windows", headers=HEADERS)
        assert [w["rules"] for w in listed.json()] == [["flapping"]]

    async def test_an_unknown_rule_is_refused_naming_the_known_ones(self, desk: Desk) -> None:
        window = await desk.http.post(
            f"{MAINTENANCE}/maintenance-windows",
            json={
                "name": "x",
                "starts_at": "2030-01-01T00:00:00Z",
                "ends_at": "2030-01-02T00:00:00Z",
                "rules": ["component_dwn"],
            },
            headers=HEADERS,
        )
        listed = await desk.http.get(
            f"{MAINTENANCE}/alerts", params={"rule": "component_dwn"}, headers=HEADERS
        )

        for refused in (window, listed):
            assert refused.status_code == 422
            assert "component_down" in refused.text
            assert "error_budget_burn" in refused.text

    @pytest.mark.parametrize(
        "body",
        [
            {"name": "x"},
            {"name": "x", "starts_at": "2030-01-01T00:00:00Z"},
            {"name": "x", "starts_at": "2030-01-02T00:00:00Z", "ends_at": "2030-01-01T00:00:00Z"},
            {"name": "x", "recurrence": {"weekdays": [7], "start": "02:00", "duration_minutes": 5}},
            {
                "name": "x",
                "recurrence": {"weekdays": [1], "start": "02:00", "duration_minutes": 5},
                "starts_at": "2030-01-01T00:00:00Z",
                "ends_at": "2030-01-02T00:00:00Z",
            },
        ],
    )
    async def test_bad_windows_are_refused(self, desk: Desk, body: dict[str, Any]) -> None:
        response = await desk.http.post(
            f"{MAINTENANCE}/maintenance-windows", json=body, headers=HEADERS
        )

        assert response.status_code == 422


class TestOwnNetwork:
    async def test_all_http_targets_failing_raise_one_alert_about_ourselves(
        self, settings: Settings, peer: LocalPeer
    ) -> None:
        closed = "http://127.0.0.1:9/down"
        targets = [quiet_system()] + [
            HttpTarget(kind=ComponentKind.HTTP, name=f"api-{i}", url=closed, timeout_s=1)
            for i in range(3)
        ]
        app = create_app(
            settings.model_copy(update={"targets": targets, "alert_rules": HEALTH_RULES_ONLY})
        )
        async with app.router.lifespan_context(app):
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="http://wk") as http:
                desk = Desk(app, http)
                await desk.sweeps(4)

                firing = await desk.alerts(state="firing")

        about_apis = [(a["rule"], a["component"]) for a in firing if a["component"] != "system"]
        assert about_apis == [("own_network", "watchkeeper")]
        own = next(a for a in firing if a["rule"] == "own_network")
        assert "network" in own["message"]


class TestIncidentLoop:
    async def test_incident_opens_once_and_gets_its_recovery_comment(
        self, desk: Desk, peer: LocalPeer
    ) -> None:
        peer.up = False
        await desk.sweeps(6)
        [incident] = await desk.incidents()
        assert incident["priority"] == "critical"
        assert incident["reporter"]["username"] == "watchkeeper"
        assert incident["title"] == "Incident: shop is down"

        peer.up = True
        await desk.sweeps(2)

        detail = (
            await desk.http.get(f"{MAINTENANCE}/issues/{incident['id']}", headers=HEADERS)
        ).json()
        assert len(await desk.incidents()) == 1
        assert "recovered" in detail["labels"]
        [comment] = detail["comments"]
        assert comment["body"].startswith("Recovered: shop was down for ")
        links = [e for e in detail["history"] if e["field"] == "alert"]
        assert len(links) == 1
        assert links[0]["note"] == "component_down:shop"

    async def test_restart_neither_resends_nor_forgets_a_firing_alert(
        self, desk: Desk, peer: LocalPeer, alert_settings: Settings
    ) -> None:
        peer.up = False
        await desk.sweeps(3)
        await desk.deliver()

        again = create_app(alert_settings)
        async with again.router.lifespan_context(again):
            transport = httpx.ASGITransport(app=again)
            async with httpx.AsyncClient(transport=transport, base_url="http://wk") as http:
                restarted = Desk(again, http)
                await restarted.sweeps(2)
                await restarted.deliver()
                alerts = await restarted.alerts(rule="component_down")

        assert len(alerts) == 1
        assert alerts[0]["count"] == 3  # raised on the 3rd failing sweep, seen on 2 more
        assert peer.events("shop") == [("firing", "shop")]
        assert len(await desk.incidents()) == 1


class TestConfiguration:
    @pytest.mark.parametrize(
        ("update", "named"),
        [
            ({"alert_apprise_urls": ["nonsense://x"]}, "nonsense://x"),
            ({"alert_webhooks": ["ftp://hooks.example/x"]}, "ftp://hooks.example/x"),
            ({"alert_webhooks": ["https://hooks.example/x"]}, "alert_webhook_secret"),
        ],
    )
    def test_a_bad_channel_stops_start_up_naming_it(
        self, update: dict[str, Any], named: str
    ) -> None:
        with pytest.raises(ValueError, match=named.replace("/", ".")):
            Settings(**update)
