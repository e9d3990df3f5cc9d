"""The middleware benchmark's paired worker: each variant answers under its own prefix, and
its requests and CPU time are counted apart from the other's."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path
from typing import Any

import httpx

# The benchmarks import their helpers as siblings, as a script run from bench/ would.
sys.path.append(str(Path(__file__).resolve().parent.parent / "bench"))

from paired_timing import TIMINGS_PATH, Message, PairedApps, Receive, Scope, Send


def answering(name: str, work: int) -> Any:
    """An ASGI app answering its own name after ``work`` rounds of arithmetic."""

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        sum(range(work))
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": f"{name} {scope['path']}".encode()})

    return app


async def test_each_variant_answers_under_its_prefix_and_is_counted_apart() -> None:
    paired = PairedApps({"none": answering("none", 10), "ours": answering("ours", 200_000)})
    transport = httpx.ASGITransport(app=paired)
    async with httpx.AsyncClient(transport=transport, base_url="http://bench") as client:
        assert (await client.get("/none/resource1/items/7")).text == "none /none/resource1/items/7"
        assert (await client.get("/ours/resource1/items/7")).text == "ours /ours/resource1/items/7"
        await client.get("/ours/resource2/items/14")
        timings = (await client.get(TIMINGS_PATH)).json()

    assert {name: figures["requests"] for name, figures in timings.items()} == {
        "none": 1,
        "ours": 2,
    }
    # Two calls summing 200,000 numbers take more CPU than one summing ten, on any machine.
    assert timings["ours"]["cpu_ns"] > timings["none"]["cpu_ns"] >= 0


async def test_it_answers_the_servers_lifespan_itself() -> None:
    paired = PairedApps({"none": answering("none", 0)})
    inbox: asyncio.Queue[Message] = asyncio.Queue()
    sent: list[str] = []
    for message_type in ("lifespan.startup", "lifespan.shutdown"):
        inbox.put_nowait({"type": message_type})

    async def send(message: Message) -> None:
        sent.append(message["type"])

    await asyncio.wait_for(paired({"type": "lifespan"}, inbox.get, send), timeout=10)

    assert sent == ["lifespan.startup.complete", "lifespan.shutdown.complete"]
