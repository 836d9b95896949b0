"""`chat-rollout report ID`: the postmortem skeleton (Markdown) and the chart (PNG) of the walked P0 incident.

The walked incident is the P0 runbook of test_p0_runbook.py: healthy data, a spike of
ack_without_receipt_10s_rate 35 minutes back that kills the rollout in the ingestion transaction and opens a P0
incident, the first five minutes (roles, snapshot, decision), fallback and root cause, the clean exit window,
resolve, the controlled resume, postmortem and close. P1 samples ride along so the chart has both panels.
"""

from __future__ import annotations

import json
import struct
from datetime import timedelta
from pathlib import Path

import psycopg

from chat_rollout import report, scenarios
from pytest_tests.support.calls import arrange_state, invoke, set_state, state
from pytest_tests.support.samples import healthy_p0, put, sample

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
P1 = ("resync_range_unavailable_rate", "full_state_rate", "forced_resync_rate")


def window(start: timedelta, end: timedelta, anchor, spike_at=None) -> list[dict]:
    """Healthy P0 samples and near-baseline P1 samples for both cohorts, from anchor+start to anchor+end.

    After ``spike_at`` the canary's forced resyncs rise for two minutes (clients recovering from the missing
    receipts): a P1 bump that the chart shows beside the P0 spike.
    """
    out = healthy_p0(start, end, anchor)
    t, n = anchor + start, 0
    while t <= anchor + end:
        bump = spike_at is not None and timedelta(0) <= t - spike_at <= timedelta(minutes=2)
        for k, metric in enumerate(P1):
            wiggle = (n * 7 + k * 3) % 5
            canary = 2 + wiggle % 3 + (30 if bump and metric == "forced_resync_rate" else 0)
            out += [sample(metric, "control", t, 18 + wiggle, 20000), sample(metric, "canary", t, canary, 2000)]
        out += [
            sample("recovery_p95_ms", "control", t, value=780 + 10 * (n % 4)),
            sample("recovery_p95_ms", "canary", t, value=800 + 15 * (n % 3) + (400 if bump else 0)),
        ]
        t += timedelta(seconds=10)
        n += 1
    return out


def walk_incident(conn: psycopg.Connection, postmortem: dict) -> int:
    """The P0 runbook end to end, closed with ``postmortem``; returns the closed incident's id."""
    anchor = scenarios.anchor_now()
    spike_at = anchor - timedelta(minutes=35)
    arrange_state(conn, "promote", "canary_1", False, False)
    put(conn, window(timedelta(minutes=-60), timedelta(minutes=-32), anchor, spike_at))
    # the spike arrives (three buckets, in one batch): automatic kill and a P0 incident
    put(
        conn,
        [
            sample("ack_without_receipt_10s_rate", "canary", spike_at, 3, 200),
            sample("ack_without_receipt_10s_rate", "canary", spike_at + timedelta(seconds=10), 7, 210),
            sample("ack_without_receipt_10s_rate", "canary", spike_at + timedelta(seconds=20), 2, 190),
        ],
    )
    assert state(conn)["kill_switch"] is True
    incident_id = conn.execute("select incident_id from chat_get_v11_incidents()").fetchone()[0]
    conn.execute("select chat_set_v11_incident_role(%s, 'IC', 'alice')", (incident_id,))
    conn.execute("select chat_set_v11_incident_role(%s, 'scribe', 'bob')", (incident_id,))
    conn.execute("select chat_snapshot_v11_incident(%s)", (incident_id,))
    conn.execute("select chat_log_v11_incident(%s, 'decision', 'keep the kill switch on')", (incident_id,))
    conn.execute(
        "select chat_log_v11_incident(%s, 'fallback_confirmed', 'status_write after 3-5 s | unknown -> "
        "resync_stream confirmed on web and mobile')",
        (incident_id,),
    )
    conn.execute(
        "select chat_log_v11_incident(%s, 'root_cause', 'backend: receipt not emitted for duplicate ACKs')",
        (incident_id,),
    )
    put(conn, window(-timedelta(minutes=31, seconds=50), timedelta(0), anchor))  # the clean exit window
    conn.execute("select chat_set_v11_incident_status(%s, 'resolved', 'exit criteria held')", (incident_id,))
    set_state(conn, "canary_1", False, "resume controlled")
    conn.execute("select chat_put_v11_postmortem(%s, %s::jsonb)", (incident_id, json.dumps(postmortem)))
    conn.execute("select chat_close_v11_incident(%s, 'postmortem reviewed')", (incident_id,))
    return incident_id


def png_size(path: Path) -> tuple[int, int]:
    data = path.read_bytes()
    assert data[:8] == PNG_SIGNATURE, "not a PNG"
    assert data[12:16] == b"IHDR"
    return struct.unpack(">II", data[16:24])


