"""Chapters 4-5 of the demo: the first five minutes of the P0 incident, and the P0 runbook up to the resume."""

from __future__ import annotations

import datetime as dt

from ..utc import utc
from .session import Result
from .story import Play, state_of
from .timeline import span

FIVE_MINUTES = dt.timedelta(minutes=5)


def checklist_of(result: Result) -> dict[int, str]:
    return {row["item"]: row["status"] for row in result.rows}


# The checklist the guardrail's declaration starts from (playbook section 11, plus the IC's 10-minute cadence):
# severity, freeze and kill switch are facts already, the cadence counts from the declaration; the exit criteria
# (7) wait for clean samples covering the 30 minutes after the spike.
CHECKLIST_DECLARED = {
    1: "done", 2: "not done", 3: "done", 4: "done", 5: "not done", 6: "not done",
    7: "not done", 8: "not done", 9: "not done", 10: "not done", 11: "done",
}  # fmt: skip


def first_five_minutes(play: Play) -> None:
    walk, ops, clock, incident_id = play.walk, play.ops, play.clock, play.incident_id
    walk.chapter(
        "The first five minutes",
        f"Story clock: {clock.clock(clock.spike)} to "
        f"{clock.clock(clock.spike + FIVE_MINUTES)} UTC. Real clock: seconds, in the incident's timeline.",
    )
    walk.step("Playbook §4.1 / §11 — the guardrail's P0 incident, and its checklist from facts")
    incidents = ops.run("select * from public.chat_get_v11_incidents();")
    incident = incidents.row
    walk.check(
        len(incidents.rows) == 1 and incident.get("incident_id") == incident_id
        and (incident.get("severity"), incident.get("status"), incident.get("has_postmortem")) == ("P0", "open", False),
        "one incident: P0, open, declared by the guardrail, named by the kill, no postmortem",
    )  # fmt: skip
    checklist = ops.run(
        f"select item, title, status, evidence from public.chat_get_v11_incident_checklist({incident_id});",
        table=["item", "title", "status"],
    )
    walk.check(
        checklist_of(checklist) == CHECKLIST_DECLARED,
        "done at the declaration: 1 severity, 3 freeze, 4 kill switch; 11 (no decision overdue yet)",
    )
    seven = next((row["evidence"] or "" for row in checklist.rows if row["item"] == 7), "")
    walk.check(
        "samples do not cover the exit window" in seven,
        "7 not done: no sample after the spike covers the 30-minute exit window yet",
    )

    walk.step("Playbook §3 / §4.2 — the roles, and the SQL snapshot into the timeline")
    named = [
        ops.run(f"select * from public.chat_set_v11_incident_role({incident_id}, '{role}', '{person}');",
                comment=f"§3: {role} — {duty}")
        for role, person, duty in (
            ("IC", "alice", "commands, records a decision every 10 minutes"),
            ("scribe", "bob", "timeline, facts, decisions"),
            ("backend", "carol", "commit path, idempotency, receipt emission"),
        )
    ]  # fmt: skip
    walk.check(all(r.error is None for r in named), "alice is the IC, bob the scribe, carol the backend owner")
    snapshot = ops.run(f"select * from public.chat_snapshot_v11_incident({incident_id});")
    body = snapshot.row.get("body") or ""
    walk.check(
        snapshot.error is None and "stage canary_1" in body and "kill switch true" in body,
        "the snapshot (gates, checks, state, history 50) is in the timeline: canary_1, killed",
    )

    walk.step("Playbook §4.4 — the IC confirms the P0 kill verbatim, and records the decision")
    confirm = play.state_call("canary_1", True, "incident P0")
    play.recorded["kill"] = confirm.row.get("changed_at")
    walk.check(
        confirm.error is None and state_of(confirm) == ("canary_1", True, True, 5),
        "the IC's kill is recorded too: canary_1, kill switch on, frozen, version 5",
    )
    decision = ops.run(
        f"select * from public.chat_log_v11_incident({incident_id}, 'decision',\n"
        "       'P0 confirmed: kill switch stays on; resume once the P0 exit criteria hold');",
        comment="§3: the IC records a decision at least every 10 minutes",
    )
    walk.check(decision.row.get("kind") == "decision", "the IC's decision is in the incident's UTC timeline")


