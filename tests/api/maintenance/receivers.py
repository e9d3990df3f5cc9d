"""Real local peers for the alert stories: a service to watch that we switch up and down,
a webhook receiver that can fail on purpose, an SMTP server for apprise's mailto; and the
operator's side: running sweeps, delivering notifications, reading alerts and incidents."""

from __future__ import annotations

import asyncio
import json
import socket
from dataclasses import dataclass, field
from typing import Any

import httpx
from aiosmtpd.controller import Controller
from fastapi import FastAPI

from app.services.alerts.dispatcher import Dispatcher
from app.services.alerts.engine import channels_of
from app.services.health.checks.system import SystemTarget
from app.vocabulary.health import ComponentKind
from tests.conftest import ADMIN_TOKEN, bearer

MAINTENANCE = "/api/v1/maintenance"
HEADERS = bearer(ADMIN_TOKEN)


@dataclass
class Received:
    headers: dict[str, str]
    body: bytes

    @property
    def json(self) -> dict[str, Any]:
        return dict(json.loads(self.body))


@dataclass
class LocalPeer:
    """``GET /target`` answers 200 while ``up`` else 503; ``POST /hook`` records the call and
    answers the next status from ``hook_failures`` (then 200)."""

    up: bool = True
    hook_failures: list[int] = field(default_factory=list)
    hooks: list[Received] = field(default_factory=list)
    port: int = 0
    _server: asyncio.Server | None = None

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]

    async def close(self) -> None:
        assert self._server is not None
        self._server.close()
        await self._server.wait_closed()

    def events(self, component: str) -> list[tuple[str, str]]:
        """``(event, component)`` of the webhooks received about ``component``, in order."""
        every = [(hook.json["event"], hook.json["component"]) for hook in self.hooks]
        return [event for event in every if event[1] == component]

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            method, path, _ = (await reader.readline()).decode().split(" ", 2)
            headers: dict[str, str] = {}
            while (line := await reader.readline()) not in (b"\r\n", b""):
                name, _, value = line.decode().partition(":")
                headers[name.strip().lower()] = value.strip()
            body = await reader.readexactly(int(headers.get("content-length", "0")))
            status = 200 if self.up else 503
            if method == "POST" and path == "/hook":
                self.hooks.append(Received(headers, body))
                status = self.hook_failures.pop(0) if self.hook_failures else 200
            writer.write(
                f"HTTP/1.1 {status} X\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok".encode()
            )
            await writer.drain()
        except (ConnectionError, asyncio.IncompleteReadError, ValueError):
            pass
        finally:
            writer.close()


class Mailbox:
    """An SMTP server on loopback keeping every message it is given."""

    def __init__(self) -> None:
        self.messages: list[str] = []
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            self.port: int = probe.getsockname()[1]
        self._controller = Controller(self, hostname="127.0.0.1", port=self.port)

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.messages.append(envelope.content.decode("utf8", "replace"))
        return "250 OK"

    def apprise_url(self) -> str:
        return (
            f"mailto://127.0.0.1:{self.port}?from=watchkeeper@example.com"
            "&to=oncall@example.com&mode=insecure"
        )

    def start(self) -> None:
        self._controller.start()

    def stop(self) -> None:
        self._controller.stop()


def quiet_system() -> SystemTarget:
    """The host check, with limits a busy CI machine never reaches."""
    return SystemTarget(
        kind=ComponentKind.SYSTEM, name="system", degraded_percent=100, unhealthy_percent=100
    )


class Desk:
    """What the test does as an operator: run sweeps, deliver notifications, read alerts."""

    def __init__(self, app: FastAPI, http: httpx.AsyncClient) -> None:
        self.app, self.http = app, http

    async def sweeps(self, count: int) -> None:
        for _ in range(count):
            collected = await self.http.post(f"{MAINTENANCE}/metrics/collect", headers=HEADERS)
            assert collected.status_code == 200, collected.text
            assert collected.json()["stored"], collected.text

    async def deliver(self) -> None:
        settings = self.app.state.settings
        await Dispatcher(self.app.state.store, channels_of(settings)).deliver_due()

    async def alerts(self, **filters: str) -> list[dict[str, Any]]:
        listed = await self.http.get(f"{MAINTENANCE}/alerts", params=filters, headers=HEADERS)
        assert listed.status_code == 200, listed.text
        return list(listed.json()["items"])

    async def incidents(self) -> list[dict[str, Any]]:
        """Incident issues about the watched service (a busy host may file its own)."""
        listed = await self.http.get(
            f"{MAINTENANCE}/issues", params={"issue_type": "incident"}, headers=HEADERS
        )
        return [i for i in listed.json()["items"] if "shop" in i["title"]]
