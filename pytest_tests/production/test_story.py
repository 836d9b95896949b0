"""Issue 17 (part 5): the end-to-end story as a user runs it, with the shipped files of deploy/story/.

Processes, as in README "The story in three commands": ``chat-rollout simulate`` (the simulated chat service), a real
Prometheus with ``deploy/story/prometheus.yml`` (only its ports rewritten to free ones, and a temporary data folder),
``chat-rollout pull`` as the ingest login ``chat_test_ingest`` and ``chat-rollout exporter`` as the reader login
``chat_test_reader``; ``deploy/story/sources.sql`` applied with psql; the rollout arranged at ``canary_1``.

Healthy traffic passes the P0 checks and kills nothing; a P0 event injected into the canary (``POST /inject``) turns
the kill switch on through the puller (history action ``auto_kill``) within the rest of the bucket + the puller's
settle + a margin, and the exporter shows the kill to the same Prometheus, whose ``ChatRolloutKillSwitchOn`` fires.
Prints ``FIGURE story_injection_to_kill_ms`` (docs/benchmarks.md). Skipped when prometheus is not installed.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import shutil
import signal
import subprocess
import sys
import time
import urllib.request
from contextlib import ExitStack, suppress
from pathlib import Path

import psycopg
import pytest
from psycopg.conninfo import make_conninfo

from chat_rollout import PROJECT_ROOT
from chat_rollout.simulate import SOURCES, promql
from pytest_tests.support.calls import arrange_state, checks, history
from pytest_tests.support.cluster import free_port
from pytest_tests.support.prometheus import PrivatePrometheus, prometheus_binary, scrape, wait_listening

STORY = PROJECT_ROOT / "deploy" / "story"
SCRAPE_S = 1.0  # deploy/story/prometheus.yml
BUCKET_S = 10.0
SETTLE_S = 1.5  # README: chat-rollout pull --settle 1.5 (at least the scrape interval)
INTERVAL_S = 10.0
MARGIN_S = 3.0
INJECT_INTO_BUCKET_S = 0.5  # close to the worst case: the event waits for almost the whole bucket

pytestmark = pytest.mark.skipif(prometheus_binary() is None, reason="prometheus is not installed "
                                "(apt-get install prometheus gives /usr/bin/prometheus)")


def cli() -> list[str]:
    program = Path(sys.executable).with_name("chat-rollout")
    return [str(program)] if program.exists() else [sys.executable, "-c", "from chat_rollout.cli import app; app()"]


def environment(url: str | None = None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("CHAT_ROLLOUT_DOCKER", "CHAT_ROLLOUT_POOLER")}
    if url is not None:
        env["DATABASE_URL"] = url
    return env


def tail(path: Path, lines: int = 40) -> str:
    try:
        return f"--- {path.name}\n" + "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return ""


def start(stack: ExitStack, name: str, args: list[str], logs: Path, env: dict[str, str], cwd: Path | None = None
          ) -> subprocess.Popen:
    """A process of the story, its output in logs/NAME.log, stopped (SIGTERM, then SIGKILL) when the stack closes."""
    log = open(logs / f"{name}.log", "wb")  # noqa: SIM115 -- closed by the stack
    stack.callback(log.close)
    process = subprocess.Popen(args, env=env, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                               cwd=str(cwd) if cwd else None)

    def stop() -> None:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=10)

    stack.callback(stop)
    return process


def story_config(sim: int, exporter: int, puller: int) -> str:
    """deploy/story/prometheus.yml with free ports and the alert rules' absolute path, nothing else changed."""
    text = (STORY / "prometheus.yml").read_text(encoding="utf-8")
    for shipped, port in (("127.0.0.1:9466", sim), ("127.0.0.1:9464", exporter), ("127.0.0.1:9465", puller)):
        assert text.count(f'"{shipped}"') == 1, shipped
        text = text.replace(f'"{shipped}"', f'"127.0.0.1:{port}"')
    rules = "../prometheus/alerts.yml"
    assert rules in text
    return text.replace(rules, str((STORY / rules).resolve()))


def apply_sources(db_url: str) -> None:
    """deploy/story/sources.sql as the owner (an admin), with psql when it is installed, as the README says."""
    psql = shutil.which("psql")
    if psql:
        done = subprocess.run([psql, db_url, "-X", "-q", "-v", "ON_ERROR_STOP=1", "-f", str(STORY / "sources.sql")],
                              capture_output=True, text=True, timeout=60, env=environment())
        assert done.returncode == 0, done.stderr
        return
    statements = [line for line in (STORY / "sources.sql").read_text().splitlines()
                  if line.startswith("select ")]
    with psycopg.connect(db_url, autocommit=True) as conn, conn.transaction():
        for statement in statements:
            conn.execute(statement)


