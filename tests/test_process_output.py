"""What ``watchkeeper serve`` writes, read as an operator or a log shipper reads it: with
``log_format=json`` every line is one JSON object (uvicorn's own lines included), and the
start says where it listens and which store it opened."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.serving import free_port, wait_until_ready

ROOT = Path(__file__).resolve().parents[1]
TOKEN = "wk_process-output-admin-token-0123456789abcdef"


class Server:
    """``watchkeeper serve`` in a subprocess, from a working directory of its own."""

    def __init__(self, workdir: Path, **settings: str) -> None:
        self.port = free_port()
        env = {
            **os.environ,
            "WATCHKEEPER_CONFIG_FILE": str(workdir / "absent.toml"),
            "WATCHKEEPER_MONITOR_IN_PROCESS": "false",
            "WATCHKEEPER_DATA_DIR": "var",
            **{f"WATCHKEEPER_{k.upper()}": v for k, v in settings.items()},
        }
        env.pop("WATCHKEEPER_DATABASE_URL", None)
        self.process = subprocess.Popen(
            [sys.executable, "-m", "app.cli", "serve", "--port", str(self.port)],
            cwd=workdir,
            env={**env, "PYTHONPATH": str(ROOT)},
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        self.url = f"http://127.0.0.1:{self.port}"

    def wait_ready(self) -> None:
        wait_until_ready(f"{self.url}/readyz", self.process, self._exited_output)

    def _exited_output(self) -> str:
        if self.process.poll() is None:
            return "(still running; its output is read when it stops)"
        out, err = self.process.communicate()
        return f"{out}{err}"

    def stop(self) -> tuple[str, str]:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        try:
            out, err = self.process.communicate(timeout=30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            out, err = self.process.communicate(timeout=10)
        return out, err


@pytest.fixture
def json_server(tmp_path: Path) -> Iterator[Server]:
    server = Server(tmp_path, log_format="json", admin_token=TOKEN)
    try:
        server.wait_ready()
        yield server
    finally:
        server.stop()


class TestJsonLogs:
    def test_every_line_the_process_writes_is_one_json_object(
        self, json_server: Server, tmp_path: Path
    ) -> None:
        httpx.get(f"{json_server.url}/healthz", timeout=5)
        httpx.get(f"{json_server.url}/no/such/page", timeout=5)
        httpx.get(f"{json_server.url}/api/v1/users/me", timeout=5)
        # A header line httptools refuses: uvicorn answers it and logs a warning of its own.
        with socket.create_connection(("127.0.0.1", json_server.port), timeout=5) as raw:
            raw.sendall(b"GET / HTTP/1.1\r\nHost: x\r\nBad Header\r\n\r\n")
            raw.recv(1024)

        out, err = json_server.stop()

        lines = [line for line in (out + err).splitlines() if line.strip()]
        assert lines
        parsed = [json.loads(line) for line in lines]  # raises on any plain-text line
        messages = " ".join(str(entry.get("message", "")) for entry in parsed)
        assert "Uvicorn running on" in messages or "Application startup complete" in messages
        assert any(entry.get("route") == "/healthz" for entry in parsed)
        assert any(entry.get("event") == "admin_created" for entry in parsed)

    def test_the_start_names_the_address_and_the_absolute_store(
        self, json_server: Server, tmp_path: Path
    ) -> None:
        _, err = json_server.stop()

        [serving] = [
            json.loads(line)["message"] for line in err.splitlines() if "serving on" in line
        ]
        assert f"http://127.0.0.1:{json_server.port}" in serving
        assert str((tmp_path / "var" / "watchkeeper.db").resolve()) in serving


class TestTextStart:
    def test_the_first_admin_hint_uses_the_real_port(self, tmp_path: Path) -> None:
        server = Server(tmp_path)
        try:
            server.wait_ready()
        finally:
            out, _ = server.stop()

        assert f"http://127.0.0.1:{server.port}/api/v1/users/me" in out
        assert "wk_" in out  # the generated token, shown this once
