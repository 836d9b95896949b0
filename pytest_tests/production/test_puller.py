"""Prometheus in (SPEC 7): ``chat-rollout pull`` against a REAL Prometheus scraping a simulated chat service.

The simulated service is a prometheus-client HTTP server in a thread: ACKs, ACKs without a receipt (the P0 metric
ack_without_receipt_10s_rate), dialog loads and full-state loads, per cohort, counted continuously. Prometheus
(Debian's /usr/bin/prometheus, a private process: pytest_tests/support/prometheus.py) scrapes it every second. The
puller runs as the ingest login chat_test_ingest through its Python API (the CLI runs the same ``Puller``):

- (a) the buckets written hold what Prometheus answers for those explicit times, each with its provenance (the query
  with its time=, the sha256 of the raw answer, which a second identical query reproduces);
- (b) an empty answer, a NaN and a multi-series answer write no sample: the P0 gate check is ``inconclusive``, never
  ``pass``; the multi-series source is an error, named and counted;
- (c) Prometheus down: the transport error is counted (also on the puller's own /metrics), nothing is written;
- (d) a P0 event injected into the service: the puller's next cycle kills the rollout (history action auto_kill);
  prints ``FIGURE injection_to_kill_ms``.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import threading
import time
import urllib.parse
import urllib.request

import psycopg
import pytest
from prometheus_client import CollectorRegistry, Counter, start_http_server
from psycopg.conninfo import make_conninfo

from chat_rollout.puller import BUCKET, Puller, align, round_count
from pytest_tests.support.calls import checks, history
from pytest_tests.support.cluster import free_port
from pytest_tests.support.prometheus import private_prometheus, prometheus_binary, scrape

SETTLE = 1.5  # Prometheus scrapes every second: a bucket's last sample is in 1 s after its end
HORIZON = dt.timedelta(seconds=30)

pytestmark = pytest.mark.skipif(prometheus_binary() is None, reason="prometheus is not installed "
                                "(apt-get install prometheus gives /usr/bin/prometheus)")


def acks(cohort: str) -> str:
    return f'sum(increase(chat_acks_total{{cohort="{cohort}"}}[10s]))'


def acks_without_receipt(cohort: str) -> str:
    return f'sum(increase(chat_acks_without_receipt_total{{cohort="{cohort}"}}[10s]))'


class ChatService:
    """A simulated chat service: counters per cohort, bumped by a thread every 100 ms."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.acks = Counter("chat_acks", "ACKs accepted or duplicate.", ["cohort"], registry=self.registry)
        self.lost = Counter("chat_acks_without_receipt", "ACKs without a receipt within 10 s.", ["cohort"],
                            registry=self.registry)
        self.dialogs = Counter("chat_dialog_loads", "Dialog loads.", ["cohort"], registry=self.registry)
        self.full = Counter("chat_full_state_loads", "Full-state dialog loads.", ["cohort"], registry=self.registry)
        for cohort in ("canary", "control"):
            for counter in (self.acks, self.lost, self.dialogs, self.full):
                counter.labels(cohort).inc(0)  # every series exists from the first scrape
        self.port = free_port()
        self.server, self.thread = start_http_server(self.port, addr="127.0.0.1", registry=self.registry)
        self.stop = threading.Event()
        self.ticker = threading.Thread(target=self._tick, daemon=True)
        self.ticker.start()

    def _tick(self) -> None:
        n = 0
        while not self.stop.wait(0.1):
            n += 1
            for cohort in ("canary", "control"):
                self.acks.labels(cohort).inc(3)
                self.dialogs.labels(cohort).inc(2)
                if n % 10 == 0:
                    self.full.labels(cohort).inc()

    def close(self) -> None:
        self.stop.set()
        self.ticker.join(timeout=5)
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture(scope="module")
def world():
    """The service and a Prometheus scraping it, once a complete bucket of data exists."""
    service = ChatService()
    try:
        with private_prometheus({"chat": [f"127.0.0.1:{service.port}"]}) as prom:
            deadline = time.monotonic() + 30
            while not prom.query('chat_acks_total{cohort="canary"}'):
                assert time.monotonic() < deadline, prom.log_tail()
                time.sleep(0.2)
            first = align(dt.datetime.now(dt.UTC)) + BUCKET  # the first bucket with scrapes all through it
            wait_until(first + BUCKET + dt.timedelta(seconds=SETTLE))
            yield service, prom
    finally:
        service.close()


def wait_until(moment: dt.datetime) -> None:
    time.sleep(max(0.0, (moment - dt.datetime.now(dt.UTC)).total_seconds()))


def raw_query(prom, expr: str, at: dt.datetime) -> bytes:
    params = urllib.parse.urlencode({"query": expr, "time": f"{at.timestamp():.0f}", "timeout": "5000ms"})
    with urllib.request.urlopen(f"{prom.api}/query?{params}", timeout=10) as response:
        return response.read()


