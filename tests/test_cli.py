"""The ``watchkeeper`` command, run as an operator would from a shell."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from app.cli import main

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


class TestUsersAndTokens:
    def test_operator_creates_user_issues_and_revokes_a_token(self, sqlite_env) -> None:
        assert runner.invoke(main, ["db", "upgrade"]).exit_code == 0
        assert runner.invoke(main, ["db", "upgrade"]).exit_code == 0  # idempotent

        created = runner.invoke(
            main, ["users", "create", "robot", "--role", "developer", "--no-password"]
        )
        token = runner.invoke(main, ["tokens", "create", "robot", "--name", "ci"])
        again = runner.invoke(main, ["users", "create", "robot", "--no-password"])

        assert created.exit_code == 0, created.output
        assert token.exit_code == 0, token.output
        assert token.stdout.strip().startswith("wk_")
        assert again.exit_code == 1
        assert "already exists" in again.output
        listed = runner.invoke(main, ["users", "list"])
        assert "robot" in listed.stdout

    def test_revoke_needs_an_admin_in_the_store(self, sqlite_env) -> None:
        runner.invoke(main, ["users", "create", "robot", "--no-password"])
        token = runner.invoke(main, ["tokens", "create", "robot"]).stdout.strip()

        revoked = runner.invoke(main, ["tokens", "revoke", token])

        assert revoked.exit_code == 1
        assert "no admin" in revoked.output

    def test_unknown_role_is_refused(self, sqlite_env) -> None:
        result = runner.invoke(main, ["users", "create", "x1", "--role", "wizard"])

        assert result.exit_code == 2


class TestUnreachableStore:
    def test_serve_exits_with_one_line_naming_the_masked_url(self, tmp_path: Path) -> None:
        env = {
            **os.environ,
            "WATCHKEEPER_DATABASE_URL": "postgresql+asyncpg://ops:s3cr3t@127.0.0.1:9/watch",
            "WATCHKEEPER_CONFIG_FILE": str(tmp_path / "absent.toml"),
        }

        result = subprocess.run(
            [sys.executable, "-m", "app.cli", "serve"],
            env=env,
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
