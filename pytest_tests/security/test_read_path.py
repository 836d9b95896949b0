"""The hot read path (docs/design.md "The hot read path", SPEC 4 and 6): public.chat_get_v11_rollout_state() is the
one API function that is SECURITY INVOKER -- an inlinable language sql function over the read-only view
chat_v11_read.rollout_state, which only chat_rollout_reader (and its members) may read. What keeps it safe:

- the function: invoker, sql, stable, no SET, inlined (a scan of the state table in the caller's plan), and its
  body names nothing but schema-qualified columns of the view (no operator, function, cast or unqualified name);
- the view: SELECT for chat_rollout_reader only, never writable by anyone but the owner; readers still have no
  USAGE on chat_v11; the schema chat_v11_read holds nothing but views;
- a hostile session (pg_temp or its own schema first in search_path, objects named rollout_state, operators
  for `=`) reads exactly what a clean session reads and never touches a hostile object;
- traffic_percent, kept in the state row by triggers, follows a stage change and a stage catalog change, also
  when the two race.
"""

from __future__ import annotations

import re
import threading
import time

import psycopg
import pytest
from psycopg import sql

from pytest_tests.support.calls import arrange_state, login, refused, set_state, state
from pytest_tests.support.cluster import private_cluster, server_major, unavailable_reason
from pytest_tests.support.roles import ADMIN, OPERATOR, READER, ROLES, as_role

VIEW = "chat_v11_read.rollout_state"
FUNCTION = "public.chat_get_v11_rollout_state()"
COLUMNS = [
    "stage", "traffic_percent", "kill_switch", "promotion_frozen", "reason", "changed_by", "actor", "changed_at",
    "version",
]  # fmt: skip
READERS = {READER, OPERATOR, ADMIN}
LOGINS = {
    "chat_test_reader": True, "chat_test_operator": True, "chat_test_admin": True, "chat_test_ingest": False,
    "chat_test_nobody": False,
}  # fmt: skip



def joined_state(conn) -> tuple:
    """The state as the 0004 function computed it: the state row joined with its stage's percent."""
    return conn.execute(
        "select s.stage, t.traffic_percent, s.kill_switch, s.promotion_frozen, s.reason, s.changed_by, s.actor, "
        "s.changed_at, s.version from chat_v11.rollout_state as s join chat_v11.stage as t on t.stage = s.stage"
    ).fetchone()


def read_state(conn) -> tuple:
    return conn.execute(f"select * from {FUNCTION}").fetchone()


# --- the function: the documented invoker exception, inlined ---------------------------------------------------


def test_the_state_function_is_an_inlinable_invoker_sql_function(conn):
    row = conn.execute(
        "select l.lanname, p.prosecdef, p.provolatile::text, p.proconfig, p.proisstrict, p.proretset, "
        "p.prorettype = 'pg_catalog.record'::regtype, p.prokind::text, pg_get_function_result(p.oid), "
        "has_function_privilege('public', p.oid, 'execute'), obj_description(p.oid, 'pg_proc') "
        "from pg_proc as p join pg_language as l on l.oid = p.prolang where p.oid = %s::regprocedure",
        (FUNCTION,),
    ).fetchone()
    language, secdef, volatility, config, strict, retset, record, kind, result, public_exec, comment = row
    assert (language, secdef, volatility, config, strict, retset, record, kind) == (
        "sql", False, "s", None, False, True, True, "f")
    assert result == (
        "TABLE(stage text, traffic_percent numeric, kill_switch boolean, promotion_frozen boolean, reason text, "
        "changed_by text, actor text, changed_at timestamp with time zone, version bigint)"
    )
    assert public_exec is False
    assert "SECURITY INVOKER" in comment and "chat_v11_read.rollout_state" in comment
    granted = conn.execute(
        "select array_agg(a.grantee::regrole::text order by 1) from pg_proc as p, aclexplode(p.proacl) as a "
        "where p.oid = %s::regprocedure and a.privilege_type = 'EXECUTE' and a.grantee <> p.proowner",
        (FUNCTION,),
    ).fetchone()[0]
    assert granted == [READER]


