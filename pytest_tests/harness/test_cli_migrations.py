"""Issue 14, step 1 (the DBA's commands): `migrate` creates the URL's own database and says what it did,
`downgrade` turns a refusal (RO013) into one clean paragraph with the confirming command, `sql upgrade|downgrade`
prints the same bytes as `alembic … --sql`."""

from __future__ import annotations

import os

import psycopg
from typer.testing import CliRunner

from chat_rollout import cli, migrate
from pytest_tests.support.calls import set_state
from pytest_tests.support.databases import drop_database

runner = CliRunner()


def invoke(args: list[str], url: str):
    return runner.invoke(cli.app, args, env={"DATABASE_URL": url, "COLUMNS": "200", "NO_COLOR": "1"})


def test_migrate_creates_the_urls_own_database_and_says_from_where_to_where(pg_server):
    name = f"chat_rollout_cli_own{os.getpid()}"
    drop_database(pg_server, name)
    try:
        result = invoke(["migrate"], pg_server.url_for(name))
        assert result.exit_code == 0, result.output
        assert f"created database {name}" in result.output
        head = migrate.offline_sql("head").split("UPDATE alembic_version SET version_num='")[-1][:4]
        assert f"is at alembic revision {head} (was none, took " in result.output
        again = invoke(["migrate"], pg_server.url_for(name))
        assert "created database" not in again.output and "(nothing to do)" in again.output
    finally:
        drop_database(pg_server, name)


def test_a_refused_downgrade_is_one_clean_paragraph_naming_the_confirming_command(db_url):
    with psycopg.connect(db_url, autocommit=True) as conn:
        set_state(conn, "off", True, "kill switch")  # history beyond init: operator data
    result = invoke(["downgrade", "base"], db_url)
    assert result.exit_code == 1
    out = " ".join(result.output.split())
    assert out.startswith("ERROR RO013: ")
    assert "DETAIL: " in out and "HINT: " in out
    assert "chat-rollout downgrade base --drop-data" in out
    assert "Traceback" not in result.output
    with psycopg.connect(db_url, autocommit=True) as conn:  # nothing changed
        assert conn.execute("select count(*) from chat_v11.rollout_history").fetchone()[0] == 2


def test_a_confirmed_downgrade_says_what_it_did(db_url):
    with psycopg.connect(db_url, autocommit=True) as conn:
        set_state(conn, "off", True, "kill switch")
    result = invoke(["downgrade", "base", "--drop-data"], db_url)
    assert result.exit_code == 0, result.output
    assert "is at alembic revision none (base) (was " in " ".join(result.output.split())


def test_the_offline_scripts_are_the_bytes_alembic_prints(db_url):
    assert invoke(["sql", "upgrade", "head"], db_url).output == migrate.offline_sql("head")
    down = invoke(["sql", "downgrade", "head:base"], db_url).output
    assert down == migrate.offline_sql("head:base", downgrade_to=True)
    confirmed = invoke(["sql", "downgrade", "head:base", "--drop-data"], db_url).output
    assert "SET LOCAL chat_rollout.drop_data = 'yes'" in confirmed
    refused = invoke(["sql", "downgrade", "base"], db_url)
    assert refused.exit_code == 2 and "FROM:TO" in refused.output
