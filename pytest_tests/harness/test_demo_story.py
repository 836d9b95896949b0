"""The demo tells a true story (``make demo``): its two clocks agree with the tables, it fits 300 lines at 100
columns, it never shows PROCEED beside a kill, its counts are the database's, checklist items turn done when their
facts happen, it ends where the README says, and the commands it prints work as printed.

The walk itself, call by call, is tested in test_cli.py (test_run_demo_*); here one default run and one verbose
run of the demo, each on its own clone of the template, are read back against the database.
"""

from __future__ import annotations

import datetime as dt
import io
import os
import re
import shutil
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path

import psycopg
import pytest
from psycopg.rows import dict_row
from rich.console import Console

from chat_rollout import PROJECT_ROOT, cli
from chat_rollout.demo import run_demo
from chat_rollout.utc import utc
from pytest_tests.support.calls import history, invoke, state
from pytest_tests.support.databases import create_database, drop_database

WIDTH = 100
SPIKE_METRIC = "ack_without_receipt_10s_rate"


@dataclass
class Told:
    """One run of the demo: its database, whether it passed, what it printed."""

    name: str
    url: str
    ok: bool
    out: str

    @property
    def lines(self) -> list[str]:
        return self.out.splitlines()

    def rows(self, query: str, params=None) -> list[dict]:
        with psycopg.connect(self.url, autocommit=True, row_factory=dict_row) as conn:
            return conn.execute(query, params).fetchall()


def _tell(pg_server, template_db, name: str, *, verbose: bool = False):
    url = create_database(pg_server, name, template=template_db)
    buffer = io.StringIO()
    console = Console(file=buffer, width=WIDTH, no_color=True, highlight=False)
    try:
        yield Told(name, url, run_demo(url, console, verbose=verbose), buffer.getvalue())
    finally:
        drop_database(pg_server, name)


@pytest.fixture(scope="module")
def told(pg_server, template_db):
    yield from _tell(pg_server, template_db, f"chat_rollout_story{os.getpid()}")


@pytest.fixture(scope="module")
def told_verbose(pg_server, template_db):
    yield from _tell(pg_server, template_db, f"chat_rollout_story_v{os.getpid()}", verbose=True)


def _spike(told: Told) -> dict:
    [spike] = told.rows(
        "select bucket_start, numerator, denominator from chat_v11.metric_sample where metric = %s and numerator > 0",
        (SPIKE_METRIC,),
    )
    return spike


def _recorded(told: Told) -> dict[int, dict]:
    with psycopg.connect(told.url, autocommit=True) as conn:
        return {row["version"]: row for row in history(conn)}


# --- the length ----------------------------------------------------------------------------------


def test_the_demo_fits_300_lines_at_100_columns_by_default(told):
    assert told.ok, told.out
    assert len(told.lines) < 290  # the demo command adds its header and the psql hint
    assert max(len(line) for line in told.lines) <= WIDTH  # so a 100-column terminal wraps none of them