def value_at(prom, expr: str, at: dt.datetime) -> float | None:
    params = {"query": expr, "time": f"{at.timestamp():.0f}"}
    result = prom.get("query", **params)["result"]
    return float(result[0]["value"][1]) if len(result) == 1 else None


def ingest_puller(db_url: str, prometheus_url: str, **kwargs) -> Puller:
    return Puller(make_conninfo(db_url, user="chat_test_ingest"), prometheus_url, horizon=HORIZON, settle=SETTLE,
                  timeout=kwargs.pop("timeout", 5.0), **kwargs)


def set_source(conn, metric: str, cohort: str, source: dict) -> None:
    conn.execute("select * from public.chat_set_v11_metric_source(%s, %s, %s)",
                 (metric, cohort, psycopg.types.json.Jsonb(source)))


def samples(conn) -> list[dict]:
    cur = conn.cursor(row_factory=psycopg.rows.dict_row)
    return cur.execute("select * from public.chat_get_v11_metric_samples(now() - interval '1 hour', now())").fetchall()


def pulls(conn) -> list[dict]:
    cur = conn.cursor(row_factory=psycopg.rows.dict_row)
    return cur.execute("select * from public.chat_get_v11_metric_pulls(now() - interval '1 hour', now())").fetchall()


def test_buckets_hold_what_prometheus_answers_with_provenance(world, conn, db_url):
    _, prom = world
    for cohort in ("canary", "control"):
        set_source(conn, "ack_without_receipt_10s_rate", cohort,
                   {"numerator": acks_without_receipt(cohort), "denominator": acks(cohort)})
    set_source(conn, "full_state_rate", "canary", {
        "numerator": 'sum(increase(chat_full_state_loads_total{cohort="canary"}[10s]))',
        "denominator": 'sum(increase(chat_dialog_loads_total{cohort="canary"}[10s]))',
    })
    puller = ingest_puller(db_url, f"http://127.0.0.1:{prom.port}")
    try:
        report = puller.pull_once()
    finally:
        puller.close()
    assert not report.errors, report.errors
    stored = samples(conn)
    assert stored, "no bucket was written"
    assert len(report.buckets_written) >= 1
    sources = {r[0] + "/" + r[1]: r for r in conn.execute(
        "select metric, cohort, numerator, denominator from public.chat_get_v11_metric_sources()")}
    for s in stored:
        _, _, numerator_expr, denominator_expr = sources[f"{s['metric']}/{s['cohort']}"]
        end = s["bucket_start"] + BUCKET
        # what Prometheus answers for that explicit time, rounded as the puller documents
        assert s["numerator"] == round_count(value_at(prom, numerator_expr, end)), s
        assert s["denominator"] == round_count(value_at(prom, denominator_expr, end)), s
        assert s["denominator"] > 0, s  # the service counts all the time: real volume, not a zero
    assert {s["metric"] for s in stored} == {"ack_without_receipt_10s_rate", "full_state_rate"}
    assert all(s["numerator"] == 0 for s in stored if s["metric"] == "ack_without_receipt_10s_rate")

    records = pulls(conn)
    by_key = {(r["metric"], r["cohort"], r["bucket_start"], r["field"]): r for r in records}
    for s in stored:
        for field_name in ("numerator", "denominator"):
            record = by_key[(s["metric"], s["cohort"], s["bucket_start"], field_name)]
            end = s["bucket_start"] + BUCKET
            assert record["outcome"] == "value" and record["pulled_by"] == "chat_test_ingest"
            assert record["query_time"] == end
            assert f"time={end.timestamp():.0f}" in record["query"] and "increase(" in record["query"]
            assert round_count(record["value"]) == s[field_name]
            expr = record["query"].split("query=", 1)[1].rsplit("&time=", 1)[0]
            raw = raw_query(prom, expr, end)  # the same question again: the same bytes
            assert hashlib.sha256(raw).hexdigest() == record["answer_sha256"]
            assert record["answer_excerpt"] == raw.decode()[:2000]
    assert puller.metrics.buckets._value.get() == len(stored)

    # a second cycle right away writes nothing again (the buckets are pulled), and errs nowhere
    again = ingest_puller(db_url, f"http://127.0.0.1:{prom.port}")
    try:
        second = again.pull_once()
    finally:
        again.close()
    assert not second.errors
    assert set(second.buckets_written) <= {report.last_complete + BUCKET}