def test_the_body_names_only_schema_qualified_columns_of_the_read_view(conn):
    body = conn.execute("select prosrc from pg_proc where oid = %s::regprocedure", (FUNCTION,)).fetchone()[0]
    tokens = re.findall(r"\S+", body.replace(",", " "))
    assert tokens[0] == "select" and tokens[-2:] == ["from", VIEW]
    assert tokens[1:-2] == [f"{VIEW}.{c}" for c in COLUMNS]  # no operator, function, cast or other name


@pytest.mark.parametrize("role", sorted(READERS))
def test_the_plan_is_a_scan_of_the_state_table_no_function_scan(conn, role):
    with conn.transaction():
        conn.execute(f"set local role {role}")
        conn.execute(f"prepare state_read as select * from {FUNCTION}")
        plans = [
            conn.execute(f"explain (verbose, format json) {statement}").fetchone()[0][0]["Plan"]
            for statement in (f"select * from {FUNCTION}", "execute state_read")
        ]
        conn.execute("deallocate state_read")
    for plan in plans:
        assert plan["Node Type"] == "Seq Scan" and "Plans" not in plan, plan
        assert (plan["Schema"], plan["Relation Name"]) == ("chat_v11", "rollout_state"), plan
        assert plan["Output"] == [f"s.{c}" for c in COLUMNS]


def test_a_plan_cached_by_a_reader_is_refused_to_a_role_outside_the_group(conn):
    """An inlined function's EXECUTE is checked when the statement is planned; the view's SELECT is checked at every
    execution, as the current role. The two are granted to the same group, so a prepared plan that a reader made
    is still refused to another role of the same session (SET ROLE)."""
    conn.execute(f"set role {READER}")
    conn.execute(f"prepare state_read as select * from {FUNCTION}")
    assert conn.execute("execute state_read").fetchone() == read_state(conn)
    conn.execute("set role chat_test_nobody")
    with pytest.raises(psycopg.errors.InsufficientPrivilege, match="rollout_state"):
        conn.execute("execute state_read")
    conn.execute("reset role")
    conn.execute("deallocate state_read")


def test_the_function_and_the_view_read_what_the_state_and_stage_tables_hold(conn):
    assert read_state(conn) == joined_state(conn)
    assert conn.execute(f"select * from {VIEW}").fetchone() == joined_state(conn)
    assert [d.name for d in conn.execute(f"select * from {FUNCTION}").description] == COLUMNS
    assert [d.name for d in conn.execute(f"select * from {VIEW}").description] == COLUMNS


# --- the view and its schema: readers SELECT, nobody else anything --------------------------------------------


@pytest.mark.parametrize("role", ROLES)
def test_only_reader_members_select_the_view_and_nobody_writes_it(conn, role):
    expected = joined_state(conn)
    if role in READERS:
        with conn.transaction():
            conn.execute(f"set local role {role}")
            assert conn.execute(f"select * from {VIEW}").fetchone() == expected
            assert read_state(conn) == expected
    else:
        assert as_role(conn, role, f"select * from {VIEW}") == "42501"
        assert as_role(conn, role, f"select * from {FUNCTION}") == "42501"
    for statement in (
        f"insert into {VIEW} (stage) values ('full')",
        f"update {VIEW} set stage = 'full', kill_switch = true",
        f"delete from {VIEW}",
        "update chat_v11.rollout_state set kill_switch = true",
        "select * from chat_v11.rollout_state",
    ):
        assert as_role(conn, role, statement) == "42501", statement
    # a view is never truncated (wrong object type); without USAGE on its schema the name is not even looked up
    assert as_role(conn, role, f"truncate {VIEW}") == ("42809" if role in READERS else "42501")
    assert joined_state(conn) == expected


