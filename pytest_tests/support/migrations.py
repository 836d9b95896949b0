"""What the migration tests share: the head revision, the revision a database is at, the error behind Alembic's."""

from __future__ import annotations

import psycopg
import sqlalchemy.exc

from chat_rollout import PROJECT_ROOT

#: The newest revision folder (the tests check Alembic agrees that it is the one head).
HEAD = sorted(p.name for p in (PROJECT_ROOT / "migrations" / "versions").glob("[0-9][0-9][0-9][0-9]_*"))[-1][:4]


def query(url: str, sql: str, params=None) -> list[tuple]:
    with psycopg.connect(url, autocommit=True) as conn:
        return conn.execute(sql, params).fetchall()


def alembic_version(url: str) -> list[str]:
    return [row[0] for row in query(url, "select version_num from public.alembic_version")]


def psycopg_error(exc: BaseException) -> psycopg.Error:
    """The server's error behind what Alembic raised (SQLAlchemy wraps what goes through op.execute)."""
    return exc.orig if isinstance(exc, sqlalchemy.exc.DBAPIError) else exc
