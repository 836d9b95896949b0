"""Issue 17 (SPEC 7, "Prometheus out"): the shipped alert rules and dashboard, over the names the exporter exports.

- ``promtool check rules deploy/prometheus/alerts.yml`` and ``promtool test rules deploy/prometheus/alerts_test.yml``
  (each alert firing and not firing); skipped with the reason where promtool is missing (Debian package
  ``prometheus``);
- every PromQL expression of the rules and of the Grafana dashboard (``deploy/grafana/chat-rollout.json``: panel
  targets and template variables) names only metric names the exporter serves, collected from a live scrape of a
  test database at a healthy canary (so every optional series is present), plus the puller's three names and
  Prometheus' own ``up``;
- a real Prometheus (``/usr/bin/prometheus``, a private process: own port, config and data folder) scrapes the
  exporter every second and evaluates the shipped rules: after a kill it answers ``chat_rollout_kill_switch`` 1 and
  fires ``ChatRolloutKillSwitchOn``; skipped where the binary is missing.
"""

from __future__ import annotations

import json
import subprocess
import time

import pytest
import yaml
from psycopg.conninfo import make_conninfo

from chat_rollout import PROJECT_ROOT
from pytest_tests.support.calls import arrange_state, set_state
from pytest_tests.support.prometheus import (
    EXPORTER_JOB,
    PROMETHEUS_OWN,
    PULLER_METRICS,
    private_prometheus,
    prometheus_binary,
    promql_names,
    promtool,
    running_exporter,
    scrape,
)
from pytest_tests.support.samples import healthy

RULES = PROJECT_ROOT / "deploy" / "prometheus" / "alerts.yml"
RULE_TESTS = PROJECT_ROOT / "deploy" / "prometheus" / "alerts_test.yml"
DASHBOARD = PROJECT_ROOT / "deploy" / "grafana" / "chat-rollout.json"
ALERTS = {
    "ChatRolloutKillSwitchOn",
    "ChatRolloutP0GateFailing",
    "ChatRolloutCheckInconclusive",
    "ChatRolloutHistoryChainBroken",
    "ChatRolloutExporterDown",
    "ChatRolloutPullerFailing",
}
PLAYBOOK = "docs/seed/chat-incident-playbook-v1.1.md"


def rules() -> list[dict]:
    return [rule for group in yaml.safe_load(RULES.read_text())["groups"] for rule in group["rules"]]


def dashboard_panels(panels: list[dict]) -> list[dict]:
    out = []
    for panel in panels:
        out.append(panel)
        out += dashboard_panels(panel.get("panels", []))
    return out


def dashboard_expressions() -> list[tuple[str, str]]:
    """(where, expression) of every panel target and query variable of the dashboard."""
    board = json.loads(DASHBOARD.read_text())
    found = [
        (f"panel {panel['title']!r} target {target.get('refId')}", target["expr"])
        for panel in dashboard_panels(board["panels"])
        for target in panel.get("targets", [])
    ]
    for variable in board["templating"]["list"]:
        if variable["type"] == "query":
            query = variable["query"]
            found.append((f"variable {variable['name']}", query["query"] if isinstance(query, dict) else query))
    return found


def _promtool() -> str:
    program = promtool()
    if program is None:
        pytest.skip("promtool is not installed (apt-get install prometheus)")
    return program


