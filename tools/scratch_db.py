"""What the plpgsql_check tools share: a migrated scratch database with the extension, dropped afterwards."""

from __future__ import annotations

import os
import secrets
import sys
from collections.abc import Callable

import psycopg
from psycopg import sql
from psycopg.conninfo import make_conninfo

from chat_rollout.migrate import upgrade


def run_in_scratch(url: str, prefix: str, body: Callable[[psycopg.Connection, str, str, str], int]) -> int:
    """Create `<prefix>_<pid>_<hex>` on the server of `url`, migrate it to head, create plpgsql_check in it
    and call body(connection, scratch URL, scratch name, server version); the database is always dropped.
    Returns body's code, or 2 when the extension is not installed on that server."""
    with psycopg.connect(url, autocommit=True) as conn:
        server = conn.execute("show server_version").fetchone()[0]
    scratch = f"{prefix}_{os.getpid()}_{secrets.token_hex(3)}"
    scratch_url = make_conninfo(url, dbname=scratch)
    with psycopg.connect(url, autocommit=True) as admin:
        admin.execute(sql.SQL("create database {}").format(sql.Identifier(scratch)))
        try:
            upgrade(scratch_url)
            with psycopg.connect(scratch_url, autocommit=True) as conn:
                try:
                    conn.execute("create extension plpgsql_check")
                except psycopg.Error as exc:
                    print(f"error: create extension plpgsql_check failed: {exc}".rstrip(), file=sys.stderr)
                    print("hint: install it on that server (Debian: postgresql-NN-plpgsql-check)", file=sys.stderr)
                    return 2
                return body(conn, scratch_url, scratch, server)
        finally:
            admin.execute(sql.SQL("drop database if exists {} with (force)").format(sql.Identifier(scratch)))
