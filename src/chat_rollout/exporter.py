"""``chat-rollout exporter``: the rollout as Prometheus metrics, read through the reader API (SPEC 7, "Prometheus out").

:class:`RolloutCollector` is a prometheus-client custom collector. Each scrape (each ``collect()``) is **one
consistent read**: one ``REPEATABLE READ, READ ONLY`` transaction on one kept connection, with a
``statement_timeout``, that calls the reader API (``chat_get_v11_rollout_state()``,
``chat_get_v11_release_gates()``, ``chat_get_v11_gate_checks()``, ``chat_get_v11_incidents()``,
``chat_verify_v11_history()``: flat cost, it starts from the newest checkpoint). Every value of a scrape therefore
comes from the same snapshot and the same ``now()``: a kill committed before the scrape is in it, whole.

When anything fails (the server is down, the database refuses connections, the login may not read, the read
outlasts the timeout) the scrape says so and nothing else: ``chat_rollout_up 0``,
``chat_rollout_scrape_errors_total`` one higher, ``chat_rollout_scrape_duration_seconds``, and **no rollout
series**: a value the exporter could not read now is never served as current (Prometheus marks the missing series
stale at once). The broken connection is dropped; the next scrape connects again.

Labels are bounded (README, "Prometheus"): per check ``metric`` (the metric catalog: 9 today), ``severity``
(P0, P1), ``scope`` (``all cohorts``, ``per cohort``, ``canary vs control``) and ``status`` (4 values); everything
else has fixed label values. A scrape holds at most ``FIXED_SERIES + SERIES_PER_CHECK x checks`` series.

:func:`serve` runs it on its own :class:`prometheus_client.CollectorRegistry` (never the process-wide default one)
behind prometheus-client's HTTP server; ``chat_rollout.cli.exporter`` is the command.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

import psycopg
from prometheus_client import CollectorRegistry, start_http_server
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from psycopg.rows import dict_row

from .connect import connect

log = logging.getLogger("chat_rollout.exporter")

PREFIX = "chat_rollout_"
#: The stages in promotion order (chat_v11.stage.ordinal, sql/0100_table_stage.sql; the playbook's ladder).
STAGES = ("off", "canary_1", "canary_5", "canary_25", "canary_50", "full")
#: The values of rollout_decision (chat_v11.evaluate_gates, sql/0410_function_evaluate_gates.sql).
DECISIONS = ("PROCEED", "HOLD", "ROLLBACK")
#: The statuses of a gate check (chat_v11.evaluate_checks, sql/0400_function_evaluate_checks.sql).
CHECK_STATUSES = ("pass", "fail", "inconclusive", "not_applicable")
#: Incident severities (chat_v11.incident's check constraint); an incident counts as open until it is resolved.
SEVERITIES = ("P0", "P1", "P2")
OPEN_INCIDENT_STATUSES = ("open", "mitigated")
#: The per-check value columns of chat_get_v11_gate_checks() and the gauge each one becomes.
CHECK_VALUES = ("value", "threshold", "baseline", "volume")

#: Series with fixed labels in a healthy scrape: up, scrape_errors_total, scrape_duration_seconds, rollout_info,
#: stage_ordinal, traffic_percent, kill_switch, promotion_frozen, version, state_changed_timestamp_seconds,
#: decision (3), gate_ok (2), promotion_allowed, open_incidents (3), history_verified, history_head_version.
FIXED_SERIES = 10 + len(DECISIONS) + 2 + 1 + len(SEVERITIES) + 2
#: Series per gate check at most: one per status, and value, threshold, baseline, volume (each omitted when null).
SERIES_PER_CHECK = len(CHECK_STATUSES) + len(CHECK_VALUES)

DEFAULT_STATEMENT_TIMEOUT_S = 5.0
DEFAULT_CONNECT_TIMEOUT_S = 5
APPLICATION_NAME = "chat-rollout exporter"
#: TCP keepalives of the kept connection: a server that vanished without a word (no RST) is found within ~15 s
#: instead of the kernel's hours, so a scrape waiting on it fails (up 0) rather than hanging.
KEEPALIVES = {"keepalives": 1, "keepalives_idle": 5, "keepalives_interval": 2, "keepalives_count": 3}

#: Every name the exporter writes, with its help text (the README's table is this one).
HELP = {
    "up": "1 when this scrape read the rollout from the database, 0 when it could not (then no rollout series).",
    "scrape_errors": "Scrapes that could not read the rollout from the database, since the exporter started.",
    "scrape_duration_seconds": "How long this scrape's database read took.",
    "rollout_info": "The current stage, as a label (always 1).",
    "stage_ordinal": "The current stage in promotion order: 0 off, 1 canary_1, 2 canary_5, 3 canary_25, "
    "4 canary_50, 5 full.",
    "traffic_percent": "The share of traffic on protocol v1.1 at the current stage, in percent.",
    "kill_switch": "1 when the kill switch is on (no v1.1 traffic).",
    "promotion_frozen": "1 when promotion is frozen.",
    "version": "The version of the rollout state (the newest history row).",
    "state_changed_timestamp_seconds": "When the rollout state last changed (Unix time).",
    "decision": "1 for the current rollout_decision of the release gates, 0 for the others.",
    "gate_ok": "1 when the gate passes (gate_p0_ok, gate_p1_ok).",
    "promotion_allowed": "1 when the Go/No-Go allows the next promote.",
    "check_status": "1 for the current status of a gate check, 0 for the other statuses.",
    "check_value": "A gate check's measured value (absent when there is none, e.g. no data).",
    "check_threshold": "A gate check's threshold (absent when the rule has none).",
    "check_baseline": "A gate check's baseline, the control cohort's (absent when the rule has none).",
    "check_volume": "A gate check's volume: the events or samples its value stands on (absent when none).",
    "open_incidents": "Incidents not yet resolved (open or mitigated), by severity.",
    "history_verified": "1 when chat_verify_v11_history() finds the hash-chained history intact.",
    "history_head_version": "The newest history version the verification reached.",
}

READS = {
    "state": "select * from public.chat_get_v11_rollout_state()",
    "gates": "select * from public.chat_get_v11_release_gates()",
    "checks": "select metric, severity, scope, value, threshold, baseline, volume, status "
    "from public.chat_get_v11_gate_checks()",
    "incidents": "select severity, status from public.chat_get_v11_incidents()",
    "verify": "select ok, head_version from public.chat_verify_v11_history()",
}


def _number(value: Any) -> float | None:
    """A database value as a sample value; None (no series) for null and for NaN, never exported as a value."""
    if value is None:
        return None
    if isinstance(value, bool):
        return 1.0 if value else 0.0
    number = float(value) if isinstance(value, (int, float, Decimal)) else float(str(value))
    return None if math.isnan(number) else number


def _gauge(name: str, labels: Iterable[str] = ()) -> GaugeMetricFamily:
    return GaugeMetricFamily(PREFIX + name, HELP[name], labels=list(labels))


@dataclass
class Snapshot:
    """What one consistent read returned."""

    state: dict
    gates: dict
    checks: list[dict]
    incidents: list[dict]
    verify: list[dict]


@dataclass(eq=False)  # hashable by identity: the registry keys its collectors
class RolloutCollector(Collector):
    """The rollout, read once per scrape through the reader API on one kept connection (see the module's doc)."""

    url: str
    statement_timeout: float = DEFAULT_STATEMENT_TIMEOUT_S
    connect_timeout: int = DEFAULT_CONNECT_TIMEOUT_S
    application_name: str = APPLICATION_NAME
    errors: int = 0
    last_error: str | None = None
    _conn: psycopg.Connection | None = field(default=None, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def describe(self) -> list[Metric]:
        # no names announced up front: registering must not read the database (and the set depends on the data)
        return []

    def collect(self) -> Iterator[Metric]:
        with self._lock:  # one read at a time on the one connection (two Prometheus servers may scrape at once)
            started = time.monotonic()
            try:
                snapshot = self._read()
            except Exception as exc:  # noqa: BLE001 - whatever failed, the scrape says up 0 and serves nothing stale
                snapshot = None
                self._failed(exc)
            duration = time.monotonic() - started
            errors = self.errors
        up = _gauge("up")
        up.add_metric([], 1.0 if snapshot is not None else 0.0)
        yield up
        counter = CounterMetricFamily(PREFIX + "scrape_errors", HELP["scrape_errors"])
        counter.add_metric([], float(errors))
        yield counter
        took = _gauge("scrape_duration_seconds")
        took.add_metric([], duration)
        yield took
        if snapshot is not None:
            yield from rollout_metrics(snapshot)

    def close(self) -> None:
        with self._lock:
            self._drop()

    # --- the read ------------------------------------------------------------------------------------------------

    def _connection(self) -> psycopg.Connection:
        if self._conn is None or self._conn.closed or self._conn.broken:
            self._drop()
            conn = connect(
                self.url,
                autocommit=True,
                connect_timeout=self.connect_timeout,
                application_name=self.application_name,
                **KEEPALIVES,
            )
            conn.isolation_level = psycopg.IsolationLevel.REPEATABLE_READ
            conn.read_only = True
            self._conn = conn
            self._warn_if_writer(conn)
        return self._conn

    def _read(self) -> Snapshot:
        conn = self._connection()
        # BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY: one snapshot, one now() for every call of the scrape
        with conn.transaction(), conn.cursor(row_factory=dict_row) as cur:
            cur.execute(
                "select set_config('statement_timeout', %s, true)", (f"{int(self.statement_timeout * 1000)}ms",)
            )
            rows = {key: cur.execute(query).fetchall() for key, query in READS.items()}
        if len(rows["state"]) != 1 or len(rows["gates"]) != 1 or not rows["verify"]:
            raise RuntimeError(
                f"unexpected reader API answer: {len(rows['state'])} state rows, {len(rows['gates'])} gate rows, "
                f"{len(rows['verify'])} verification rows"
            )
        if self.last_error is not None:
            log.warning("reading the rollout again (after: %s)", self.last_error)
            self.last_error = None
        return Snapshot(rows["state"][0], rows["gates"][0], rows["checks"], rows["incidents"], rows["verify"])

    def _failed(self, exc: Exception) -> None:
        self.errors += 1
        message = f"{type(exc).__name__}: {str(exc).strip()}"
        if message != self.last_error:  # said once per distinct failure, not at every scrape
            log.warning("scrape failed, serving chat_rollout_up 0: %s", message)
        self.last_error = message
        if not isinstance(exc, psycopg.Error) or self._conn is None or self._conn.broken or self._conn.closed:
            self._drop()
        # a query error (a timeout, a permission) leaves the connection usable: the transaction was rolled back

    def _drop(self) -> None:
        if self._conn is not None:
            try:
                self._conn.close()
            except Exception:  # noqa: BLE001 - closing a broken connection must not fail the scrape
                pass
        self._conn = None

    def _warn_if_writer(self, conn: psycopg.Connection) -> None:
        """The exporter only reads (READ ONLY transactions); a login that could write is said once per connection."""
        row = conn.execute(
            "select r.rolsuper, array(select g from unnest(array['chat_rollout_operator', 'chat_rollout_ingest', "
            "'chat_rollout_admin']) as g where exists (select 1 from pg_roles where rolname = g) "
            "and pg_has_role(current_user, g, 'MEMBER')) from pg_roles as r where r.rolname = current_user"
        ).fetchone()
        if row and (row[0] or row[1]):
            log.warning(
                "the exporter's login %s can write (%s): run it as a reader login (a member of chat_rollout_reader)",
                conn.info.user,
                "superuser" if row[0] else ", ".join(row[1]),
            )


def rollout_metrics(snap: Snapshot) -> Iterator[Metric]:
    """The rollout series of one consistent read."""
    state, gates = snap.state, snap.gates
    stage = state["stage"]

    info = _gauge("rollout_info", ["stage"])
    info.add_metric([stage], 1.0)
    yield info
    if stage in STAGES:
        ordinal = _gauge("stage_ordinal")
        ordinal.add_metric([], float(STAGES.index(stage)))
        yield ordinal
    else:  # a stage this exporter does not know: no ordinal rather than a wrong one
        log.warning("unknown stage %r: chat_rollout_stage_ordinal not exported", stage)
    for name, value in (
        ("traffic_percent", state["traffic_percent"]),
        ("kill_switch", state["kill_switch"]),
        ("promotion_frozen", state["promotion_frozen"]),
        ("version", state["version"]),
        ("state_changed_timestamp_seconds", state["changed_at"].timestamp() if state["changed_at"] else None),
    ):
        number = _number(value)
        if number is not None:
            gauge = _gauge(name)
            gauge.add_metric([], number)
            yield gauge

    decision = _gauge("decision", ["decision"])
    current = gates["rollout_decision"]
    for value in (*DECISIONS, *([current] if current not in DECISIONS and current is not None else [])):
        decision.add_metric([value], 1.0 if value == current else 0.0)
    yield decision
    gate_ok = _gauge("gate_ok", ["gate"])
    for gate, column in (("p0", "gate_p0_ok"), ("p1", "gate_p1_ok")):
        gate_ok.add_metric([gate], 1.0 if gates[column] else 0.0)
    yield gate_ok
    allowed = _gauge("promotion_allowed")
    allowed.add_metric([], 1.0 if gates["promotion_allowed"] else 0.0)
    yield allowed

    labels = ["metric", "severity", "scope"]
    status = _gauge("check_status", [*labels, "status"])
    values = {column: _gauge(f"check_{column}", labels) for column in CHECK_VALUES}
    for check in snap.checks:
        key = [str(check["metric"]), str(check["severity"]), str(check["scope"])]
        statuses = CHECK_STATUSES if check["status"] in CHECK_STATUSES else (*CHECK_STATUSES, str(check["status"]))
        for value in statuses:
            status.add_metric([*key, value], 1.0 if value == check["status"] else 0.0)
        for column, gauge in values.items():
            number = _number(check[column])
            if number is not None:
                gauge.add_metric(key, number)
    yield status
    yield from values.values()

    incidents = _gauge("open_incidents", ["severity"])
    counts = dict.fromkeys(SEVERITIES, 0)
    for incident in snap.incidents:
        if incident["status"] in OPEN_INCIDENT_STATUSES:
            counts[incident["severity"]] = counts.get(incident["severity"], 0) + 1
    for severity, count in counts.items():
        incidents.add_metric([severity], float(count))
    yield incidents

    verified = _gauge("history_verified")
    verified.add_metric([], 1.0 if all(row["ok"] for row in snap.verify) else 0.0)
    yield verified
    head = _number(snap.verify[0]["head_version"])
    if head is not None:
        head_version = _gauge("history_head_version")
        head_version.add_metric([], head)
        yield head_version


def registry_for(collector: RolloutCollector) -> CollectorRegistry:
    """A registry of its own holding only the collector (never prometheus-client's process-wide default)."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(collector)
    return registry


def parse_listen(listen: str) -> tuple[str, int]:
    """``HOST:PORT`` (``[::1]:9464`` for IPv6) as (host, port); ValueError when it is not one."""
    host, sep, port = listen.rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise ValueError(f"--listen {listen!r} is not HOST:PORT (e.g. 127.0.0.1:9464)")
    return host.strip("[]"), int(port)


@dataclass
class Exporter:
    """A running exporter: its collector, registry and HTTP server (stop it with :meth:`stop`)."""

    collector: RolloutCollector
    registry: CollectorRegistry
    server: Any
    thread: threading.Thread

    @property
    def port(self) -> int:
        return self.server.server_address[1]

    @property
    def url(self) -> str:
        host = self.server.server_address[0]
        host = f"[{host}]" if ":" in host else host
        return f"http://{host}:{self.port}/metrics"

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=5)
        self.collector.close()


def serve(
    url: str,
    host: str = "127.0.0.1",
    port: int = 9464,
    *,
    statement_timeout: float = DEFAULT_STATEMENT_TIMEOUT_S,
    connect_timeout: int = DEFAULT_CONNECT_TIMEOUT_S,
) -> Exporter:
    """Serve ``/metrics`` for the database of ``url`` on ``host:port`` (port 0: any free port) in a background thread.

    Nothing is read until the first scrape: a database that is down at start is served as ``chat_rollout_up 0``.
    """
    collector = RolloutCollector(url, statement_timeout=statement_timeout, connect_timeout=connect_timeout)
    registry = registry_for(collector)
    server, thread = start_http_server(port, addr=host, registry=registry)
    return Exporter(collector, registry, server, thread)
