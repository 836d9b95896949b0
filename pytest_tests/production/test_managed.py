"""Issue 16 (SPEC 7, "Managed PostgreSQL"): installable by a non-superuser with CREATEDB CREATEROLE, a second DBA, and
two environments kept apart on one cluster, on every major version the private-cluster helper can run here
(``support/cluster.py``: 15 from Debian, 16 and 18 from their wheels; a missing one is skipped with the reason).

On each major, a private cluster (the suite's server is never touched) where the superuser only creates two DBA
logins, as a managed service's console does: ``dba1 createdb createrole login`` and ``dba2 createrole login``. Then,
as dba1 only, two databases (two environments, ``chat_a`` and ``chat_b``) are created and migrated:

- (a) the install works without a superuser, and the roles it creates are administered by dba1 (PostgreSQL 16+
  gives the creator of a role ADMIN OPTION on it; 15's CREATEROLE administers every non-superuser role);
- (b) a second DBA: on 15 CREATEROLE suffices to grant a group role; on 16+ it is refused (42501) until a role with
  ADMIN OPTION (dba1, who created the groups) runs README's path, ``grant … to dba2 with admin option, inherit
  false, set false``: dba2 then grants it to a login, without using the group's privileges itself;
- (c) environments apart: the group roles are cluster-wide, so an operator of chat_a could kill chat_b's rollout;
  ``revoke connect on database … from public`` and CONNECT for the environment's own logins stop it (42501,
  "permission denied for database", at connect).
"""

from __future__ import annotations

import contextlib

import psycopg
import pytest
from psycopg.conninfo import make_conninfo

from chat_rollout import migrate
from pytest_tests.support.cluster import KNOWN_MAJORS, private_cluster, unavailable_reason
from pytest_tests.support.migrations import HEAD

GROUPS = ["chat_rollout_reader", "chat_rollout_operator", "chat_rollout_ingest", "chat_rollout_admin"]
#: README's path for a second DBA on PostgreSQL 16 and later (the GRANT options arrived in 16).
SECOND_DBA_16 = (
    "grant chat_rollout_reader, chat_rollout_operator, chat_rollout_ingest, chat_rollout_admin to dba2 "
    "with admin option, inherit false, set false"
)
KILL = "select changed_by from public.chat_set_v11_rollout_state('off', true, 'kill from a login')"


def as_user(cluster, user: str, dbname: str = "postgres") -> psycopg.Connection:
    return psycopg.connect(make_conninfo(cluster.url(dbname), user=user), autocommit=True)


def sqlstate(cluster, user: str, dbname: str, statement: str) -> str | None:
    """Run statement as user: None when it worked, else the SQLSTATE of the refusal."""
    with as_user(cluster, user, dbname) as conn:
        try:
            conn.execute(statement)
        except psycopg.Error as exc:
            return exc.sqlstate
    return None


def connect_refusal(cluster, user: str, dbname: str) -> str | None:
    """None when user may connect to dbname, else the server's refusal (a FATAL at connect carries no SQLSTATE
    in psycopg: its message says it, 42501's "permission denied for database")."""
    try:
        with as_user(cluster, user, dbname) as conn:
            conn.execute("select 1")
    except psycopg.OperationalError as exc:
        return str(exc)
    return None


@pytest.fixture(scope="module", params=KNOWN_MAJORS, ids=[f"pg{m}" for m in KNOWN_MAJORS])
def managed(request):
    """(major, cluster) with chat_a and chat_b created and migrated by dba1, a non-superuser."""
    major = request.param
    reason = unavailable_reason(major)
    if reason:
        pytest.skip(reason)
    with private_cluster(major) as cluster:
        with cluster.connect() as superuser:  # what the provider's console does, nothing more
            superuser.execute("create role dba1 login createdb createrole")
            superuser.execute("create role dba2 login createrole")
        with as_user(cluster, "dba1") as dba1:
            for name in ("chat_a", "chat_b"):
                dba1.execute(f"create database {name}")
        for name in ("chat_a", "chat_b"):
            migrate.upgrade(make_conninfo(cluster.url(name), user="dba1"))
        yield major, cluster


