"""A real hot standby (pg_basebackup -R of a private primary): every reader answers there, every writer
fails with SQLSTATE 25006 (read_only_sql_transaction) and a readable message, and after `pg_ctl promote`
state, history and hash chain are the old primary's and the kill switch works on the new primary."""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime, timedelta

import psycopg
import pytest

from pytest_tests.support.calls import history, state
from pytest_tests.support.cluster import private_cluster, server_major, unavailable_reason

DB = "chat"


def _bucket(offset_s: int = 0) -> datetime:
    now = datetime.now(UTC) - timedelta(seconds=offset_s)
    return now.replace(second=now.second - now.second % 10, microsecond=0)


def _sample(metric: str = "ack_without_receipt_10s_rate") -> str:
    return json.dumps([{"metric": metric, "cohort": "canary", "bucket_start": _bucket(20).isoformat(),
                        "numerator": 0, "denominator": 100}])


READERS = [
    ("rollout_state", "select * from chat_get_v11_rollout_state()", ()),
    ("rollout_history", "select * from chat_get_v11_rollout_history(50)", ()),
    ("release_gates", "select * from chat_get_v11_release_gates()", ()),
    ("release_gates_at", "select * from chat_get_v11_release_gates(now() - interval '1 minute')", ()),
    ("gate_checks", "select * from chat_get_v11_gate_checks()", ()),
    ("verify_history", "select * from chat_verify_v11_history()", ()),
    ("incidents", "select * from chat_get_v11_incidents()", ()),
    ("incident_checklist", "select * from chat_get_v11_incident_checklist(%(incident)s)", ()),
    ("incident_timeline", "select * from chat_get_v11_incident_timeline(%(incident)s)", ()),
    ("assignment", "select * from chat_get_v11_assignment('user-42')", ()),
    ("assignment_policy", "select * from chat_get_v11_assignment_policy()", ()),
    ("approvals", "select count(*) from chat_get_v11_approvals()", ()),
    ("progression", "select * from chat_get_v11_progression()", ()),
]

# (name, call, SQLSTATEs the primary itself would answer with these arguments besides success)
WRITERS = [
    ("set_rollout_state_kill", "select * from chat_set_v11_rollout_state('off', true, 'kill on the standby')", ()),
    ("set_rollout_state_hold", "select * from chat_set_v11_rollout_state('off', false, 'hold')", ("RO007",)),
    ("lift_freeze", "select * from chat_lift_v11_freeze('unfreeze')", ("RO009",)),
    ("put_metric_samples", "select chat_put_v11_metric_samples(%(samples)s::jsonb)", ()),
    (
        "put_metric_samples_columnar",
        "select chat_put_v11_metric_samples(array['send_stall_rate'], array['canary'], array[%(bucket)s::timestamptz],"
        " array[0::bigint], array[100::bigint], array[null::double precision])",
        (),
    ),
    ("run_guardrails", "select * from chat_run_v11_guardrails()", ()),
    ("run_progression", "select * from chat_run_v11_progression()", ()),
    ("set_stage_policy", "select * from chat_set_v11_stage_policy('canary_1', '{\"approvals_required\": 1}')", ()),
    ("approve_promotion", "select * from chat_approve_v11_promotion('canary_1', 'four eyes')", ()),
    ("set_policy", "select * from chat_set_v11_policy('state_lock_timeout', '\"3 seconds\"')", ()),
    ("set_stage_settings", "select * from chat_set_v11_stage_settings('canary_1', 1.5, null)", ()),
    ("set_metric_rule", "select * from chat_set_v11_metric_rule('full_state_rate', '{\"factor\": 2}')", ()),
    ("open_incident", "select * from chat_open_v11_incident('P2', 'opened on the standby')", ()),
    ("log_incident", "select * from chat_log_v11_incident(%(incident)s, 'fact', 'a fact')", ()),
    ("set_incident_role", "select * from chat_set_v11_incident_role(%(incident)s, 'scribe', 'alice')", ()),
    ("set_incident_severity", "select * from chat_set_v11_incident_severity(%(incident)s, 'P1', 'worse')", ()),
    ("set_incident_status", "select * from chat_set_v11_incident_status(%(incident)s, 'mitigated', 'better')", ()),
    ("snapshot_incident", "select * from chat_snapshot_v11_incident(%(incident)s)", ()),
    ("put_postmortem", "select * from chat_put_v11_postmortem(%(incident)s, %(postmortem)s::jsonb)", ()),
    ("close_incident", "select * from chat_close_v11_incident(%(incident)s, 'done')", ("RO032", "RO034")),
]


