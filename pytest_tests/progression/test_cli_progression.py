"""The CLI of SPEC 9: ``approve STAGE --reason``, ``approvals``, and the progression line of ``status``."""

from __future__ import annotations

from pytest_tests.support.calls import arrange_state, invoke
from pytest_tests.support.samples import healthy


def flat(output: str) -> str:
    return " ".join(output.split())


def test_approve_records_and_says_how_long_it_counts(conn, db_url):
    result = invoke(["approve", "canary_1", "--reason", "canary dashboards clean"], db_url)
    assert result.exit_code == 0, result.output
    out = flat(result.output)
    assert "approval 1 recorded: postgres approves promoting off → canary_1 (seen at version 1)" in out
    assert "unless the stage or the kill switch changes first" in out
    assert "progression: off → canary_1: approvals 0/0, auto-promote off" in out
    again = flat(invoke(["approve", "canary_1", "--reason", "again"], db_url).output)
    assert "already approved: approval 1 by postgres" in again and "nothing recorded" in again


def test_approve_a_stage_that_is_not_next_exits_1_with_the_refusal(db_url):
    result = invoke(["approve", "canary_5", "--reason", "skip ahead"], db_url)
    assert result.exit_code == 1
    out = flat(result.output)
    assert "RO042" in out and "the next stage is canary_1" in out
    assert "Traceback" not in result.output


def test_approvals_lists_the_valid_ones_and_what_is_missing(conn, db_url):
    conn.execute("select chat_set_v11_stage_policy('canary_1', '{\"approvals_required\": 2, \"auto_promote\": true}')")
    assert "No valid approvals." in invoke(["approvals"], db_url).output
    conn.execute("set chat.actor = 'alice'")
    conn.execute("select chat_approve_v11_promotion('canary_1', 'first pair of eyes')")
    result = invoke(["approvals"], db_url)
    assert result.exit_code == 0, result.output
    out = flat(result.output)
    assert "Valid approvals" in out and "first pair of eyes" in out and "alice" in out
    # postgres approved and reads: its own approval does not count for its own promotion
    assert "progression: off → canary_1: approvals 0/2, auto-promote on" in out
    assert "no automatic promotion while the blockers stand" in out


def test_status_shows_approvals_and_the_next_automatic_promotion(conn, db_url):
    healthy(conn, 40)
    conn.execute("select chat_set_v11_stage_policy('canary_5', '{\"auto_promote\": true, \"approvals_required\": 1}')")
    arrange_state(conn, "promote", "canary_1", False, False)
    out = flat(invoke(["status"], db_url).output)
    assert "progression: canary_1 → canary_5: approvals 0/1, auto-promote on" in out
    conn.execute("select chat_set_v11_stage_policy('canary_5', '{\"approvals_required\": 0}')")
    out = flat(invoke(["status"], db_url).output)
    assert "progression: canary_1 → canary_5: approvals 0/0, auto-promote on, next automatic promotion at" in out
