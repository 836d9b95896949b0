"""Security sweeps computed from the catalog, so objects added later are covered without editing a list.

Complements test_privileges.py (the EXECUTE matrix and the 42501 sweep over its fixed TABLES list): here every
SECURITY DEFINER function, every relation of chat_v11 and the default privileges (none: every project function
revokes PUBLIC's EXECUTE in its own file, and an extension created later keeps its grants), plus the recorded actor
(session_user) proved from a real login connection.
"""

from __future__ import annotations

import json

import psycopg
import pytest
from psycopg import sql
from psycopg.conninfo import make_conninfo

from chat_rollout import migrate
from pytest_tests.support.migrations import query
from pytest_tests.support.roles import ROLES, TABLES, as_role

SYSTEM_SCHEMAS = "('pg_catalog', 'information_schema', 'pg_toast')"
LOGINS = ["chat_test_reader", "chat_test_operator", "chat_test_ingest", "chat_test_admin", "chat_test_nobody"]


def search_path_of(config: list[str] | None) -> list[str] | None:
    for item in config or []:
        if item.startswith("search_path="):
            return [part.strip().strip('"') for part in item.split("=", 1)[1].split(",")]
    return None


# --- SECURITY DEFINER functions pin search_path, pg_temp last -----------------------------------------------------


def test_every_security_definer_function_pins_search_path_with_pg_temp_last(conn):
    rows = conn.execute(
        "select p.oid::regprocedure::text, p.proconfig from pg_proc p join pg_namespace n on n.oid = p.pronamespace "
        f"where p.prosecdef and n.nspname not in {SYSTEM_SCHEMAS} and n.nspname not like 'pg_temp%%'"
    ).fetchall()
    assert len(rows) >= 20, rows  # the API is there: the sweep is not vacuous
    problems = []
    for signature, config in rows:
        path = search_path_of(config)
        if path is None:
            problems.append(f"{signature}: no SET search_path")
        elif path[-1] != "pg_temp":
            problems.append(f"{signature}: pg_temp is not last in {path}")
        elif "$user" in path or "public" in path:
            problems.append(f"{signature}: a user-writable schema in {path}")
    assert problems == []


def test_the_pinned_search_path_holds_only_schemas_nobody_else_can_create_in(conn):
    rows = conn.execute(
        "select distinct unnest(p.proconfig) from pg_proc p "
        "where p.prosecdef and p.pronamespace in ('public'::regnamespace, 'chat_v11'::regnamespace)"
    ).fetchall()
    schemas = {s for (item,) in rows for s in (search_path_of([item]) or []) if s != "pg_temp"}
    assert schemas == {"pg_catalog", "chat_v11"}
    for schema in schemas:
        for role in ["public", *ROLES]:
            creatable = conn.execute("select has_schema_privilege(%s, %s, 'CREATE')", (role, schema)).fetchone()[0]
            assert creatable is False, (role, schema)


# --- EXECUTE: nobody but the grants, and not on internals ---------------------------------------------------------


def project_functions(conn) -> list[tuple[str, list | None]]:
    """(signature, proacl) of every function the migrated database holds outside the system schemas and outside
    any extension: the project's own, whatever schema a later file puts them in."""
    return conn.execute(
        "select p.oid::regprocedure::text, p.proacl::text[] from pg_proc p "
        f"join pg_namespace n on n.oid = p.pronamespace where n.nspname not in {SYSTEM_SCHEMAS} "
        "and n.nspname not like 'pg_temp%%' and not exists (select from pg_depend d "
        "where d.classid = 'pg_proc'::regclass and d.objid = p.oid and d.deptype = 'e')"
    ).fetchall()


def test_no_function_of_ours_grants_execute_to_public_in_its_acl(conn):
    """Each function revokes EXECUTE from PUBLIC in its own sql/ file: no default privilege does it for them."""
    functions = project_functions(conn)
    assert len(functions) >= 70, functions  # the whole project is there (78 at revision 0009): not vacuous
    unrevoked = [signature for signature, acl in functions if acl is None]  # null: the default, EXECUTE for PUBLIC
    assert unrevoked == []
    public = [signature for signature, acl in functions if any(item.startswith("=") for item in acl)]
    assert public == []
    executable = conn.execute(
        "select p.oid::regprocedure::text from pg_proc p "
        "where p.pronamespace in ('public'::regnamespace, 'chat_v11'::regnamespace) "
        "and has_function_privilege('public', p.oid, 'execute')"
    ).fetchall()
    assert executable == []


