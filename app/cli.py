"""The ``watchkeeper`` command: serve, migrate, monitor, and manage users and tokens."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import getpass
import json
import logging
import os
import signal
from collections.abc import Awaitable, Callable
from datetime import timedelta
from functools import partial
from pathlib import Path
from typing import Annotated, TypeVar

import typer
import uvicorn
from rich.console import Console
from rich.table import Table
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncSession

from app.core.config import ConfigurationError, Settings, get_settings
from app.core.errors import WatchkeeperError
from app.db import migrate
from app.db.models import User
from app.db.store import Store, masked_url
from app.schemas.health import CollectedSweep
from app.services import accounts
from app.services.bootstrap import Bootstrap
from app.services.monitoring import Monitoring, check_configuration
from app.services.standalone_monitor import (
    SweepObserver,
    monitoring_session,
    sweep_every,
    sweep_once,
)
from app.vocabulary.accounts import Role, TokenKind
from app.vocabulary.health import ComponentStatus

T = TypeVar("T")

main = typer.Typer(help="Watchkeeper: keeps a deployed web service healthy.", no_args_is_help=True)
db_app = typer.Typer(help="The store's schema.", no_args_is_help=True)
users_app = typer.Typer(help="People and robots that may call the API.", no_args_is_help=True)
tokens_app = typer.Typer(help="Long-lived API tokens.", no_args_is_help=True)
main.add_typer(db_app, name="db")
main.add_typer(users_app, name="users")
main.add_typer(tokens_app, name="tokens")

console = Console()
logger = logging.getLogger("watchkeeper")
errors = Console(stderr=True)


# Every command exits with this when the settings or watchkeeper.toml are wrong.
CONFIGURATION_ERROR = 3
WORKER_HEALTHCHECK_SECONDS = 60


def fail(message: str, *, code: int = 1) -> typer.Exit:
    """Prints a one-line error and returns the exit to raise."""
    errors.print(f"[bold red]error:[/] {message}", highlight=False, soft_wrap=True)
    return typer.Exit(code=code)


async def _reach(store: Store) -> None:
    try:
        await store.ping()
    except Exception as error:  # any reason at all is reported in one line, not a trace
        reason = str(error).splitlines()[0] if str(error) else type(error).__name__
        raise fail(f"cannot reach the store at {store.masked_url}: {reason}") from None


def settings_or_exit() -> Settings:
    """The settings, or a one-line error naming what is wrong with them."""
    try:
        settings = get_settings()
        check_configuration(settings)  # the targets, which the settings hold raw
    except ConfigurationError as error:
        raise fail(str(error), code=CONFIGURATION_ERROR) from None
    return settings


def run_with_store(action: Callable[[AsyncSession], Awaitable[T]]) -> T:
    """Migrates the configured store, runs ``action`` in one unit of work, and cleans up."""

    async def go() -> T:
        store = Store(settings_or_exit().database_url)
        try:
            await _reach(store)
            await migrate.upgrade(store)
            async with store.unit_of_work() as session:
                return await action(session)
        except WatchkeeperError as error:
            raise fail(str(error.detail)) from None
        finally:
            await store.dispose()

    return asyncio.run(go())


@main.command()
def serve(
    host: Annotated[str | None, typer.Option(help="Interface to bind.")] = None,
    port: Annotated[int | None, typer.Option(help="Port to listen on.")] = None,
    workers: Annotated[
        int | None, typer.Option(min=1, help="Worker processes. [default: one per core]")
    ] = None,
) -> None:
    """Runs the service (migrating the store and creating the first admin if needed)."""
    from uvicorn.config import STARTUP_FAILURE
    from uvicorn.supervisors import Multiprocess

    from app.core.logging import setup_logging
    from app.main import announce

    configured = settings_or_exit()
    # The address the server really takes, so what it prints is what it serves.
    settings = configured.model_copy(
        update={"host": host or configured.host, "port": port or configured.port}
    )
    setup_logging(settings)
    # Once, before any worker starts: workers starting together must not race to create
    # the first admin, and its token is shown once, not once per worker.
    bootstrap = asyncio.run(_prepare_store(settings))
    count = workers or _cores()
    logger.info(
        "serving on http://%s:%d with the store %s, %d worker process%s",
        settings.host,
        settings.port,
        describe_store(settings.database_url),
        count,
        "" if count == 1 else "es",
    )
    if bootstrap is not None:
        announce(bootstrap, settings)
    config = ServeConfig(settings, workers=count)
    if count == 1:
        server = uvicorn.Server(config)
        with contextlib.suppress(KeyboardInterrupt):  # uvicorn re-raises the Ctrl-C it handled
            server.run()
        failed = not server.started
    else:
        supervisor = Multiprocess(config, sockets=[config.bind_socket()])
        supervisor.run()
        failed = any(worker.exitcode == STARTUP_FAILURE for worker in supervisor.processes)
    if failed:
        raise typer.Exit(code=STARTUP_FAILURE)


def _cores() -> int:
    """The cores this process may run on: one worker each unless told otherwise."""
    if hasattr(os, "sched_getaffinity"):  # not on macOS
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


class ServeConfig(uvicorn.Config):
    """uvicorn's configuration of ``watchkeeper serve``, the same in every worker process.

    A worker is a fresh interpreter (spawned), so it gets this pickled: the settings the
    command resolved and the app factory bound to them. Each worker then builds its own app
    and the protocol class holding the configured header limits (made at run time, it
    cannot travel).

    Every worker runs the whole app, background tasks included, and that is safe N times
    over: each flushes its request metrics as rows of its own process (they add up), the
    monitor loop claims each interval's sweep in the store, the dispatcher claims each
    delivery, the rollups detect a race, and a token revoked in one worker is refused by
    the others within a second (``accounts.TokenCache``).
    """

    def __init__(self, settings: Settings, *, workers: int) -> None:
        from app.main import create_app

        super().__init__(
            partial(create_app, settings),
            factory=True,
            host=settings.host,
            port=settings.port,
            workers=workers,
            log_config=None,
            access_log=False,
            # A new worker answers the supervisor's health check only once it has imported
            # the app, which takes seconds on a busy host: uvicorn's 5 s killed and
            # restarted every worker, for ever. A worker hung later is replaced after this.
            timeout_worker_healthcheck=WORKER_HEALTHCHECK_SECONDS,
        )
        self.watchkeeper_settings = settings

    def load(self) -> None:
        from app.core.http_limits import limited_protocol

        self.http = limited_protocol(self.watchkeeper_settings)
        super().load()
        # Everything loaded so far lives as long as the worker: moving it out of the
        # collector's sight keeps full collections (and the p95 spikes they cause) short.
        gc.collect()
        gc.freeze()


def describe_store(url: str) -> str:
    """The store as a person should read it: a SQLite file by its absolute path (the default
    one is relative to the working directory), any other URL with its password masked."""
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite" and parsed.database not in (None, "", ":memory:"):
        return f"SQLite file {Path(str(parsed.database)).resolve()}"
    return masked_url(url)


async def _prepare_store(settings: Settings) -> Bootstrap | None:
    """Migrates the store and creates the first admin, or exits naming why it cannot."""
    from app.main import prepare_store

    store = Store(settings.database_url, timeout=settings.database_timeout_seconds)
    try:
        await _reach(store)
        return await prepare_store(store, settings)
    finally:
        await store.dispose()


@db_app.command("upgrade")
def db_upgrade() -> None:
    """Applies pending migrations and names them; does nothing when the store is current."""

    async def go() -> migrate.Upgrade:
        store = Store(settings_or_exit().database_url)
        try:
            await _reach(store)
            return await migrate.upgrade(store)
        finally:
            await store.dispose()

    done = asyncio.run(go())
    at = ", ".join(done.heads)
    if done.applied:
        count = f"{len(done.applied)} migration{'s' if len(done.applied) != 1 else ''}"
        message = f"Applied {count} ({', '.join(done.applied)}); the store is at {at}."
    else:
        message = f"The store is already up to date (at {at})."
    console.print(message, highlight=False, soft_wrap=True)


@users_app.command("create")
def users_create(
    username: str,
    role: Annotated[Role, typer.Option(help="admin, developer or user.")] = Role.USER,
    email: Annotated[str | None, typer.Option()] = None,
    password: Annotated[
        bool, typer.Option("--password/--no-password", help="Prompt for a password.")
    ] = True,
) -> None:
    """Creates a user."""
    secret = _prompt_password() if password else None

    async def create(session: AsyncSession) -> None:
        await accounts.create_user(
            session, username=username, role=role, password=secret, email=email
        )

    run_with_store(create)
    console.print(f"Created {role.value} {username!r}.")


def _prompt_password() -> str:
    first = getpass.getpass("Password (8 characters or more): ")
    if len(first) < 8:
        raise fail("the password must have at least 8 characters")
    if getpass.getpass("Again: ") != first:
        raise fail("the passwords differ")
    return first


@users_app.command("list")
def users_list() -> None:
    """Lists the users."""
    table = Table("id", "username", "role", "active", "created")
    for user in run_with_store(accounts.list_users):
        table.add_row(
            str(user.id),
            user.username,
            user.role.value,
            str(user.is_active),
            f"{user.created_at:%F}",
        )
    console.print(table)


@users_app.command("deactivate")
def users_deactivate(username: str) -> None:
    """Deactivates a user; running servers refuse their tokens and sessions within a second."""
    _set_active(username, active=False)
    console.print(f"Deactivated {username!r} and revoked their tokens.")


@users_app.command("activate")
def users_activate(username: str) -> None:
    """Reactivates a user; their password works again, their old tokens stay revoked."""
    _set_active(username, active=True)
    console.print(f"Activated {username!r}.")


def _set_active(username: str, *, active: bool) -> None:
    async def change(session: AsyncSession) -> None:
        # The operator at the server's shell is no account of the store, so no admin can be
        # "yourself" here; the last active admin is still protected.
        await accounts.update_user(session, username, actor=None, cache=None, is_active=active)

    run_with_store(change)


@tokens_app.command("create")
def tokens_create(
    username: str,
    name: Annotated[str, typer.Option(help="What the token is for.")] = "cli",
    expires_in_days: Annotated[int | None, typer.Option(min=1, max=3650)] = None,
    ingest: Annotated[
        bool, typer.Option(help="Only for posting telemetry to /v1/traces and /v1/metrics.")
    ] = False,
) -> None:
    """Creates an API token for a user and prints it once."""
    kind = TokenKind.INGEST if ingest else TokenKind.API

    async def create(session: AsyncSession) -> str:
        owner = await accounts.get_user(session, username)
        ttl = timedelta(days=expires_in_days) if expires_in_days else None
        _, clear = await accounts.issue_token(session, user=owner, name=name, kind=kind, ttl=ttl)
        return clear

    print(run_with_store(create))


@tokens_app.command("revoke")
def tokens_revoke(
    token: Annotated[str, typer.Argument(help="The token itself, or its numeric id.")],
) -> None:
    """Revokes a token; running servers refuse it within a second."""

    async def revoke(session: AsyncSession) -> int:
        token_id = int(token) if token.isdigit() else await accounts.find_token_id(session, token)
        admin = await _any_admin(session)
        revoked = await accounts.revoke_token(session, token_id=token_id, actor=admin, cache=None)
        return revoked.id

    console.print(f"Revoked token {run_with_store(revoke)}.")


async def _any_admin(session: AsyncSession) -> User:
    # The CLI runs on the store's host, so it acts with an admin's authority.
    admins = [user for user in await accounts.list_users(session) if user.role is Role.ADMIN]
    if not admins:
        raise fail("there is no admin in this store yet; run `watchkeeper serve` once")
    return admins[0]


# `monitor` exits with the sweep's status, or with CONFIGURATION_ERROR.
MONITOR_EXIT_CODES = {
    ComponentStatus.HEALTHY: 0,
    ComponentStatus.DEGRADED: 1,
    ComponentStatus.UNKNOWN: 1,
    ComponentStatus.UNHEALTHY: 2,
}
_COLOURS = {
    ComponentStatus.HEALTHY: "green",
    ComponentStatus.DEGRADED: "yellow",
    ComponentStatus.UNKNOWN: "magenta",
    ComponentStatus.UNHEALTHY: "red",
}


@main.command()
def monitor(
    once: Annotated[
        bool, typer.Option("--once", help="One sweep, then exit 0 healthy/1 degraded/2 unhealthy.")
    ] = False,
    interval: Annotated[
        int | None,
        typer.Option(min=1, metavar="SECONDS", help="A sweep per interval until SIGINT/SIGTERM."),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")] = False,
) -> None:
    """Runs every check and stores the results, once or once per interval."""
    if once == (interval is not None):
        raise typer.BadParameter("give either --once or --interval SECONDS")
    try:
        settings = get_settings()
        check_configuration(settings)  # the targets, which the settings hold raw
    except ConfigurationError as error:
        raise fail(str(error), code=CONFIGURATION_ERROR) from None
    raise typer.Exit(asyncio.run(run_monitor(settings, interval=interval, as_json=as_json)))


async def run_monitor(settings: Settings, *, interval: int | None, as_json: bool) -> int:
    """Monitors as ``watchkeeper monitor`` does (one sweep when ``interval`` is None) and
    returns its exit code."""
    out = errors if as_json else console  # the JSON documents alone on stdout
    out.print(f"store: {describe_store(settings.database_url)}", style="dim", highlight=False)
    async with monitoring_session(settings) as session:
        if session.store_problem is not None:
            out.print(f"[yellow]store {session.store_url} unavailable:[/] {session.store_problem}")
        on_sweep = partial(show, as_json=as_json, out=out, keeps_going=interval is not None)
        if interval is not None:
            return await _repeat(session.monitoring, interval, on_sweep=on_sweep, out=out)
        outcome = await sweep_once(session.monitoring, on_sweep=on_sweep)
        if outcome.undelivered is not None:
            out.print(f"[yellow]notifications not sent now:[/] {outcome.undelivered}")
        return MONITOR_EXIT_CODES[outcome.status]


async def _repeat(
    monitoring: Monitoring, interval: int, *, on_sweep: SweepObserver, out: Console
) -> int:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    sweeps = 0

    def count_and_show(sweep: CollectedSweep) -> None:
        nonlocal sweeps
        sweeps += 1
        on_sweep(sweep)

    await sweep_every(monitoring, interval=interval, stop=stop, on_sweep=count_and_show)
    out.print(f"Stopped after {sweeps} sweep(s).", style="dim")
    return 0


def show(sweep: CollectedSweep, *, as_json: bool, out: Console, keeps_going: bool) -> None:
    """Prints a sweep as a table, or as one JSON document on stdout; ``keeps_going`` when
    the process runs on (and so keeps an unstored sweep to write later)."""
    if as_json:
        print(json.dumps(sweep.model_dump(mode="json"), indent=2))
        return
    table = Table(title=f"Watchkeeper sweep at {sweep.checked_at:%Y-%m-%d %H:%M:%S} UTC")
    for column in ("component", "kind", "status", "latency", "message"):
        table.add_column(column)
    for result in sweep.components:
        latency = f"{result.latency_ms:.1f} ms" if result.latency_ms is not None else "-"
        status = f"[{_COLOURS[result.status]}]{result.status.value}[/]"
        table.add_row(result.name, result.kind, status, latency, result.message)
    out.print(table)
    if sweep.stored:
        stored = "stored"
    elif keeps_going:
        stored = "NOT stored yet (store unreachable; kept in memory until it answers)"
    else:
        stored = "NOT stored (store unreachable; this one-off sweep is lost)"
    out.print(
        f"Overall: [{_COLOURS[sweep.status]}]{sweep.status.value}[/] "
        f"in {sweep.duration_ms:.0f} ms, {stored}"
    )


if __name__ == "__main__":
    main()
