"""What every benchmark shares: the run context, a report section, latency and throughput helpers."""

from __future__ import annotations

import argparse
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psycopg

from chat_rollout.server import Server

from .history import History


@dataclass
class SummaryRow:
    """One figure of the summary table: what, the measured value, the target (if any) and whether it is met."""

    figure: str
    value: str
    target: str = ""
    met: bool | None = None


@dataclass
class Section:
    """A benchmark's part of the report: its summary rows and its Markdown body."""

    title: str
    summary: list[SummaryRow] = field(default_factory=list)
    body: list[str] = field(default_factory=list)


@dataclass
class Context:
    """One run: the options, the server, the scratch database and an autocommit owner connection to it."""

    args: argparse.Namespace
    server: Server
    dbname: str
    url: str
    conn: psycopg.Connection
    started: float = field(default_factory=time.monotonic)
    history: History | None = None
    facts: dict[str, Any] = field(default_factory=dict)

    def log(self, message: str) -> None:
        print(f"[bench {time.monotonic() - self.started:6.1f}s] {message}", file=sys.stderr, flush=True)

    def connect(self) -> psycopg.Connection:
        return psycopg.connect(self.url, autocommit=True)

    def get_history(self) -> History:
        """The run's metric history (empty until a benchmark extends it), shared by the benchmarks."""
        if self.history is None:
            self.history = History(self.conn, self.log)
        return self.history


@dataclass
class Latency:
    """Client-side latencies of one prepared statement, in milliseconds."""

    samples_ms: list[float]

    def quantile(self, q: float) -> float:
        # inclusive method: interpolates between the observed values (p99 of 300 is near the 3rd largest)
        cuts = statistics.quantiles(self.samples_ms, n=1000, method="inclusive")
        return cuts[round(q * 1000) - 1]

    @property
    def p50(self) -> float:
        return statistics.median(self.samples_ms)

    @property
    def p95(self) -> float:
        return self.quantile(0.95)

    @property
    def p99(self) -> float:
        return self.quantile(0.99)

    @property
    def n(self) -> int:
        return len(self.samples_ms)


def measure_latency(
    conn: psycopg.Connection, query: str, params: tuple | None = None, *, iterations: int, warmup: int
) -> Latency:
    """Run a query ``warmup`` times, then ``iterations`` times timed, as a prepared statement (round trip
    and fetching every row included). The connection is in autocommit: one transaction per call."""
    cur = conn.cursor()
    for _ in range(warmup):
        cur.execute(query, params, prepare=True)
        cur.fetchall()
    samples = []
    clock = time.perf_counter_ns
    for _ in range(iterations):
        t0 = clock()
        cur.execute(query, params, prepare=True)
        cur.fetchall()
        samples.append((clock() - t0) / 1e6)
    cur.close()
    return Latency(samples)


def ms(value: float) -> str:
    return f"{value:.3f} ms" if value < 10 else f"{value:.1f} ms"


def count(value: float) -> str:
    return f"{value:,.0f}"


def table(headers: list[str], rows: list[list[str]], align: str | None = None) -> list[str]:
    """A Markdown table; ``align`` is one letter per column (l or r)."""
    align = align or "l" * len(headers)
    rule = ["---:" if a == "r" else "---" for a in align]
    lines = ["| " + " | ".join(headers) + " |", "|" + "|".join(rule) + "|"]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return lines


def verdict(met: bool | None) -> str:
    return {True: "yes", False: "**no**", None: ""}[met]


def pgbench_path(ctx: Context) -> str:
    """pgbench: the server's own (embedded), else the newest of /usr/lib/postgresql, else the PATH's."""
    try:
        return ctx.server.tool("pgbench")
    except Exception:
        for cand in sorted(Path("/usr/lib/postgresql").glob("*/bin/pgbench"), reverse=True):
            return str(cand)
        found = shutil.which("pgbench")
        if found is None:
            raise
        return found


def run_pgbench(ctx: Context, script: str, seconds: int, *, clients: int = 8, jobs: int = 8,
                url: str | None = None) -> float:
    """TPS of ``script`` (a custom pgbench script) run by ``clients`` clients on ``jobs`` threads for ``seconds``,
    ``-n -M prepared``, on ``url`` (default the bench database as the owner). Raises when pgbench fails or
    reports failed transactions."""
    with tempfile.NamedTemporaryFile("w", suffix=".sql", delete=False) as f:
        f.write(script + "\n")
    try:
        out = subprocess.run([pgbench_path(ctx), "-n", "-M", "prepared", "-c", str(clients), "-j", str(jobs),
                              "-T", str(seconds), "-f", f.name, url or ctx.url], capture_output=True, text=True)
    finally:
        Path(f.name).unlink(missing_ok=True)
    found = re.search(r"tps = ([0-9.]+) \((?:without initial|excluding connections)", out.stdout)
    failed = re.search(r"number of failed transactions: (\d+)", out.stdout)
    if out.returncode != 0 or not found or (failed and int(failed.group(1))):
        raise RuntimeError(f"pgbench failed ({out.returncode}): {out.stdout[-800:]} {out.stderr[-800:]}")
    return float(found.group(1))