@pytest.mark.parametrize("login", LOGINS)
def test_no_login_can_execute_an_internal_function_directly(conn, login):
    rows = conn.execute(
        "select p.oid::regprocedure::text from pg_proc p where p.pronamespace = 'chat_v11'::regnamespace "
        "and has_function_privilege(%s, p.oid, 'execute')",
        (login,),
    ).fetchall()
    assert rows == []
    assert conn.execute("select has_schema_privilege(%s, 'chat_v11', 'USAGE')", (login,)).fetchone()[0] is False


def test_the_no_role_login_can_execute_no_api_function(conn):
    rows = conn.execute(
        "select p.oid::regprocedure::text from pg_proc p where p.pronamespace = 'public'::regnamespace "
        "and p.proname ~ '^chat_[a-z]+_v11_' and has_function_privilege('chat_test_nobody', p.oid, 'execute')"
    ).fetchall()
    assert rows == []


# --- default privileges: none; PostgreSQL's default for what others (extensions) create ------------------------


def test_the_migration_leaves_no_default_privileges_in_the_database(conn):
    """No `ALTER DEFAULT PRIVILEGES` of ours is in force, database-wide or per schema (revision 0009 removed 0004's)."""
    rows = conn.execute(
        "select defaclrole::regrole::text, defaclnamespace::regnamespace::text, defaclobjtype, defaclacl::text[] "
        "from pg_default_acl"
    ).fetchall()
    assert rows == []


@pytest.mark.parametrize("schema", ["public", "chat_v11"])
def test_a_function_created_later_outside_a_revision_keeps_postgresqls_default(conn, schema):
    """Like an extension's: EXECUTE for PUBLIC (a revision's own functions revoke it in their files)."""
    owner = conn.execute("select nspowner::regrole::text from pg_namespace where nspname = 'chat_v11'").fetchone()[0]
    assert conn.execute("select current_user").fetchone()[0] == owner  # the test connects as the migration role
    function = sql.Identifier(schema, "chat_probe_v11_default_privileges")
    conn.execute(sql.SQL("create function {}() returns int language sql as 'select 1'").format(function))
    signature = f"{schema}.chat_probe_v11_default_privileges()"
    assert conn.execute("select proacl from pg_proc where oid = %s::regprocedure", (signature,)).fetchone()[0] is None
    assert conn.execute("select has_function_privilege('public', %s, 'execute')", (signature,)).fetchone()[0] is True
    # chat_v11 itself still keeps every login out: no USAGE on the schema
    assert as_role(conn, "chat_test_nobody", f"select {signature}") == (None if schema == "public" else "42501")


def test_the_per_schema_default_privileges_form_would_not_be_enough(conn):
    """Why there is no default at all: `ALTER DEFAULT PRIVILEGES IN SCHEMA … REVOKE … FROM PUBLIC` cannot revoke the
    built-in default, and the global form (revision 0004's) that can reaches every schema, extensions included."""
    conn.execute("alter default privileges in schema public, chat_v11 revoke execute on functions from public")
    conn.execute("create function chat_v11.probe_per_schema() returns int language sql as 'select 1'")
    assert conn.execute(
        "select has_function_privilege('public', 'chat_v11.probe_per_schema()', 'execute')"
    ).fetchone()[0] is True
    conn.execute("alter default privileges revoke execute on functions from public")  # the global form works ...
    conn.execute("create schema probe_elsewhere")
    conn.execute("create function probe_elsewhere.probe_global() returns int language sql as 'select 1'")
    assert conn.execute(  # ... everywhere: in a schema that is not the project's too
        "select has_function_privilege('public', 'probe_elsewhere.probe_global()', 'execute')"
    ).fetchone()[0] is False


EXTENSION_CALLS = {  # an extension with functions, and one call of one of them
    "pgcrypto": "select encode(digest('chat', 'sha256'), 'hex')",
    "hstore": "select hstore('stage', 'canary_1') -> 'stage'",
    "cube": "select cube_dim(cube(array[1, 2, 3]::float8[]))",
    "vector": "select vector_dims('[1,2,3]'::vector)",
}


