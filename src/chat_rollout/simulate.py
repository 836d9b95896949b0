"""A simulated chat service for the end-to-end story (``chat-rollout simulate``): prometheus-client counters per cohort.

It serves, on a registry of its own, what the metric catalog (``sql/0120_table_metric.sql``) needs, for the cohorts
``canary`` and ``control`` (label ``cohort``), counted continuously by a thread every 100 ms at ``rate`` sends per
second per cohort:

======================================  ==================================================================
catalog metric                          numerator / denominator (counters) or value
======================================  ==================================================================
``ack_without_receipt_10s_rate`` (P0)   ``chat_acks_without_receipt_total`` / ``chat_acks_total``
``timeline_duplicate_detected_rate``    ``chat_timeline_duplicates_total`` / ``chat_timeline_entries_total``
``read_rollback_detected_rate``         ``chat_read_rollbacks_total`` / ``chat_read_position_updates_total``
``send_stall_rate`` (P0, at most 1 %)   ``chat_sends_stalled_total`` / ``chat_sends_total``
``pending_forever_count`` (P0, no new)  ``chat_pending_forever_total`` (a count)
``resync_range_unavailable_rate`` (P1)  ``chat_resync_range_unavailable_total`` / ``chat_resyncs_total``
``full_state_rate`` (P1)                ``chat_full_state_loads_total`` / ``chat_dialog_loads_total``
``forced_resync_rate`` (P1)             ``chat_forced_resyncs_total`` / ``chat_recoveries_total``
``recovery_p95_ms`` (P1)                the histogram ``chat_recovery_duration_seconds`` (p95 × 1000)
======================================  ==================================================================

Healthy by default: no P0 event at all, and the same small P1 rates in both cohorts. :meth:`ChatService.inject`
(``POST /inject?metric=NAME[&count=N]``, or ``--p0-at SECONDS``) adds an event of that metric to the canary. The
PromQL of each source is :func:`promql` (``deploy/story/sources.sql`` holds the same expressions).
"""

from __future__ import annotations

import json
import logging
import threading
import time
import urllib.parse
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Histogram, generate_latest

log = logging.getLogger("chat_rollout.simulate")

