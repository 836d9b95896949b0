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

import threading
from dataclasses import dataclass
from typing import Any

from prometheus_client import CollectorRegistry, start_http_server

from ..listen import parse_listen
from .collector import (
    APPLICATION_NAME,
    DEFAULT_CONNECT_TIMEOUT_S,
    DEFAULT_STATEMENT_TIMEOUT_S,
    KEEPALIVES,
    READS,
    RolloutCollector,
)
from .series import (
    CHECK_STATUSES,
    CHECK_VALUES,
    DECISIONS,
    FIXED_SERIES,
    HELP,
    OPEN_INCIDENT_STATUSES,
    PREFIX,
    SERIES_PER_CHECK,
    SEVERITIES,
    STAGES,
    Snapshot,
    _gauge,
    _number,
    log,
    rollout_metrics,
)

__all__ = [
    "APPLICATION_NAME",
    "CHECK_STATUSES",
    "CHECK_VALUES",
    "DECISIONS",
    "DEFAULT_CONNECT_TIMEOUT_S",
    "DEFAULT_STATEMENT_TIMEOUT_S",
    "FIXED_SERIES",
    "HELP",
    "KEEPALIVES",
    "OPEN_INCIDENT_STATUSES",
    "PREFIX",
    "READS",
    "SERIES_PER_CHECK",
    "SEVERITIES",
    "STAGES",
    "Exporter",
    "RolloutCollector",
    "Snapshot",
    "_gauge",
    "_number",
    "log",
    "parse_listen",
    "registry_for",
    "rollout_metrics",
    "serve",
]


def registry_for(collector: RolloutCollector) -> CollectorRegistry:
    """A registry of its own holding only the collector (never prometheus-client's process-wide default)."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(collector)
    return registry


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