def wait_for(what: str, predicate, timeout: float, diagnostics=lambda: "", step: float = 0.1):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = predicate()
        if found:
            return found
        time.sleep(step)
    raise AssertionError(f"timed out waiting for {what}\n{diagnostics()}")


def post(url: str) -> dict:
    request = urllib.request.Request(url, method="POST", data=b"")
    with urllib.request.urlopen(request, timeout=10) as response:
        return json.loads(response.read().decode())


def test_a_p0_event_in_the_simulated_service_kills_the_rollout_through_prometheus_and_the_puller(
        conn, db_url, tmp_path):
    arrange_state(conn, "promote", "canary_1", False, False)
    apply_sources(db_url)
    cur = conn.cursor(row_factory=psycopg.rows.dict_row)
    sources = cur.execute("select * from public.chat_get_v11_metric_sources()").fetchall()
    assert {(s["metric"], s["cohort"]) for s in sources} == {(m, c) for m in SOURCES for c in ("canary", "control")}
    for s in sources:  # the shipped file holds the simulator's own expressions
        shipped = {k: s[k] for k in ("numerator", "denominator", "value") if s.get(k) is not None}
        assert shipped == promql(s["metric"], s["cohort"]), s
    sources = [(s["metric"], s["cohort"]) for s in sources]
    assert {m for m, _ in sources} == {r[0] for r in conn.execute("select metric from chat_v11.metric")}

    sim_port, exporter_port, puller_port, prom_port = (free_port() for _ in range(4))
    logs = tmp_path / "logs"
    logs.mkdir()
    (tmp_path / "prometheus.yml").write_text(story_config(sim_port, exporter_port, puller_port))

    def everything() -> str:
        pulled = [line for line in (logs / "pull.log").read_text(errors="replace").splitlines()
                  if "query=" not in line or "ack_without_receipt_10s_rate/canary" in line] if (
            logs / "pull.log").exists() else []
        targets = ""
        with suppress(Exception):
            targets = json.dumps([(t["labels"]["job"], t["health"], t["lastError"], t["lastScrapeDuration"])
                                  for t in prom.get("targets")["activeTargets"]])
            targets += "\n" + json.dumps([(t["scrapeUrl"]) for t in prom.get("targets")["activeTargets"]])
            targets += "\n" + json.dumps(prom.query('chat_acks_without_receipt_total{cohort="canary"}[40s]'))
            targets += "\n" + json.dumps(scrape(f"http://127.0.0.1:{sim_port}/metrics").series(
                "chat_acks_without_receipt_total"))
        return "\n".join([*(tail(p) for p in sorted(logs.glob("*.log")) if p.name != "pull.log"),
                          "--- pull.log (without the other queries)", *pulled[-60:], "--- targets", targets])

    prom: PrivatePrometheus | None = None

    with ExitStack() as stack:
        # 1) the simulated chat service
        sim = start(stack, "simulate", [*cli(), "simulate", "--listen", f"127.0.0.1:{sim_port}"], logs, environment())
        assert wait_listening("127.0.0.1", sim_port, 30, sim), everything()
        page = scrape(f"http://127.0.0.1:{sim_port}/metrics")
        assert page.value("chat_acks_total", cohort="canary") is not None
        # 2) Prometheus with the shipped configuration
        prom_process = start(stack, "prometheus", [
            prometheus_binary(), f"--config.file={tmp_path / 'prometheus.yml'}",
            f"--storage.tsdb.path={tmp_path / 'story-prom'}", f"--web.listen-address=127.0.0.1:{prom_port}",
            "--storage.tsdb.retention.time=1h", "--log.level=warn"], logs, environment(), cwd=tmp_path)
        prom = PrivatePrometheus(prom_port, logs, prom_process)
        assert wait_listening("127.0.0.1", prom_port, 30, prom_process), everything()
        wait_for("Prometheus to scrape the simulator", lambda: _answers(prom, 'chat_acks_total{cohort="canary"}'),
                 60, everything)
        # 3) the puller as the ingest login, and the exporter as a reader
        ingest_url = make_conninfo(db_url, user="chat_test_ingest")
        start(stack, "pull", [*cli(), "pull", "--prometheus", f"http://127.0.0.1:{prom_port}", "--interval",
                              f"{INTERVAL_S:g}", "--settle", f"{SETTLE_S:g}", "--horizon", "30s", "--listen",
                              f"127.0.0.1:{puller_port}"], logs, environment(ingest_url))
        start(stack, "exporter", [*cli(), "exporter", "--listen", f"127.0.0.1:{exporter_port}"], logs,
              environment(make_conninfo(db_url, user="chat_test_reader")))

        # healthy traffic: buckets are written, the P0 checks pass, nothing is killed
        wait_for("the puller to write a bucket of every source", lambda: len(_sampled(conn)) == 18, 60, everything,
                 step=0.5)
        p0 = {m: c for m, c in checks(conn).items() if c["severity"] == "P0"}
        assert all(c["status"] == "pass" for c in p0.values()), p0
        assert not any(h["action"] == "auto_kill" for h in history(conn))
        wait_for("Prometheus to scrape the puller and the exporter", lambda: _answers(
            prom, 'up{job=~"chat-rollout|chat-rollout-pull"} == 1', 2), 30, everything)

        # the P0 event, just after a bucket boundary (close to the worst case)
        now = time.time()
        time.sleep(BUCKET_S - now % BUCKET_S + INJECT_INTO_BUCKET_S)
        injected = post(f"http://127.0.0.1:{sim_port}/inject?metric=ack_without_receipt_10s_rate")
        injected_at = dt.datetime.fromtimestamp(injected["injected_at"], dt.UTC)
        kill = wait_for("the automatic kill", lambda: next(
            (h for h in history(conn) if h["action"] == "auto_kill"), None), 40, everything, step=0.05)
        elapsed_s = (kill["changed_at"] - injected_at).total_seconds()
        # the exporter shows the kill to the same Prometheus, whose alert fires
        wait_for("Prometheus to see the kill through the exporter", lambda: _answers(
            prom, 'chat_rollout_kill_switch{job="chat-rollout"} == 1'), 20, everything)
        seen_s = time.time() - injected["injected_at"]
        wait_for("ChatRolloutKillSwitchOn to fire", lambda: any(
            a["labels"]["alertname"] == "ChatRolloutKillSwitchOn" for a in prom.firing()), 20, everything)
        puller_page = scrape(f"http://127.0.0.1:{puller_port}/metrics")

    assert kill["to_kill_switch"] is True and kill["from_stage"] == "canary_1" and kill["actor"] == "guardrail", kill
    assert "ack_without_receipt_10s_rate" in kill["reason"], kill
    bad = [s for s in _samples(conn) if s["metric"] == "ack_without_receipt_10s_rate" and s["numerator"] > 0]
    assert bad and {s["cohort"] for s in bad} == {"canary"}, bad
    assert bad[0]["bucket_start"].timestamp() == injected["injected_at"] // BUCKET_S * BUCKET_S, bad
    assert puller_page.value("chat_rollout_pull_buckets_written_total") >= 18
    bound_s = (BUCKET_S - INJECT_INTO_BUCKET_S) + SCRAPE_S + SETTLE_S + MARGIN_S
    assert 0 < elapsed_s <= bound_s, f"injection to kill took {elapsed_s:.1f} s (bound {bound_s:g} s)"
    print(f"\nFIGURE story_injection_to_kill_ms {elapsed_s * 1000:.0f} (P0 event {INJECT_INTO_BUCKET_S:g} s into a "
          f"10-second bucket; Prometheus scrape {SCRAPE_S:g} s; pull --interval {INTERVAL_S:g} --settle "
          f"{SETTLE_S:g}; target scrape + interval + 1 s = {SCRAPE_S + INTERVAL_S + 1:g} s)")
    print(f"FIGURE story_injection_to_prometheus_kill_ms {seen_s * 1000:.0f} (the exporter's "
          f"chat_rollout_kill_switch 1 in Prometheus)")


def _answers(prom: PrivatePrometheus, expr: str, n: int = 1) -> bool:
    try:
        return len(prom.query(expr)) >= n
    except OSError:
        return False


def _samples(conn) -> list[dict]:
    cur = conn.cursor(row_factory=psycopg.rows.dict_row)
    return cur.execute("select * from public.chat_get_v11_metric_samples(now() - interval '1 hour', now())").fetchall()


def _sampled(conn) -> set[tuple[str, str]]:
    return {(s["metric"], s["cohort"]) for s in _samples(conn)}