@pytest.mark.parametrize("login_name", sorted(LOGINS))
def test_logins_read_the_state_by_their_group_and_have_no_usage_on_chat_v11(conn, db_url, login_name):
    privileges = conn.execute(
        "select has_schema_privilege(%s, 'chat_v11', 'USAGE'), has_schema_privilege(%s, 'chat_v11_read', 'USAGE'), "
        "has_schema_privilege(%s, 'chat_v11_read', 'CREATE'), has_table_privilege(%s, %s, 'SELECT'), "
        "has_table_privilege(%s, %s, 'INSERT, UPDATE, DELETE, TRUNCATE, REFERENCES, TRIGGER')",
        (login_name, login_name, login_name, login_name, VIEW, login_name, VIEW),
    ).fetchone()
    reader = LOGINS[login_name]
    assert privileges == (False, reader, False, reader, False)
    with login(db_url, login_name) as session:
        if reader:
            assert read_state(session) == joined_state(conn)
        else:
            with pytest.raises(psycopg.errors.InsufficientPrivilege):
                read_state(session)


def test_no_role_but_the_reader_group_and_its_members_can_read_the_view(conn):
    """Every role of the cluster, computed: SELECT on the view and USAGE on its schema are exactly membership in
    the reader group. Left out: the owner, superusers and the predefined pg_read_all_data / pg_write_all_data, which
    a DBA grants to read or write every table of the database (chat_v11's included) by definition."""
    rows = conn.execute(
        """
        select r.rolname,
               has_table_privilege(r.oid, %s, 'SELECT'), has_schema_privilege(r.oid, 'chat_v11_read', 'USAGE'),
               pg_has_role(r.oid, 'chat_rollout_reader', 'USAGE')
          from pg_roles as r
         where not r.rolsuper
           and r.oid <> (select nspowner from pg_namespace where nspname = 'chat_v11_read')
           and not pg_has_role(r.oid, 'pg_read_all_data', 'USAGE')
           and not pg_has_role(r.oid, 'pg_write_all_data', 'USAGE')
        """,
        (VIEW,),
    ).fetchall()
    assert len(rows) >= 9  # the four groups, the five test logins: the sweep is not vacuous
    wrong = [(name, select, usage) for name, select, usage, member in rows if select != member or usage != member]
    assert wrong == []


def test_the_read_schema_holds_only_views_granting_select_to_the_reader_group(conn):
    owner = conn.execute("select nspowner::regrole::text from pg_namespace where nspname = 'chat_v11'").fetchone()[0]
    schema = conn.execute(
        "select nspowner::regrole::text, array(select a.grantee::regrole::text || ':' || a.privilege_type "
        "from aclexplode(nspacl) as a where a.grantee <> nspowner order by 1) "
        "from pg_namespace where nspname = 'chat_v11_read'"
    ).fetchone()
    assert schema == (owner, ["chat_rollout_reader:USAGE"])
    relations = conn.execute(
        "select c.relname::text, c.relkind::text, c.relowner::regrole::text, "
        "array(select a.grantee::regrole::text || ':' || a.privilege_type from aclexplode(c.relacl) as a "
        "where a.grantee <> c.relowner order by 1), "
        "coalesce(c.reloptions, '{}') from pg_class as c where c.relnamespace = 'chat_v11_read'::regnamespace"
    ).fetchall()
    assert relations == [("rollout_state", "v", owner, ["chat_rollout_reader:SELECT"], [])]  # no security_invoker
    others = conn.execute(
        "select count(*) from pg_proc where pronamespace = 'chat_v11_read'::regnamespace "
        "union all select count(*) from pg_type where typnamespace = 'chat_v11_read'::regnamespace "
        "and typrelid = 0 and typcategory <> 'A'"
    ).fetchall()
    assert others == [(0,), (0,)]
    columns = conn.execute(
        "select count(*) from pg_attribute as a join pg_class as c on c.oid = a.attrelid "
        "where c.relnamespace = 'chat_v11_read'::regnamespace and a.attacl is not null"
    ).fetchone()[0]
    assert columns == 0


# --- a hostile caller ------------------------------------------------------------------------------------------


