"""The ``watchkeeper`` command: serve, migrate, and manage users and tokens."""

from __future__ import annotations

import asyncio
import gc
import getpass
from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import Annotated, TypeVar

import typer
from rich.console import Console
from rich.table import Table
from sqlalchemy.ext.asyncio import AsyncSession

from app.core.config import ConfigurationError, Settings, get_settings
from app.core.errors import WatchkeeperError
from app.db import migrate
from app.db.models import User
from app.db.store import Store
from app.services import accounts
from app.vocabulary.accounts import Role, TokenKind

T = TypeVar("T")

main = typer.Typer(help="Watchkeeper: keeps a deployed web service healthy.", no_args_is_help=True)
db_app = typer.Typer(help="The store's schema.", no_args_is_help=True)
users_app = typer.Typer(help="People and robots that may call the API.", no_args_is_help=True)
tokens_app = typer.Typer(help="Long-lived API tokens.", no_args_is_help=True)
main.add_typer(db_app, name="db")
main.add_typer(users_app, name="users")
main.add_typer(tokens_app, name="tokens")

console = Console()
errors = Console(stderr=True)


def fail(message: str) -> typer.Exit:
    """Prints a one-line error and returns the exit to raise."""
    errors.print(f"[bold red]error:[/] {message}", highlight=False, soft_wrap=True)
    return typer.Exit(code=1)


async def _reach(store: Store) -> None:
    try:
        await store.ping()
    except Exception as error:  # any reason at all is reported in one line, not a trace
        reason = str(error).splitlines()[0] if str(error) else type(error).__name__
        raise fail(f"cannot reach the store at {store.masked_url}: {reason}") from None


def settings_or_exit() -> Settings:
    """The settings, or a one-line error naming what is wrong with them."""
    try:
        return get_settings()
    except ConfigurationError as error:
        raise fail(str(error)) from None


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
) -> None:
    """Runs the service (migrating the store and creating the first admin if needed)."""
    import uvicorn

    from app.core.http_limits import limited_protocol
    from app.main import create_app

    settings = settings_or_exit()
    asyncio.run(_check_store(settings))
    application = create_app(settings)
    # Everything imported so far lives as long as the process: moving it out of the
    # collector's sight keeps full collections (and the p95 spikes they cause) short.
    gc.collect()
    gc.freeze()
    uvicorn.run(
        application,
        host=host or settings.host,
        port=port or settings.port,
        http=limited_protocol(settings),
        log_config=None,
        access_log=False,
    )


async def _check_store(settings: Settings) -> None:
    store = Store(settings.database_url)
    try:
        await _reach(store)
    finally:
        await store.dispose()


@db_app.command("upgrade")
def db_upgrade() -> None:
    """Applies pending migrations; does nothing when the store is current."""

    async def nothing(_: AsyncSession) -> None:
        return None

    run_with_store(nothing)
    console.print("The store is up to date.")


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
    """Deactivates a user; every token and session of theirs stops working at once."""
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
        await accounts.update_user(session, username, actor=None, is_active=active)

    run_with_store(change)


@tokens_app.command("create")
def tokens_create(
    username: str,
    name: Annotated[str, typer.Option(help="What the token is for.")] = "cli",
    expires_in_days: Annotated[int | None, typer.Option(min=1, max=3650)] = None,
) -> None:
    """Creates an API token for a user and prints it once."""

    async def create(session: AsyncSession) -> str:
        owner = await accounts.get_user(session, username)
        ttl = timedelta(days=expires_in_days) if expires_in_days else None
        _, clear = await accounts.issue_token(
            session, user=owner, name=name, kind=TokenKind.API, ttl=ttl
        )
        return clear

    print(run_with_store(create))


@tokens_app.command("revoke")
def tokens_revoke(
    token: Annotated[str, typer.Argument(help="The token itself, or its numeric id.")],
) -> None:
    """Revokes a token so it stops working at once."""

    async def revoke(session: AsyncSession) -> int:
        token_id = int(token) if token.isdigit() else await accounts.find_token_id(session, token)
        admin = await _any_admin(session)
        return (await accounts.revoke_token(session, token_id=token_id, actor=admin)).id

    console.print(f"Revoked token {run_with_store(revoke)}.")


async def _any_admin(session: AsyncSession) -> User:
    # The CLI runs on the store's host, so it acts with an admin's authority.
    admins = [user for user in await accounts.list_users(session) if user.role is Role.ADMIN]
    if not admins:
        raise fail("there is no admin in this store yet; run `watchkeeper serve` once")
    return admins[0]


if __name__ == "__main__":
    main()
