"""SPEC 9: the stage policy (auto_promote, approvals_required) and the policy approval_ttl: defaults, bounds,
refusals that write nothing, the audit, and who may change them."""

from __future__ import annotations

import psycopg
import pytest

from pytest_tests.support.calls import refused
from pytest_tests.support.databases import fingerprint
from pytest_tests.support.roles import ADMIN, INGEST, OPERATOR, READER, as_role


def policy(conn, stage: str):
    return conn.execute(
        "select auto_promote, approvals_required from chat_v11.stage_policy where stage = %s", (stage,)
    ).fetchone()


def test_defaults_are_off_and_no_approvals(conn):
    rows = conn.execute("select count(*) from chat_v11.stage_policy").fetchone()[0]
    assert rows == 0  # no row: the defaults
    progression = conn.execute(
        "select next_stage, auto_promote, approvals_required, approvals_valid, approvals_missing, "
        "next_promotion_at, approval_ttl from chat_get_v11_progression()"
    ).fetchone()
    assert progression[:6] == ("canary_1", False, 0, 0, 0, None)
    assert str(progression[6]) == "1 day, 0:00:00"


def test_set_keeps_the_keys_left_out_and_is_audited(conn):
    conn.execute("set chat.actor = 'release-bot'")
    row = conn.execute(
        "select stage, auto_promote, approvals_required, changed_by "
        "from chat_set_v11_stage_policy('canary_25', '{\"approvals_required\": 2}')"
    ).fetchone()
    assert row == ("canary_25", False, 2, "postgres")
    conn.execute("select chat_set_v11_stage_policy('canary_25', '{\"auto_promote\": true}')")
    assert policy(conn, "canary_25") == (True, 2)
    audit = conn.execute(
        "select target, target_key, old_value, new_value, actor, changed_by from chat_v11.config_change "
        "where target = 'stage_policy' order by change_id"
    ).fetchall()
    assert audit == [
        ("stage_policy", "canary_25", {"auto_promote": False, "approvals_required": 0},
         {"auto_promote": False, "approvals_required": 2}, "release-bot", "postgres"),
        ("stage_policy", "canary_25", {"auto_promote": False, "approvals_required": 2},
         {"auto_promote": True, "approvals_required": 2}, "release-bot", "postgres"),
    ]


@pytest.mark.parametrize(
    "settings, words",
    [
        ('{"auto_promote": true, "approval_ttl": "1 hour"}', "unknown setting(s) 'approval_ttl'"),
        ('{"approvals_required": 11}', "from 0 to 10; got 11"),
        ('{"approvals_required": -1}', "from 0 to 10; got -1"),
        ('{"approvals_required": 0.5}', "from 0 to 10; got 0.5"),
        ('{"auto_promote": "true"}', "auto_promote takes a JSON boolean"),
        ("{}", "non-empty JSON object"),
    ],
)
def test_bad_settings_are_refused_with_ro044_and_write_nothing(conn, settings, words):
    before = fingerprint(conn)
    err = refused(conn, "select * from chat_set_v11_stage_policy('canary_5', %s::jsonb)", (settings,))
    assert err.diag.sqlstate == "RO044"
    assert words in err.diag.message_detail
    assert "nothing was changed" in err.diag.message_hint
    assert fingerprint(conn) == before


def test_ten_approvals_is_the_upper_bound(conn):
    conn.execute("select chat_set_v11_stage_policy('full', '{\"approvals_required\": 10}')")
    assert policy(conn, "full") == (False, 10)


def test_approval_ttl_is_a_policy_with_bounds(conn):
    row = conn.execute("select key, value from chat_set_v11_policy('approval_ttl', '\"2 hours\"')").fetchone()
    assert row == ("approval_ttl", "2 hours")
    assert str(conn.execute("select approval_ttl from chat_get_v11_progression()").fetchone()[0]) == "2:00:00"
    for value in ('"4 minutes"', '"8 days"', "24"):
        err = refused(conn, "select * from chat_set_v11_policy('approval_ttl', %s::jsonb)", (value,))
        assert err.diag.sqlstate == "RO014"
    audit = conn.execute(
        "select target, target_key from chat_v11.config_change where target_key = 'approval_ttl'"
    ).fetchall()
    assert audit == [("policy", "approval_ttl")]
    # the policy lives in a table of its own: chat_v11.policy is not altered (a kill would deadlock with a migration)
    assert conn.execute("select count(*) from chat_v11.policy where key = 'approval_ttl'").fetchone()[0] == 0


@pytest.mark.parametrize("role", [READER, OPERATOR, INGEST])
def test_only_an_admin_changes_a_stage_policy(conn, role):
    assert as_role(conn, role, "select * from chat_set_v11_stage_policy('canary_1', '{\"auto_promote\": true}')") \
        == "42501"
    assert as_role(conn, ADMIN, "select * from chat_set_v11_stage_policy('canary_1', '{\"auto_promote\": true}')") \
        is None


def test_the_audit_target_is_checked(conn):
    with pytest.raises(psycopg.errors.CheckViolation):
        conn.execute(
            "insert into chat_v11.config_change (target, target_key, new_value) values ('bogus', 'x', '{}')"
        )