COHORTS = ("canary", "control")
TICK = 0.1  # seconds between two counting steps
DEFAULT_RATE = 50.0  # sends per second per cohort
DEFAULT_LISTEN = "127.0.0.1:9466"
RECOVERY_BUCKETS = (0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
#: Healthy recovery durations (seconds), observed in turn by both cohorts: p95 about 0.45 s.
RECOVERY_DURATIONS = (0.04, 0.07, 0.09, 0.12, 0.15, 0.2, 0.08, 0.3, 0.06, 0.4)


@dataclass(frozen=True)
class Source:
    """How a catalog metric is counted: the numerator and denominator counters (base names), or the histogram."""

    kind: str  # rate, count or latency_ms
    severity: str
    numerator: str | None = None
    denominator: str | None = None
    histogram: str | None = None
    default_count: int = 5  # events one injection adds


SOURCES: dict[str, Source] = {
    "ack_without_receipt_10s_rate": Source("rate", "P0", "chat_acks_without_receipt", "chat_acks"),
    "timeline_duplicate_detected_rate": Source("rate", "P0", "chat_timeline_duplicates", "chat_timeline_entries"),
    "read_rollback_detected_rate": Source("rate", "P0", "chat_read_rollbacks", "chat_read_position_updates"),
    "send_stall_rate": Source("rate", "P0", "chat_sends_stalled", "chat_sends"),
    "pending_forever_count": Source("count", "P0", "chat_pending_forever"),
    "resync_range_unavailable_rate": Source("rate", "P1", "chat_resync_range_unavailable", "chat_resyncs"),
    "full_state_rate": Source("rate", "P1", "chat_full_state_loads", "chat_dialog_loads"),
    "forced_resync_rate": Source("rate", "P1", "chat_forced_resyncs", "chat_recoveries"),
    "recovery_p95_ms": Source("latency_ms", "P1", histogram="chat_recovery_duration_seconds"),
}

_HELP = {
    "chat_sends": "Messages sent.",
    "chat_sends_stalled": "Sends stalled (user-facing).",
    "chat_acks": "ACKs accepted or duplicate.",
    "chat_acks_without_receipt": "ACKs accepted or duplicate without a receipt within 10 s.",
    "chat_timeline_entries": "Timeline entries appended.",
    "chat_timeline_duplicates": "Duplicate timeline entries detected.",
    "chat_read_position_updates": "Read-position updates.",
    "chat_read_rollbacks": "Read positions rolled back.",
    "chat_pending_forever": "Messages that stayed pending forever.",
    "chat_resyncs": "Resync requests.",
    "chat_resync_range_unavailable": "Resyncs answered ERR_RESYNC_RANGE_UNAVAILABLE.",
    "chat_dialog_loads": "Dialog loads.",
    "chat_full_state_loads": "Full-state dialog loads.",
    "chat_recoveries": "Recoveries (reconnect and catch-up).",
    "chat_forced_resyncs": "Recoveries that forced a resync.",
}

#: Healthy events per second per cohort, as a fraction of ``rate`` (sends per second).
_HEALTHY = {
    "chat_sends": 1.0, "chat_acks": 1.0, "chat_timeline_entries": 1.0, "chat_read_position_updates": 0.5,
    "chat_dialog_loads": 0.4, "chat_full_state_loads": 0.004, "chat_resyncs": 0.2,
    "chat_resync_range_unavailable": 0.001, "chat_recoveries": 0.2, "chat_forced_resyncs": 0.002,
}


def delta(series: str, cohort: str) -> str:
    """What a counter counted in the 10-second bucket that ends at the query's ``time=``: its last scraped value at
    the end minus its last scraped value at the start. Every scraped increase falls in exactly one bucket (the one
    whose scrape first saw it), a whole number. ``sum(increase(x[10s]))`` loses the increase between the last scrape
    of a bucket and the first scrape of the next (neither window holds both samples): an event in the first scrape
    interval of a bucket can vanish (test_story injects there). A counter reset reads negative: a ``bad_value``."""
    selector = f'{series}{{cohort="{cohort}"}}'
    return f"sum({selector}) - sum({selector} offset 10s)"


def promql(metric: str, cohort: str) -> dict[str, str]:
    """The source of ``metric`` for ``cohort`` as ``chat_set_v11_metric_source`` takes it (field -> PromQL): what was
    counted in the 10-second bucket that ends at the query's ``time=`` (:func:`delta`); the latency is the p95 of
    the recoveries observed in that bucket (NaN, so no sample, when there were none)."""
    source = SOURCES[metric]
    if source.histogram:
        selector = f'{source.histogram}_bucket{{cohort="{cohort}"}}'
        return {"value": f"1000 * histogram_quantile(0.95, sum by (le) ({selector} - {selector} offset 10s))"}
    fields = {"numerator": delta(f"{source.numerator}_total", cohort)}
    if source.denominator:
        fields["denominator"] = delta(f"{source.denominator}_total", cohort)
    return fields


class ChatService:
    """The counters of both cohorts, a thread counting them and (after :meth:`serve`) an HTTP server."""

    def __init__(self, rate: float = DEFAULT_RATE) -> None:
        if rate <= 0:
            raise ValueError("the rate must be positive")
        self.rate = rate
        self.registry = CollectorRegistry()
        self.counters = {
            name: Counter(name, help_text, ["cohort"], registry=self.registry) for name, help_text in _HELP.items()
        }
        self.recovery = Histogram("chat_recovery_duration_seconds", "Recovery time (reconnect to caught up).",
                                  ["cohort"], buckets=RECOVERY_BUCKETS, registry=self.registry)
        for cohort in COHORTS:  # every series exists from the first scrape: an increase of 0, never an empty answer
            for counter in self.counters.values():
                counter.labels(cohort).inc(0)
            self.recovery.labels(cohort)
        self._owed = {(name, cohort): 0.0 for name in _HEALTHY for cohort in COHORTS}
        self._observed = 0
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._ticker: threading.Thread | None = None
        self.server: ThreadingHTTPServer | None = None
        self._server_thread: threading.Thread | None = None
        self.injections: list[dict] = []

    # --- counting ------------------------------------------------------------------------------------------------

    def tick(self) -> None:
        """One step of healthy traffic (``TICK`` seconds of it) in both cohorts."""
        with self._lock:
            for (name, cohort), owed in self._owed.items():
                owed += self.rate * _HEALTHY[name] * TICK
                whole = int(owed)
                if whole:
                    self.counters[name].labels(cohort).inc(whole)
                self._owed[(name, cohort)] = owed - whole
            for _ in range(max(1, round(self.rate * _HEALTHY["chat_recoveries"] * TICK))):
                duration = RECOVERY_DURATIONS[self._observed % len(RECOVERY_DURATIONS)]
                self._observed += 1
                for cohort in COHORTS:
                    self.recovery.labels(cohort).observe(duration)

    def inject(self, metric: str, count: int | None = None, cohort: str = "canary") -> dict:
        """An event of ``metric`` in ``cohort`` (default the canary): ``count`` events of its numerator (a send stall:
        a quarter of a bucket's sends at least; a latency: ``count`` recoveries of 30 s). Returns what it did."""
        if metric not in SOURCES:
            raise KeyError(f"unknown metric {metric!r}; one of: {', '.join(SOURCES)}")
        if cohort not in COHORTS:
            raise KeyError(f"unknown cohort {cohort!r}; one of: {', '.join(COHORTS)}")
        source = SOURCES[metric]
        n = source.default_count if count is None else count
        if n < 1:
            raise ValueError("count must be at least 1")
        with self._lock:
            if source.histogram:
                for _ in range(n):
                    self.recovery.labels(cohort).observe(30.0)
            else:
                if metric == "send_stall_rate" and count is None:
                    n = max(n, int(self.rate * 10 / 4))
                self.counters[source.numerator].labels(cohort).inc(n)
        done = {"metric": metric, "severity": source.severity, "cohort": cohort, "count": n,
                "injected_at": time.time()}
        self.injections.append(done)
        log.warning("injected %s", json.dumps(done))
        return done

    def start(self) -> None:
        self._ticker = threading.Thread(target=self._run, name="chat-simulate-ticker", daemon=True)
        self._ticker.start()

    def _run(self) -> None:
        self.tick()
        while not self._stop.wait(TICK):
            self.tick()

    # --- HTTP ----------------------------------------------------------------------------------------------------

    def serve(self, host: str, port: int) -> ThreadingHTTPServer:
        """Serve ``GET /metrics`` and ``POST /inject`` on host:port (port 0: a free one) in a thread."""
        service = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, fmt: str, *args) -> None:  # quiet: Prometheus scrapes every second
                log.debug(fmt, *args)

            def _send(self, status: int, body: bytes, content_type: str) -> None:
                self.send_response(status)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def do_GET(self) -> None:  # noqa: N802 -- http.server's name
                path = urllib.parse.urlsplit(self.path).path
                if path == "/metrics":
                    self._send(200, generate_latest(service.registry), CONTENT_TYPE_LATEST)
                elif path == "/":
                    text = ("chat-rollout simulate: GET /metrics; POST /inject?metric=NAME[&count=N][&cohort=canary]"
                            f"\nmetrics: {', '.join(SOURCES)}\n")
                    self._send(200, text.encode(), "text/plain; charset=utf-8")
                else:
                    self._send(404, b"not found\n", "text/plain; charset=utf-8")

            def do_POST(self) -> None:  # noqa: N802 -- http.server's name
                parts = urllib.parse.urlsplit(self.path)
                if parts.path != "/inject":
                    self._send(404, b"not found\n", "text/plain; charset=utf-8")
                    return
                params = dict(urllib.parse.parse_qsl(parts.query))
                try:
                    count = int(params["count"]) if "count" in params else None
                    done = service.inject(params.get("metric", "ack_without_receipt_10s_rate"), count,
                                          params.get("cohort", "canary"))
                except (KeyError, ValueError) as exc:
                    self._send(400, (json.dumps({"error": str(exc).strip('"')}) + "\n").encode(), "application/json")
                    return
                self._send(200, (json.dumps(done) + "\n").encode(), "application/json")

        self.server = ThreadingHTTPServer((host, port), Handler)
        self.server.daemon_threads = True
        self._server_thread = threading.Thread(target=self.server.serve_forever, name="chat-simulate-http",
                                               daemon=True)
        self._server_thread.start()
        return self.server

    @property
    def port(self) -> int:
        assert self.server is not None
        return self.server.server_address[1]

    def stop(self) -> None:
        self._stop.set()
        if self._ticker is not None:
            self._ticker.join(timeout=5)
        if self.server is not None:
            self.server.shutdown()
            self.server.server_close()
