"""Where notifications go: plain JSON webhooks signed with HMAC-SHA256, and apprise URLs
(Slack, Discord, Teams, Telegram, e-mail and everything else apprise knows).

Channels are named by their masked URL, which is all the store and the API ever show.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import apprise
import httpx

from app.schemas.targets import mask_url

SIGNATURE_HEADER = "X-Watchkeeper-Signature"
TIMESTAMP_HEADER = "X-Watchkeeper-Timestamp"
SEND_TIMEOUT_S = 10.0


class DeliveryError(Exception):
    """A channel refused or could not be reached; the message says why (secrets masked)."""


def sign(secret: str, timestamp: str, body: bytes) -> str:
    """``sha256=<hex>`` over ``timestamp.body``: receivers recompute it to trust a payload."""
    digest = hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256)
    return f"sha256={digest.hexdigest()}"


@dataclass(frozen=True)
class Channel:
    kind: str  # "webhook" or "apprise"
    url: str

    @property
    def name(self) -> str:
        return mask_url(self.url)


class Channels:
    """The configured channels and how to send a payload to each."""

    def __init__(
        self, *, webhooks: Sequence[str], apprise_urls: Sequence[str], secret: str | None
    ) -> None:
        self.secret = secret
        self.by_name = {
            c.name: c
            for c in [
                *(Channel("webhook", url) for url in webhooks),
                *(Channel("apprise", url) for url in apprise_urls),
            ]
        }

    def names(self) -> list[str]:
        return list(self.by_name)

    async def send(self, channel_name: str, payload: dict[str, Any]) -> None:
        """Sends one payload; raises DeliveryError with a masked reason when it fails."""
        channel = self.by_name.get(channel_name)
        if channel is None:
            raise DeliveryError(f"channel {channel_name} is no longer configured")
        if channel.kind == "webhook":
            await self._post(channel, payload)
        else:
            await self._apprise(channel, payload)

    async def _post(self, channel: Channel, payload: dict[str, Any]) -> None:
        body = json.dumps(payload, default=str, sort_keys=True).encode()
        timestamp = str(int(time.time()))
        headers = {"Content-Type": "application/json", TIMESTAMP_HEADER: timestamp}
        if self.secret:
            headers[SIGNATURE_HEADER] = sign(self.secret, timestamp, body)
        try:
            async with httpx.AsyncClient(timeout=SEND_TIMEOUT_S, trust_env=False) as client:
                response = await client.post(channel.url, content=body, headers=headers)
        except httpx.HTTPError as error:
            raise DeliveryError(f"{type(error).__name__} posting to {channel.name}") from None
        if response.status_code >= 300:
            raise DeliveryError(f"{channel.name} answered {response.status_code}")

    async def _apprise(self, channel: Channel, payload: dict[str, Any]) -> None:
        notifier = apprise.Apprise()
        notifier.add(channel.url)
        title, body = _text(payload)
        if not await notifier.async_notify(title=title, body=body):
            raise DeliveryError(f"apprise could not notify {channel.name}")


def _text(payload: dict[str, Any]) -> tuple[str, str]:
    alert = payload.get("alert") or {}
    event = str(payload.get("event", "")).upper()
    title = f"[{event}] {alert.get('message', 'Watchkeeper notification')}"
    figures = ", ".join(f"{k}={v}" for k, v in (alert.get("figures") or {}).items())
    lines = [
        f"Rule: {alert.get('rule')}  Component: {alert.get('component')}",
        f"Severity: {alert.get('severity')}  Since: {alert.get('first_seen')}",
        f"Figures: {figures}" if figures else "",
    ]
    return title, "\n".join(line for line in lines if line)
