"""Revision 0012's downgrade guard (RO013): approvals, stage policies, their audit and a changed approval_ttl are
operator data, dropped only when confirmed; an auto_promote history row keeps the database at 0012 or later."""

from __future__ import annotations

import psycopg
import pytest
import sqlalchemy

from chat_rollout import migrate
from pytest_tests.support.calls import arrange_state
from pytest_tests.support.migrations import HEAD, alembic_version, psycopg_error

BELOW = "0011"  # the revision below 0012 (a downgrade from the head passes through every later one)


def _refusal(url: str, drop_data: bool = False):
    with pytest.raises((psycopg.Error, sqlalchemy.exc.DBAPIError)) as info:
        migrate.downgrade(url, BELOW, drop_data=drop_data)
    return psycopg_error(info.value)


def test_a_fresh_database_goes_down_and_up_again(db_url):
    migrate.downgrade(db_url, BELOW)
    assert alembic_version(db_url) == [BELOW]
    migrate.upgrade(db_url)


def test_approvals_and_policies_are_dropped_only_when_confirmed(conn, db_url):
    conn.execute("select chat_set_v11_stage_policy('canary_5', '{\"approvals_required\": 1}')")
    conn.execute("select chat_set_v11_policy('approval_ttl', '\"2 hours\"')")
    conn.execute("select chat_approve_v11_promotion('canary_1', 'approved before the downgrade')")
    err = _refusal(db_url)
    assert err.sqlstate == "RO013"
    assert "1 promotion approvals, 1 stage policies, 1 audit rows of stage policy changes and 1 changed " \
        "approval_ttl policy" in err.diag.message_detail
    assert "drop_data=yes downgrade" in err.diag.message_hint
    assert conn.execute("select count(*) from chat_v11.promotion_approval").fetchone() == (1,)
    migrate.downgrade(db_url, BELOW, drop_data=True)
    assert alembic_version(db_url) == [BELOW]
    assert conn.execute("select to_regclass('chat_v11.promotion_approval')").fetchone() == (None,)
    assert conn.execute("select count(*) from chat_v11.config_change where target = 'stage_policy'").fetchone() \
        == (0,)
    migrate.upgrade(db_url)


def test_an_automatic_promotion_in_the_history_refuses_every_downgrade(conn, db_url):
    arrange_state(conn, "auto_promote", "canary_1", False, False)
    for drop_data in (False, True):
        err = _refusal(db_url, drop_data)
        assert err.sqlstate == "RO013"
        assert err.diag.message_primary == "downgrade refused: the history holds automatic promotions"
    assert alembic_version(db_url) == [HEAD]
