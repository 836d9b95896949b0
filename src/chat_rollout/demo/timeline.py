"""The demo's two clocks: the story's samples, backfilled into the past of the database's now(), and the real calls.

The rollout's calls cannot travel in time: every state change and incident entry is recorded at the real time of
the call (``clock_timestamp()``), seconds apart. The story's metric samples can: they are written with the
``bucket_start`` of the story, laid out in the 70 minutes before the database's ``now()`` when the demo starts,
so every window the SQL evaluates at ``now()`` (or at a ``p_at``) holds the story's data:

    now - 70 min   control traffic (v1.0, 99 %) starts
    now - 55 min   canary (v1.1, 1 %) traffic starts: the story's promotion (T0)
    now - 40 min   the P0 spike: 3 of 200 ACKs in one canary bucket got no receipt within 10 s
    now - 40 min   .. now - 10 min: the exit window, clean (the policy p0_exit_window is 30 minutes)
    now - 15 min   .. now: the live feed, written first: the promotion is judged on it

The exporter writes them in three batches, in the order the calls need: the live feed (the promotion is judged on
the 15 minutes before now), then the older buckets up to the spike (the guardrail judges the spike at its bucket
time and kills now), then the buckets after the spike (they cover the exit window, and the exit criteria hold).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from functools import cache

from .. import scenarios
from ..utc import utc

BUCKET = dt.timedelta(seconds=10)
CONTROL_FROM = dt.timedelta(minutes=70)
CANARY_FROM = dt.timedelta(minutes=55)
SPIKE_BEFORE = dt.timedelta(minutes=40)
LIVE_FEED = dt.timedelta(minutes=15)
EXIT_WINDOW = dt.timedelta(minutes=30)  # the policy p0_exit_window of a fresh database
SPIKE_METRIC = "ack_without_receipt_10s_rate"
SPIKE_EVENTS, SPIKE_ACKS = 3, 200


@dataclasses.dataclass(frozen=True)
class Clock:
    """The story's moments, from the database's now() at the start (rounded down to 10 s: the newest bucket)."""

    now: dt.datetime  # the newest bucket: the story's now
    started: dt.datetime  # the database's now() when the demo started: the real clock

    @classmethod
    def of(cls, moment: dt.datetime) -> Clock:
        moment = moment.astimezone(dt.UTC)
        return cls(moment - dt.timedelta(seconds=moment.second % 10, microseconds=moment.microsecond), moment)

    @property
    def control_from(self) -> dt.datetime:
        return self.now - CONTROL_FROM

    @property
    def promotion(self) -> dt.datetime:
        """T0: the canary's first bucket, the promotion of the story (the history records the real one)."""
        return self.now - CANARY_FROM

    @property
    def spike(self) -> dt.datetime:
        return self.now - SPIKE_BEFORE

    @property
    def exit_window(self) -> dt.timedelta:
        return EXIT_WINDOW

    @property
    def live_from(self) -> dt.datetime:
        """The first bucket of the live feed."""
        return self.now - LIVE_FEED + BUCKET

    def clock(self, moment: dt.datetime) -> str:
        return utc(moment, "clock")

    def minutes_ago(self, moment: dt.datetime) -> str:
        return f"{round((self.now - moment) / dt.timedelta(minutes=1))} min before now"

    # --- the exporter's three batches -------------------------------------------------------------------

    def live_feed(self) -> list[dict]:
        """Both cohorts, every metric, healthy, from now - 15 min (exclusive) to now."""
        return _healthy(self.now, self.live_from, self.now, ("control", "canary"))

    def up_to_spike(self) -> list[dict]:
        """The older buckets up to the spike: control from now - 70 min, canary from T0; the spike bucket last."""
        samples = _healthy(self.now, self.control_from, self.spike, ("control",))
        samples += _healthy(self.now, self.promotion, self.spike, ("canary",))
        spike = self.spike_sample()
        key = (spike["metric"], spike["cohort"], spike["bucket_start"])
        samples = [s for s in samples if (s["metric"], s["cohort"], s["bucket_start"]) != key]
        return sorted([*samples, spike], key=lambda s: (s["bucket_start"], s["metric"], s["cohort"]))

    def after_spike(self) -> list[dict]:
        """Both cohorts, healthy, from the bucket after the spike to the live feed: they cover the exit window."""
        return _healthy(self.now, self.spike + BUCKET, self.live_from - BUCKET, ("control", "canary"))

    def spike_sample(self) -> dict:
        return {
            "metric": SPIKE_METRIC,
            "cohort": "canary",
            "bucket_start": utc(self.spike, "iso"),
            "numerator": SPIKE_EVENTS,
            "denominator": SPIKE_ACKS,
        }


@cache
def _healthy_series() -> tuple[scenarios.Series, ...]:
    """The series of scenarios/_healthy.toml: 99 % control, 1 % canary, no P0 event, P1 at the baseline."""
    return tuple(scenarios.load("_healthy").series)


def _healthy(anchor: dt.datetime, first: dt.datetime, last: dt.datetime, cohorts: tuple[str, ...]) -> list[dict]:
    """Healthy samples of ``cohorts`` for every bucket from ``first`` to ``last`` (both included)."""
    samples = []
    for series in _healthy_series():
        if series.cohort in cohorts:
            window = dataclasses.replace(series, start=first - anchor, end=last - anchor)
            samples.extend(window.samples(anchor))
    return sorted(samples, key=lambda s: (s["bucket_start"], s["metric"], s["cohort"]))


def span(samples: list[dict]) -> str:
    """``HH:MM:SS to HH:MM:SS UTC`` of a batch's buckets."""
    first = dt.datetime.fromisoformat(samples[0]["bucket_start"])
    last = dt.datetime.fromisoformat(samples[-1]["bucket_start"])
    return f"{utc(first, 'clock')} to {utc(last, 'clock')} UTC"
