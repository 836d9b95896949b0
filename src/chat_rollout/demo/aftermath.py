"""Chapter 6 of the demo: the decisions after the resume (unfreeze, promotion), the postmortem, the close, the
timeline."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Sequence

from rich.json import JSON
from rich.text import Text

from ..utc import utc
from .incident import checklist_of
from .session import brief
from .story import Play, state_of
from .timeline import SPIKE_ACKS, SPIKE_EVENTS


def decisions_and_postmortem(play: Play) -> None:
    walk, ops, clock, incident_id = play.walk, play.ops, play.clock, play.incident_id
    walk.chapter(
        "Decisions and postmortem",
        f"Story clock: {clock.clock(clock.spike + clock.exit_window)} to "
        f"{clock.clock(clock.now)} UTC, the newest bucket. The calls still run now.",
    )
    walk.step("Playbook §11.8 — 'rollout resume only through the gate': lift the freeze")
    lift = ops.run("select * from public.chat_lift_v11_freeze('gates green after the controlled resume');")
    play.recorded["unfreeze"] = lift.row.get("changed_at")
    walk.check(
        lift.error is None and state_of(lift) == ("canary_1", False, False, 7),
        "accepted (kill switch off, gates green, no open incident): canary_1, not frozen, v7",
    )

    walk.step("Playbook §9 — the observation window: an admin shortens canary_1's, audited")
    walk.say("canary_1's 30 minutes count from its real promotion, seconds ago: for the demo, they become 0.")
    settings = ops.run("select * from public.chat_set_v11_stage_settings('canary_1', null, '0');")
    walk.accepted(settings, "the stage setting is changed")
    audit = ops.run("select changed_by, target, target_key, new_value from chat_v11.config_change;")
    walk.check(
        [(r["target"], r["target_key"], (r["new_value"] or {}).get("min_observation")) for r in audit.rows]
        == [("stage", "canary_1", "00:00:00")],
        "the change is audited: who, which stage, 30 minutes to 0",
    )

    walk.step("Playbook §9 (GO) — promotion through the gate: canary_1 → canary_5")
    go = ops.run("select promotion_allowed, blockers from public.chat_get_v11_release_gates();")
    walk.check(go.row.get("promotion_allowed") is True, "the Go/No-Go holds: GO, no blockers")
    promote = play.state_call("canary_5", False, "canary 5 %")
    play.recorded["promote"] = promote.row.get("changed_at")
    walk.check(
        promote.error is None
        and state_of(promote) == ("canary_5", False, False, 8)
        and promote.row.get("traffic_percent") == 5,
        "accepted: canary_5 (5 % of traffic), not frozen, v8",
    )

    walk.step("Playbook §10.5 — the decision log: the chain verified, the history on the real clock")
    verify = ops.run("select * from public.chat_verify_v11_history();")
    walk.check((verify.row.get("ok"), verify.row.get("rows_checked")) == (True, 8), "the chain of 8 rows is intact")
    log = ops.run(
        "select version, to_char(changed_at at time zone 'UTC', 'HH24:MI:SS') as utc, action,\n"
        "       actor, to_stage as stage, to_kill_switch as kill, promotion_frozen as frozen, reason\n"
        "  from public.chat_get_v11_rollout_history(50);",
        table=["version", "utc", "action", "actor", "stage", "kill", "frozen"],
    )
    walk.check(
        [r["action"] for r in log.rows]
        == ["promote", "unfreeze", "resume", "kill", "auto_kill", "hold", "promote", "init"],
        "newest first: promote, unfreeze, resume, kill, auto_kill, hold, promote, init; no refusal",
    )
    _postmortem_step(play, log.rows[:-1])

    walk.step("Playbook §11.9–§11.10 — postmortem stored, action items assigned: the IC closes")
    closed = ops.run(f"select * from public.chat_close_v11_incident({incident_id}, 'postmortem reviewed');")
    final = ops.run("select incident_id, status, has_postmortem from public.chat_get_v11_incidents();")
    walk.check(
        closed.error is None and (final.row.get("status"), final.row.get("has_postmortem")) == ("closed", True),
        "the incident is closed, with its postmortem",
    )
    late = ops.run(f"select * from public.chat_log_v11_incident({incident_id}, 'fact', 'a late note');")
    walk.refused(late, "RO036", "a closed incident does not change: a late entry is refused with RO036")
    _timeline_step(play)


def _postmortem_step(play: Play, history: Sequence[dict]) -> None:
    walk, ops, incident_id = play.walk, play.ops, play.incident_id
    postmortem = postmortem_of(play, history)
    draft = json.loads(json.dumps(postmortem))
    draft["action_items"][1]["owner"] = ""
    walk.step("Playbook §10 — the postmortem: incomplete is refused (RO035), complete is stored")
    put_draft = ops.run(
        f"select * from public.chat_put_v11_postmortem({incident_id}, $1::jsonb);",
        [json.dumps(draft)],
        comment="$1: the scribe's draft, every section written, but action item 2 (the alert) has no owner",
    )
    walk.refused(put_draft, "RO035", "the draft's alert has no owner: refused with RO035")
    walk.check("action item 2: owner is missing" in put_draft.detail, "its DETAIL: action item 2: owner is missing")
    walk.say(
        f"dave (SRE) takes the alert. The postmortem: a timeline on both clocks, root cause, "
        f"{len(postmortem['action_items'])} action items."
    )
    if walk.verbose:
        walk.console.print(JSON(json.dumps(postmortem, ensure_ascii=False)))
    put_final = ops.run(
        f"select * from public.chat_put_v11_postmortem({incident_id}, $1::jsonb);",
        [json.dumps(postmortem)],
        comment="$1: the postmortem above",
    )
    walk.check(
        put_final.error is None and put_final.row.get("action_items") == 3,
        "stored, with 3 action items: a test, an alert, a guardrail",
    )
    checklist = ops.run(f"select * from public.chat_get_v11_incident_checklist({incident_id});")
    walk.check(
        checklist_of(checklist) == {**{item: "done" for item in range(1, 11)}, 11: "n/a"},
        "the whole checklist is done (11, the decision cadence, is n/a once resolved)",
    )


def _timeline_step(play: Play) -> None:
    walk, clock = play.walk, play.clock
    walk.step("Playbook §10.1 — the timeline in UTC: the incident, the rollout and the gates, in one")
    walk.say("Its gate verdicts are judged on the samples: they are on the story's clock, from 15 minutes")
    walk.say("before the spike. Its rollout rows and incident entries are on the real clock of the calls.")
    timeline = play.ops.run(f"select * from public.chat_get_v11_incident_timeline({play.incident_id});")
    rows = timeline.rows
    entries = [r for r in rows if r["source"] == "incident"]
    if not walk.verbose:
        for r in rows:
            if r["source"] != "incident":
                walk.console.print(
                    Text(f"  {utc(r['at'], 'clock')}  {r['source']:<7} {r['kind']:<9} ")
                    + Text(brief(r["body"] or "", 70), style="dim")
                )
        if entries:
            walk.console.print(
                Text(
                    f"  {utc(entries[0]['at'], 'clock')}  incident {len(entries)} entries, "
                    f"{entries[0]['kind']} to {entries[-1]['kind']}, until "
                    f"{utc(entries[-1]['at'], 'clock')}"
                )
            )
    kinds = [r["kind"] for r in entries]
    gates = [r for r in rows if r["source"] == "gates"]
    walk.check(
        {r["source"] for r in rows} == {"incident", "rollout", "gates"},
        "one timeline from three sources: incident, rollout, gates",
    )
    walk.check(
        bool(kinds) and kinds[0] == "opened" and kinds[-1] == "status"
        and {"role", "snapshot", "decision", "fact", "fallback_confirmed", "root_cause", "exit_criteria",
             "postmortem"} <= set(kinds),
        "the incident from its declaration to its close: roles, snapshot, decision, ..., postmortem",
    )  # fmt: skip
    walk.check(
        any(r["at"] == clock.spike and "ROLLBACK" in (r["body"] or "") for r in gates)
        and [r["kind"] for r in rows if r["source"] == "rollout"][-5:]
        == ["auto_kill", "kill", "resume", "unfreeze", "promote"],
        f"the gates turn ROLLBACK at the spike's bucket, {clock.clock(clock.spike)}; the rollout: auto_kill ...",
    )


def postmortem_of(play: Play, history: Sequence[dict]) -> dict:
    """The postmortem of playbook section 10: its timeline on the story's clock (the samples), then on the real
    clock (the calls, as the history and the incident recorded them); its decision log from the history."""
    clock, recorded, incident_id = play.clock, play.recorded, play.incident_id

    def real(key: str) -> str:
        moment = recorded.get(key)
        return f"{utc(moment)} (real clock)" if isinstance(moment, dt.datetime) else "(not recorded)"

    def story(moment: dt.datetime) -> str:
        return f"{utc(moment)} (story clock)"

    kill = recorded.get("auto_kill")
    late = round((kill - clock.spike) / dt.timedelta(minutes=1)) if isinstance(kill, dt.datetime) else 0
    deadline = (clock.now.date() + dt.timedelta(days=7)).isoformat()
    return {
        "timeline": [
            f"{story(clock.promotion)} the canary carries 1 % of traffic",
            f"{story(clock.spike)} canary bucket: {SPIKE_EVENTS} of {SPIKE_ACKS} ACKs without a receipt within 10 s "
            f"(the P0 rule over 15 minutes, both cohorts: {SPIKE_EVENTS} of {play.facts.get('volume', 0):,}, "
            f"rate {play.facts.get('rate')})",
            f"{story(clock.spike + clock.exit_window)} the exit window is clean: 30 minutes without a P0 event",
            f"{real('auto_kill')} the backfill reaches the spike: the P0 guardrail kills (v4) and declares P0 "
            f"incident {incident_id}",
            f"{real('kill')} roles named, SQL snapshot taken; IC alice confirms the kill switch verbatim (v5)",
            f"{real('resolved')} incident {incident_id} resolved: the P0 exit criteria hold",
            f"{real('resume')} controlled resume at canary_1 (v6)",
            f"{real('unfreeze')} freeze lifted through the gate (v7)",
            f"{real('promote')} promotion to canary_5 through the Go/No-Go (v8)",
        ],
        "root_cause": {
            "technical": "backend: the idempotency path answers a duplicate ACK with the stored ACK and skips "
            "receipt emission",
            "process": "no test sends a duplicate ACK; the missing-receipt metric paged nobody; the spike's bucket "
            f"reached the control plane {late} minutes after its time",
        },
        "what_worked": [
            "the P0 guardrail killed the rollout in the call that wrote the evidence, and declared the incident",
            "LISTENing application servers held the kill at once",
            "the client fallback (status_write, resync_stream) kept every message visible",
        ],
        "what_did_not_work": [
            f"the evidence reached the control plane {late} minutes after its bucket",
            "nothing alerted on ack_without_receipt_10s_rate before the guardrail",
        ],
        "action_items": [
            {"kind": "test", "title": "a duplicate ACK emits its receipt (idempotency path)", "owner": "carol",
             "deadline": deadline},
            {"kind": "alert", "title": "page the on-call on any ack_without_receipt_10s_rate > 0", "owner": "dave",
             "deadline": deadline},
            {"kind": "guardrail", "title": "exporter lag guardrail: hold promotion while a backfill is behind",
             "owner": "alice", "deadline": deadline},
        ],
        "decision_log": [
            f"v{row['version']} {row['utc']} UTC {row['action']}" + (f" by {row['actor']}" if row.get("actor") else "")
            + f": {brief(row.get('reason') or '', 60)}"
            for row in reversed(history)
        ],
    }  # fmt: skip
