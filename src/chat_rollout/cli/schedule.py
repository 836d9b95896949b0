"""``chat-rollout schedule --ingest-login NAME [--print | --apply]``: the pg_cron jobs of one database, as the SQL
README's "Scheduling and managed PostgreSQL" documents.

- ``chat-guardrails``: ``chat_run_v11_guardrails()`` every minute on pg_cron 1.4 (Debian 12's 1.4.2 has minute
  granularity: ``'5 seconds'`` is "invalid schedule"), every 5 seconds on pg_cron 1.5 and later;
- ``chat-progression``: ``chat_run_v11_progression()`` (SPEC 9) on the guardrails' schedule: it promotes nothing
  until an admin sets a stage policy with ``auto_promote``;
- ``chat-maintenance``: ``chat_run_v11_maintenance()`` hourly, in its own transaction (a pg_cron job is one);
- all three as the ingest login (``cron.schedule_in_database(…, username)``), never as the superuser who schedules them;
- ``chat-cron-history``: the run history bounded, ``cron.job_run_details`` rows older than 7 days deleted hourly, as
  the cron owner (the only one who sees every job's rows: the table's row security shows each user its own).

The SQL runs in the database pg_cron lives in (``cron.database_name``) as the cron owner (a superuser, or the
provider's pg_cron admin): ``--print`` (the default) prints it for review, ``--apply`` runs it in one transaction and
lists the jobs. The version comes from the server (``select extversion from pg_extension where extname =
'pg_cron'``) unless ``--pg-cron-version`` names one (printing only). The ingest login is checked first: a login that
cannot run the guardrails would fail every minute, visible only in ``cron.job_run_details``.
"""

from __future__ import annotations

import re
from typing import Annotated

import psycopg
import typer

from ..connect import connect
from ..server import with_database
from .common import DatabaseOption, Refusal, environment_server, guard, out, target

app = typer.Typer()  # schedule: a command of the root

PANEL = "Server and migrations (DBA)"
INGEST_GROUP = "chat_rollout_ingest"
GUARDRAILS, MAINTENANCE, HISTORY = "chat-guardrails", "chat-maintenance", "chat-cron-history"
PROGRESSION = "chat-progression"
INGEST_JOBS = (GUARDRAILS, PROGRESSION, MAINTENANCE)  # this database's jobs, as the ingest login
GUARDRAILS_SQL = "select * from public.chat_run_v11_guardrails()"
PROGRESSION_SQL = "select * from public.chat_run_v11_progression()"
MAINTENANCE_SQL = "select * from public.chat_run_v11_maintenance()"
MAINTENANCE_SCHEDULE = "17 * * * *"
HISTORY_SCHEDULE = "47 * * * *"
HISTORY_KEPT = "7 days"
HISTORY_SQL = f"delete from cron.job_run_details where end_time < now() - interval '{HISTORY_KEPT}'"


def literal(text: str) -> str:
    """A SQL string literal (standard_conforming_strings is on since PostgreSQL 9.1)."""
    return "'" + text.replace("'", "''") + "'"


def parse_version(text: str) -> tuple[int, int]:
    """(major, minor) of a pg_cron version as pg_extension.extversion writes it: '1.4-1' -> (1, 4)."""
    match = re.match(r"\s*(\d+)\.(\d+)", text)
    if not match:
        raise Refusal(f"cannot read the pg_cron version {text!r}", hint="Name it as 1.4 or 1.6, for instance.")
    return int(match[1]), int(match[2])


def guardrails_schedule(version: tuple[int, int]) -> str:
    """Every 5 seconds where pg_cron knows seconds (1.5 and later), else every minute."""
    return "5 seconds" if version >= (1, 5) else "* * * * *"


