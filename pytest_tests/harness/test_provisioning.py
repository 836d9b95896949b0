"""SPEC 3: getting a PostgreSQL. The opt-in Docker path skips with a reason where no engine answers;
database URIs of every style (embedded socket URI, plain URI, key=value conninfo) point at another database."""

from __future__ import annotations

import psycopg
import pytest
from psycopg.conninfo import conninfo_to_dict

from chat_rollout import migrate, server
from chat_rollout.server import ServerUnavailable, with_database

# --- opt-in Docker ------------------------------------------------------------------------------------------------


@pytest.mark.docker
def test_docker_path_starts_postgres_15():
    reason = server.docker_unavailable_reason()
    if reason is not None:
        pytest.skip(reason)
    pg = server.docker("15")
    try:
        assert pg.source == "docker postgres:15"
        assert pg.version_num() // 10000 == 15
        migrate.upgrade(pg.url)  # the product installs there like anywhere else
        with psycopg.connect(pg.url, autocommit=True) as conn:
            row = conn.execute("select stage, kill_switch, version from public.chat_get_v11_rollout_state()")
            assert row.fetchone() == ("off", False, 1)
    finally:
        pg.release()


def test_docker_unavailability_is_a_clear_reason_or_none():
    reason = server.docker_unavailable_reason()
    assert reason is None or (isinstance(reason, str) and ("Docker" in reason or "docker" in reason))


def test_docker_path_without_an_engine_refuses_with_the_reason(monkeypatch):
    reason = server.docker_unavailable_reason()
    if reason is None:
        pytest.skip("a Docker engine answers here: nothing to refuse")
    with pytest.raises(ServerUnavailable) as info:
        server.docker("15")
    assert str(info.value) == reason
    # the environment switch takes the same path and says the same thing
    monkeypatch.delenv("DATABASE_URL", raising=False)
    monkeypatch.setenv("CHAT_ROLLOUT_DOCKER", "15")
    with pytest.raises(ServerUnavailable) as info:
        server.from_environment()
    assert str(info.value) == reason


def test_database_url_takes_precedence_over_docker_and_embedded(monkeypatch):
    monkeypatch.setenv("DATABASE_URL", "postgresql://someone@db.example:5433/somewhere")
    monkeypatch.setenv("CHAT_ROLLOUT_DOCKER", "15")
    chosen = server.from_environment()
    assert (chosen.url, chosen.source, chosen.bin_dir) == (
        "postgresql://someone@db.example:5433/somewhere", "DATABASE_URL", None
    )  # fmt: skip


# --- with_database -----------------------------------------------------------------------------------------------


def test_with_database_keeps_the_socket_host_query_of_an_embedded_style_uri():
    url = with_database("postgresql://postgres:@/postgres?host=/tmp/x", "chat_db")
    assert url == "postgresql://postgres:@/chat_db?host=/tmp/x"
    params = conninfo_to_dict(url)
    assert (params["dbname"], params["host"], params["user"]) == ("chat_db", "/tmp/x", "postgres")


def test_with_database_replaces_the_database_of_a_plain_uri():
    url = with_database("postgresql://postgres@127.0.0.1:5432/postgres", "chat_db")
    assert url == "postgresql://postgres@127.0.0.1:5432/chat_db"
    params = conninfo_to_dict(url)
    assert (params["dbname"], params["host"], params["port"], params["user"]) == (
        "chat_db", "127.0.0.1", "5432", "postgres"
    )  # fmt: skip


def test_with_database_adds_a_database_to_a_uri_without_one():
    url = with_database("postgresql://postgres@127.0.0.1:5432", "chat_db")
    assert conninfo_to_dict(url)["dbname"] == "chat_db"


def test_with_database_quotes_a_name_that_needs_it():
    url = with_database("postgresql://postgres@127.0.0.1:5432/postgres?sslmode=disable", "chat db/1")
    params = conninfo_to_dict(url)
    assert (params["dbname"], params["sslmode"]) == ("chat db/1", "disable")


def test_with_database_on_a_key_value_conninfo():
    url = with_database("host=/tmp/x user=postgres dbname=postgres", "chat_db")
    assert conninfo_to_dict(url) == {"host": "/tmp/x", "user": "postgres", "dbname": "chat_db"}


def test_url_for_reaches_that_database_on_the_test_server(pg_server, fresh_db):
    name, _ = fresh_db
    with psycopg.connect(pg_server.url_for(name), autocommit=True) as conn:
        assert conn.execute("select current_database()").fetchone() == (name,)