def test_a_hostile_search_path_does_not_change_what_the_function_returns(conn, db_url):
    """The reader's own session puts pg_temp and a schema it owns first (pg_catalog last), with a table and a view
    named rollout_state, functions named like the columns, and operators `=` for the column types that raise;
    the function (planned and inlined in that session, also as a prepared statement) returns the clean state."""
    conn.execute("create schema evil_reader")
    conn.execute("grant usage, create on schema evil_reader to chat_test_reader")
    conn.execute("create sequence public.read_path_hits")
    conn.execute("grant usage, update on sequence public.read_path_hits to public")
    clean = read_state(conn)
    with login(db_url, "chat_test_reader") as reader:
        reader.execute(
            "create function pg_temp.hit(what text) returns boolean language plpgsql as $$ begin "
            "perform pg_catalog.nextval('public.read_path_hits'); raise exception 'hostile object used: %', what; "
            "end $$"
        )
        cols = ", ".join(f"{c} text" for c in COLUMNS)
        for namespace in ("pg_temp", "evil_reader"):
            reader.execute(f"create table {namespace}.rollout_state ({cols})")
            reader.execute(f"insert into {namespace}.rollout_state (stage, kill_switch) values ('full', 'true')")
            reader.execute(f"alter table {namespace}.rollout_state enable row level security")
            reader.execute(f"alter table {namespace}.rollout_state force row level security")
            reader.execute(
                f"create policy hostile on {namespace}.rollout_state using (pg_temp.hit('{namespace} table'))"
            )
        for index, typ in enumerate(["text", "numeric", "boolean", "bigint", "timestamp with time zone"]):
            function = sql.Identifier("evil_reader", f"hostile_eq_{index}")
            reader.execute(sql.SQL("create function {}({t}, {t}) returns boolean language sql as {}").format(
                function, sql.Literal(f"select pg_temp.hit('operator = on {typ}')"), t=sql.SQL(typ)))
            reader.execute(sql.SQL("create operator evil_reader.= (leftarg = {t}, rightarg = {t}, function = {})")
                           .format(function, t=sql.SQL(typ)))
        for column in COLUMNS:
            reader.execute(sql.SQL("create function {}() returns text language sql as {}").format(
                sql.Identifier("evil_reader", column), sql.Literal(f"select pg_temp.hit('function {column}')")))
        reader.execute("set search_path = pg_temp, evil_reader, public, pg_catalog")
        # the session really is hostile: its own unqualified names resolve to the hostile objects
        with pytest.raises(psycopg.Error, match="hostile object used"):
            reader.execute("select * from rollout_state")
        with pytest.raises(psycopg.Error, match="hostile object used"):
            reader.execute("select 'a'::text = 'b'::text")
        reader.execute("select pg_catalog.setval('public.read_path_hits', 1, false)")

        assert reader.execute("select * from public.chat_get_v11_rollout_state()").fetchone() == clean
        assert reader.execute("select * from chat_get_v11_rollout_state()").fetchone() == clean
        for _ in range(6):  # past the plan cache's custom plans: the generic plan is hostile-free too
            assert reader.execute("select * from public.chat_get_v11_rollout_state()", prepare=True).fetchone() \
                == clean
        assert reader.execute("select * from chat_v11_read.rollout_state").fetchone() == clean
    assert conn.execute("select is_called from public.read_path_hits").fetchone()[0] is False


def test_no_caller_can_put_an_object_in_front_of_the_read_schema(conn):
    """chat_v11_read is named with its schema, so only an object inside it could be read instead: nobody but the
    owner may create there, and a temp schema cannot be called chat_v11_read."""
    for role in ["public", *ROLES]:
        assert conn.execute("select has_schema_privilege(%s, 'chat_v11_read', 'CREATE')", (role,)).fetchone()[0] \
            is False
    assert as_role(conn, READER, "create view chat_v11_read.shadow as select 1 as x") == "42501"
    assert as_role(conn, ADMIN, "create table chat_v11_read.rollout_state_2 (x int)") == "42501"


# --- traffic_percent follows the stage and the stage catalog ---------------------------------------------------


def consistent(conn) -> bool:
    return conn.execute(
        "select s.traffic_percent = t.traffic_percent from chat_v11.rollout_state as s "
        "join chat_v11.stage as t on t.stage = s.stage"
    ).fetchone()[0]


