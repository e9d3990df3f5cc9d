"""An operator runs ``scripts/monitor_system.py`` from a shell, on a fresh SQLite store, or
its other name, ``watchkeeper monitor``: every story is told of both.

Each test starts the command as its own process with nothing but environment variables to
configure it (no ``watchkeeper.toml`` unless the story brings one), then reads its output,
its exit code and what it left in the store.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import socket
import sqlite3
import subprocess
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "monitor_system.py"
COMMANDS = {"script": [str(SCRIPT)], "cli": ["-m", "app.cli", "monitor"]}
EXIT_CODES = {"healthy": 0, "degraded": 1, "unknown": 1, "unhealthy": 2}
DEADLINE_S = 30.0  # against hanging, never a speed claim


class Operator:
    """Runs the command the way a shell would, against a store file of the test's own."""

    def __init__(self, home: Path, command: list[str]) -> None:
        self.home = home
        self.command = [sys.executable, *command]
        self.database = home / "watchkeeper.db"
        self.env = {k: v for k, v in os.environ.items() if not k.startswith("WATCHKEEPER_")}
        self.env |= {
            "WATCHKEEPER_DATABASE_URL": f"sqlite+aiosqlite:///{self.database}",
            "WATCHKEEPER_CONFIG_FILE": str(home / "absent.toml"),
            "WATCHKEEPER_DATA_DIR": str(home),
            "COLUMNS": "160",
        }

    def run(self, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [*self.command, *args],
            env=self.env | env,
            cwd=self.home,
            capture_output=True,
            text=True,
            timeout=30,
        )

    def start(self, *args: str, **env: str) -> subprocess.Popen[str]:
        return subprocess.Popen(
            [*self.command, *args],
            env=self.env | env,
            cwd=self.home,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )

    def sweeps(self) -> list[tuple[Any, ...]]:
        """``(started_at, status)`` of every stored sweep; none before the store exists."""
        if not self.database.exists():
            return []
        with sqlite3.connect(self.database, timeout=5) as connection:
            try:
                rows = connection.execute(
                    "SELECT started_at, status FROM health_sweeps ORDER BY id"
                ).fetchall()
            except sqlite3.OperationalError:  # not migrated yet
                return []
        return rows


@pytest.fixture(params=COMMANDS)
def operator(tmp_path: Path, request: pytest.FixtureRequest) -> Operator:
    """An operator at a shell, running the script or ``watchkeeper monitor``."""
    return Operator(tmp_path, COMMANDS[request.param])


def closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    return port