def jobs_sql(database: str, ingest_login: str, version_text: str, cron_database: str | None) -> str:
    """The script: unschedule this database's earlier chat-rollout jobs, schedule the four jobs."""
    version = parse_version(version_text)
    if version < (1, 4):
        raise Refusal(
            f"pg_cron {version_text} has no cron.schedule_in_database(…, username): jobs would run as their scheduler",
            hint="ALTER EXTENSION pg_cron UPDATE (1.4 or later) in the cron database.",
        )
    db, login = literal(database), literal(ingest_login)
    every = guardrails_schedule(version)
    where = f"database {cron_database} (cron.database_name)" if cron_database else "the database of cron.database_name"
    granularity = "every 5 seconds (pg_cron >= 1.5)" if version >= (1, 5) else "every minute (pg_cron 1.4: no seconds)"
    return "\n".join([
        f"-- chat-rollout schedule: pg_cron {version_text}; jobs of database {database} run as {ingest_login}.",
        f"-- Run in {where} as the cron owner (a superuser or the provider's",
        "-- pg_cron admin), in one transaction. Earlier chat-rollout jobs of this database go first, whoever ran them.",
        "select cron.unschedule(jobid) from cron.job",
        f" where jobname in ({', '.join(literal(j) for j in INGEST_JOBS)}) and database = {db};",
        f"-- the guardrails {granularity}, as the ingest login",
        f"select cron.schedule_in_database({literal(GUARDRAILS)}, {literal(every)}, {literal(GUARDRAILS_SQL)},",
        f"                                 {db}, {login});",
        "-- automatic progression on the same schedule, as the ingest login (nothing moves until a stage policy says",
        "-- auto_promote; the scheduler's login never counts as an approver of its own promotions)",
        f"select cron.schedule_in_database({literal(PROGRESSION)}, {literal(every)}, {literal(PROGRESSION_SQL)},",
        f"                                 {db}, {login});",
        "-- partition maintenance hourly, in its own transaction (a pg_cron job is one), as the ingest login",
        f"select cron.schedule_in_database({literal(MAINTENANCE)}, {literal(MAINTENANCE_SCHEDULE)}, "
        f"{literal(MAINTENANCE_SQL)},",
        f"                                 {db}, {login});",
        f"-- the run history bounded: rows older than {HISTORY_KEPT} deleted hourly, as the cron owner",
        "-- (who sees every job's rows: row security shows any other user only its own)",
        f"select cron.schedule_in_database({literal(HISTORY)}, {literal(HISTORY_SCHEDULE)},",
        f"                                 $${HISTORY_SQL}$$,",
        "                                 current_database(), current_user::text);",
        "",
    ])


def statements(script: str) -> list[str]:
    """The script's statements, one by one (its comments dropped; no statement holds a ';' inside)."""
    body = "\n".join(line for line in script.splitlines() if not line.startswith("--"))
    return [s.strip() for s in body.split(";") if s.strip()]


def check_ingest_login(conn: psycopg.Connection, login: str) -> None:
    """Refuse a login whose job would fail (or run as a superuser): it must exist, log in, connect, be ingest."""
    row = conn.execute(
        "select r.rolcanlogin, r.rolsuper, pg_has_role(r.oid, %s, 'member'), "
        "has_database_privilege(r.oid, current_database(), 'CONNECT'), current_database() "
        "from pg_roles r where r.rolname = %s",
        (INGEST_GROUP, login),
    ).fetchone()
    create = f"create role {login} login in role {INGEST_GROUP}"
    create_login = f"create role cron_ingest login in role {INGEST_GROUP}"
    if row is None:
        raise Refusal(f"no role {login}", hint=f"Create the ingest login first: {create}")
    can_login, superuser, ingest, connect, database = row
    if superuser:
        raise Refusal(f"{login} is a superuser: the guardrails run as an ingest login, never as a superuser",
                      hint=create_login)
    if not can_login:
        raise Refusal(f"{login} cannot log in: pg_cron starts each job as a session of that role",
                      hint=f"Schedule as a login of the group (group roles stay NOLOGIN): {create_login}")
    if not ingest:
        raise Refusal(
            f"{login} is not a member of {INGEST_GROUP}: its job would fail every run with permission denied, "
            "visible only in cron.job_run_details", hint=f"grant {INGEST_GROUP} to {login}")
    if not connect:
        raise Refusal(f"{login} may not connect to database {database}",
                      hint=f'grant connect on database "{database}" to {login}')