def p0_runbook(play: Play) -> None:
    walk, ops, clock, incident_id = play.walk, play.ops, play.clock, play.incident_id
    exit_clean = clock.clock(clock.spike + clock.exit_window)
    walk.chapter(
        "The P0 runbook",
        f"Story clock: the 30 minutes after the spike, {clock.clock(clock.spike)} to {exit_clean} UTC, then the "
        "resume.",
    )
    walk.step("Playbook §5.2–§5.4 — the chain checked, the client fallback, the root cause by layer")
    logged = [
        ops.run(f"select * from public.chat_log_v11_incident({incident_id}, '{kind}',\n       '{text}');",
                comment=comment)
        for kind, text, comment in (
            ("fact", "ACK -> ledger -> event durable; no receipt row for 3 duplicate ACKs",
             "§5.2-§5.3: the chain ACK -> ledger -> event -> receipt"),
            ("fallback_confirmed", "status_write after 3-5 s, unknown -> resync_stream: web and mobile",
             "§5.4: enable or confirm the client fallback"),
            ("root_cause", "backend: receipt not emitted for duplicate ACKs (idempotency path)",
             "§11.6: the root cause names its layer first ('layer: cause')"),
        )
    ]  # fmt: skip
    walk.check(all(r.error is None for r in logged), "logged: a fact, the client fallback, the root cause by layer")
    checklist = ops.run(f"select * from public.chat_get_v11_incident_checklist({incident_id});")
    walk.check(
        checklist_of(checklist) == {**CHECKLIST_DECLARED, 2: "done", 5: "done", 6: "done"},
        "now done: 2 snapshot, 5 fallback, 6 root cause; still to do: 7, 8, 9, 10",
    )

    walk.step("Playbook §8 / §5.6 — no resume upwards (RO008), nor before the exit criteria (RO007)")
    resume_up = play.state_call("canary_5", False, "resume controlled")
    walk.refused(resume_up, "RO008", "a resume to a higher stage is refused with RO008")
    early = play.state_call("canary_1", False, "resume controlled")
    walk.refused(early, "RO007", "refused with RO007: the P0 exit criteria do not hold")
    walk.check(
        "samples do not cover the exit window" in early.detail,
        "its DETAIL says why: the samples do not cover the exit window yet",
    )

    walk.step("The exporter backfills the buckets after the spike: the exit window, clean")
    after = clock.after_spike()
    put = play.put(after, f"$1: {len(after)} samples, buckets {span(after)}, both cohorts, no P0 event")
    walk.check(
        put.row.get("chat_put_v11_metric_samples") == len(after),
        f"{len(after):,} samples ({span(after)}) written; no P0 event, no guardrail action",
    )
    seven = ops.run(
        f"select status, evidence from public.chat_get_v11_incident_checklist({incident_id}) where item = 7;"
    )
    walk.check(
        (seven.row.get("status"), seven.row.get("evidence")) == ("done", "they hold now"),
        "7 exit criteria met, now: every P0 check clean over the whole exit window",
    )
    walk.say(f"In the story the exit window was clean at {exit_clean} UTC; in the database, once these are in.")
    _resolve_and_resume(play)


def _resolve_and_resume(play: Play) -> None:
    """The exit criteria hold: the IC resolves the incident (not before), then the controlled resume."""
    walk, ops, incident_id = play.walk, play.ops, play.incident_id
    walk.step("Playbook §11.7 — exit criteria hold, the incident is not over: no resume, no close yet")
    not_resolved = play.state_call("canary_1", False, "resume controlled")
    walk.refused(not_resolved, "RO018", "the resume waits for the IC to resolve the P0 incident (RO018)")
    early_close = ops.run(f"select * from public.chat_close_v11_incident({incident_id}, 'exit criteria hold');")
    walk.refused(early_close, "RO032", "an open incident cannot be closed (RO032): resolve it first")

    walk.step("Playbook §5.6 / §11.7 — the IC resolves the P0 incident; closing it needs §10 (RO034)")
    resolved = ops.run(
        f"select * from public.chat_set_v11_incident_status({incident_id}, 'resolved', 'P0 exit criteria hold');"
    )
    play.recorded["resolved"] = resolved.row.get("changed_at")
    walk.check(
        resolved.error is None
        and (resolved.row.get("status"), resolved.row.get("previous_status")) == ("resolved", "open"),
        "open -> resolved: the exit criteria are checked again, and hold",
    )
    no_postmortem = ops.run(f"select * from public.chat_close_v11_incident({incident_id}, 'resolved');")
    walk.refused(no_postmortem, "RO034", "resolved, but no postmortem yet: closing is refused with RO034")

    walk.step("Playbook §8 — the controlled resume, through the P0 exit criteria")
    resume = play.state_call("canary_1", False, "resume controlled")
    play.recorded["resume"] = resume.row.get("changed_at")
    walk.check(
        resume.error is None
        and state_of(resume) == ("canary_1", False, True, 6)
        and resume.row.get("action") == "resume",
        "resume: kill switch off at canary_1, still frozen, v6",
    )
    item8 = ops.run(f"select item, status from public.chat_get_v11_incident_checklist({incident_id}) where item = 8;")
    walk.check(
        checklist_of(item8) == {8: "done"},
        f"8 done: resumed through the gate at {utc(resume.row.get('changed_at'), 'clock')} UTC (real clock)",
    )