def test_an_extension_created_after_migrating_keeps_its_grants_for_a_reader(conn, db_url):
    available = {row[0] for row in conn.execute(
        "select name from pg_available_extensions where name = any(%s)", (list(EXTENSION_CALLS),)
    ).fetchall()}
    extension = next((name for name in EXTENSION_CALLS if name in available), None)
    if extension is None:
        pytest.skip(f"none of {', '.join(EXTENSION_CALLS)} is available on this server (pg_available_extensions)")
    assert conn.execute("select current_user = nspowner::regrole::name from pg_namespace "
                        "where nspname = 'chat_v11'").fetchone()[0]  # created by the migration role
    conn.execute(sql.SQL("create extension {}").format(sql.Identifier(extension)))
    with login(db_url, "chat_test_reader") as reader:
        assert reader.execute(EXTENSION_CALLS[extension]).fetchone()[0] is not None
    revoked = conn.execute(
        "select p.oid::regprocedure::text from pg_proc p join pg_depend d on d.classid = 'pg_proc'::regclass "
        "and d.objid = p.oid and d.deptype = 'e' join pg_extension e on e.oid = d.refobjid "
        "where e.extname = %s and not has_function_privilege('public', p.oid, 'execute')",
        (extension,),
    ).fetchall()
    assert revoked == []  # every function of the extension as its script made it: EXECUTE for PUBLIC


def test_the_downgrade_below_0009_restores_the_earlier_default(empty_db):
    """Revision 0009's downgrade re-creates revision 0004's default (the ledger restores the frozen text)."""
    _, url = empty_db
    default_acl = "select defaclnamespace, defaclobjtype, defaclacl::text[] from pg_default_acl"
    migrate.upgrade(url, "0009")
    assert query(url, default_acl) == []
    migrate.downgrade(url, "0008")
    owner = query(url, "select current_user")[0][0]
    assert query(url, default_acl) == [(0, "f", [f"{owner}=X/{owner}"])]  # database-wide: EXECUTE for the owner only
    migrate.upgrade(url, "0009")
    assert query(url, default_acl) == []


# --- relations of chat_v11: nothing granted, every write refused with 42501 ---------------------------------------


def test_no_relation_or_column_of_chat_v11_grants_anything_to_anyone_but_its_owner(conn):
    rows = conn.execute(
        "select c.relname, c.relkind, a.grantee::regrole::text, a.privilege_type from pg_class c "
        "cross join lateral aclexplode(coalesce(c.relacl, acldefault('r', c.relowner))) a "
        "where c.relnamespace = 'chat_v11'::regnamespace and a.grantee <> c.relowner"
    ).fetchall()
    assert rows == []
    columns = conn.execute(
        "select c.relname, a.attname from pg_attribute a join pg_class c on c.oid = a.attrelid "
        "where c.relnamespace = 'chat_v11'::regnamespace and a.attacl is not null"
    ).fetchall()
    assert columns == []


def catalog_tables(conn) -> list[str]:
    rows = conn.execute(
        "select c.relname from pg_class c where c.relnamespace = 'chat_v11'::regnamespace "
        "and c.relkind in ('r', 'p', 'v', 'm', 'f') order by 1"
    ).fetchall()
    return [r[0] for r in rows]


def test_the_fixed_table_list_of_test_privileges_still_matches_the_catalog(conn):
    # every table found here is swept below; this only says when TABLES needs updating for readability
    assert set(catalog_tables(conn)) >= set(TABLES)


WRITES = {
    "insert": "insert into chat_v11.{t} default values",
    "update": "update chat_v11.{t} set {c} = {c}",
    "delete": "delete from chat_v11.{t}",
    "truncate": "truncate chat_v11.{t}",
}


@pytest.mark.parametrize("role", ROLES)
@pytest.mark.parametrize("statement", list(WRITES.values()), ids=list(WRITES))
def test_every_table_in_the_catalog_refuses_writes_with_42501(conn, role, statement):
    """The 42501 sweep of test_privileges.py, over every table the catalog has now (TABLES included)."""
    conn.execute("select chat_open_v11_incident('P2', 'rows to protect')")
    refused = {}
    for table in catalog_tables(conn):
        column = conn.execute(
            "select quote_ident(attname) from pg_attribute where attrelid = %s::regclass and attnum = 1",
            (f"chat_v11.{table}",),
        ).fetchone()[0]
        before = conn.execute(f"select count(*) from chat_v11.{table}").fetchone()[0]
        refused[table] = as_role(conn, role, statement.format(t=table, c=column))
        assert conn.execute(f"select count(*) from chat_v11.{table}").fetchone()[0] == before
    assert refused == {table: "42501" for table in refused}


