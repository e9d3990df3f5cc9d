"""The wheel as an operator installs it: ``pip install`` in a fresh venv, no checkout in sight.

The wheel is built from a copy of the working tree, so setuptools' ``build/`` directory never
lands in the checkout (nor carries modules deleted since into the wheel). It is installed
with its dependencies into a new virtualenv, and its ``watchkeeper`` command, run from a
directory holding nothing of ours, migrates a new SQLite store and serves ``/readyz``.
"""

from __future__ import annotations

import os
import shutil
import signal
import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from contextlib import closing, contextmanager
from pathlib import Path

import pytest
from alembic.script import ScriptDirectory

from app.db import migrate
from app.db import models as _all_tables  # noqa: F401  (registers every table)
from app.db.base import Base
from tests.serving import free_port, wait_until_ready

REPO = Path(__file__).resolve().parents[1]
# Not part of the source a wheel is built from: environments, stores, caches, old builds.
NOT_SOURCE = shutil.ignore_patterns(
    ".git", ".venv", "var", "build", "dist", "*.egg-info", "__pycache__", ".*_cache", "*.db*"
)


def run(*command: str | Path, cwd: Path, env: dict[str, str], timeout: float) -> str:
    """Runs one command to completion and returns its output; fails the test with it if not 0."""
    done = subprocess.run(
        [str(part) for part in command],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    assert done.returncode == 0, f"{command} exited {done.returncode}:\n{done.stdout}{done.stderr}"
    return done.stdout


def clean_env(**extra: str) -> dict[str, str]:
    """This process's environment without our settings or the dev venv leaking through."""
    leaks = {"PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV"}
    kept = {
        name: value
        for name, value in os.environ.items()
        if name not in leaks and not name.startswith("WATCHKEEPER_")
    }
    return {**kept, **extra}


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The ``bin`` directory of a fresh venv with the wheel and its dependencies installed."""
    root = tmp_path_factory.mktemp("wheel")
    source, wheels, venv = root / "source", root / "wheels", root / "venv"
    shutil.copytree(REPO, source, ignore=NOT_SOURCE)
    env = clean_env(PIP_DISABLE_PIP_VERSION_CHECK="1")
    pip = (sys.executable, "-m", "pip")
    run(*pip, "wheel", "--no-deps", "--quiet", "-w", wheels, source, cwd=root, env=env, timeout=180)
    (wheel,) = wheels.glob("watchkeeper-*.whl")
    run(sys.executable, "-m", "venv", venv, cwd=root, env=env, timeout=120)
    installer = (venv / "bin" / "python", "-m", "pip")
    run(*installer, "install", "--quiet", wheel, cwd=root, env=env, timeout=600)
    return venv / "bin"


@contextmanager
def serving(
    bin_dir: Path, port: int, cwd: Path, env: dict[str, str]
) -> Iterator[subprocess.Popen[bytes]]:
    """``watchkeeper serve`` in its own process group, which is gone when the block ends."""
    with (cwd / "serve.log").open("wb") as log:
        server = subprocess.Popen(
            [str(bin_dir / "watchkeeper"), "serve", "--host", "127.0.0.1", "--port", str(port)],
            cwd=cwd,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        try:
            yield server
        finally:
            if server.poll() is None:
                os.killpg(server.pid, signal.SIGKILL)
                server.wait(timeout=30)


class TestInstalledWheel:
    def test_operator_installs_migrates_a_new_store_and_serves(
        self, installed: Path, tmp_path: Path
    ) -> None:
        store = tmp_path / "wk.db"
        env = clean_env(
            WATCHKEEPER_DATABASE_URL=f"sqlite+aiosqlite:///{store}",
            WATCHKEEPER_CONFIG_FILE=str(tmp_path / "absent.toml"),
        )
        scripts = ScriptDirectory.from_config(migrate.alembic_config())
        shipped = list(scripts.walk_revisions())

        imported = run(
            installed / "python",
            "-c",
            "import app; print(app.__file__)",
            cwd=tmp_path,
            env=env,
            timeout=60,
        )
        upgraded = run(
            installed / "watchkeeper", "db", "upgrade", cwd=tmp_path, env=env, timeout=120
        )

        assert Path(imported.strip()).is_relative_to(installed.parent), imported
        assert "site-packages" in Path(imported.strip()).parts
        assert upgraded.startswith(f"Applied {len(shipped)} migrations"), upgraded
        with closing(sqlite3.connect(store)) as db:
            versions = {row[0] for row in db.execute("SELECT version_num FROM alembic_version")}
            tables = {row[0] for row in db.execute("SELECT name FROM sqlite_master")}
        assert versions == set(scripts.get_heads())
        assert set(Base.metadata.tables) <= tables

        port = free_port()
        with serving(installed, port, tmp_path, env) as server:
            ready = wait_until_ready(
                f"http://127.0.0.1:{port}/readyz", server, (tmp_path / "serve.log").read_text
            )
            server.send_signal(signal.SIGTERM)
            stopped = server.wait(timeout=30)

        assert ready.json()["store"] == "sqlite"
        # uvicorn shuts down gracefully, then re-raises the signal so the exit code tells why.
        assert stopped in (0, -signal.SIGTERM), (tmp_path / "serve.log").read_text()
