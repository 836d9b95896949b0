"""Prometheus for the exporter and alert-rule tests: an exporter of the test database, its scrapes, the names a PromQL
expression reads, promtool, and a private Prometheus server.

- :func:`running_exporter`: ``chat_rollout.exporter.serve`` on 127.0.0.1 at a free port, stopped after;
- :func:`scrape`: one GET of ``/metrics``, parsed by prometheus-client's own parser (:class:`Scrape`);
- :func:`promql_names`: the metric names a PromQL expression (or a Grafana ``label_values(...)`` query) reads;
- :func:`promtool` / :func:`prometheus_binary`: the programs of Debian's ``prometheus`` package, or None;
- :func:`private_prometheus`: a Prometheus process of our own (its own config, data folder and port; never a system
  service) scraping the given targets every second and evaluating the given rule files every second, stopped after.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import urllib.parse
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path

from prometheus_client.parser import text_string_to_metric_families

from chat_rollout import exporter
from chat_rollout.exporter import Exporter

from .cluster import free_port

#: What ``chat-rollout pull`` serves on its own /metrics (job ``chat-rollout-pull``): the puller's names.
PULLER_METRICS = frozenset({
    "chat_rollout_pull_errors_total",
    "chat_rollout_pull_consecutive_errors",
    "chat_rollout_pull_last_success_timestamp_seconds",
    "chat_rollout_pull_buckets_written_total",
})
#: Prometheus' own series of every scrape target (the exporter-down and puller alerts read it).
PROMETHEUS_OWN = frozenset({"up"})
#: The scrape job the shipped alert rules expect for the exporter.
EXPORTER_JOB = "chat-rollout"


@dataclass
class Scrape:
    """One scrape: every sample as (name, labels, value)."""

    text: str
    samples: list[tuple[str, dict[str, str], float]]

    @property
    def names(self) -> set[str]:
        return {name for name, _, _ in self.samples}

    def series(self, name: str) -> list[tuple[dict[str, str], float]]:
        return [(labels, value) for n, labels, value in self.samples if n == name]

    def value(self, name: str, **labels: str) -> float | None:
        """The value of the one series ``name`` with exactly these labels, None when absent."""
        found = [v for n, lab, v in self.samples if n == name and lab == labels]
        assert len(found) <= 1, f"{name}{labels} appears {len(found)} times"
        return found[0] if found else None


def scrape(url: str, timeout: float = 15.0) -> Scrape:
    with urllib.request.urlopen(url, timeout=timeout) as response:
        assert response.status == 200
        text = response.read().decode("utf-8")
    samples = [
        (s.name, dict(s.labels), s.value) for family in text_string_to_metric_families(text) for s in family.samples
    ]
    return Scrape(text, samples)


@contextmanager
def running_exporter(url: str, **kwargs) -> Iterator[Exporter]:
    """The exporter of the database of ``url`` on 127.0.0.1 at a free port (``kwargs``: statement_timeout, ...)."""
    running = exporter.serve(url, "127.0.0.1", 0, **kwargs)
    try:
        yield running
    finally:
        running.stop()


def wait_listening(host: str, port: int, timeout: float, process: subprocess.Popen | None = None) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            return False
        with suppress(OSError), socket.create_connection((host, port), timeout=0.2):
            return True
        time.sleep(0.05)
    return False


# --- PromQL names -------------------------------------------------------------------------------------------------

_STRING = re.compile(r'"(?:[^"\\]|\\.)*"|\'(?:[^\'\\]|\\.)*\'|`[^`]*`')
_MATCHERS = re.compile(r"\{[^{}]*\}")
_RANGE = re.compile(r"\[[^\[\]]*\]")
_GRAFANA_VARIABLE = re.compile(r"\$\{[^}]*\}|\$\w+")
_LABEL_LIST = re.compile(r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^()]*\)")
_IDENTIFIER = re.compile(r"(?<![\w:.])([A-Za-z_:][\w:]*)(\s*\()?")
_KEYWORDS = frozenset({"and", "or", "unless", "bool", "offset", "by", "without", "on", "ignoring", "group_left",
                       "group_right", "inf", "nan", "atan2"})
#: Aggregation operators: ``sum by (x) (...)`` puts the label list between the name and its parenthesis.
_AGGREGATIONS = frozenset({"sum", "min", "max", "avg", "group", "stddev", "stdvar", "count", "count_values",
                           "bottomk", "topk", "quantile", "limitk", "limit_ratio"})


def promql_names(expr: str) -> set[str]:
    """The metric names a PromQL expression reads (also a Grafana ``label_values(metric, label)`` query).

    Strings, label matchers, ranges, Grafana variables and the label lists of by/without/on/ignoring/group_* are
    removed first; what is left that is an identifier and not a function call or a keyword is a metric name.
    """
    text = _STRING.sub(" ", expr)
    text = _GRAFANA_VARIABLE.sub(" ", text)
    text = _MATCHERS.sub(" ", text)
    text = _RANGE.sub(" ", text)
    text = _LABEL_LIST.sub(r"\1 ", text)
    label_values = re.fullmatch(r"\s*label_values\s*\(\s*([A-Za-z_:][\w:]*)\s*(,.*)?\)\s*", text)
    if label_values:
        return {label_values[1]}
    names = set()
    for match in _IDENTIFIER.finditer(text):
        name, call = match[1], match[2]
        if call or name.lower() in _KEYWORDS or name in _AGGREGATIONS:
            continue
        names.add(name)
    return names


# --- promtool and a private Prometheus ----------------------------------------------------------------------------


def promtool() -> str | None:
    return shutil.which("promtool") or next((p for p in ("/usr/bin/promtool",) if os.access(p, os.X_OK)), None)


def prometheus_binary() -> str | None:
    return shutil.which("prometheus") or next((p for p in ("/usr/bin/prometheus",) if os.access(p, os.X_OK)), None)


@dataclass
class PrivatePrometheus:
    port: int
    base: Path
    process: subprocess.Popen

    @property
    def api(self) -> str:
        return f"http://127.0.0.1:{self.port}/api/v1"

    def get(self, path: str, **params: str) -> dict:
        query = f"?{urllib.parse.urlencode(params)}" if params else ""
        with urllib.request.urlopen(f"{self.api}/{path}{query}", timeout=10) as response:
            body = json.loads(response.read().decode("utf-8"))
        assert body["status"] == "success", body
        return body["data"]

    def query(self, expr: str) -> list[dict]:
        """An instant query now: the result vector (each item has ``metric`` labels and ``value`` [time, text])."""
        return self.get("query", query=expr)["result"]

    def firing(self) -> list[dict]:
        return [a for a in self.get("alerts")["alerts"] if a["state"] == "firing"]

    def log_tail(self, lines: int = 30) -> str:
        try:
            return "\n".join((self.base / "prometheus.log").read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""


def _config(targets: dict[str, list[str]], rule_files: list[Path]) -> str:
    lines = ["global:", "  scrape_interval: 1s", "  scrape_timeout: 1s", "  evaluation_interval: 1s"]
    if rule_files:
        lines.append("rule_files:")
        lines += [f"  - {json.dumps(str(path))}" for path in rule_files]
    lines.append("scrape_configs:")
    for job, addresses in targets.items():
        lines += [f"  - job_name: {json.dumps(job)}", "    static_configs:",
                  f"      - targets: {json.dumps(addresses)}"]
    return "\n".join(lines) + "\n"


@contextmanager
def private_prometheus(targets: dict[str, list[str]], rule_files: list[Path] = ()) -> Iterator[PrivatePrometheus]:
    """A Prometheus of our own on 127.0.0.1 at a free port: ``targets`` (job -> host:port list) scraped every second,
    ``rule_files`` evaluated every second; its data in a temporary folder removed after. Stopped (SIGTERM, then
    SIGKILL) when the block ends. RuntimeError (with its log) when it does not start."""
    program = prometheus_binary()
    if program is None:
        raise RuntimeError("prometheus is not installed")
    base = Path(tempfile.mkdtemp(prefix="chat-rollout-prometheus-"))
    process: subprocess.Popen | None = None
    try:
        port = free_port()
        (base / "prometheus.yml").write_text(_config(targets, list(rule_files)))
        with open(base / "prometheus.log", "wb") as log:
            process = subprocess.Popen(
                [program, f"--config.file={base / 'prometheus.yml'}", f"--storage.tsdb.path={base / 'data'}",
                 f"--web.listen-address=127.0.0.1:{port}", "--storage.tsdb.retention.time=1h",
                 "--log.level=warn"],
                stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, cwd=str(base),
            )
        running = PrivatePrometheus(port, base, process)
        if not wait_listening("127.0.0.1", port, 30, process):
            raise RuntimeError(f"prometheus did not start (exit code {process.poll()}):\n{running.log_tail()}")
        deadline = time.monotonic() + 30
        while True:  # ready: the TSDB is open and queries answer
            with suppress(OSError):
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/-/ready", timeout=2) as response:
                    if response.status == 200:
                        break
            if time.monotonic() > deadline:
                raise RuntimeError(f"prometheus never became ready:\n{running.log_tail()}")
            time.sleep(0.1)
        yield running
    finally:
        if process is not None and process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=5)
        shutil.rmtree(base, ignore_errors=True)