def test_traffic_percent_follows_a_stage_change(conn):
    assert state(conn)["traffic_percent"] == 0
    arrange_state(conn, "promote", "canary_25", False, False)
    assert (state(conn)["stage"], state(conn)["traffic_percent"]) == ("canary_25", 25)
    killed = set_state(conn, "canary_5", True, "kill and roll back")
    assert (killed["stage"], killed["traffic_percent"]) == ("canary_5", 5)
    assert (state(conn)["stage"], state(conn)["traffic_percent"]) == ("canary_5", 5)
    set_state(conn, "canary_5", True, "kill again at the same stage")
    assert state(conn)["traffic_percent"] == 5
    assert consistent(conn)


def test_traffic_percent_follows_the_catalog_and_the_current_stage_never_changes_in_place(conn):
    arrange_state(conn, "promote", "canary_5", False, False)
    version = state(conn)["version"]
    # issue 12: the current stage's percent never changes silently under the state row (RO019, nothing changed)
    assert refused(conn, "select * from chat_set_v11_stage_settings('canary_5', 7.5, null)").sqlstate == "RO019"
    assert state(conn)["traffic_percent"] == 5
    conn.execute("select * from chat_set_v11_stage_settings('canary_25', 30, '10 minutes')")
    conn.execute("select * from chat_set_v11_stage_settings('canary_5', null, '5 minutes')")
    assert state(conn)["traffic_percent"] == 5
    assert state(conn)["version"] == version  # a catalog change is not a state change: no history row
    # a direct change by the owner is kept right too
    conn.execute("update chat_v11.stage set traffic_percent = 8 where stage = 'canary_5'")
    assert state(conn)["traffic_percent"] == 8
    arrange_state(conn, "promote", "canary_25", False, False)
    assert state(conn)["traffic_percent"] == 30
    assert consistent(conn)
    # a refused settings change changes nothing
    assert refused(conn, "select * from chat_set_v11_stage_settings('canary_25', 60, null)").sqlstate == "RO015"
    assert state(conn)["traffic_percent"] == 30


def test_the_state_row_is_taken_only_for_a_change_of_the_current_stage_percent(conn, db_url):
    """An open transaction holding the state row (an operator's state call) blocks a change of the current stage's
    percent for at most state_lock_timeout (RO010 naming it); every other settings change goes through."""
    conn.execute("select * from chat_set_v11_policy('state_lock_timeout', '\"300 milliseconds\"')")
    arrange_state(conn, "promote", "canary_5", False, False)
    with login(db_url, "chat_test_operator") as operator:
        operator.execute("begin")
        operator.execute("select * from chat_set_v11_rollout_state('canary_5', false, 'hold, left open')")
        with login(db_url, "chat_test_admin") as admin:
            started = time.monotonic()
            admin.execute("select * from chat_set_v11_stage_settings('canary_25', 30, null)")
            admin.execute("select * from chat_set_v11_stage_settings('canary_5', null, '1 minute')")
            admin.execute("select * from chat_set_v11_stage_settings('canary_5', 5, null)")  # unchanged percent
            assert time.monotonic() - started < 0.25
            err = refused(admin, "select * from chat_set_v11_stage_settings('canary_5', 6, null)")
            assert err.sqlstate == "RO010"
            assert f"pid {operator.info.backend_pid}" in err.diag.message_detail
        operator.execute("commit")
    assert state(conn)["traffic_percent"] == 5
    assert consistent(conn)


def test_an_open_observation_window_change_of_the_current_stage_never_holds_a_kill_up(conn, db_url):
    """Its percent cannot change in place (RO019), so a settings change of the current stage holds only the stage
    row, which a kill at the same stage does not need: the kill goes through at once, with the unchanged percent."""
    conn.execute("select * from chat_set_v11_policy('state_lock_timeout', '\"300 milliseconds\"')")
    arrange_state(conn, "promote", "canary_5", False, False)
    with login(db_url, "chat_test_admin") as admin, login(db_url, "chat_test_operator") as operator:
        admin.execute("begin")
        admin.execute("select * from chat_set_v11_stage_settings('canary_5', null, '1 minute')")
        started = time.monotonic()
        killed = set_state(operator, "canary_5", True, "kill")
        assert time.monotonic() - started < 0.3
        admin.execute("commit")
    assert (killed["kill_switch"], killed["traffic_percent"]) == (True, 5)
    assert consistent(conn)


