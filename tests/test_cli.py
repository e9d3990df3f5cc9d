"""The ``watchkeeper`` command, run as an operator would from a shell."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from typer.testing import CliRunner

from app.cli import main
from app.core.config import Settings
from app.main import create_app
from tests.conftest import ADMIN_TOKEN, bearer

runner = CliRunner()


@pytest.fixture
def sqlite_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, str]]:
    """A store of the test's own, given to the CLI the way an operator would."""
    env = {
        "WATCHKEEPER_DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path / 'wk.db'}",
        "WATCHKEEPER_CONFIG_FILE": str(tmp_path / "absent.toml"),
    }
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    from app.core.config import get_settings

    get_settings.cache_clear()
    yield env
    get_settings.cache_clear()


async def whoami(token: str, data_dir: Path) -> int:
    """The status a server started on the CLI's store answers ``token`` with."""
    settings = Settings(
        data_dir=data_dir,
        admin_token=ADMIN_TOKEN,
        monitor_in_process=False,
        alert_dispatch_in_process=False,
    )
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://wk") as client:
            return (await client.get("/api/v1/users/me", headers=bearer(token))).status_code


class TestUsersAndTokens:
    def test_operator_creates_user_issues_and_revokes_a_token(
        self, sqlite_env, tmp_path: Path
    ) -> None:
        assert runner.invoke(main, ["db", "upgrade"]).exit_code == 0
        assert runner.invoke(main, ["db", "upgrade"]).exit_code == 0  # idempotent

        admin = runner.invoke(main, ["users", "create", "boss", "--role", "admin", "--no-password"])
        created = runner.invoke(
            main, ["users", "create", "robot", "--role", "developer", "--no-password"]
        )
        issued = runner.invoke(main, ["tokens", "create", "robot", "--name", "ci"])
        again = runner.invoke(main, ["users", "create", "robot", "--no-password"])
        token = issued.stdout.strip()
        accepted_before = asyncio.run(whoami(token, tmp_path))
        revoked = runner.invoke(main, ["tokens", "revoke", token])

        assert admin.exit_code == created.exit_code == issued.exit_code == 0, issued.output
        assert token.startswith("wk_")
        assert again.exit_code == 1
        assert "already exists" in again.output
        listed = runner.invoke(main, ["users", "list"])
        assert "robot" in listed.stdout
        assert accepted_before == 200
        assert revoked.exit_code == 0, revoked.output
        assert revoked.stdout.startswith("Revoked token ")
        assert asyncio.run(whoami(token, tmp_path)) == 401

    def test_revoke_needs_an_admin_in_the_store(self, sqlite_env) -> None:
        runner.invoke(main, ["users", "create", "robot", "--no-password"])
        token = runner.invoke(main, ["tokens", "create", "robot"]).stdout.strip()

        revoked = runner.invoke(main, ["tokens", "revoke", token])

        assert revoked.exit_code == 1
        assert "no admin" in revoked.output

    def test_unknown_role_is_refused(self, sqlite_env) -> None:
        result = runner.invoke(main, ["users", "create", "x1", "--role", "wizard"])

        assert result.exit_code == 2


def away_store_env(tmp_path: Path) -> dict[str, str]:
    """An environment whose store nobody listens on (port 9, discard)."""
    return {
        **os.environ,
        "WATCHKEEPER_DATABASE_URL": "postgresql+asyncpg://ops:s3cr3t@127.0.0.1:9/watch",
        "WATCHKEEPER_CONFIG_FILE": str(tmp_path / "absent.toml"),
        "COLUMNS": "200",  # each message on one line
    }


class TestUnreachableStore:
    def test_serve_exits_with_one_line_naming_the_masked_url(self, tmp_path: Path) -> None:
        result = subprocess.run(
            [sys.executable, "-m", "app.cli", "serve"],
            env=away_store_env(tmp_path),
            capture_output=True,
            text=True,
            timeout=60,
        )

        assert result.returncode == 1
        lines = result.stderr.strip().splitlines()
        assert len(lines) == 1, result.stderr
        assert (
            "cannot reach the store at postgresql+asyncpg://ops:***@127.0.0.1:9/watch" in lines[0]
        )
        assert "s3cr3t" not in result.stderr + result.stdout

    def test_monitor_once_ends_saying_its_sweep_is_lost_not_kept(self, tmp_path: Path) -> None:
        result = subprocess.run(
            [sys.executable, "-m", "app.cli", "monitor", "--once"],
            env=away_store_env(tmp_path),
            capture_output=True,
            text=True,
            timeout=60,
        )

        assert result.returncode == 2, result.stderr  # the store is a component, and down
        assert "NOT stored (store unreachable; this one-off sweep is lost)" in result.stdout
        log = result.stderr.strip().splitlines()
        assert "sweep(s) never stored (the store did not answer) are lost at exit" in log[-1]
        assert "s3cr3t" not in result.stderr + result.stdout
