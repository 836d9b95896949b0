"""`chat-rollout incident …`: the playbook's incident calls from the command line, refusals as ERROR <SQLSTATE>."""

from __future__ import annotations

import json

import psycopg
from typer.testing import CliRunner

from chat_rollout import cli
from pytest_tests.support.calls import history, state

runner = CliRunner()


def invoke(args: list[str], url: str, stdin: str | None = None):
    """The CLI with DATABASE_URL=url and a wide, colourless console."""
    environment = {"DATABASE_URL": url, "COLUMNS": "220", "NO_COLOR": "1", "CHAT_ROLLOUT_DOCKER": None}
    return runner.invoke(cli.app, args, env=environment, input=stdin)


def ok(args: list[str], url: str, stdin: str | None = None) -> str:
    result = invoke(args, url, stdin)
    assert result.exit_code == 0, result.output
    assert "Traceback" not in result.output
    return result.output


def refused(args: list[str], url: str, sqlstate: str) -> str:
    result = invoke(args, url)
    assert result.exit_code == 1, result.output
    assert f"ERROR {sqlstate}: " in result.output, result.output
    assert "HINT: " in result.output
    assert "Traceback" not in result.output
    return result.output


def test_open_then_list_shows_the_incident(db_url):
    assert "No incidents" in ok(["incident", "list"], db_url)
    out = ok(["incident", "open", "p1", "resync range spike"], db_url)
    assert "incident 1 declared: P1 resync range spike" in out
    assert "the rollout: promotion frozen (version 2)" in out
    out = ok(["incident", "list"], db_url)
    line = next(line for line in out.splitlines() if "resync range spike" in line)
    cells = [cell.strip() for cell in line.split("│")]
    assert cells[1:4] == ["1", "P1", "open"]
    with psycopg.connect(db_url, autocommit=True) as conn:
        assert state(conn)["promotion_frozen"] is True
        assert history(conn, 1)[0]["action"] == "hold"


def test_a_p0_opened_from_the_cli_engages_the_kill_switch(db_url):
    out = ok(["incident", "open", "P0", "ACK without receipt"], db_url)
    assert "kill switch ON, promotion frozen (version 2)" in out
    with psycopg.connect(db_url, autocommit=True) as conn:
        assert state(conn)["kill_switch"] is True


def test_the_incident_walk_from_the_cli(db_url, tmp_path, postmortem_example):
    """A P2 (no exit criteria from the gates) through every sub-command: roles, log, severity, status, snapshot,
    checklist, timeline, postmortem from a file, close."""
    ok(["incident", "open", "P2", "old clients send v1.0 frames"], db_url)
    assert "IC is alice" in ok(["incident", "role", "1", "ic", "alice"], db_url)
    assert "scribe is bob" in ok(["incident", "role", "1", "scribe", "bob"], db_url)
    out = ok(["incident", "log", "1", "decision", "watch the old clients"], db_url)
    assert "decision by postgres: watch the old clients" in out
    out = ok(["incident", "snapshot", "1"], db_url)
    assert "SQL snapshot: gate_p0_ok=false" in out
    out = ok(["incident", "severity", "1", "P1", "more users affected"], db_url)
    assert "severity P2 → P1" in out and "the rollout changed: version 2" in out
    out = ok(["incident", "severity", "1", "P2", "back to a few users"], db_url)
    assert "severity P1 → P2" in out

    out = ok(["incident", "checklist", "1"], db_url)
    rows = {
        cells[1]: cells[3]
        for cells in ([c.strip() for c in line.split("│")] for line in out.splitlines())
        if len(cells) > 4 and cells[1].isdigit()
    }
    assert len(rows) == 11
    assert (rows["1"], rows["2"], rows["3"], rows["4"], rows["9"], rows["11"]) == (
        "done", "done", "n/a", "n/a", "not done", "done",
    )  # fmt: skip
    assert "done, " in out and "not done" in out

    out = ok(["incident", "status", "1", "mitigated", "old clients blocked"], db_url)
    assert "open → mitigated" in out
    out = ok(["incident", "status", "1", "resolved", "no more v1.0 frames"], db_url)
    assert "mitigated → resolved" in out
    refused(["incident", "close", "1", "done"], db_url, "RO034")  # no postmortem yet

    incomplete = tmp_path / "incomplete.json"
    incomplete.write_text(json.dumps({"timeline": ["x"]}))
    out = refused(["incident", "postmortem", "1", str(incomplete)], db_url, "RO035")
    assert "DETAIL: root_cause.technical is missing" in out
    broken = tmp_path / "broken.json"
    broken.write_text("{not json")
    result = invoke(["incident", "postmortem", "1", str(broken)], db_url)
    assert result.exit_code == 1 and "invalid JSON: " in result.output and "line 1" in result.output
    result = invoke(["incident", "postmortem", "1", str(tmp_path / "missing.json")], db_url)
    assert result.exit_code == 1 and "cannot read the postmortem" in result.output
    out = ok(["incident", "postmortem", "1", "-"], db_url, stdin=json.dumps(postmortem_example))
    assert "postmortem stored with 3 action items" in out

    out = ok(["incident", "close", "1", "postmortem reviewed"], db_url)
    assert "incident 1 (P2) closed at " in out
    out = ok(["incident", "timeline", "1"], db_url)
    for fragment in ("opened", "role", "decision", "snapshot", "escalation", "postmortem", "IC: alice", "closed"):
        assert fragment in out, fragment
    assert "incident" in out and "rollout" in out and "gates" in out
    list_line = next(line for line in ok(["incident", "list"], db_url).splitlines() if "old clients" in line)
    assert "closed" in list_line and "IC=alice, scribe=bob" in list_line

    out = refused(["incident", "log", "1", "fact", "late note"], db_url, "RO036")
    assert "incident 1 is closed" in out


def test_refusals_exit_1_with_the_sqlstate_detail_and_hint(db_url):
    out = refused(["incident", "open", "P3", "what severity?"], db_url, "RO031")
    assert "unknown severity 'P3'" in out and "DETAIL: " in out
    refused(["incident", "open", "P1", "   "], db_url, "RO001")
    refused(["incident", "checklist", "42"], db_url, "RO030")
    refused(["incident", "timeline", "42"], db_url, "RO030")
    ok(["incident", "open", "P2", "a P2 to refuse things on"], db_url)
    refused(["incident", "role", "1", "CEO", "dan"], db_url, "RO031")
    refused(["incident", "log", "1", "rumour", "x"], db_url, "RO031")
    refused(["incident", "status", "1", "closed", "x"], db_url, "RO032")
    refused(["incident", "close", "1", "x"], db_url, "RO032")
    with psycopg.connect(db_url, autocommit=True) as conn:
        assert conn.execute("select count(*) from chat_v11.incident_entry").fetchone()[0] == 1  # only 'opened'


def test_a_reader_can_list_but_not_log(db_url):
    ok(["incident", "open", "P2", "visible to readers"], db_url)
    reader = psycopg.conninfo.make_conninfo(db_url, user="chat_test_reader")
    assert "visible to readers" in ok(["incident", "list"], reader)
    assert "Severity assigned" in ok(["incident", "checklist", "1"], reader)
    result = invoke(["incident", "log", "1", "fact", "reader tries"], reader)
    assert result.exit_code == 1 and "ERROR 42501: permission denied" in result.output


def test_incident_help_lists_the_sub_commands(db_url):
    out = ok(["incident", "--help"], db_url)
    for command in ("list", "open", "log", "role", "severity", "status", "snapshot", "checklist", "timeline",
                    "postmortem", "close"):  # fmt: skip
        assert command in out
