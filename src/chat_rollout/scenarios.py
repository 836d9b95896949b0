"""Scenarios: metric timelines per cohort and the decisions expected at checkpoints.

One loader for the test suite (table-driven) and the CLI (``chat-rollout seed SCENARIO``).
A scenario is a TOML file in ``scenarios/``; times are offsets from an anchor (by default now, rounded
down to 10 seconds), written like ``-45m``, ``-30s``, ``0m``. See scenarios/README.md for the format.
"""

from __future__ import annotations

import json
import re
import tomllib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

from . import PROJECT_ROOT

SCENARIO_DIR = PROJECT_ROOT / "scenarios"
BUCKET = timedelta(seconds=10)
RATE_METRICS = [
    "ack_without_receipt_10s_rate",
    "timeline_duplicate_detected_rate",
    "read_rollback_detected_rate",
    "send_stall_rate",
    "resync_range_unavailable_rate",
    "full_state_rate",
    "forced_resync_rate",
]
COUNT_METRICS = ["pending_forever_count"]
LATENCY_METRICS = ["recovery_p95_ms"]
ALL_METRICS = RATE_METRICS + COUNT_METRICS + LATENCY_METRICS
_OFFSET = re.compile(r"^([+-]?\d+(?:\.\d+)?)(s|m|h)$")


def offset(text: str) -> timedelta:
    """'-45m' -> -45 minutes; units s, m, h."""
    match = _OFFSET.match(text.strip())
    if not match:
        raise ValueError(f"bad time offset {text!r}: use e.g. -45m, -30s, 0m, -2h")
    amount, unit = float(match.group(1)), match.group(2)
    return timedelta(**{{"s": "seconds", "m": "minutes", "h": "hours"}[unit]: amount})


def anchor_now() -> datetime:
    now = datetime.now(UTC)
    return now - timedelta(seconds=now.second % 10, microseconds=now.microsecond)


@dataclass
class Series:
    """Buckets of one or more metrics for one cohort between two offsets (both included)."""

    metrics: list[str]
    cohort: str
    start: timedelta
    end: timedelta
    denominator: int | None = None
    numerator: int | None = None
    rate: float | None = None
    value: float | None = None
    every: timedelta = BUCKET
    omit: bool = False

    def samples(self, anchor: datetime) -> Iterator[dict]:
        t = anchor + self.start
        while t <= anchor + self.end:
            for metric in self.metrics:
                yield self.sample(metric, t)
            t += self.every

    def sample(self, metric: str, bucket: datetime) -> dict:
        sample = {"metric": metric, "cohort": self.cohort, "bucket_start": bucket.isoformat().replace("+00:00", "Z")}
        if metric in LATENCY_METRICS:
            sample["value"] = self.value if self.value is not None else 800.0
            return sample
        if metric in COUNT_METRICS:
            sample["numerator"] = self.numerator or 0
            return sample
        den = self.denominator if self.denominator is not None else 1000
        num = self.numerator if self.numerator is not None else round(den * (self.rate or 0.0))
        sample["numerator"], sample["denominator"] = num, den
        return sample


@dataclass
class Checkpoint:
    """What the gates must say at an offset, in a given rollout state."""

    at: timedelta
    stage: str
    kill_switch: bool
    expect: dict
    statuses: dict[str, str] = field(default_factory=dict)
    failing: list[str] | None = None


@dataclass
class Scenario:
    name: str
    description: str
    series: list[Series]
    checkpoints: list[Checkpoint]
    stage_since: timedelta
    settings: dict = field(default_factory=dict)

    def samples(self, anchor: datetime) -> list[dict]:
        """Every sample, later series replacing earlier ones for the same bucket, in time order."""
        by_key: dict[tuple, dict] = {}
        for series in self.series:
            for sample in series.samples(anchor):
                key = (sample["metric"], sample["cohort"], sample["bucket_start"])
                if series.omit:
                    by_key.pop(key, None)
                else:
                    by_key[key] = sample
        return sorted(by_key.values(), key=lambda s: (s["bucket_start"], s["metric"], s["cohort"]))


def _metrics(spec) -> list[str]:
    if spec in ("*", "all"):
        return list(ALL_METRICS)
    names = [spec] if isinstance(spec, str) else list(spec)
    unknown = sorted(set(names) - set(ALL_METRICS))
    if unknown:
        raise ValueError(f"unknown metrics in scenario: {unknown}")
    return names


