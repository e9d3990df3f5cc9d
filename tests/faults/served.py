"""``watchkeeper serve`` as an operator runs it: the real command from ``.venv/bin``, in a
process of its own, its output kept in a file (a pipe nobody reads would fill and stall it).
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
from pathlib import Path

from tests.faults.deadlines import READY_DEADLINE
from tests.serving import wait_until_ready

ROOT = Path(__file__).resolve().parents[2]
WATCHKEEPER = ROOT / ".venv" / "bin" / "watchkeeper"
START_DEADLINE_S = 60.0  # migrating a fresh store and spawning the workers, on a busy host
STOP_DEADLINE_S = 30.0


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
        wait_until_ready(
            f"{self.url}/readyz",
            self.process,
            self.output,
            deadline_s=START_DEADLINE_S,
            answer_s=READY_DEADLINE,
        )

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
