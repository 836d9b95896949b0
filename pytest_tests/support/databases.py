"""Databases on the suite's server (create, clone, drop) and a fingerprint of schema chat_v11."""

from __future__ import annotations

import psycopg
from psycopg import sql


def admin_connect(server) -> psycopg.Connection:
    """An autocommit connection to the server's maintenance database (``server.url``)."""
    return psycopg.connect(server.url, autocommit=True)


def create_database(server, name: str, template: str | None = None) -> str:
    """(Re)create database ``name``, empty or a clone of ``template``; returns its URL."""
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
