"""SPEC 4 (install) and STYLE "The SQL is the product": Alembic upgrade/downgrade online and offline,
the operator-data guard of the downgrade (RO013), frozen revisions and the sql/ drift test."""

from __future__ import annotations

import itertools
import os
import subprocess
from pathlib import Path

import psycopg
import pytest
import sqlalchemy.exc
from alembic.script import ScriptDirectory

from chat_rollout import PROJECT_ROOT, migrate
from chat_rollout.migration_support import frozen_sql
from pytest_tests.support.calls import history, set_state, state
from pytest_tests.support.catalog import assert_same_catalog, catalog_diff, catalog_of
from pytest_tests.support.migrations import HEAD, alembic_version, psycopg_error, query

SQL_DIR = PROJECT_ROOT / "sql"
_names = itertools.count(1)


# --- helpers ------------------------------------------------------------------------------------------------


def run_psql(pg_server, url: str, script: Path) -> subprocess.CompletedProcess:
    """Apply a script the way a DBA does: psql -X -q -v ON_ERROR_STOP=1 -f, errors with their SQLSTATE."""
    return subprocess.run(
        [pg_server.tool("psql"), "-X", "-q", "-v", "ON_ERROR_STOP=1", "-v", "VERBOSITY=verbose", "-d", url,
         "-f", str(script)],
        capture_output=True,
        text=True,
        timeout=120,
    )  # fmt: skip


def chat_v11_exists(url: str) -> bool:
    return query(url, "select exists (select from pg_catalog.pg_namespace where nspname = 'chat_v11')")[0][0]


def api_functions(url: str) -> list[str]:
    """The public chat_*_v11_* functions, as regprocedure text."""
    return [
        row[0]
        for row in query(
            url,
            r"""
            select p.oid::regprocedure::text
              from pg_catalog.pg_proc as p
             where p.pronamespace = 'public'::regnamespace and p.proname like 'chat\_%\_v11\_%'
             order by 1
            """,
        )
    ]


def operator_data(url: str) -> dict:
    """Every row of the tables holding operator data, verbatim (hashes and timestamps included)."""
    with psycopg.connect(url, autocommit=True) as conn:
        return {
            table: conn.execute(f"select * from chat_v11.{table} order by 1").fetchall()
            for table in ("rollout_state", "rollout_history", "config_change", "policy", "stage", "metric")
        }


def make_operator_data(conn: psycopg.Connection, kind: str) -> None:
    if kind in ("history", "both"):
        set_state(conn, "off", False, "hold")
    if kind in ("policy", "both"):
        conn.execute("""select * from public.chat_set_v11_policy('state_lock_timeout', '"3 seconds"')""")


def write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


@pytest.fixture
def other_empty_db(pg_server):
    """A second empty database (url), for tests that compare two builds."""
    name = f"chat_rollout_o{os.getpid()}_{next(_names)}"
    with psycopg.connect(pg_server.url, autocommit=True) as conn:
        conn.execute(f'drop database if exists "{name}" with (force)')
        conn.execute(f'create database "{name}"')
    yield pg_server.url_for(name)
    with psycopg.connect(pg_server.url, autocommit=True) as conn:
        conn.execute(f'drop database if exists "{name}" with (force)')


@pytest.fixture
def with_data(fresh_db, request):
    """(url, kind) of a migrated clone holding operator data of the given kind (default: both)."""
    kind = getattr(request, "param", "both")
    _, url = fresh_db
    with psycopg.connect(url, autocommit=True) as conn:
        make_operator_data(conn, kind)
    return url, kind


# --- the revision tree ----------------------------------------------------------------------------------------


def script_directory() -> ScriptDirectory:
    return ScriptDirectory.from_config(migrate.alembic_config())


def test_there_is_exactly_one_head():
    assert script_directory().get_heads() == [HEAD]


def test_every_revision_applies_its_frozen_sql_never_the_live_sql_tree():
    revisions = list(script_directory().walk_revisions())
    assert revisions, "no revisions found"
    for rev in revisions:
        folder = Path(rev.path).parent
        assert Path(rev.path).name == "revision.py" and folder.name.startswith(f"{rev.revision}_"), rev.path
        source = Path(rev.path).read_text(encoding="utf-8")
        assert "PROJECT_ROOT" not in source, f"{rev.path} reaches into the project tree"
        assert "/sql/" not in source, f"{rev.path} names the live sql/ tree"
        for direction in ("upgrade", "downgrade"):
            frozen = folder / f"{direction}.sql"
            assert frozen.is_file(), f"revision {rev.revision} has no frozen {direction} script"
            assert frozen_sql(rev.path, direction) == frozen.read_text(encoding="utf-8")
            assert frozen.read_text(encoding="utf-8").strip()


def test_migrations_set_a_lock_timeout_before_any_revision_runs():
    for script in (migrate.offline_sql("head"), migrate.offline_sql("head:base", downgrade_to=True)):
        first_revision = script.find("-- Running ")
        assert first_revision > 0
        assert 0 <= script.find("SET LOCAL lock_timeout") < first_revision


