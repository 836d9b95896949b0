"""The exporter's progression series (SPEC 9): approvals required and missing, auto-promote, and the time of the next
automatic promotion (absent while it will not happen)."""

from __future__ import annotations

from psycopg.conninfo import make_conninfo

from pytest_tests.support.calls import arrange_state, state
from pytest_tests.support.prometheus import running_exporter, scrape
from pytest_tests.support.samples import healthy


def test_approvals_missing_and_the_next_automatic_promotion(conn, db_url):
    healthy(conn, 40)
    arrange_state(conn, "promote", "canary_1", False, False)  # canary_1 is observed for 30 minutes by default
    since = state(conn)["changed_at"]
    with running_exporter(make_conninfo(db_url, user="chat_test_reader")) as exporter:
        default = scrape(exporter.url)
        conn.execute(
            "select chat_set_v11_stage_policy('canary_5', '{\"auto_promote\": true, \"approvals_required\": 1}')"
        )
        waiting = scrape(exporter.url)
        conn.execute("select chat_approve_v11_promotion('canary_5', 'four eyes')")
        approved = scrape(exporter.url)
    assert (default.value("chat_rollout_auto_promote"), default.value("chat_rollout_approvals_required"),
            default.value("chat_rollout_approvals_missing")) == (0, 0, 0)
    assert "chat_rollout_next_promotion_timestamp_seconds" not in default.names
    assert (waiting.value("chat_rollout_auto_promote"), waiting.value("chat_rollout_approvals_missing")) == (1, 1)
    assert "chat_rollout_next_promotion_timestamp_seconds" not in waiting.names  # an approval is missing
    assert approved.value("chat_rollout_approvals_missing") == 0
    assert approved.value("chat_rollout_next_promotion_timestamp_seconds") == since.timestamp() + 30 * 60
