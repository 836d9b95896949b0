"""Small helpers the tests share: calls, refusals, arranging a state."""

from __future__ import annotations

import json
import time

import psycopg
import pytest
from psycopg import sql
from psycopg.conninfo import make_conninfo
from typer.testing import CliRunner

from chat_rollout import PROJECT_ROOT, cli

# the example postmortem of the docs, complete (playbook section 10)
POSTMORTEM = json.loads((PROJECT_ROOT / "docs" / "examples" / "postmortem.json").read_text(encoding="utf-8"))

_runner = CliRunner()


def login(db_url: str, user: str, **kwargs) -> psycopg.Connection:
    """An autocommit connection to the test database as another login (the template grants the chat_test_* roles)."""
    return psycopg.connect(make_conninfo(db_url, user=user), autocommit=True, **kwargs)


def state(conn: psycopg.Connection) -> dict:
    cur = conn.cursor(row_factory=psycopg.rows.dict_row)
    return cur.execute("select * from public.chat_get_v11_rollout_state()").fetchone()


def history(conn: psycopg.Connection, limit: int = 1000) -> list[dict]:
    cur = conn.cursor(row_factory=psycopg.rows.dict_row)
    return cur.execute("select * from public.chat_get_v11_rollout_history(%s)", (limit,)).fetchall()


def set_state(conn: psycopg.Connection, stage, kill_switch, reason) -> dict:
    cur = conn.cursor(row_factory=psycopg.rows.dict_row)
    return cur.execute(
        "select * from public.chat_set_v11_rollout_state(%s, %s, %s)", (stage, kill_switch, reason)
    ).fetchone()


def refused(conn: psycopg.Connection, sql: str, params=None) -> psycopg.Error:
    """Run a call that must be refused; returns the error (assert its diag.sqlstate)."""
    with pytest.raises(psycopg.Error) as info:
        conn.execute(sql, params)
    return info.value


def arrange_state(conn: psycopg.Connection, action: str, stage: str, kill_switch: bool, frozen: bool) -> None:
    """Test setup only: put the rollout at a state the public guards cannot reach without metric data.

    Goes through the same internal write path as the API (lock, state row, chained history row).
    """
    with conn.transaction():
        conn.execute("select chat_v11.lock_state()")
        conn.execute(
            "select chat_v11.apply_transition(%s, %s, %s, %s, 'test arrangement', null, null, 'test')",
            (action, stage, kill_switch, frozen),
        )


def snapshot(conn: psycopg.Connection) -> tuple:
    """State and full history, to prove a refusal changed nothing."""
    return (state(conn), history(conn))


def chat_tables(conn: psycopg.Connection) -> list[str]:
    """The tables of schema chat_v11 (partitioned parents included), from the catalog."""
    rows = conn.execute(
        "select c.relname from pg_class c where c.relnamespace = 'chat_v11'::regnamespace "
        "and c.relkind in ('r', 'p') order by 1"
    ).fetchall()
    return [r[0] for r in rows]


def fingerprint(conn: psycopg.Connection) -> dict[str, tuple]:
    """(row count, md5 of every row) of every table in chat_v11, found in the catalog: proves nothing was written."""
    result = {}
    for table in chat_tables(conn):
        query = sql.SQL(
            "select count(*), md5(coalesce(string_agg(t::text, ',' order by t::text), '')) from chat_v11.{} t"
        ).format(sql.Identifier(table))
        result[table] = conn.execute(query).fetchone()
    return result


def admin_connect(server) -> psycopg.Connection:
    return psycopg.connect(server.url, autocommit=True)


def create_database(server, name: str, template: str | None = None) -> str:
    with admin_connect(server) as conn:
        conn.execute(f'drop database if exists "{name}" with (force)')
        if template:
            conn.execute(f'create database "{name}" template "{template}"')
        else:
            conn.execute(f'create database "{name}"')
    return server.url_for(name)


def drop_database(server, name: str) -> None:
    with admin_connect(server) as conn:
        conn.execute(f'drop database if exists "{name}" with (force)')


def invoke(args: list[str], url: str, **env: str | None):
    """Run the CLI with DATABASE_URL=url and a wide, colourless console."""
    environment = {"DATABASE_URL": url, "COLUMNS": "200", "NO_COLOR": "1", "CHAT_ROLLOUT_DOCKER": None, **env}
    return _runner.invoke(cli.app, args, env=environment)


def wait_for_listener(conn: psycopg.Connection, dbname: str, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        listening = conn.execute(
            "select 1 from pg_stat_activity where datname = %s and application_name = 'chat-rollout watch' "
            "and query ilike 'listen%%' and state = 'idle'",
            (dbname,),
        ).fetchone()
        if listening:
            return
        time.sleep(0.05)
    raise AssertionError("chat-rollout watch did not start listening")