# --- online: upgrade, downgrade, upgrade -----------------------------------------------------------------------


def test_upgrade_downgrade_upgrade_on_an_empty_database(empty_db):
    _, url = empty_db
    empty = catalog_of(url)

    migrate.upgrade(url)
    first = catalog_of(url)
    assert alembic_version(url) == [HEAD]
    assert "chat_v11" in first["schemas"]

    # only the init row: nothing to protect, no confirmation needed
    migrate.downgrade(url)
    assert alembic_version(url) == []
    assert not chat_v11_exists(url)
    assert api_functions(url) == []
    assert_same_catalog(empty, catalog_of(url), "empty database", "after downgrade base")

    migrate.upgrade(url)
    assert alembic_version(url) == [HEAD]
    assert_same_catalog(first, catalog_of(url), "first upgrade", "second upgrade")
    with psycopg.connect(url, autocommit=True) as conn:
        s = state(conn)
        assert (s["stage"], s["kill_switch"], s["promotion_frozen"], s["version"]) == ("off", False, False, 1)
        assert [(r["version"], r["action"], r["to_stage"]) for r in history(conn)] == [(1, "init", "off")]
        assert conn.execute("select ok, rows_checked from public.chat_verify_v11_history()").fetchone() == (True, 1)
        # and the API accepts calls again
        assert set_state(conn, "off", False, "hold")["version"] == 2


# --- online: the operator-data guard --------------------------------------------------------------------------


@pytest.mark.parametrize("with_data", ["history", "policy", "both"], indirect=True)
def test_downgrade_refuses_while_operator_data_exists(with_data):
    url, _ = with_data
    catalog_before, data_before = catalog_of(url), operator_data(url)

    with pytest.raises((psycopg.Error, sqlalchemy.exc.DBAPIError)) as info:
        migrate.downgrade(url)
    err = psycopg_error(info.value)
    assert err.sqlstate == "RO013"
    assert err.diag.sqlstate == "RO013"
    assert err.diag.message_detail and err.diag.message_hint

    assert chat_v11_exists(url)
    assert operator_data(url) == data_before
    assert_same_catalog(catalog_before, catalog_of(url), "before the refused downgrade", "after")
    assert alembic_version(url) == [HEAD]


def test_downgrade_with_drop_data_confirmed_removes_everything(with_data, other_empty_db):
    url, _ = with_data
    assert len(api_functions(url)) >= 9

    migrate.downgrade(url, drop_data=True)

    assert not chat_v11_exists(url)
    assert api_functions(url) == []
    assert alembic_version(url) == []
    assert_same_catalog(catalog_of(other_empty_db), catalog_of(url), "empty database", "after downgrade base")


# --- offline (--sql): the same guard, in the script a DBA applies with psql ----------------------------------


def test_offline_downgrade_refuses_while_operator_data_exists(pg_server, with_data, tmp_path):
    url, _ = with_data
    script = migrate.offline_sql("head:base", downgrade_to=True)
    assert "SET LOCAL chat_rollout.drop_data" not in script
    catalog_before, data_before = catalog_of(url), operator_data(url)

    result = run_psql(pg_server, url, write(tmp_path, "downgrade.sql", script))

    assert result.returncode == 3, result.stderr  # psql: a script error under ON_ERROR_STOP
    assert "RO013" in result.stderr
    assert chat_v11_exists(url)
    assert operator_data(url) == data_before
    assert_same_catalog(catalog_before, catalog_of(url), "before the refused downgrade", "after")
    assert alembic_version(url) == [HEAD]


def test_offline_downgrade_with_drop_data_confirmed_applies(pg_server, with_data, other_empty_db, tmp_path):
    url, _ = with_data
    script = migrate.offline_sql("head:base", downgrade_to=True, drop_data=True)
    confirmation = script.find("SET LOCAL chat_rollout.drop_data = 'yes'")
    assert 0 <= confirmation < script.find("do $guard$")

    result = run_psql(pg_server, url, write(tmp_path, "downgrade.sql", script))

    assert result.returncode == 0, result.stderr
    assert not chat_v11_exists(url)
    assert api_functions(url) == []
    assert alembic_version(url) == []
    assert_same_catalog(catalog_of(other_empty_db), catalog_of(url), "empty database", "after offline downgrade")


# --- offline upgrade and drift ----------------------------------------------------------------------------------


def test_offline_upgrade_script_gives_the_same_catalog_as_the_online_upgrade(
    pg_server, empty_db, other_empty_db, tmp_path
):
    _, offline_url = empty_db
    result = run_psql(pg_server, offline_url, write(tmp_path, "upgrade.sql", migrate.offline_sql("head")))
    assert result.returncode == 0, result.stderr
    migrate.upgrade(other_empty_db)

    assert alembic_version(offline_url) == alembic_version(other_empty_db) == [HEAD]
    assert_same_catalog(catalog_of(other_empty_db), catalog_of(offline_url), "online upgrade", "upgrade --sql + psql")


