"""The DBA's commands: ``chat-rollout migrate``, ``chat-rollout downgrade TARGET`` and ``chat-rollout sql
upgrade|downgrade RANGE`` (the offline script a DBA reviews, the same bytes as ``alembic … --sql``).

Each says what it did (database, revision from -> to, time taken); a refusal is one paragraph (SQLSTATE, message,
DETAIL, HINT naming the command that would confirm it), exit status 1, never a traceback.
"""

from __future__ import annotations

import time
from typing import Annotated

import psycopg
import typer
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict
from rich.text import Text

from .. import migrate as migrations
from ..connect import connect
from ..render import print_pg_error
from ..server import Server, with_database
from .common import DatabaseOption, environment_server, err, guard, out, target

app = typer.Typer()  # migrate and downgrade: commands of the root
PANEL = "Server and migrations (DBA)"
sql_app = typer.Typer(
    help="The offline migration scripts a DBA reviews and applies with psql -v ON_ERROR_STOP=1 "
    "(the same bytes as alembic … --sql); no database is touched.",
    no_args_is_help=True,
)

MAINTENANCE_DATABASE = "postgres"


def current_revision(url: str) -> str | None:
    """The database's alembic revision, or None when it has none (a fresh database)."""
    with connect(url, autocommit=True) as conn:
        exists = conn.execute("select to_regclass('public.alembic_version') is not null").fetchone()[0]
        if not exists:
            return None
        row = conn.execute("select version_num from public.alembic_version").fetchone()
        return row[0] if row else None


def ensure_database(url: str) -> bool:
    """Create the URL's own database through the maintenance database when it is missing; True if created."""
    name = conninfo_to_dict(url).get("dbname")
    if not name:
        return False
    try:
        with connect(url, autocommit=True):
            return False
    except psycopg.OperationalError as exc:
        if "does not exist" not in str(exc):
            raise
    try:
        maintenance = connect(with_database(url, MAINTENANCE_DATABASE), autocommit=True)
    except psycopg.OperationalError:
        maintenance = connect(with_database(url, "template1"), autocommit=True)
    with maintenance as conn:
        if conn.execute("select 1 from pg_database where datname = %s", (name,)).fetchone():
            return False
        conn.execute(sql.SQL("create database {}").format(sql.Identifier(name)))
    return True


def run_upgrade(url: str, target: str = "head") -> tuple[str | None, str | None, float]:
    before = current_revision(url)
    started = time.monotonic()
    migrations.upgrade(url, target)
    return before, current_revision(url), time.monotonic() - started


def run_downgrade(url: str, target: str, drop_data: bool) -> tuple[str | None, str | None, float]:
    before = current_revision(url)
    started = time.monotonic()
    migrations.downgrade(url, target, drop_data=drop_data)
    return before, current_revision(url), time.monotonic() - started


def describe(name: str, source: str, before: str | None, after: str | None, seconds: float) -> str:
    change = "nothing to do" if before == after else f"was {before or 'none'}, took {seconds:.2f} s"
    return f"database {name} ({source}) is at alembic revision {after or 'none (base)'} ({change})"


def confirm_hint(target: str, database: str | None) -> Text:
    where = f" -d {database}" if database else ""
    return Text("To drop the data anyway (back it up first): ", style="dim") + Text(
        f"chat-rollout downgrade {target} --drop-data{where}", style="bold"
    )


@app.command(rich_help_panel=PANEL)
@guard
def migrate(
    database: DatabaseOption = None,
    create: Annotated[bool, typer.Option("--create/--no-create", help="Create the database if missing.")] = True,
) -> None:
    """Create the database if missing and migrate it to head (alembic upgrade head); says from -> to."""
    srv: Server = environment_server()
    try:
        url, name = target(srv, database)
        name = name or conninfo_to_dict(url).get("dbname")
        if create and ensure_database(url):
            out().print(f"created database {name}")
        before, after, seconds = run_upgrade(url)
        out().print(describe(name, srv.source, before, after, seconds))
    finally:
        srv.release()


@app.command(rich_help_panel=PANEL)
@guard
def downgrade(
    revision: Annotated[str, typer.Argument(help="The revision to go down to: NNNN, or base.")],
    database: DatabaseOption = None,
    drop_data: Annotated[
        bool, typer.Option("--drop-data", help="Confirm dropping operator data (alembic -x drop_data=yes).")
    ] = False,
) -> None:
    """Downgrade to a revision (alembic downgrade). Refused (RO013) while it would drop operator data."""
    srv: Server = environment_server()
    try:
        url, name = target(srv, database)
        name = name or conninfo_to_dict(url).get("dbname")
        try:
            before, after, seconds = run_downgrade(url, revision, drop_data)
        except Exception as exc:  # alembic wraps the driver's error
            pg = exc if isinstance(exc, psycopg.Error) else getattr(exc, "orig", None)
            if isinstance(pg, psycopg.Error) and pg.sqlstate == "RO013":
                print_pg_error(err(), pg)
                err().print(confirm_hint(revision, database))
                raise typer.Exit(1) from None
            raise
        out().print(describe(name, srv.source, before, after, seconds))
    finally:
        srv.release()


@sql_app.command("upgrade")
def sql_upgrade(
    revisions: Annotated[str, typer.Argument(help="TO or FROM:TO, e.g. head, 0005:head.")] = "head",
) -> None:
    """Print the upgrade script (alembic upgrade RANGE --sql)."""
    typer.echo(migrations.offline_sql(revisions), nl=False)


@sql_app.command("downgrade")
def sql_downgrade(
    revisions: Annotated[str, typer.Argument(help="FROM:TO, e.g. head:0005, head:base.")],
    drop_data: Annotated[bool, typer.Option("--drop-data", help="Include the confirmation to drop data.")] = False,
) -> None:
    """Print the downgrade script (alembic downgrade FROM:TO --sql)."""
    if ":" not in revisions:
        err().print(
            Text("ERROR: ", style="bold red")
            + Text(f"an offline downgrade needs FROM:TO (e.g. head:{revisions}), got {revisions!r}")
        )
        raise typer.Exit(2)
    typer.echo(migrations.offline_sql(revisions, downgrade_to=True, drop_data=drop_data), nl=False)