def section(markdown: str, heading: str) -> str:
    start = markdown.index(heading)
    following = markdown.find("\n## ", start + len(heading))
    return markdown[start : following if following != -1 else len(markdown)]


def test_report_writes_the_postmortem_skeleton_and_the_chart_of_the_walked_incident(conn, db_url, tmp_path,
                                                                                      postmortem_example):
    incident_id = walk_incident(conn, postmortem_example)
    out_dir = tmp_path / "reports"
    result = invoke(["report", str(incident_id), "--out", str(out_dir)], db_url)
    assert result.exit_code == 0, result.output
    markdown_path, image_path = out_dir / f"incident-{incident_id}.md", out_dir / f"incident-{incident_id}.png"
    assert markdown_path.is_file() and image_path.is_file()
    assert str(markdown_path) in result.output and str(image_path) in result.output

    width, height = png_size(image_path)
    assert (width, height) == (1400, 1000)
    assert image_path.stat().st_size > 30_000  # a drawn chart, not an empty canvas
    import matplotlib.image

    pixels = matplotlib.image.imread(image_path)
    assert pixels.shape[:2] == (height, width)
    reddish = (pixels[..., 0] > 0.85) & (pixels[..., 1] < 0.45) & (pixels[..., 2] < 0.45)
    assert reddish.sum() > 500  # the kill switch span, its lines and the spike's markers are red

    md = markdown_path.read_text(encoding="utf-8")
    assert md.startswith(f"# Incident {incident_id} — P0, closed: ")
    for heading in (
        "## Roles",
        "## 1. Timeline (UTC)",
        "## On-call checklist (playbook section 11)",
        "## 2. Root cause (RCA)",
        "### Technical",
        "### Process",
        "## 3. What worked / what did not",
        "### What worked",
        "### What did not work",
        "## 4. Permanent fixes (action items)",
        "## 5. Rollout decision log",
    ):
        assert f"\n{heading}\n" in md, heading
    assert f"![P0 and P1 metrics over incident {incident_id}](incident-{incident_id}.png)" in md
    roles = section(md, "## Roles")
    assert "| IC | alice |" in roles and "| scribe | bob |" in roles and "| SRE | TODO: not named |" in roles

    timeline = section(md, "## 1. Timeline (UTC)")
    rows = [line for line in timeline.splitlines() if line.startswith("| 20")]
    kinds = [(line.split(" | ")[1], line.split(" | ")[2]) for line in rows]
    rollout = [kind for source, kind in kinds if source == "rollout"]
    assert rollout[-2:] == ["auto_kill", "resume"]
    assert ("incident", "opened") in kinds and ("incident", "postmortem") in kinds and ("gates", "verdict") in kinds
    assert any("ROLLBACK" in line for line in rows)
    assert "status_write after 3-5 s \\| unknown" in timeline  # a pipe in a body does not break the table
    db_rows = conn.execute("select count(*) from chat_get_v11_incident_timeline(%s)", (incident_id,)).fetchone()[0]
    assert len(rows) == db_rows

    checklist = section(md, "## On-call checklist")
    assert checklist.count("✅ done") == 10 and "not done" not in checklist
    assert "| 4 | Kill switch on for P0 | ✅ done | auto_kill at version" in checklist

    rca = section(md, "## 2. Root cause (RCA)")
    root_cause = postmortem_example["root_cause"]
    assert root_cause["technical"] in rca and root_cause["process"] in rca
    assert "backend: receipt not emitted for duplicate ACKs" in rca  # the root_cause entry of the timeline
    worked = section(md, "## 3. What worked")
    assert "- the automatic kill in the ingestion transaction" in worked
    assert "- the exporter sent the bucket late" in worked
    fixes = section(md, "## 4. Permanent fixes")
    assert "| test | duplicate ACK emits a receipt | alice | 2026-12-10 |" in fixes
    assert "| alert |" in fixes and "| guardrail |" in fixes and "TODO" not in fixes
    log = section(md, "## 5. Rollout decision log")
    actions = [line.split(" | ")[2] for line in log.splitlines() if line.startswith("| ") and " | 20" in line]
    assert actions[-3:] == ["promote", "auto_kill", "resume"]  # after the migration's init, seconds before
    assert "guardrail (" in log and "resume controlled" in log
    assert "- resume after 30 clean minutes" in log  # the postmortem's decision log
    assert "keep the kill switch on" in log  # the IC's decision
    assert "TODO" not in md.replace(roles, "")  # only the roles nobody filled are left to do