def test_a_kill_racing_a_percent_change_of_its_target_stage_reads_the_new_percent(conn, db_url):
    """The admin changes canary_1 (not the current stage: no state lock) in an open transaction; a kill rolling
    back to canary_1 waits for that stage row (as the foreign key check always did) and then copies the new
    percent, not the one committed when it started."""
    arrange_state(conn, "promote", "canary_5", False, False)
    with login(db_url, "chat_test_admin") as admin, login(db_url, "chat_test_operator") as operator:
        admin.execute("begin")
        admin.execute("select * from chat_set_v11_stage_settings('canary_1', 2, null)")
        result = {}

        def kill():
            result["row"] = set_state(operator, "canary_1", True, "kill and roll back")

        thread = threading.Thread(target=kill)
        thread.start()
        time.sleep(0.3)
        assert thread.is_alive()  # waiting for the stage row
        admin.execute("commit")
        thread.join(5)
    assert (result["row"]["stage"], result["row"]["traffic_percent"]) == ("canary_1", 2)
    assert state(conn)["traffic_percent"] == 2
    assert consistent(conn)


def test_a_percent_change_racing_a_kill_that_leaves_the_stage_updates_nothing(conn, db_url):
    """The operator's kill moves canary_5 -> canary_1 in an open transaction; the admin's change of canary_5
    waits for the state row, then finds the stage moved on: the state keeps canary_1's percent."""
    arrange_state(conn, "promote", "canary_5", False, False)
    with login(db_url, "chat_test_admin") as admin, login(db_url, "chat_test_operator") as operator:
        operator.execute("begin")
        operator.execute("select * from chat_set_v11_rollout_state('canary_1', true, 'kill and roll back')")
        result = {}

        def change():
            result["row"] = admin.execute("select * from chat_set_v11_stage_settings('canary_5', 6, null)").fetchone()

        thread = threading.Thread(target=change)
        thread.start()
        time.sleep(0.3)
        operator.execute("commit")
        thread.join(5)
    assert result["row"][2] == 6
    assert (state(conn)["stage"], state(conn)["traffic_percent"]) == ("canary_1", 1)
    assert consistent(conn)


# --- a hot standby -----------------------------------------------------------------------------------------------


def test_readers_read_the_state_on_a_hot_standby_through_the_inlined_function(pg_server):
    """A private primary and its hot standby (pg_basebackup -R): a reader login reads the state there through the
    inlined function and the view (read-only, nothing written), and is still refused a write through the view."""
    major = server_major(pg_server)
    reason = unavailable_reason(major)
    if reason is not None:
        pytest.skip(f"no private PostgreSQL {major} cluster here: {reason}")
    with private_cluster(major) as primary:
        primary.create_migrated_database("chat")
        with primary.connect("chat") as c:
            c.execute("create role chat_test_reader login")
            c.execute("grant chat_rollout_reader to chat_test_reader")
            arrange_state(c, "promote", "canary_5", False, False)
            set_state(c, "canary_1", True, "kill before the standby")
            expected = read_state(c)
        standby = primary.basebackup_to("standby")
        standby.start()
        with login(standby.url("chat"), "chat_test_reader") as s:
            assert s.execute("select pg_is_in_recovery()").fetchone()[0] is True
            assert read_state(s) == expected
            assert (expected[0], expected[1], expected[2]) == ("canary_1", 1, True)
            assert s.execute(f"select * from {FUNCTION}", prepare=True).fetchone() == expected
            assert s.execute(f"select * from {VIEW}").fetchone() == expected
            plan = s.execute(f"explain (verbose, format json) select * from {FUNCTION}").fetchone()[0][0]["Plan"]
            assert (plan["Node Type"], plan["Relation Name"]) == ("Seq Scan", "rollout_state")
            with pytest.raises(psycopg.errors.InsufficientPrivilege):
                s.execute(f"update {VIEW} set kill_switch = false")
