"""Waiting for a ``watchkeeper serve`` subprocess the way an orchestrator does.

A readiness probe is polled: a server that is still starting, or whose other worker holds
SQLite's write lock through its first sweep on a busy host, answers 503 for a moment, and
an orchestrator routes traffic only after the first 200. Tests wait the same way, within a
deadline, and fail with the server's own output and the last answer they heard.
"""

from __future__ import annotations

import socket
import subprocess
import time
from collections.abc import Callable

import httpx
import pytest

POLL_S = 0.1


def free_port() -> int:
    """A loopback port nothing listens on (bound once to learn a free number, released)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def wait_until_ready(
    url: str,
    process: subprocess.Popen[bytes] | subprocess.Popen[str],
    output: Callable[[], str],
    *,
    deadline_s: float = 60.0,
    answer_s: float = 5.0,
) -> httpx.Response:
    """The first 200 of ``url`` (a ``/readyz``) within ``deadline_s``.

    Fails at once if the process exits, and at the deadline with the last answer heard.
    """
    deadline = time.monotonic() + deadline_s
    last = "no answer"
    with httpx.Client(timeout=answer_s) as http:
        while time.monotonic() < deadline:
            if process.poll() is not None:
                pytest.fail(f"serve exited {process.returncode}:\n{output()}")
            try:
                answer = http.get(url)
            except httpx.TransportError as error:
                last = f"no answer ({type(error).__name__})"
            else:
                if answer.status_code == 200:
                    return answer
                last = f"{answer.status_code} {answer.text}"
            time.sleep(POLL_S)
    pytest.fail(f"{url} not ready within {deadline_s:g} s; last: {last}\n{output()}")
