"""Alembic environment of chat-rollout: psycopg 3, DSN from DATABASE_URL, bounded lock waits."""

from __future__ import annotations

import os

import psycopg
from alembic import context
from sqlalchemy import create_engine, pool

config = context.config

# Every migration waits at most this long for a lock, so a queued ACCESS EXCLUSIVE never stalls
# the kill switch for long; statement_timeout bounds the whole script.
TIMEOUTS = ("SET LOCAL lock_timeout = '5s'", "SET LOCAL statement_timeout = '5min'")

# Every migration first takes the state table in ACCESS EXCLUSIVE mode: a state call that arrives meanwhile
# waits in chat_v11.peek_state() or chat_v11.lock_state() and fails fast naming the migration (RO010), or runs
# after the commit with fresh plans -- it never trips over an object the migration is dropping or replacing.
# Readers of the state wait for the commit (a migration is one short transaction). EXCLUSIVE mode (revisions
# 0001-0004) let readers go on, but a revision that alters the state table (0005) then had to upgrade that lock,
# and a state call holding AccessShareLock from its peek while waiting for the row deadlocked with the upgrade.
STATE_LOCK = """DO $state_lock$
BEGIN
    IF to_regclass('chat_v11.rollout_state') IS NOT NULL THEN
        LOCK TABLE chat_v11.rollout_state IN ACCESS EXCLUSIVE MODE;
    END IF;
END
$state_lock$"""


def _dsn() -> str:
    dsn = config.attributes.get("dsn") or os.environ.get("DATABASE_URL")
    if not dsn:
        raise SystemExit(
            "DATABASE_URL is not set: export DATABASE_URL=postgresql://user@host:5432/dbname "
            "(or use --sql for an offline script)"
        )
    return dsn


def run_offline() -> None:
    context.configure(dialect_name="postgresql", transactional_ddl=True, literal_binds=True)
    with context.begin_transaction():
        for statement in (*TIMEOUTS, STATE_LOCK):
            context.execute(statement)
        context.run_migrations()


def run_online() -> None:
    dsn = _dsn()
    engine = create_engine("postgresql+psycopg://", creator=lambda: psycopg.connect(dsn), poolclass=pool.NullPool)
    with engine.connect() as connection:
        context.configure(connection=connection, transactional_ddl=True)
        with context.begin_transaction():
            for statement in (*TIMEOUTS, STATE_LOCK):
                context.execute(statement)
            context.run_migrations()


if context.is_offline_mode():
    run_offline()
else:
    run_online()