def check_job_names(cron: psycopg.Connection, database: str, login: str) -> None:
    """pg_cron keys a job by (name, username): the same login's job of another database would be moved here."""
    other = cron.execute(
        "select database from cron.job where jobname = any(%s) and username = %s and database <> %s limit 1",
        (list(INGEST_JOBS), login, database),
    ).fetchone()
    if other:
        raise Refusal(
            f"{login} already runs the chat-rollout jobs of database {other[0]}: pg_cron keys a job by name and "
            "username, so scheduling them here would move that database's jobs",
            hint="Give each database (environment) its own ingest login.",
        )


@app.command(rich_help_panel=PANEL)
@guard
def schedule(
    ingest_login: Annotated[
        str, typer.Option("--ingest-login", help="The login the jobs run as (a member of chat_rollout_ingest).")
    ],
    database: DatabaseOption = None,
    print_only: Annotated[
        bool, typer.Option("--print/--apply", help="Print the SQL (default) or run it as DATABASE_URL's user.")
    ] = True,
    pg_cron_version: Annotated[
        str | None,
        typer.Option("--pg-cron-version", help="Print for this pg_cron version instead of the server's (1.4, 1.6)."),
    ] = None,
) -> None:
    """Schedule the guardrails, the progression and the maintenance with pg_cron as an ingest login; bound the run
    history."""
    apply = not print_only
    srv = environment_server()
    try:
        url, _ = target(srv, database)
        with connect(url, autocommit=True, application_name="chat-rollout schedule") as conn:
            name = conn.execute("select current_database()").fetchone()[0]
            check_ingest_login(conn, ingest_login)
            cron_database = conn.execute("select current_setting('cron.database_name', true)").fetchone()[0]
        if pg_cron_version is not None and not apply:
            typer.echo(jobs_sql(name, ingest_login, pg_cron_version, cron_database), nl=False)
            return
        if not cron_database:
            raise Refusal(
                "pg_cron is not loaded on this server (no cron.database_name)",
                hint="shared_preload_libraries = 'pg_cron' and cron.database_name in postgresql.conf, restart, "
                "then CREATE EXTENSION pg_cron in that database (or --pg-cron-version to print the SQL only).",
            )
        with connect(with_database(url, cron_database), autocommit=True,
                     application_name="chat-rollout schedule") as cron:
            row = cron.execute("select extversion from pg_extension where extname = 'pg_cron'").fetchone()
            if row is None:
                raise Refusal(f"pg_cron is not installed in database {cron_database} (cron.database_name)",
                              hint=f"CREATE EXTENSION pg_cron in database {cron_database}.")
            check_job_names(cron, name, ingest_login)
            script = jobs_sql(name, ingest_login, row[0], cron_database)
            if not apply:
                typer.echo(script, nl=False)
                return
            with cron.transaction():
                for statement in statements(script):
                    cron.execute(statement)
            jobs = cron.execute(
                "select jobid, jobname, schedule, database, username from cron.job "
                "where jobname = %s or (jobname = any(%s) and database = %s) order by jobid",
                (HISTORY, list(INGEST_JOBS), name),
            ).fetchall()
        console = out()
        console.print(f"scheduled with pg_cron {row[0]} in database {cron_database}:", soft_wrap=True, markup=False)
        for jobid, jobname, when, db, user in jobs:
            console.print(f"  job {jobid} {jobname}: '{when}' in database {db} as {user}", soft_wrap=True,
                          markup=False)
    finally:
        srv.release()
