"""``chat-rollout seed``: a scenario through the shared loader and the public ingestion path, then its checkpoints.

Every test runs against the harness's server through DATABASE_URL, on its own freshly migrated clone.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import psycopg

from chat_rollout import scenarios
from pytest_tests.support.calls import history, invoke, state


def _samples(conn: psycopg.Connection) -> tuple[int, datetime | None, datetime | None]:
    return conn.execute("select count(*), min(bucket_start), max(bucket_start) from chat_v11.metric_sample").fetchone()


def test_seed_writes_the_scenario_and_shows_its_checkpoints_next_to_the_computed_gates(db_url):
    anchor = scenarios.anchor_now()
    expected = scenarios.load("healthy_canary").samples(anchor)

    result = invoke(["seed", "healthy_canary", "--anchor", anchor.isoformat()], db_url)
    assert result.exit_code == 0, result.output
    out = result.output
    assert "scenario healthy_canary: Healthy canary at 1 %" in out
    assert "writing samples" in out and f"{len(expected)}/{len(expected)}" in out  # the progress bar, at its end
    assert f"wrote {len(expected)} samples through chat_put_v11_metric_samples" in out
    assert "PROCEED" in out
    assert "at 0m " in out and "at -70m " in out
    assert "All 20 expectations of 3 checkpoints hold." in out
    assert "differs" not in out
    with psycopg.connect(db_url, autocommit=True) as conn:
        assert _samples(conn) == (len(expected), anchor - timedelta(minutes=60), anchor)
        assert state(conn)["version"] == 1  # healthy data changes nothing


def test_seed_rounds_the_anchor_down_to_a_bucket_and_takes_utc_by_default(db_url):
    result = invoke(["seed", "healthy_canary", "--anchor", "2026-11-26T10:00:07", "--batch-size", "700"], db_url)
    assert result.exit_code == 0, result.output
    assert "anchor: 2026-11-26 10:00:00 UTC" in result.output
    assert "rounded down to a 10-second bucket" in result.output
    with psycopg.connect(db_url, autocommit=True) as conn:
        count, first, last = _samples(conn)
        assert (first, last) == (datetime(2026, 11, 26, 9, 0, tzinfo=UTC), datetime(2026, 11, 26, 10, 0, tzinfo=UTC))
        assert count == len(scenarios.load("healthy_canary").samples(last))


def test_seeding_a_p0_spike_engages_the_kill_switch_and_says_so(db_url):
    result = invoke(["seed", "p0_ack_spike"], db_url)
    assert result.exit_code == 0, result.output
    assert "the rollout state changed while seeding: version 2 auto_kill by guardrail" in result.output
    assert "ROLLBACK" in result.output
    assert "All 24 expectations of 4 checkpoints hold." in result.output
    with psycopg.connect(db_url, autocommit=True) as conn:
        assert state(conn)["kill_switch"] is True
        assert [(r["action"], r["actor"]) for r in history(conn, 1)] == [("auto_kill", "guardrail")]


def test_seed_applies_the_scenarios_metric_rules(db_url):
    result = invoke(["seed", "static_baseline"], db_url)
    assert result.exit_code == 0, result.output
    assert 'metric rule full_state_rate ← {"static_baseline": 0.003}' in result.output
    assert "All 5 expectations of 1 checkpoint hold." in result.output
    with psycopg.connect(db_url, autocommit=True) as conn:
        changed = conn.execute("select target, target_key from chat_v11.config_change order by change_id").fetchall()
        assert changed == [
            ("metric_rule", "resync_range_unavailable_rate"),
            ("metric_rule", "full_state_rate"),
            ("metric_rule", "forced_resync_rate"),
            ("metric_rule", "recovery_p95_ms"),
        ]


def test_a_rejected_batch_leaves_nothing_seeded(db_url):
    """Rules and samples go in one transaction: a batch refused late rolls back the earlier ones too."""
    future = datetime.now(UTC) + timedelta(hours=1)  # the newest buckets are more than 5 minutes ahead
    result = invoke(["seed", "static_baseline", "--anchor", future.isoformat(), "--batch-size", "500"], db_url)
    assert result.exit_code == 1
    assert "ERROR RO024: " in result.output
    assert "Traceback" not in result.output
    with psycopg.connect(db_url, autocommit=True) as conn:
        assert _samples(conn)[0] == 0
        assert conn.execute("select count(*) from chat_v11.config_change").fetchone()[0] == 0


def test_seed_list_shows_every_scenario_with_its_description(db_url):
    result = invoke(["seed", "--list"], db_url)
    assert result.exit_code == 0, result.output
    for name in scenarios.names():
        assert name in result.output
    assert "_healthy" not in result.output  # fragments (files starting with _) are not scenarios
    assert "Healthy canary at 1 %" in result.output


def test_an_unknown_scenario_is_a_clear_error_with_exit_1(db_url):
    result = invoke(["seed", "no_such_scenario"], db_url)
    assert result.exit_code == 1
    assert "unknown scenario: 'no_such_scenario'" in result.output
    assert "healthy_canary" in result.output and "seed --list" in result.output
    assert "Traceback" not in result.output
    assert invoke(["seed", "_healthy"], db_url).exit_code == 1  # a fragment is not a scenario
    assert invoke(["seed", "missing.toml"], db_url).exit_code == 1


def test_seed_without_a_scenario_or_with_a_bad_anchor_is_a_usage_error(db_url):
    result = invoke(["seed"], db_url)
    assert result.exit_code == 2
    assert "missing scenario" in result.output
    result = invoke(["seed", "healthy_canary", "--anchor", "yesterday"], db_url)
    assert result.exit_code == 2
    assert "is not an ISO 8601 time" in result.output
    with psycopg.connect(db_url, autocommit=True) as conn:
        assert _samples(conn)[0] == 0


def test_seed_on_an_unmigrated_database_points_to_migrate(empty_db):
    _, url = empty_db
    result = invoke(["seed", "healthy_canary"], url)
    assert result.exit_code == 1
    assert "chat-rollout migrate" in result.output
    assert "Traceback" not in result.output
