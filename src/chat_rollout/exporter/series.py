"""The exporter's series: their names, help texts and bounded label values, and the families built from one read."""

from __future__ import annotations

import logging
import math
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from prometheus_client.core import GaugeMetricFamily, Metric

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
#: decision (3), gate_ok (2), promotion_allowed, open_incidents (3), history_verified, history_head_version; and the
#: progression's auto_promote, approvals_required, approvals_missing, next_promotion_timestamp_seconds (SPEC 9).
PROGRESSION_SERIES = 4
FIXED_SERIES = 10 + len(DECISIONS) + 2 + 1 + len(SEVERITIES) + 2 + PROGRESSION_SERIES
#: Series per gate check at most: one per status, and value, threshold, baseline, volume (each omitted when null).
SERIES_PER_CHECK = len(CHECK_STATUSES) + len(CHECK_VALUES)

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
    "auto_promote": "1 when the next stage's policy lets chat_run_v11_progression() promote into it.",
    "approvals_required": "Approvals the next promotion needs (the next stage's policy).",
    "approvals_missing": "Approvals the next promotion still lacks (required minus valid; 0 when none are needed).",
    "next_promotion_timestamp_seconds": "When chat_run_v11_progression() will promote if nothing changes (Unix "
    "time; absent when it will not: auto_promote off or a blocker other than the observation window).",
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
    progression: dict | None = None  # chat_get_v11_progression(): None on a database without it


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

    yield from progression_metrics(snap.progression)

    verified = _gauge("history_verified")
    verified.add_metric([], 1.0 if all(row["ok"] for row in snap.verify) else 0.0)
    yield verified
    head = _number(snap.verify[0]["head_version"])
    if head is not None:
        head_version = _gauge("history_head_version")
        head_version.add_metric([], head)
        yield head_version


def progression_metrics(progression: dict | None) -> Iterator[Metric]:
    """The progression series (SPEC 9): auto-promote, approvals required and missing, the next automatic promotion."""
    if progression is None:
        return
    for name, column in (
        ("auto_promote", "auto_promote"),
        ("approvals_required", "approvals_required"),
        ("approvals_missing", "approvals_missing"),
    ):
        gauge = _gauge(name)
        gauge.add_metric([], _number(progression[column]) or 0.0)
        yield gauge
    at = progression["next_promotion_at"]
    if at is not None:
        gauge = _gauge("next_promotion_timestamp_seconds")
        gauge.add_metric([], at.timestamp())
        yield gauge
