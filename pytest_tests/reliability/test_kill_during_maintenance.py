"""Issues 6 and 12 / SPEC 4.6: partition maintenance (DDL on the metric store) never makes the kill switch queue
behind a long reader. While a long transaction reads the metric store, every chat_run_v11_maintenance() run wants to
drop an expired partition, waits at most 50 ms for its lock, gives up and reports it; kills issued meanwhile (their
gate snapshot reads the metric store) all go through while the long reader is still open."""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime, timedelta

import psycopg

from pytest_tests.support.calls import arrange_state, state


def test_kills_go_through_while_maintenance_keeps_failing_behind_a_long_reader(conn, db_url):
    old = (datetime.now(UTC) - timedelta(days=12)).date()
    conn.execute("select chat_v11.ensure_sample_partitions(%s, %s)", (old, old))
    conn.execute("select chat_set_v11_policy('retention', '\"5 days\"')")
    arrange_state(conn, "promote", "canary_5", False, False)
    expired = f"metric_sample_p{old:%Y%m%d}"

    reader = psycopg.connect(db_url, application_name="long reader")
    reader.execute("select count(*) from chat_v11.metric_sample")  # AccessShare on every partition, kept open
    stop = threading.Event()
    runs: list[str] = []
    errors: list[BaseException] = []

    def maintenance() -> None:
        try:
            with psycopg.connect(db_url, autocommit=True) as g:
                g.execute("set statement_timeout = '20s'")
                while not stop.is_set():
                    rows = g.execute("select action, detail from chat_run_v11_maintenance()").fetchall()
                    runs.extend(f"{a}: {d}" for a, d in rows)
        except BaseException as exc:  # noqa: BLE001 - reported by the main thread
            errors.append(exc)

    thread = threading.Thread(target=maintenance)
    thread.start()
    kills = []
    try:
        with psycopg.connect(db_url, autocommit=True, application_name="oncall") as oncall:
            oncall.execute("set statement_timeout = '20s'")
            for i in range(30):
                started = time.monotonic()
                row = oncall.execute(
                    "select kill_switch, version from chat_set_v11_rollout_state('canary_5', true, %s)",
                    (f"incident P0 #{i}",),
                ).fetchone()
                kills.append((time.monotonic() - started, row[0]))
                time.sleep(0.01)
    finally:
        stop.set()
        thread.join(30)
        still_open = reader.info.transaction_status == psycopg.pq.TransactionStatus.INTRANS
        reader.close()
    assert not errors, errors
    assert still_open  # the long reader was open the whole time
    assert all(killed for _, killed in kills)
    assert max(seconds for seconds, _ in kills) < 5  # not queued behind the reader (it never ended meanwhile)
    assert runs and all(r.startswith("skipped: ") and "busy for 50 ms" in r for r in runs)
    assert state(conn)["kill_switch"] is True
    # the reader is gone: the next run drops the expired day
    actions = conn.execute("select action from chat_run_v11_maintenance()").fetchall()
    assert ("prune",) in actions
    assert conn.execute("select to_regclass(%s)", (f"chat_v11.{expired}",)).fetchone()[0] is None