class TestOnce:
    def test_once_prints_a_table_with_the_host_and_the_store(self, operator: Operator) -> None:
        done = operator.run("--once")

        overall = re.search(r"Overall: (\w+) in \d+ ms, stored", done.stdout)
        assert overall, done.stdout + done.stderr
        assert done.returncode == EXIT_CODES[overall.group(1)]
        rows = {line.split("│")[1].strip() for line in done.stdout.splitlines() if "│" in line}
        assert {"system", "store"} <= rows
        assert "SELECT 1" in done.stdout
        assert len(operator.sweeps()) == 1

    def test_once_json_prints_the_sweep_as_one_document(self, operator: Operator) -> None:
        done = operator.run("--once", "--json")

        sweep = json.loads(done.stdout)
        assert [c["name"] for c in sweep["components"]] == ["system", "store"]
        assert sweep["components"][1]["status"] == "healthy"
        assert sweep["stored"] is True
        assert isinstance(sweep["sweep_id"], int)
        assert sweep["system"]["process_count"] > 0
        assert done.returncode == EXIT_CODES[sweep["status"]]

    def test_once_names_the_store_it_opened_by_its_absolute_path(self, operator: Operator) -> None:
        done = operator.run("--once")

        assert f"store: SQLite file {operator.database.resolve()}" in done.stdout

    def test_once_with_the_store_down_says_the_sweep_is_lost_not_kept(
        self, operator: Operator
    ) -> None:
        url = f"postgresql+asyncpg://nobody:secret@127.0.0.1:{closed_port()}/x"

        done = operator.run("--once", WATCHKEEPER_DATABASE_URL=url)

        assert "NOT stored (store unreachable; this one-off sweep is lost)" in done.stdout
        assert "kept in memory" not in done.stdout
        assert "secret" not in done.stdout + done.stderr
        assert done.returncode == 2  # the store is a component, and it is down

    def test_an_api_that_is_down_makes_the_sweep_unhealthy_and_exits_2(
        self, operator: Operator
    ) -> None:
        target = {"name": "payments", "kind": "http", "url": f"http://127.0.0.1:{closed_port()}/"}

        done = operator.run("--once", "--json", WATCHKEEPER_TARGETS=json.dumps([target]))

        assert done.returncode == 2
        sweep = json.loads(done.stdout)
        assert sweep["status"] == "unhealthy"
        assert sweep["components"][-1]["name"] == "payments"
        assert sweep["components"][-1]["status"] == "unhealthy"

    def test_a_bad_target_in_the_config_file_stops_with_one_line_naming_it(
        self, operator: Operator
    ) -> None:
        config = operator.home / "watchkeeper.toml"
        config.write_text(
            '[[targets]]\nname = "orders"\nkind = "http"\nurl = "http://orders/"\n'
            'timeout_s = "soon"\n'
        )

        done = operator.run("--once", WATCHKEEPER_CONFIG_FILE=str(config))

        assert done.returncode not in (0, 1, 2)
        (line,) = done.stderr.strip().splitlines()
        assert "target 'orders'" in line
        assert "timeout_s" in line
        assert done.stdout == ""
        assert operator.sweeps() == []


class HeldApi:
    """A local API that answers its first request at once and holds each later one until
    ``release`` is set: the sweep asking it stays in flight for as long as the test says."""

    def __init__(self) -> None:
        self.release = threading.Event()
        self.held = threading.Event()  # a request is being held
        self.requests = 0
        api = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                api.requests += 1
                if api.requests > 1:
                    api.held.set()
                    api.release.wait(timeout=DEADLINE_S)
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *_: Any) -> None:
                pass  # quiet

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}/"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def __enter__(self) -> HeldApi:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self.release.set()
        self._server.shutdown()
        self._server.server_close()


class TestInterval:
    def test_sigterm_finishes_the_sweep_in_flight_and_exits_0(self, operator: Operator) -> None:
        with HeldApi() as api:
            target = {"name": "api", "kind": "http", "url": api.url, "timeout_s": DEADLINE_S}
            process = operator.start("--interval", "1", WATCHKEEPER_TARGETS=json.dumps([target]))
            try:
                # The second sweep is in flight, waiting for the API, when the signal comes.
                assert api.held.wait(timeout=DEADLINE_S), "no second sweep"
                process.send_signal(signal.SIGTERM)
                with contextlib.suppress(subprocess.TimeoutExpired):
                    process.wait(timeout=0.5)
                exited_while_held = process.poll() is not None
                api.release.set()
                stdout, stderr = process.communicate(timeout=DEADLINE_S)
            finally:
                if process.poll() is None:
                    process.kill()
                    process.communicate()

        assert not exited_while_held
        assert process.returncode == 0, stderr
        sweeps = operator.sweeps()
        assert len(sweeps) == api.requests == 2
        assert all(status is not None for _, status in sweeps)  # the held one written in full
        assert "Stopped after 2 sweep(s)." in stdout
        assert stdout.count("Overall:") == 2


class TestUsage:
    @pytest.mark.parametrize("args", [[], ["--once", "--interval", "5"], ["--interval", "0"]])
    def test_it_needs_once_or_a_positive_interval(
        self, operator: Operator, args: list[str]
    ) -> None:
        done = operator.run(*args)

        assert done.returncode == 2
        assert "usage:" in done.stderr.lower()
        assert operator.sweeps() == []
