"""The public API as the tests call it: state, history and gates, refusals, arranging a state, the CLI."""

from __future__ import annotations

import time

import psycopg
import pytest
from psycopg.conninfo import make_conninfo
from typer.testing import CliRunner

from chat_rollout import cli

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


def gates(conn: psycopg.Connection, at=None) -> dict:
    """chat_get_v11_release_gates(), now or at a past moment."""
    cur = conn.cursor(row_factory=psycopg.rows.dict_row)
    if at is None:
        return cur.execute("select * from chat_get_v11_release_gates()").fetchone()
    return cur.execute("select * from chat_get_v11_release_gates(%s)", (at,)).fetchone()


def checks(conn: psycopg.Connection, at=None) -> dict:
    """chat_get_v11_gate_checks(), now or at a past moment, keyed by metric."""
    cur = conn.cursor(row_factory=psycopg.rows.dict_row)
    rows = cur.execute("select * from chat_get_v11_gate_checks(coalesce(%s, now()))", (at,)).fetchall()
    return {r["metric"]: r for r in rows}


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


def invoke(args: list[str], url: str, **env: str | None):
    """Run the CLI with DATABASE_URL=url and a wide, colourless console."""
    environment = {"DATABASE_URL": url, "COLUMNS": "200", "NO_COLOR": "1", "CHAT_ROLLOUT_DOCKER": None, **env}
    return _runner.invoke(cli.app, args, env=environment)


def wait_for_listener(conn: psycopg.Connection, dbname: str, timeout: float = 10.0) -> None:
    """Wait until `chat-rollout watch` LISTENs on database dbname (seen from conn's pg_stat_activity)."""
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
