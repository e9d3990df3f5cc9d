"""The README's commands, run as a newcomer copies them: in order, from the checkout, on a
fresh store, each one having to succeed.

The convention: every ```bash, ```sh and ```console block of README.md runs (of a console
block, the lines after ``$ ``), in the order they appear, in one shell session carried from
block to block (what one exports, the next sees), except the blocks ``NOT_RUN`` names with
the reason. A block added to the README runs unless it is listed there.

What the test changes, all of it:

- ``make run`` is what it runs once ``.venv`` is installed, ``.venv/bin/watchkeeper serve``,
  started in the background with ``WATCHKEEPER_DATA_DIR`` in a temp dir (so the default
  store, ``var/watchkeeper.db``, is a fresh one there) and ``WATCHKEEPER_PORT`` a free port;
  the next block runs once it is ready.
- ``localhost:8000`` is that port.
- ``wk_...`` in ``export ADMIN=wk_...`` is the admin token the first start printed.
- ``curl`` is called with ``--fail-with-body``, so an answer of 400 or more fails it.
"""

from __future__ import annotations

import os
import re
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.faults.served import ROOT, ServeProcess
from tests.serving import free_port

README = ROOT / "README.md"
COMMAND_DEADLINE_S = 60.0  # against hanging, never a speed claim

# A distinctive line of each block that is not run, and why.
NOT_RUN = {
    "make test": "it runs the whole suite, this test included",
    "export WATCHKEEPER_TEST_POSTGRES_URL=": "the suite again, on the reader's servers",
    "export WATCHKEEPER_DATABASE_URL=postgresql": "it needs the PostgreSQL at db.internal",
    "python scripts/monitor_system.py --interval 60": (
        "its exit status is the health it finds, and --interval runs until stopped"
    ),
    "pip install ./agent": "it installs into the environment",
    "pip install opentelemetry-distro": "another SDK's instrumentation",
    "npm install": "Node's instrumentation",
    "go get": "Go's instrumentation",
}
FENCE = re.compile(r"^```(bash|sh|console)\n(.*?)^```$", re.MULTILINE | re.DOTALL)
PRINTED_TOKEN = re.compile(r"shown only this once:\s+(wk_\S+)")
# Run before each block: fail on the first command that fails, and say which it was.
PRELUDE = """set -Eeo pipefail
trap 'echo "README command failed: $BASH_COMMAND" >&2' ERR
curl() { command curl --silent --show-error --fail-with-body "$@"; echo; }
source "$README_SHELL_STATE"
"""
EPILOGUE = '\nexport -p > "$README_SHELL_STATE"\n'


@dataclass(frozen=True)
class Block:
    line: int  # of README.md, for the messages
    commands: str

    @property
    def first(self) -> str:
        return self.commands.strip().splitlines()[0]


def readme_blocks() -> list[Block]:
    """The shell blocks of the README, in order; a console block's commands only."""
    text = README.read_text()
    blocks = []
    for found in FENCE.finditer(text):
        body = found.group(2)
        if found.group(1) == "console":
            lines = [line[2:] for line in body.splitlines() if line.startswith("$ ")]
            body = "\n".join(lines) + "\n"
        blocks.append(Block(text.count("\n", 0, found.start()) + 1, body))
    return blocks


def skipped_because(block: Block) -> str | None:
    lines = [line.strip() for line in block.commands.splitlines()]
    reasons = [why for mark, why in NOT_RUN.items() if any(ln.startswith(mark) for ln in lines)]
    return reasons[0] if reasons else None


@pytest.fixture
def newcomer_env(tmp_path: Path) -> dict[str, str]:
    """The reader's environment, with no Watchkeeper settings but the fresh store's place."""
    env = {name: value for name, value in os.environ.items() if not name.startswith("WATCHKEEPER")}
    env.pop("VIRTUAL_ENV", None)
    return env | {
        "WATCHKEEPER_DATA_DIR": str(tmp_path / "var"),
        "WATCHKEEPER_CONFIG_FILE": str(tmp_path / "absent.toml"),
        "README_SHELL_STATE": str(tmp_path / "shell-state"),
    }


def test_every_listed_block_is_in_the_readme() -> None:
    blocks = readme_blocks()

    unmatched = [mark for mark in NOT_RUN if not any(mark in b.commands for b in blocks)]

    assert unmatched == [], "NOT_RUN names blocks the README no longer has"


def test_the_readme_commands_run_as_written_in_order(
    newcomer_env: dict[str, str], tmp_path: Path
) -> None:
    Path(newcomer_env["README_SHELL_STATE"]).write_text("")
    run = [block for block in readme_blocks() if skipped_because(block) is None]
    assert run[0].commands == "make run\n", "the README starts with `make run`"

    server = ServeProcess(newcomer_env, port=free_port(), cwd=ROOT, output=tmp_path / "serve.log")
    try:
        server.wait_ready()
        printed = PRINTED_TOKEN.search(server.output())
        assert printed, f"no admin token printed:\n{server.output()}"
        for block in run[1:]:
            commands = block.commands.replace("localhost:8000", f"localhost:{server.port}")
            commands = commands.replace("export ADMIN=wk_...", f"export ADMIN={printed[1]}")
            done = subprocess.run(
                ["bash", "-c", PRELUDE + commands + EPILOGUE],
                cwd=ROOT,
                env=newcomer_env,
                capture_output=True,
                text=True,
                timeout=COMMAND_DEADLINE_S,
            )
            assert done.returncode == 0, (
                f"README.md line {block.line} ({block.first}):\n{done.stdout}\n{done.stderr}"
            )
    finally:
        server.stop()