def test_a_non_superuser_with_createdb_createrole_installs_it(managed):
    major, cluster = managed
    with cluster.connect("chat_a") as conn:
        assert conn.execute("select rolsuper from pg_roles where rolname = 'dba1'").fetchone() == (False,)
        assert conn.execute("select version_num from public.alembic_version").fetchone() == (HEAD,)
        owners = conn.execute(
            "select distinct pg_get_userbyid(p.proowner) from pg_proc p "
            "where p.pronamespace in ('public'::regnamespace, 'chat_v11'::regnamespace)"
        ).fetchall()
        assert owners == [("dba1",)]
        assert conn.execute("select nspowner::regrole::text from pg_namespace where nspname = 'chat_v11'"
                            ).fetchone() == ("dba1",)
        assert conn.execute("select count(*) from pg_default_acl").fetchone() == (0,)  # none left behind
        if major >= 16:  # the creator of a role administers it (ADMIN OPTION), without being a member
            admin = conn.execute(
                "select r.rolname, m.admin_option, m.inherit_option, m.set_option from pg_auth_members m "
                "join pg_roles r on r.oid = m.roleid where m.member = 'dba1'::regrole order by 1"
            ).fetchall()
            assert admin == [(group, True, False, False) for group in sorted(GROUPS)]
    with as_user(cluster, "dba1", "chat_a") as dba1:  # dba1 hands out the roles: an operator login kills
        dba1.execute("create role a_operator login")
        dba1.execute("grant chat_rollout_operator to a_operator")
    with as_user(cluster, "a_operator", "chat_a") as operator:
        assert operator.execute(KILL).fetchone() == ("a_operator",)


def test_a_second_dba_grants_the_group_roles_on_15_with_createrole_on_16_after_admin_option(managed):
    major, cluster = managed
    with as_user(cluster, "dba2", "chat_a") as dba2:
        dba2.execute("create role a_bob login")
    grant = "grant chat_rollout_operator to a_bob"
    if major < 16:
        assert sqlstate(cluster, "dba2", "chat_a", grant) is None  # CREATEROLE administers every non-superuser role
    else:
        assert sqlstate(cluster, "dba2", "chat_a", grant) == "42501"  # needs ADMIN OPTION on the group
        with as_user(cluster, "dba1", "chat_a") as dba1:  # README's path, by the role that created the groups
            dba1.execute(SECOND_DBA_16)
        assert sqlstate(cluster, "dba2", "chat_a", grant) is None
        with cluster.connect("chat_a") as conn:  # dba2 administers the groups, it does not act as them
            can_kill = conn.execute(
                "select has_function_privilege('dba2', 'public.chat_set_v11_rollout_state(text, boolean, text)', "
                "'execute')"
            ).fetchone()[0]
            assert can_kill is False
        assert sqlstate(cluster, "dba2", "chat_a", "set role chat_rollout_operator") == "42501"
    with as_user(cluster, "a_bob", "chat_a") as bob:
        assert bob.execute("select stage from public.chat_get_v11_rollout_state()").fetchone() is not None


def test_an_operator_of_one_environment_cannot_reach_another_on_the_same_cluster(managed):
    major, cluster = managed
    with as_user(cluster, "dba1", "chat_b") as dba1:
        dba1.execute("create role b_operator login in role chat_rollout_operator")
        with contextlib.suppress(psycopg.errors.DuplicateObject):
            dba1.execute("create role a_operator login in role chat_rollout_operator")
    # before: the group roles are cluster-wide, so chat_a's operator reaches chat_b's kill switch
    assert connect_refusal(cluster, "a_operator", "chat_b") is None
    with as_user(cluster, "dba1", "chat_b") as dba1:  # README's path, per environment, by the database's owner
        dba1.execute("revoke connect on database chat_a from public")
        dba1.execute("grant connect on database chat_a to a_operator")
        dba1.execute("revoke connect on database chat_b from public")
        dba1.execute("grant connect on database chat_b to b_operator")
    for login_name, other in (("a_operator", "chat_b"), ("b_operator", "chat_a")):
        refusal = connect_refusal(cluster, login_name, other) or ""
        assert f'permission denied for database "{other}"' in refusal  # 42501, at connect
        assert "User does not have CONNECT privilege" in refusal
    with as_user(cluster, "b_operator", "chat_b") as operator:
        assert operator.execute(KILL).fetchone() == ("b_operator",)
    assert sqlstate(cluster, "a_operator", "chat_a", "select * from public.chat_get_v11_rollout_state()") is None