def test_the_sql_tree_and_alembic_head_build_the_same_database(pg_server, empty_db, other_empty_db, tmp_path):
    _, from_sql_url = empty_db
    files = sorted(SQL_DIR.glob("*.sql"))
    assert files
    tree = "\n".join(f"-- {f.name}\n{f.read_text(encoding='utf-8').rstrip()}\n" for f in files)
    result = run_psql(pg_server, from_sql_url, write(tmp_path, "sql_tree.sql", tree))
    assert result.returncode == 0, result.stderr
    migrate.upgrade(other_empty_db)

    assert_same_catalog(
        catalog_of(other_empty_db), catalog_of(from_sql_url), "alembic upgrade head", "sql/*.sql in name order"
    )


# --- the comparison itself ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "change, expected_in_diff",
    [
        ("alter function public.chat_verify_v11_history(bigint, text) set work_mem = '1MB'", "work_mem"),
        ("comment on function public.chat_get_v11_rollout_state() is 'changed'", "changed"),
        ("grant execute on function public.chat_set_v11_rollout_state(text, boolean, text) to public", "=X/"),
        ("alter table chat_v11.rollout_history alter column note set default 'x'", "'x'::text"),
        ("create index history_reason_idx on chat_v11.rollout_history (reason)", "history_reason_idx"),
        ("update chat_v11.policy set value = '\"5 seconds\"' where key = 'state_lock_timeout'", "5 seconds"),
        ("alter table chat_v11.stage drop constraint stage_name_valid", "stage_name_valid"),
    ],
)
def test_the_catalog_comparison_sees_a_change(db_url, change, expected_in_diff):
    before = catalog_of(db_url)
    with psycopg.connect(db_url, autocommit=True) as conn:
        conn.execute(change)
    diff = catalog_diff(before, catalog_of(db_url), "before", "after")
    assert diff
    changed = [line for line in diff.splitlines() if line[:1] in "+-" and line[:3] not in ("+++", "---")]
    assert any(expected_in_diff in line for line in changed), diff


def test_downgrade_keeps_group_roles_granted_to_login_roles(empty_db):
    _, url = empty_db
    migrate.upgrade(url)
    with psycopg.connect(url, autocommit=True) as conn:
        if not conn.execute("select 1 from pg_roles where rolname = 'chat_test_alice'").fetchone():
            conn.execute("create role chat_test_alice login")
        conn.execute("grant chat_rollout_operator to chat_test_alice")
    migrate.downgrade(url)
    with psycopg.connect(url, autocommit=True) as conn:
        assert conn.execute("select to_regnamespace('chat_v11')").fetchone()[0] is None
        assert conn.execute("select pg_has_role('chat_test_alice', 'chat_rollout_operator', 'member')").fetchone()[0]
    migrate.upgrade(url)
    with psycopg.connect(url, autocommit=True) as conn:
        assert conn.execute(
            "select has_function_privilege('chat_test_alice', 'chat_set_v11_rollout_state(text,boolean,text)', "
            "'execute')"
        ).fetchone()[0]


def test_upgrade_0001_to_0002_keeps_history_and_the_0002_downgrade_guards_samples(empty_db):
    _, url = empty_db
    migrate.upgrade(url, "0001")
    with psycopg.connect(url, autocommit=True) as conn:
        set_state(conn, "off", False, "hold before the metrics release")
        history_before = history(conn)
    migrate.upgrade(url, "0002")
    with psycopg.connect(url, autocommit=True) as conn:
        assert history(conn) == history_before
        assert conn.execute("select ok from chat_verify_v11_history()").fetchone()[0] is True
        conn.execute(
            "select chat_put_v11_metric_samples('[{\"metric\": \"full_state_rate\", \"cohort\": \"control\", "
            "\"bucket_start\": \"2026-01-01T00:00:00Z\", \"numerator\": 1, \"denominator\": 10}]')"
        )
    with pytest.raises((psycopg.Error, sqlalchemy.exc.DBAPIError)) as info:
        migrate.downgrade(url, "0001")
    assert psycopg_error(info.value).sqlstate == "RO013"
    assert alembic_version(url) == ["0002"]
    migrate.downgrade(url, "0001", drop_data=True)
    assert alembic_version(url) == ["0001"]
    with psycopg.connect(url, autocommit=True) as conn:
        assert history(conn) == history_before
        assert conn.execute("select to_regclass('chat_v11.metric_sample')").fetchone()[0] is None
        assert conn.execute("select to_regprocedure('chat_put_v11_metric_samples(jsonb)')").fetchone()[0] is None
        # the 0001 functions are back: the gates fail closed without a sample store
        explanation = conn.execute(
            "select explanation from chat_get_v11_gate_checks() where metric = 'ack_without_receipt_10s_rate'"
        ).fetchone()[0]
        assert "stores no metric samples yet" in explanation
