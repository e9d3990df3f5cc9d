"""The contract check: Schemathesis against a real Watchkeeper, on each store we support.

    python scripts/contract_check.py                     # SQLite, and PostgreSQL if configured
    python scripts/contract_check.py --backend sqlite
    python scripts/contract_check.py -- --include-path-regex tokens   # extra schemathesis args

For each store the script starts ``watchkeeper serve`` on a free port with a fresh store (a
SQLite file in a temporary directory; a PostgreSQL database created next to
``WATCHKEEPER_TEST_POSTGRES_URL`` and dropped afterwards), waits for ``/readyz``, runs
``schemathesis run`` over ``/openapi.json`` as the admin, with a fixed seed and a bounded
number of examples, and always stops the server. The exit code is 0 only when every store
passed: no 5xx, every status code and every response body as the document declares.

The run must not lock its own admin out, or everything after that would only see 401s:
the operations that could (revoking a token, changing a user) get a bystander's id pinned.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import secrets
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx
from sqlalchemy import text
from sqlalchemy.engine import URL, make_url
from sqlalchemy.ext.asyncio import create_async_engine

BIN = Path(sys.executable).parent
CHECKS = "not_a_server_error,status_code_conformance,response_schema_conformance"
SEED = 20240601
MAX_EXAMPLES = 25
RUN_TIMEOUT_SECONDS = 420
READY_TIMEOUT_SECONDS = 60
POSTGRES_VARIABLE = "WATCHKEEPER_TEST_POSTGRES_URL"
BYSTANDER = "contract-bystander"
NOT_STARTED = 2
LOCKED_OUT = 3
TIMED_OUT = 124


class ServerDidNotStart(RuntimeError):
    """``watchkeeper serve`` exited or never became ready; the message has its log."""


@dataclass(frozen=True)
class Server:
    """A running Watchkeeper: where it listens and how to act as its admin."""

    base_url: str
    token: str

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}


def free_port() -> int:
    """A TCP port nobody listens on right now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def server_environment(database_url: str, token: str, workdir: Path) -> dict[str, str]:
    """The parent's environment without its Watchkeeper settings, plus this run's."""
    environment = {k: v for k, v in os.environ.items() if not k.startswith("WATCHKEEPER_")}
    environment.update(
        WATCHKEEPER_DATABASE_URL=database_url,
        WATCHKEEPER_ADMIN_TOKEN=token,
        WATCHKEEPER_DATA_DIR=str(workdir),
        WATCHKEEPER_CONFIG_FILE=str(workdir / "absent.toml"),
        WATCHKEEPER_MONITOR_IN_PROCESS="false",
        WATCHKEEPER_ALERT_DISPATCH_IN_PROCESS="false",
    )
    return environment


def log_tail(log: Path, lines: int = 40, *, quiet: bool = False) -> str:
    """The server log's last lines (``quiet``: without the INFO lines of the access log)."""
    kept = log.read_text(errors="replace").splitlines()
    if quiet:
        kept = [line for line in kept if " INFO " not in line]
    return "\n".join(kept[-lines:])


@contextmanager
def running_server(database_url: str, workdir: Path) -> Iterator[Server]:
    """Starts ``watchkeeper serve``, waits until it is ready, and stops it on the way out."""
    token = "wk_contract-" + secrets.token_hex(24)
    port = free_port()
    log = workdir / "server.log"
    with log.open("wb") as output:
        process = subprocess.Popen(
            [str(BIN / "watchkeeper"), "serve", "--host", "127.0.0.1", "--port", str(port)],
            env=server_environment(database_url, token, workdir),
            stdout=output,
            stderr=subprocess.STDOUT,
        )
    server = Server(f"http://127.0.0.1:{port}", token)
    try:
        wait_until_ready(server, process, log)
        yield server
    finally:
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def wait_until_ready(server: Server, process: subprocess.Popen[bytes], log: Path) -> None:
    """Returns once ``/readyz`` says 200; raises with the server's log when it never does."""
    deadline = time.monotonic() + READY_TIMEOUT_SECONDS
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise ServerDidNotStart(
                f"the server exited with {process.returncode}:\n{log_tail(log)}"
            )
        try:
            if httpx.get(f"{server.base_url}/readyz", timeout=2).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.2)
    raise ServerDidNotStart(
        f"the server was not ready in {READY_TIMEOUT_SECONDS}s:\n{log_tail(log)}"
    )