def test_empty_nan_and_multi_series_answers_write_no_sample_and_never_pass(world, conn, db_url):
    _, prom = world
    for cohort in ("canary", "control"):  # a series that does not exist: an empty vector
        set_source(conn, "read_rollback_detected_rate", cohort, {
            "numerator": f'sum(increase(chat_read_rollbacks_total{{cohort="{cohort}"}}[10s]))',
            "denominator": acks(cohort),
        })
    set_source(conn, "recovery_p95_ms", "canary", {"value": "vector(NaN)"})
    set_source(conn, "timeline_duplicate_detected_rate", "canary", {  # one series per cohort: two series
        "numerator": "increase(chat_acks_without_receipt_total[10s])", "denominator": acks("canary"),
    })
    puller = ingest_puller(db_url, f"http://127.0.0.1:{prom.port}")
    try:
        report = puller.pull_once()
    finally:
        puller.close()
    assert samples(conn) == []
    outcomes = {(r["metric"], r["field"], r["outcome"]) for r in pulls(conn)}
    assert ("read_rollback_detected_rate", "numerator", "empty") in outcomes
    assert ("read_rollback_detected_rate", "denominator", "value") in outcomes  # read, kept, yet no sample
    assert ("recovery_p95_ms", "value", "nan") in outcomes
    assert ("timeline_duplicate_detected_rate", "numerator", "multiple_series") in outcomes
    assert report.errors and all("multiple_series" in e for e in report.errors), report.errors
    assert "timeline_duplicate_detected_rate/canary" in report.errors[0]
    assert puller.metrics.errors.labels("multiple_series")._value.get() == len(report.errors)
    gate = checks(conn)
    for metric in ("read_rollback_detected_rate", "timeline_duplicate_detected_rate"):  # P0, exactly-zero rules
        assert gate[metric]["status"] == "inconclusive", gate[metric]
        assert gate[metric]["explanation"], gate[metric]
    assert gate["recovery_p95_ms"]["status"] != "pass", gate["recovery_p95_ms"]  # a P1 is not_applicable at off


def test_prometheus_down_is_counted_and_writes_nothing(conn, db_url):
    set_source(conn, "ack_without_receipt_10s_rate", "canary",
               {"numerator": acks_without_receipt("canary"), "denominator": acks("canary")})
    dead = free_port()  # nothing listens there
    puller = ingest_puller(db_url, f"http://127.0.0.1:{dead}", timeout=2.0)
    port = free_port()
    server, _ = puller.serve_metrics("127.0.0.1", port)
    try:
        report = puller.pull_once()
        second = puller.pull_once()
        page = scrape(f"http://127.0.0.1:{port}/metrics")
    finally:
        server.shutdown()
        server.server_close()
        puller.close()
    assert len(report.errors) == 1 and report.errors[0].startswith("transport:"), report.errors
    assert second.errors
    assert page.value("chat_rollout_pull_errors_total", reason="transport") == 2
    assert page.value("chat_rollout_pull_consecutive_errors") == 2
    assert page.value("chat_rollout_pull_last_success_timestamp_seconds") == 0
    assert page.value("chat_rollout_pull_buckets_written_total") == 0
    assert samples(conn) == [] and pulls(conn) == []
    check = checks(conn)["ack_without_receipt_10s_rate"]
    assert check["status"] == "inconclusive", check


def test_p0_event_in_the_service_kills_the_rollout_on_the_next_pull(world, conn, db_url):
    service, prom = world
    for cohort in ("canary", "control"):
        set_source(conn, "ack_without_receipt_10s_rate", cohort,
                   {"numerator": acks_without_receipt(cohort), "denominator": acks(cohort)})
    puller = ingest_puller(db_url, f"http://127.0.0.1:{prom.port}")
    stop = threading.Event()
    failures: list[BaseException] = []

    def loop() -> None:
        try:
            puller.run(stop, interval=10)
        except BaseException as exc:  # noqa: BLE001 -- reported by the test
            failures.append(exc)

    runner = threading.Thread(target=loop, daemon=True)
    runner.start()
    try:
        # inject 2 s into a fresh bucket, once the loop has caught up (its first cycle backfills the horizon)
        wait_until(align(dt.datetime.now(dt.UTC)) + BUCKET + dt.timedelta(seconds=2))
        assert not any(h["action"] == "auto_kill" for h in history(conn))
        injected = dt.datetime.now(dt.UTC)
        service.lost.labels("canary").inc(4)
        deadline = time.monotonic() + 40
        kill = None
        while kill is None and time.monotonic() < deadline and not failures:
            kill = next((h for h in history(conn) if h["action"] == "auto_kill"), None)
            time.sleep(0.05)
    finally:
        stop.set()
        runner.join(timeout=30)
        puller.close()
    assert not failures, failures
    assert kill is not None, f"no automatic kill; samples: {samples(conn)}"
    assert kill["to_kill_switch"] is True
    elapsed_ms = (kill["changed_at"] - injected).total_seconds() * 1000
    bad = [s for s in samples(conn) if s["metric"] == "ack_without_receipt_10s_rate" and s["numerator"] > 0]
    assert bad and bad[0]["cohort"] == "canary" and bad[0]["bucket_start"] == align(injected), bad
    print(f"\nFIGURE injection_to_kill_ms {elapsed_ms:.0f} (P0 event 2 s into a 10-second bucket; Prometheus scrape "
          f"1 s; puller settle {SETTLE} s; history changed_at {kill['changed_at'].isoformat()})")