def test_promtool_checks_the_rules():
    result = subprocess.run([_promtool(), "check", "rules", str(RULES)], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"SUCCESS: {len(ALERTS)} rules found" in result.stdout


def test_promtool_unit_tests_of_the_rules_pass():
    result = subprocess.run(
        [_promtool(), "test", "rules", str(RULE_TESTS)], capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout


def test_each_alert_is_shipped_labelled_annotated_and_tested_firing_and_not():
    shipped = {rule["alert"]: rule for rule in rules()}
    assert set(shipped) == ALERTS
    for name, rule in shipped.items():
        assert rule["labels"]["severity"] in ("page", "ticket"), name
        assert {"summary", "description", "runbook"} <= set(rule["annotations"]), name
        assert rule["annotations"]["runbook"].startswith(f"{PLAYBOOK} section "), name
    cases = [case for test in yaml.safe_load(RULE_TESTS.read_text())["tests"] for case in test["alert_rule_test"]]
    firing = {case["alertname"] for case in cases if case.get("exp_alerts")}
    quiet = {case["alertname"] for case in cases if not case.get("exp_alerts")}
    assert firing == ALERTS, f"no firing case for {ALERTS - firing}"
    assert quiet == ALERTS, f"no not-firing case for {ALERTS - quiet}"


def test_the_name_extraction_sees_every_name():
    """The check below is only as good as promql_names: it finds names in every position, and nothing else."""
    assert promql_names('sum by (metric) (rate(chat_rollout_typo_total{job="x", a=~"$v"}[5m] offset 1h))') == {
        "chat_rollout_typo_total"}
    assert promql_names("max by (job, instance) (time() - a_seconds) > 300 or on (job) b == bool 1e3") == {
        "a_seconds", "b"}
    assert promql_names('label_replace(x == 1, "y", "$1", "severity", "(.*)") and on (i) z > 0') == {"x", "z"}
    assert promql_names("label_values(chat_rollout_up, instance)") == {"chat_rollout_up"}


@pytest.fixture
def exported_names(conn, db_url) -> set[str]:
    """Every name the exporter serves, from a live scrape where every optional series is present (a healthy
    canary: values, baselines) and from one where the database cannot be read."""
    arrange_state(conn, "promote", "canary_1", False, False)
    healthy(conn)
    with running_exporter(make_conninfo(db_url, user="chat_test_reader")) as exporter:
        names = scrape(exporter.url).names
    with running_exporter(make_conninfo(db_url, user="chat_test_nobody")) as exporter:
        names |= scrape(exporter.url).names
    assert {"chat_rollout_check_value", "chat_rollout_check_baseline", "chat_rollout_up"} <= names
    return names


def test_every_expression_names_only_exported_metrics(exported_names):
    allowed = exported_names | PULLER_METRICS | PROMETHEUS_OWN
    expressions = [(f"alert {rule['alert']}", rule["expr"]) for rule in rules()] + dashboard_expressions()
    assert len(expressions) > len(ALERTS) + 20
    problems = []
    used = set()
    for where, expr in expressions:
        names = promql_names(expr)
        used |= names
        if not names:
            problems.append(f"{where}: no metric name found in {expr!r}")
        if names - allowed:
            problems.append(f"{where}: {sorted(names - allowed)} not exported (in {expr!r})")
    assert not problems, "\n".join(problems)
    assert PULLER_METRICS <= used, "the puller's names are read by the rules or the dashboard"


def test_the_dashboard_shows_what_the_on_call_needs():
    board = json.loads(DASHBOARD.read_text())
    panels = dashboard_panels(board["panels"])
    ids = [panel["id"] for panel in panels]
    assert len(ids) == len(set(ids)), "panel ids are unique"
    used = set().union(*(promql_names(expr) for _, expr in dashboard_expressions()))
    for name in ("up", "rollout_info", "stage_ordinal", "kill_switch", "decision", "gate_ok", "check_status",
                 "check_value", "check_threshold", "open_incidents", "history_verified"):
        assert f"chat_rollout_{name}" in used, name
    for panel in panels:
        if panel["type"] != "row":
            assert panel["datasource"] == {"type": "prometheus", "uid": "${datasource}"}, panel["title"]


def test_a_real_prometheus_scrapes_the_kill_and_fires_the_alert(conn, db_url):
    if prometheus_binary() is None:
        pytest.skip("prometheus is not installed (apt-get install prometheus)")
    arrange_state(conn, "promote", "canary_1", False, False)
    with running_exporter(make_conninfo(db_url, user="chat_test_reader")) as exporter:
        target = f"127.0.0.1:{exporter.port}"
        with private_prometheus({EXPORTER_JOB: [target]}, [RULES]) as prometheus:

            def wait_for(what, check, timeout: float = 45.0):
                deadline = time.monotonic() + timeout
                while time.monotonic() < deadline:
                    found = check()
                    if found:
                        return found
                    time.sleep(0.25)
                raise AssertionError(f"{what} within {timeout} s\n{prometheus.log_tail()}")

            def kill_switch() -> list[str]:
                return [r["value"][1] for r in prometheus.query(f'chat_rollout_kill_switch{{instance="{target}"}}')]

            wait_for("prometheus scraped the exporter with the kill switch off", lambda: kill_switch() == ["0"])
            assert prometheus.query('chat_rollout_up{job="chat-rollout"}')[0]["value"][1] == "1"
            assert not [a for a in prometheus.firing() if a["labels"]["alertname"] == "ChatRolloutKillSwitchOn"]

            set_state(conn, "canary_1", True, "kill switch")
            wait_for("prometheus saw the kill", lambda: kill_switch() == ["1"])
            alert = wait_for(
                "ChatRolloutKillSwitchOn fired",
                lambda: [a for a in prometheus.firing() if a["labels"]["alertname"] == "ChatRolloutKillSwitchOn"],
            )[0]
    assert alert["labels"] == {"alertname": "ChatRolloutKillSwitchOn", "severity": "page", "job": EXPORTER_JOB,
                               "instance": target}
    assert alert["annotations"]["summary"] == f"Chat v1.1 kill switch is ON ({target})"