def pin_bystander(server: Server, workdir: Path) -> Path:
    """A config that points the account-changing operations at a user nobody relies on."""
    with httpx.Client(base_url=server.base_url, headers=server.headers, timeout=10) as http:
        http.post("/api/v1/users", json={"username": BYSTANDER}).raise_for_status()
        issued = http.post(f"/api/v1/users/{BYSTANDER}/tokens", json={"name": "contract"})
        issued.raise_for_status()
    config = workdir / "schemathesis.toml"
    config.write_text(
        f"""\
[[operations]]
include-name = "DELETE /api/v1/tokens/{{token_id}}"
parameters = {{ "path.token_id" = {issued.json()["id"]} }}

[[operations]]
include-path-regex = "^/api/v1/users/\\\\{{username\\\\}}$"
parameters = {{ "path.username" = "{BYSTANDER}" }}
"""
    )
    return config


def run_schemathesis(server: Server, config: Path, extra: list[str]) -> int:
    """``schemathesis run`` over the server's document; its exit code (124: out of time)."""
    command = [
        str(BIN / "schemathesis"),
        "--config-file",
        str(config),
        "run",
        f"{server.base_url}/openapi.json",
        "--checks",
        CHECKS,
        "--header",
        f"Authorization: Bearer {server.token}",
        "--seed",
        str(SEED),
        "--max-examples",
        str(MAX_EXAMPLES),
        "--generation-database",
        "none",
        "--workers",
        "1",
        "--request-timeout",
        "15",
        *([] if sys.stdout.isatty() else ["--no-color"]),
        *extra,
    ]
    try:
        return subprocess.run(command, timeout=RUN_TIMEOUT_SECONDS, check=False).returncode
    except subprocess.TimeoutExpired:
        print(f"schemathesis did not finish in {RUN_TIMEOUT_SECONDS}s", file=sys.stderr)
        return TIMED_OUT


def still_admin(server: Server) -> bool:
    """Whether the admin token survived the run (if not, later answers were only 401s)."""
    answer = httpx.get(f"{server.base_url}/api/v1/users/me", headers=server.headers, timeout=10)
    return answer.status_code == 200


def check(database_url: str, extra: list[str]) -> int:
    """The whole check against one fresh store."""
    with tempfile.TemporaryDirectory(prefix="wk-contract-") as directory:
        workdir = Path(directory)
        try:
            with running_server(database_url, workdir) as server:
                status = run_schemathesis(server, pin_bystander(server, workdir), extra)
                if not still_admin(server):
                    print(
                        "the run locked its own admin out; pin the operation that did it in "
                        "pin_bystander()",
                        file=sys.stderr,
                    )
                    return status or LOCKED_OUT
        except ServerDidNotStart as error:
            print(error, file=sys.stderr)
            return NOT_STARTED
        if status:
            problems = log_tail(workdir / "server.log", 80, quiet=True)
            print(f"the server's warnings and errors:\n{problems}")
        return status


async def on_postgres(server_url: URL, statement: str) -> None:
    engine = create_async_engine(server_url, isolation_level="AUTOCOMMIT")
    try:
        async with engine.connect() as connection:
            await connection.execute(text(statement))
    finally:
        await engine.dispose()


def check_postgres(base: str, extra: list[str]) -> int:
    """The check against a PostgreSQL database of its own, dropped afterwards."""
    server_url = make_url(base).set(drivername="postgresql+asyncpg")
    name = f"watchkeeper_contract_{uuid.uuid4().hex[:10]}"
    try:
        asyncio.run(on_postgres(server_url, f'CREATE DATABASE "{name}"'))
    except OSError as error:
        print(f"PostgreSQL at {server_url.render_as_string()} is unreachable: {error}")
        return NOT_STARTED
    try:
        return check(server_url.set(database=name).render_as_string(hide_password=False), extra)
    finally:
        asyncio.run(on_postgres(server_url, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--backend",
        choices=("all", "sqlite", "postgresql"),
        default="all",
        help=f"all: SQLite, and PostgreSQL when {POSTGRES_VARIABLE} is set",
    )
    options, extra = parser.parse_known_args()
    extra = [argument for argument in extra if argument != "--"]
    postgres = os.environ.get(POSTGRES_VARIABLE)
    if options.backend == "postgresql" and not postgres:
        parser.error(f"--backend postgresql needs {POSTGRES_VARIABLE}")

    results: dict[str, int] = {}
    if options.backend in ("all", "sqlite"):
        with tempfile.TemporaryDirectory(prefix="wk-contract-db-") as directory:
            print("== contract check on SQLite", flush=True)
            results["sqlite"] = check(f"sqlite+aiosqlite:///{directory}/wk.db", extra)
    if options.backend in ("all", "postgresql") and postgres:
        print("== contract check on PostgreSQL", flush=True)
        results["postgresql"] = check_postgres(postgres, extra)
    for backend, status in results.items():
        print(f"contract check on {backend}: {'passed' if status == 0 else f'failed ({status})'}")
    return next((status for status in results.values() if status), 0)


if __name__ == "__main__":
    sys.exit(main())
