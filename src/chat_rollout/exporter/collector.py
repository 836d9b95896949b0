"""The exporter's collector: one consistent read of the reader API per scrape, on one kept connection."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field

import psycopg
from prometheus_client.core import CounterMetricFamily, Metric
from prometheus_client.registry import Collector
from psycopg.rows import dict_row

from ..connect import connect
from .series import HELP, PREFIX, Snapshot, _gauge, log, rollout_metrics

DEFAULT_STATEMENT_TIMEOUT_S = 5.0
DEFAULT_CONNECT_TIMEOUT_S = 5
APPLICATION_NAME = "chat-rollout exporter"
#: TCP keepalives of the kept connection: a server that vanished without a word (no RST) is found within ~15 s
#: instead of the kernel's hours, so a scrape waiting on it fails (up 0) rather than hanging.
KEEPALIVES = {"keepalives": 1, "keepalives_idle": 5, "keepalives_interval": 2, "keepalives_count": 3}

READS = {
    "state": "select * from public.chat_get_v11_rollout_state()",
    "gates": "select * from public.chat_get_v11_release_gates()",
    "checks": "select metric, severity, scope, value, threshold, baseline, volume, status "
    "from public.chat_get_v11_gate_checks()",
    "incidents": "select severity, status from public.chat_get_v11_incidents()",
    "verify": "select ok, head_version from public.chat_verify_v11_history()",
    "progression": "select auto_promote, approvals_required, approvals_missing, next_promotion_at "
    "from public.chat_get_v11_progression()",
}


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
        return Snapshot(
            rows["state"][0], rows["gates"][0], rows["checks"], rows["incidents"], rows["verify"],
            rows["progression"][0] if rows["progression"] else None,
        )

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