def test_the_chart_data_shows_the_spike_and_the_kill_switch(conn, postmortem_example):
    incident_id = walk_incident(conn, postmortem_example)
    data = report.load(conn, incident_id)
    assert data.chart_start == data.timeline_start - timedelta(minutes=15)
    assert data.end == data.incident["closed_at"]
    ack = {s.cohort: s for s in data.series if s.metric.name == "ack_without_receipt_10s_rate"}
    events = [
        (t, v)
        for t, v in zip(ack["canary"].times, ack["canary"].values, strict=True)
        if report.is_event(ack["canary"].metric, v)
    ]
    assert [round(v, 4) for _, v in events] == [0.015, 0.0333, 0.0105]
    assert all(v == 0 for v in ack["control"].values if v is not None)
    assert {s.metric.severity for s in data.series} == {"P0", "P1"}
    assert all(s.times == sorted(s.times) for s in data.series)
    assert all(b - a == timedelta(seconds=10) for s in data.series for a, b in zip(s.times, s.times[1:], strict=False))
    spans = report.kill_spans(data)
    assert len(spans) == 1
    kill = next(c for c in data.changes if c.action == "auto_kill")
    resume = next(c for c in data.changes if c.action == "resume")
    assert spans[0] == (kill.at, resume.at)
    assert [c.action for c in data.decision_log][-3:] == ["promote", "auto_kill", "resume"]


def test_the_skeleton_of_an_open_incident_has_todo_placeholders(conn, db_url, tmp_path):
    incident_id = conn.execute("select incident_id from chat_open_v11_incident('P1', 'resync range spike')").fetchone()[
        0
    ]
    result = invoke(["report", str(incident_id), "--out", str(tmp_path)], db_url)
    assert result.exit_code == 0, result.output
    md = (tmp_path / f"incident-{incident_id}.md").read_text(encoding="utf-8")
    assert md.startswith(f"# Incident {incident_id} — P1, open: resync range spike")
    assert "TODO: the technical cause" in md and "TODO: why the process" in md
    fixes = section(md, "## 4. Permanent fixes")
    for kind in ("test", "alert", "guardrail"):
        assert f"| {kind} | TODO: the {kind} | TODO: owner | TODO: YYYY-MM-DD |" in fixes
    assert "| hold |" in section(md, "## 5. Rollout decision log")
    assert "chat-rollout incident postmortem" in md
    width, height = png_size(tmp_path / f"incident-{incident_id}.png")
    assert width > 500 and height > 400  # no samples: the panels say so, the state strip still shows the hold


def test_report_on_an_unknown_incident_prints_the_refusal(db_url, tmp_path):
    result = invoke(["report", "42", "--out", str(tmp_path)], db_url)
    assert result.exit_code == 1
    assert "ERROR RO030: unknown incident 42" in result.output and "HINT: " in result.output
    assert "Traceback" not in result.output
    assert not list(tmp_path.iterdir())


def test_a_reader_makes_the_report_through_the_reader_api(conn, db_url, tmp_path):
    """Revision 0008: the report reads only the reader API, so any member of chat_rollout_reader makes it."""
    incident_id = conn.execute("select incident_id from chat_open_v11_incident('P2', 'old clients')").fetchone()[0]
    reader_url = psycopg.conninfo.make_conninfo(db_url, user="chat_test_reader")
    result = invoke(["report", str(incident_id), "--out", str(tmp_path)], reader_url)
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in tmp_path.iterdir()) == [f"incident-{incident_id}.md", f"incident-{incident_id}.png"]
    assert "old clients" in (tmp_path / f"incident-{incident_id}.md").read_text()


def test_report_without_the_reader_role_says_what_is_missing(conn, db_url, tmp_path):
    incident_id = conn.execute("select incident_id from chat_open_v11_incident('P2', 'old clients')").fetchone()[0]
    nobody_url = psycopg.conninfo.make_conninfo(db_url, user="chat_test_nobody")
    result = invoke(["report", str(incident_id), "--out", str(tmp_path)], nobody_url)
    assert result.exit_code == 1, result.output
    out = " ".join(result.output.split())
    assert "role chat_test_nobody may not call it" in out
    assert "grant chat_rollout_reader to chat_test_nobody;" in out
    assert "Traceback" not in result.output
    assert not list(tmp_path.iterdir())


def test_report_writes_to_reports_by_default(conn, db_url, tmp_path, monkeypatch):
    incident_id = conn.execute("select incident_id from chat_open_v11_incident('P2', 'default dir')").fetchone()[0]
    monkeypatch.chdir(tmp_path)
    result = invoke(["report", str(incident_id)], db_url)
    assert result.exit_code == 0, result.output
    assert (tmp_path / "reports" / f"incident-{incident_id}.md").is_file()
    assert (tmp_path / "reports" / f"incident-{incident_id}.png").is_file()