def test_make_demo_prints_under_300_lines_at_100_columns(monkeypatch, pg_server):
    name = f"chat_rollout_story_cli{os.getpid()}"
    monkeypatch.setattr(cli, "DEMO_DATABASE", name)
    try:
        result = invoke(["demo"], pg_server.url, COLUMNS=str(WIDTH))
        assert result.exit_code == 0, result.output
        lines = result.output.splitlines()
        rows = sum(max(1, -(-len(line) // WIDTH)) for line in lines)  # terminal rows, a long line wrapped
        assert rows < 300, f"{rows} rows at {WIDTH} columns"
    finally:
        drop_database(pg_server, name)


def test_verbose_shows_every_result_in_full_every_comment_and_every_hint(told, told_verbose):
    assert told_verbose.ok, told_verbose.out
    out = told_verbose.out
    assert "-[ RECORD 1 ]" in out and "  -- $1: " in out and "HINT: " in out
    assert '"root_cause"' in out  # the postmortem, in full
    assert "HINT: " not in told.out and "-[ RECORD" not in told.out
    assert len(told_verbose.lines) > 3 * len(told.lines)


# --- the two clocks ------------------------------------------------------------------------------


def test_the_spike_comes_after_the_story_promotion_and_the_calls_after_every_sample(told):
    assert told.ok, told.out
    spike = _spike(told)["bucket_start"]
    [buckets] = told.rows(
        "select min(bucket_start) filter (where cohort = 'canary') as canary_from, max(bucket_start) as newest, "
        "count(*) filter (where bucket_start > %s and numerator > 0 and metric in "
        "(select metric from chat_v11.metric where severity = 'P0')) as p0_events_after_spike "
        "from chat_v11.metric_sample",
        (spike,),
    )
    recorded = _recorded(told)
    # the story's clock (the samples): canary traffic from T0, the spike after it, 30 clean minutes after the spike
    assert buckets["canary_from"] < spike
    assert spike + dt.timedelta(minutes=30) < buckets["newest"] and buckets["p0_events_after_spike"] == 0
    # the real clock (the history): the calls, in the playbook's order, after every sample's bucket
    assert [recorded[v]["action"] for v in (2, 4, 6)] == ["promote", "auto_kill", "resume"]
    assert buckets["newest"] <= recorded[2]["changed_at"] < recorded[4]["changed_at"] < recorded[6]["changed_at"]
    # and the words say which clock each time is on
    clock = {key: utc(moment, "clock") for key, moment in buckets.items() if isinstance(moment, dt.datetime)}
    assert f"{clock['canary_from']} T0: the canary (v1.1, 1 %)   {utc(spike, 'clock')} the P0 spike" in told.out
    promoted, killed = (utc(recorded[v]["changed_at"], "clock") for v in (2, 4))
    assert f"The history records it at {promoted} UTC (real clock)" in told.out
    assert f"The kill is recorded at {killed} UTC (real clock)" in told.out
    assert f"stage is the history's at p_at, on the real clock: off (promoted at {promoted})" in told.out


def test_no_line_shows_proceed_while_the_kill_switch_is_on(told):
    lines = told.lines
    killed = next(i for i, line in enumerate(lines) if "kill switch ON" in line)
    resumed = next(i for i, line in enumerate(lines) if i > killed and "kill switch off" in line)
    assert [line for line in lines[killed:resumed] if "PROCEED" in line] == []
    assert all(line.endswith("NO-GO") for line in lines if "kill switch ON" in line)
    # the database's gates did say PROCEED then (the spike had left their 15-minute window): the kill comes first
    [gates] = told.rows(
        "select rollout_decision from public.chat_get_v11_release_gates(p_at => %s)",
        (_recorded(told)[5]["changed_at"],),
    )
    assert gates["rollout_decision"] == "PROCEED"


def test_the_printed_counts_are_the_databases(told):
    spike = _spike(told)
    bucket = re.search(r"(\d+) of (\d+) ACKs in the canary bucket of (\d\d:\d\d:\d\d)", told.out)
    window = re.search(r"(\d+) of ([\d,]+) ACKs, rate ([\d.]+)", told.out)
    assert bucket and window, told.out
    assert (int(bucket[1]), int(bucket[2]), bucket[3]) == (
        spike["numerator"],
        spike["denominator"],
        utc(spike["bucket_start"], "clock"),
    )
    [check] = told.rows(
        "select value, volume from public.chat_get_v11_gate_checks(p_at => %s) where metric = %s",
        (spike["bucket_start"], SPIKE_METRIC),
    )
    assert (int(window[1]), int(window[2].replace(",", "")), Decimal(window[3])) == (
        spike["numerator"],
        check["volume"],
        check["value"],
    )
    reason = _recorded(told)[4]["reason"]
    assert f"{SPIKE_METRIC} = {check['value']} (" in reason and f"{spike['numerator']} events in the 00:15:00" in reason


def test_checklist_items_turn_done_when_their_facts_happen(told):
    out = told.out
    declared = out.index("✓ 7 not done: no sample after the spike covers the 30-minute exit window yet")
    backfilled = out.index("The exporter backfills the buckets after the spike")
    met = out.index("✓ 7 exit criteria met, now")
    assert declared < backfilled < met
    # in the database: the samples that cover the exit window were written after the declaration, before the resolve
    spike = _spike(told)["bucket_start"]
    [incident] = told.rows("select opened_at, resolved_at from chat_v11.incident")
    [written] = told.rows("select min(written_at) as at from chat_v11.metric_sample where bucket_start > %s", (spike,))
    late = told.rows(
        "select written_at from chat_v11.metric_sample where bucket_start > %s and bucket_start < %s limit 1",
        (spike, spike + dt.timedelta(minutes=20)),
    )
    assert late and incident["opened_at"] < late[0]["written_at"] < incident["resolved_at"]
    assert written["at"] < incident["opened_at"]  # the live feed (the last 15 minutes) came before the promotion
    # the standing after each step: what is done (or n/a) only grows
    counts = [
        sum(int(n) for n, status in re.findall(r"(\d+) (done|n/a)", line))
        for line in told.lines
        if line.startswith("  ⎿ incident ")
    ]
    assert counts[0] == 4 and counts[-1] == 11 and counts == sorted(counts)


# --- where it ends ---------------------------------------------------------------------------------


def test_the_demo_ends_where_the_readme_says(told):
    readme = (PROJECT_ROOT / "README.md").read_text(encoding="utf-8")
    steps = re.search(r"All (\d+) steps behaved as the playbook expects", told.out)
    assert steps and f"in {steps[1]} verified steps" in readme
    with psycopg.connect(told.url, autocommit=True) as conn:
        s = state(conn)
        assert (s["stage"], s["kill_switch"], s["promotion_frozen"], s["version"]) == ("canary_25", False, False, 9)
        assert [r["action"] for r in history(conn)] == [
            "auto_promote", "promote", "unfreeze", "resume", "kill", "auto_kill", "hold", "promote", "init",
        ]  # fmt: skip
    [approval] = told.rows("select approved_by, stage from chat_v11.promotion_approval")
    assert approval == {"approved_by": "chat_demo_reviewer", "stage": "canary_25"}
    [incident] = told.rows("select severity, status, has_postmortem from public.chat_get_v11_incidents()")
    assert incident == {"severity": "P0", "status": "closed", "has_postmortem": True}


def test_the_commands_it_prints_work_as_printed(told, pg_server):
    block = told.out[told.out.index(f"The database {told.name} stays") :].splitlines()[1:]
    commands = [line.split() for line in block if line.startswith("  ")]
    assert [c[1] for c in commands] == ["status", "incident", "incident", "db"]
    for program, *args in commands:
        if program == "chat-rollout":
            assert shutil.which(program), "printed as on PATH"
        else:
            assert Path(program).is_file() and os.access(program, os.X_OK), program
        assert args[-2:] == ["-d", told.name]
        result = invoke(args, pg_server.url)
        assert result.exit_code == 0, (args, result.output)
        if args[:2] == ["db", "url"]:
            assert result.output.strip() == told.url
