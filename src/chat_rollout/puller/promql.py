"""Prometheus: the HTTP instant query at an explicit time and the judging of its answers into a sample."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import math
import urllib.parse

from .common import (
    COUNT_FIELDS,
    EXCERPT_CHARS,
    Answer,
    CycleReport,
    PullError,
    Source,
    http_get,
    iso,
    log,
    round_count,
)


class PrometheusQueries:
    """The Prometheus side of :class:`~chat_rollout.puller.Puller` (a mixin: it uses the puller's settings)."""

    # --- Prometheus ---------------------------------------------------------------------------------------------

    def query(self, field_name: str, expr: str, at: dt.datetime) -> Answer:
        """One instant query of ``expr`` at the explicit time ``at``, judged (:class:`Answer`); PullError when the
        answer is unusable (transport, timeout, HTTP status, not a Prometheus answer, more than one series)."""
        epoch = at.timestamp()
        stamp = f"{epoch:.0f}" if epoch == int(epoch) else f"{epoch:.3f}"
        params = urllib.parse.urlencode({"query": expr, "time": stamp, "timeout": f"{round(self.timeout * 1000)}ms"})
        url = f"{self.prometheus_url}/api/v1/query?{params}"
        shown = f"query={expr}&time={stamp}"
        raw = http_get(url, self.timeout, shown)
        digest = hashlib.sha256(raw).hexdigest()
        text = raw.decode("utf-8", "replace")
        try:
            body = json.loads(text)
            data = body["data"]
            kind, result = data["resultType"], data["result"]
            if body.get("status") != "success":
                raise ValueError(body.get("error"))
        except (ValueError, KeyError, TypeError) as exc:
            raise PullError("bad_answer", f"{shown}: not a Prometheus answer ({exc}): {text[:300]}") from None
        answer = Answer(field_name, shown, at, "empty", None, digest, text[:EXCERPT_CHARS])
        if kind == "scalar":
            samples = [result]
        elif kind == "vector":
            samples = [item["value"] for item in result]
        else:
            raise PullError("bad_answer", f"{shown}: a {kind}, not an instant vector: {text[:300]}")
        if len(samples) > 1:
            answer.outcome = "multiple_series"
            return answer
        if samples:
            value = float(samples[0][1])
            if math.isfinite(value):
                answer.outcome, answer.value = "value", value
            else:
                answer.outcome = "nan"
        return answer

    def judge(self, source: Source, bucket: dt.datetime, answers: list[Answer], report: CycleReport) -> dict | None:
        """The sample of ``source`` for ``bucket`` from its answers, or None (no sample: empty, NaN, an error)."""
        name = f"{source.metric}/{source.cohort} at {iso(bucket)}"
        if any(a.outcome == "multiple_series" for a in answers):
            fields = ", ".join(a.field for a in answers if a.outcome == "multiple_series")
            self._error(report, "multiple_series", f"{name}: {fields} answered more than one series; the source must "
                        "aggregate to one (sum(...)); no sample")
            return None
        missing = [f"{a.field} {a.outcome}" for a in answers if a.outcome != "value"]
        if missing:
            log.info("%s: no sample (%s): the gate sees no data for this bucket", name, ", ".join(missing))
            return None
        sample: dict = {"metric": source.metric, "cohort": source.cohort, "bucket_start": iso(bucket)}
        for a in answers:
            assert a.value is not None
            if a.field in COUNT_FIELDS:
                count = round_count(a.value)
                if count < 0:
                    self._error(report, "bad_value", f"{name}: {a.field} {a.value} is negative; no sample")
                    return None
                sample[a.field] = count
            elif not 0 <= a.value <= 1e12:
                self._error(report, "bad_value", f"{name}: value {a.value} is not between 0 and 1e12; no sample")
                return None
            else:
                sample[a.field] = a.value
        if sample.get("denominator") is not None and sample["numerator"] > sample["denominator"]:
            self._error(report, "bad_value", f"{name}: numerator {sample['numerator']} > denominator "
                        f"{sample['denominator']}; no sample")
            return None
        return sample
