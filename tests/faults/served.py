"""``watchkeeper serve`` as an operator runs it: the real command from ``.venv/bin``, in a
process of its own, its output kept in a file (a pipe nobody reads would fill and stall it).
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import time
from pathlib import Path

import httpx

from tests.faults.deadlines import READY_DEADLINE

ROOT = Path(__file__).resolve().parents[2]
WATCHKEEPER = ROOT / ".venv" / "bin" / "watchkeeper"
START_DEADLINE_S = 60.0  # migrating a fresh store and spawning the workers, on a busy host
STOP_DEADLINE_S = 30.0
POLL_S = 0.1


def free_port() -> int:
    """A loopback port nothing listens on (bound once to learn a free number, released)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class ServeProcess:
    """One ``watchkeeper serve`` listening on ``port`` of 127.0.0.1."""

    def __init__(
        self, env: dict[str, str], *, port: int, cwd: Path, output: Path, args: tuple[str, ...] = ()
    ) -> None:
        self.port = port
        self.url = f"http://127.0.0.1:{port}"
        self.output_path = output
        self._log = output.open("a")
        self.process = subprocess.Popen(
            [str(WATCHKEEPER), "serve", *args],
            cwd=cwd,
            env={**env, "WATCHKEEPER_HOST": "127.0.0.1", "WATCHKEEPER_PORT": str(port)},
            stdout=self._log,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its workers with it, so a kill reaches every one
        )

    def output(self) -> str:
        return self.output_path.read_text()

    def wait_ready(self) -> None:
        """Returns once ``/readyz`` says 200; fails if the process exits or is not ready in
        ``START_DEADLINE_S``."""
        deadline = time.monotonic() + START_DEADLINE_S
        with httpx.Client(timeout=READY_DEADLINE) as http:
            # Polled: a server announces readiness only by answering.
            while not self._ready(http):
                assert self.process.poll() is None, f"serve exited:\n{self.output()}"
                assert time.monotonic() < deadline, f"serve not ready in time:\n{self.output()}"
                time.sleep(POLL_S)

    def _ready(self, http: httpx.Client) -> bool:
        try:
            return http.get(f"{self.url}/readyz").status_code == 200
        except httpx.TransportError:
            return False

    def kill(self) -> None:
        """SIGKILL to the command and its workers, as the OOM killer or a pulled plug would:
        nothing runs on the way out."""
        with contextlib.suppress(ProcessLookupError):  # all gone already
            os.killpg(self.process.pid, signal.SIGKILL)
        self._reap()

    def stop(self) -> None:
        """SIGTERM (the command stops its workers), then SIGKILL past the deadline; safe to
        call on a process already gone."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        self._reap()

    def _reap(self) -> None:
        try:
            self.process.wait(timeout=STOP_DEADLINE_S)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=STOP_DEADLINE_S)
        self._log.close()