def _included(data: dict) -> list[dict]:
    """Series of the fragments named by ``include`` (files starting with _), then the file's own."""
    series: list[dict] = []
    for fragment in data.get("include", []):
        with (SCENARIO_DIR / f"{fragment}.toml").open("rb") as fh:
            series.extend(_included(tomllib.load(fh)))
    return series + list(data.get("series", []))


def parse(data: dict, name: str) -> Scenario:
    stage = data.get("stage", "canary_1")
    kill_switch = bool(data.get("kill_switch", False))
    series = [
        Series(
            metrics=_metrics(s.get("metric", "*")),
            cohort=s["cohort"],
            start=offset(s["from"]),
            end=offset(s.get("to", "0m")),
            denominator=s.get("denominator"),
            numerator=s.get("numerator"),
            rate=s.get("rate"),
            value=s.get("value"),
            every=offset(s.get("every", "10s")),
            omit=bool(s.get("omit", False)),
        )
        for s in _included(data)
    ]
    checkpoints = []
    for c in data.get("checkpoint", []):
        expect = {
            k: c[k]
            for k in ("gate_p0_ok", "gate_p1_ok", "rollout_decision", "promotion_allowed", "exit_criteria_met")
            if k in c
        }
        checkpoints.append(
            Checkpoint(
                at=offset(c["at"]),
                stage=c.get("stage", stage),
                kill_switch=bool(c.get("kill_switch", kill_switch)),
                expect=expect,
                statuses=dict(c.get("statuses", {})),
                failing=c.get("failing"),
            )
        )
    return Scenario(
        name=name,
        description=data.get("description", ""),
        series=series,
        checkpoints=checkpoints,
        stage_since=offset(data.get("stage_since", "-6h")),
        settings=dict(data.get("metric_rules", {})),
    )


def load(name_or_path: str | Path) -> Scenario:
    path = Path(name_or_path)
    if not path.suffix:
        path = SCENARIO_DIR / f"{name_or_path}.toml"
    with path.open("rb") as fh:
        return parse(tomllib.load(fh), path.stem)


def names() -> list[str]:
    return sorted(p.stem for p in SCENARIO_DIR.glob("*.toml") if not p.stem.startswith("_"))


def write_samples(
    conn, samples: list[dict], *, batch_size: int = 5000, progress: Callable[[int], None] | None = None
) -> int:
    """Write samples through the public ingestion path, in batches; returns how many were written."""
    written = 0
    for i in range(0, len(samples), batch_size):
        batch = samples[i : i + batch_size]
        written += conn.execute(
            "select public.chat_put_v11_metric_samples(%s::jsonb)", (json.dumps(batch),)
        ).fetchone()[0]
        if progress:
            progress(len(batch))
    return written


def apply_rules(conn, scenario: Scenario) -> None:
    for metric, settings in scenario.settings.items():
        conn.execute("select public.chat_set_v11_metric_rule(%s, %s::jsonb)", (metric, json.dumps(settings)))


def evaluate(conn, scenario: Scenario, checkpoint: Checkpoint, anchor: datetime) -> dict:
    """The gates, the check statuses and the exit criteria at a checkpoint, for its rollout state."""
    at = anchor + checkpoint.at
    since = anchor + scenario.stage_since
    gates = conn.execute(
        "select gate_p0_ok, gate_p1_ok, rollout_decision, promotion_allowed "
        "from chat_v11.evaluate_gates(%s, %s, %s, false, null, %s)",
        (at, checkpoint.stage, checkpoint.kill_switch, since),
    ).fetchone()
    statuses = dict(
        conn.execute(
            "select metric, status from chat_v11.evaluate_checks(%s, %s, %s)",
            (at, checkpoint.stage, checkpoint.kill_switch),
        ).fetchall()
    )
    exit_failures = conn.execute("select chat_v11.p0_exit_failures(%s)", (at,)).fetchone()[0]
    return {
        "gate_p0_ok": gates[0],
        "gate_p1_ok": gates[1],
        "rollout_decision": gates[2],
        "promotion_allowed": gates[3],
        "exit_criteria_met": not exit_failures,
        "statuses": statuses,
        "failing": sorted(m for m, s in statuses.items() if s in ("fail", "inconclusive")),
    }