@pytest.mark.parametrize("role", ROLES)
def test_every_sequence_of_chat_v11_refuses_nextval_and_setval(conn, role):
    sequences = [r[0] for r in conn.execute(
        "select c.oid::regclass::text from pg_class c where c.relnamespace = 'chat_v11'::regnamespace "
        "and c.relkind = 'S'"
    ).fetchall()]
    assert sequences
    for sequence in sequences:
        assert as_role(conn, role, f"select nextval('{sequence}')") == "42501", sequence
        assert as_role(conn, role, f"select setval('{sequence}', 1000000)") == "42501", sequence


# --- the actor recorded is session_user, from a real login ---------------------------------------------------------


def login(db_url: str, user: str) -> psycopg.Connection:
    return psycopg.connect(make_conninfo(db_url, user=user), autocommit=True)


def test_changed_by_is_the_login_and_a_claimed_actor_is_kept_beside_it(conn, db_url):
    conn.execute("listen chat_v11_rollout")
    with login(db_url, "chat_test_operator") as operator:
        operator.execute("set chat.actor = 'someone-else'")
        row = operator.execute(
            "select changed_by, actor from public.chat_set_v11_rollout_state('off', false, 'hold as a login')"
        ).fetchone()
        assert row == ("chat_test_operator", "someone-else")
        # switching role inside the session does not change who is recorded
        operator.execute("set role chat_rollout_operator")
        row = operator.execute(
            "select changed_by, actor from public.chat_set_v11_rollout_state('off', true, 'kill after set role')"
        ).fetchone()
        assert row == ("chat_test_operator", "someone-else")
        state = operator.execute("select changed_by, actor from public.chat_get_v11_rollout_state()").fetchone()
        assert state == ("chat_test_operator", "someone-else")
    history = conn.execute(
        "select changed_by, actor from chat_v11.rollout_history where version > 1 order by version"
    ).fetchall()
    assert history == [("chat_test_operator", "someone-else")] * 2
    payloads = [json.loads(n.payload) for n in conn.notifies(timeout=5, stop_after=2)]
    assert [(p["changed_by"], p["actor"]) for p in payloads] == [("chat_test_operator", "someone-else")] * 2
    assert conn.execute("select count(*) from chat_v11.rollout_history where changed_by = 'someone-else' "
                        "or actor = 'chat_test_operator'").fetchone()[0] == 0


def test_incident_entries_record_the_login_and_keep_the_claimed_actor_beside_it(conn, db_url):
    with login(db_url, "chat_test_operator") as operator:
        operator.execute("set chat.actor = 'someone-else'")
        incident = operator.execute(
            "select incident_id, opened_by from public.chat_open_v11_incident('P2', 'opened by a login')"
        ).fetchone()
        assert incident[1] == "chat_test_operator"
        entry = operator.execute(
            "select recorded_by from public.chat_log_v11_incident(%s, 'fact', 'a fact')", (incident[0],)
        ).fetchone()
        assert entry == ("chat_test_operator",)
        operator.execute("select * from public.chat_set_v11_incident_role(%s, 'IC', 'alice')", (incident[0],))
    opened = conn.execute(
        "select opened_by, opened_actor from chat_v11.incident where incident_id = %s", (incident[0],)
    ).fetchone()
    assert opened == ("chat_test_operator", "someone-else")
    entries = conn.execute(
        "select distinct recorded_by, actor from chat_v11.incident_entry where incident_id = %s", (incident[0],)
    ).fetchall()
    assert entries == [("chat_test_operator", "someone-else")]


def test_configuration_changes_record_the_admin_login(conn, db_url):
    with login(db_url, "chat_test_admin") as admin:
        admin.execute("set chat.actor = 'someone-else'")
        admin.execute("select * from public.chat_set_v11_stage_settings('canary_1', 2, null)")
        admin.execute("select * from public.chat_set_v11_policy('state_lock_timeout', '\"3 seconds\"')")
        admin.execute("select * from public.chat_set_v11_metric_rule('full_state_rate', '{\"factor\": 2}')")
    changes = conn.execute("select distinct changed_by, actor from chat_v11.config_change").fetchall()
    assert changes == [("chat_test_admin", "someone-else")]
    policy = conn.execute("select changed_by from chat_v11.policy where key = 'state_lock_timeout'").fetchone()
    assert policy == ("chat_test_admin",)