@pytest.fixture(scope="module")
def pair(pg_server):
    """(primary, standby, incident id, the primary's state/history/verify before the standby was made)."""
    major = server_major(pg_server)
    reason = unavailable_reason(major)
    if reason is not None:
        pytest.skip(f"no private PostgreSQL {major} cluster here: {reason}")
    with private_cluster(major) as primary:
        primary.create_migrated_database(DB)
        with primary.connect(DB) as c:
            c.execute("select * from chat_set_v11_rollout_state('off', false, 'hold before the standby')")
            c.execute("select chat_put_v11_metric_samples(%s::jsonb)", (_sample(),))
            incident = c.execute("select incident_id from chat_open_v11_incident('P2', 'standby drill')").fetchone()[0]
            c.execute("select * from chat_log_v11_incident(%s, 'fact', 'primary is healthy')", (incident,))
        standby = primary.basebackup_to("standby")
        standby.start()
        with primary.connect(DB) as c:
            # a change made after the base backup reaches the standby through streaming replication
            c.execute("select * from chat_set_v11_rollout_state('off', true, 'kill after the base backup')")
            lsn = c.execute("select pg_current_wal_lsn()").fetchone()[0]
        with standby.connect(DB) as s:
            assert s.execute("select pg_is_in_recovery()").fetchone()[0] is True
            deadline = time.monotonic() + 30
            while s.execute("select pg_last_wal_replay_lsn() < %s::pg_lsn", (str(lsn),)).fetchone()[0]:
                assert time.monotonic() < deadline, "the standby did not replay the primary's WAL in 30 s"
                time.sleep(0.05)
        yield primary, standby, incident


def _params(incident: int, postmortem: dict) -> dict:
    return {"incident": incident, "samples": _sample("send_stall_rate"), "bucket": _bucket(30),
            "postmortem": json.dumps(postmortem)}


@pytest.mark.parametrize("name, sql, _", READERS, ids=[r[0] for r in READERS])
def test_every_reader_answers_on_the_hot_standby(pair, name, sql, _, postmortem_example):
    primary, standby, incident = pair
    with standby.connect(DB) as s:
        rows = s.execute(sql, _params(incident, postmortem_example)).fetchall()
    assert rows, f"{name} returned nothing on the standby"


def test_the_standby_shows_the_primarys_state_and_history(pair):
    primary, standby, incident = pair
    with primary.connect(DB) as p, standby.connect(DB) as s:
        assert state(s) == state(p)
        assert state(s)["reason"] == "kill after the base backup"
        assert history(s) == history(p)
        assert s.execute("select * from chat_verify_v11_history()").fetchone()[0] is True
        assert s.execute("select * from chat_get_v11_incidents()").fetchall() == p.execute(
            "select * from chat_get_v11_incidents()").fetchall()


@pytest.mark.parametrize("name, sql, also", WRITERS, ids=[w[0] for w in WRITERS])
def test_every_writer_fails_on_the_hot_standby_with_25006(pair, name, sql, also, postmortem_example):
    primary, standby, incident = pair
    with standby.connect(DB) as s:
        with pytest.raises(psycopg.Error) as info:
            s.execute(sql, _params(incident, postmortem_example))
    err = info.value
    print(f"standby {name}: {err.diag.sqlstate} {err.diag.message_primary}")
    assert err.diag.sqlstate == "25006", (
        f"{name}: SQLSTATE {err.diag.sqlstate} ({err.diag.message_primary}; context {err.diag.context})"
    )
    message = err.diag.message_primary
    assert "must run on the primary: this server is a read-only hot standby" in message, message
    assert err.diag.message_detail and err.diag.message_hint, (err.diag.message_detail, err.diag.message_hint)


def test_after_promote_the_new_primary_has_everything_and_the_kill_switch_works(pair):
    primary, standby, incident = pair
    with primary.connect(DB) as p:
        before_state = state(p)
        before_history = history(p, 100000)
        before_incidents = p.execute("select * from chat_get_v11_incidents()").fetchall()
    primary.stop("fast")  # the failover: the old primary is gone
    standby.promote()
    with standby.connect(DB) as s:
        deadline = time.monotonic() + 30
        while s.execute("select pg_is_in_recovery()").fetchone()[0]:
            assert time.monotonic() < deadline
            time.sleep(0.05)
        assert state(s) == before_state
        assert history(s, 100000) == before_history
        assert s.execute("select * from chat_get_v11_incidents()").fetchall() == before_incidents
        verify = s.execute("select ok, rows_checked from chat_verify_v11_history()").fetchone()
        assert verify == (True, before_state["version"])
        new = s.execute(
            "select kill_switch, version from chat_set_v11_rollout_state('off', true, 'kill on the new primary')"
        ).fetchone()
        assert new == (True, before_state["version"] + 1)
        assert s.execute("select ok from chat_verify_v11_history()").fetchone()[0] is True
        s.execute("select * from chat_log_v11_incident(%s, 'fact', 'failed over')", (incident,))
