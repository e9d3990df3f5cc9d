"""A mistake in watchkeeper.toml or the environment stops every command with one line that
names it, and with its own exit code (3), never a traceback and never "degraded" (1)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
CONFIGURATION_ERROR = 3


def run(command: list[str], workdir: Path, **env: str) -> subprocess.CompletedProcess[str]:
    environment = {**os.environ, "PYTHONPATH": str(ROOT), **env}
    environment.pop("WATCHKEEPER_CONFIG_FILE", None)
    environment.pop("WATCHKEEPER_DATABASE_URL", None)
    return subprocess.run(
        [sys.executable, *command],
        cwd=workdir,
        env=environment,
        capture_output=True,
        text=True,
        timeout=60,
    )


SERVE = ["-m", "app.cli", "serve"]
UPGRADE = ["-m", "app.cli", "db", "upgrade"]
SCRIPT = [str(ROOT / "scripts" / "monitor_system.py"), "--once"]


class TestConfigurationErrors:
    @pytest.mark.parametrize(
        "command", [SERVE, UPGRADE, SCRIPT], ids=["serve", "upgrade", "script"]
    )
    def test_a_malformed_toml_file_is_one_line_and_exit_3(
        self, tmp_path: Path, command: list[str]
    ) -> None:
        (tmp_path / "watchkeeper.toml").write_text("monitor_interval_seconds = [\n")

        done = run(command, tmp_path)

        assert done.returncode == CONFIGURATION_ERROR
        assert "Traceback" not in done.stderr
        [line] = done.stderr.strip().splitlines()
        assert "watchkeeper.toml" in line

    def test_malformed_targets_json_is_one_line_and_exit_3(self, tmp_path: Path) -> None:
        done = run(SERVE, tmp_path, WATCHKEEPER_TARGETS='[{"name": ')

        assert done.returncode == CONFIGURATION_ERROR
        [line] = done.stderr.strip().splitlines()
        assert "targets" in line

    def test_a_bad_target_names_the_target_and_the_field(self, tmp_path: Path) -> None:
        targets = '[{"name": "cache", "kind": "redis", "url": "http://u:hunter2@x"}]'

        done = run(SCRIPT, tmp_path, WATCHKEEPER_TARGETS=targets)

        assert done.returncode == CONFIGURATION_ERROR
        [line] = done.stderr.strip().splitlines()
        assert "'cache'" in line and "url" in line
        assert "hunter2" not in line
