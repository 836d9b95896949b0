"""Chapters 1-3 of the demo: before any data, the promotion to canary_1, the P0 spike (and what every chapter shares).

A chapter is one function of a :class:`Play`; the calls are the playbook's, through psql-like sessions, each
result checked. Times come from the database: the story's from the samples (:mod:`.timeline`), the calls' from
what the tables recorded.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from rich.json import JSON
from rich.text import Text

from ..utc import utc
from .session import Result, Session, Walk
from .timeline import BUCKET, SPIKE_ACKS, SPIKE_EVENTS, SPIKE_METRIC, Clock, span

CHANNEL = "chat_v11_rollout"
NOTIFY_TIMEOUT_S = 5.0
GATES_NOW = (
    "select gate_p0_ok, gate_p1_ok, rollout_decision, promotion_allowed, blockers\n"
    "  from public.chat_get_v11_release_gates();"
)


@dataclass
class Play:
    """Who acts (the on-call operator, the metric exporter, an application server) on which clock."""

    walk: Walk
    ops: Session
    exporter: Session
    app: Session
    clock: Clock
    cli: str = "chat-rollout"  # the command as the user can run it
    dbname: str = ""
    incident_id: int = 0
    recorded: dict[str, Any] = field(default_factory=dict)  # when each call was recorded, for the postmortem
    facts: dict[str, Any] = field(default_factory=dict)

    def put(self, samples: list[dict], comment: str) -> Result:
        return self.exporter.run(
            "select public.chat_put_v11_metric_samples($1::jsonb);", [json.dumps(samples)], comment=comment
        )

    def state_call(self, stage: str, kill_switch: bool, reason: str) -> Result:
        flag = "true" if kill_switch else "false"
        return self.ops.run(f"select * from public.chat_set_v11_rollout_state('{stage}', {flag}, '{reason}');")


def state_of(result: Result) -> tuple:
    row = result.row
    return (row.get("stage"), row.get("kill_switch"), row.get("promotion_frozen"), row.get("version"))


def before_any_data(play: Play) -> None:
    walk, ops = play.walk, play.ops
    walk.chapter("Before any data", f"Real clock: the database's now() is {utc(play.clock.started)}. No sample yet.")
    walk.step("Playbook §4.2 — the SQL snapshot: the three sources of truth, on a fresh rollout")
    gates = ops.run("select * from public.chat_get_v11_release_gates();")
    state = ops.run("select * from public.chat_get_v11_rollout_state();")
    history = ops.run("select * from public.chat_get_v11_rollout_history(50);")
    walk.check(
        state_of(state) == ("off", False, False, 1) and [r["action"] for r in history.rows] == ["init"],
        "a fresh rollout starts at stage off, kill switch off, not frozen, version 1: one init row",
    )
    walk.check(
        (gates.row.get("gate_p0_ok"), gates.row.get("rollout_decision"), gates.row.get("promotion_allowed"))
        == (False, "HOLD", False),
        "no data: the gates fail closed (gate_p0_ok false, HOLD, NO-GO), the blockers say why",
    )
    walk.step("Playbook §9 (NO-GO) — promoting off → canary_1 without data is refused (RO005)")
    promote = play.state_call("canary_1", False, "canary 1 %")
    walk.refused(promote, "RO005", "missing data never passes: the promotion is refused with RO005")


def promote_to_canary_1(play: Play) -> None:
    walk, ops, clock = play.walk, play.ops, play.clock
    at = clock.clock
    walk.chapter(
        "Promote to canary_1",
        f"Story clock: buckets {at(clock.control_from)} to {at(clock.now)} UTC. "
        f"Real clock: the calls, from {at(clock.started)} UTC.",
    )
    walk.say("Two clocks: the calls run now, the history records their real times; the samples are the story's:")
    walk.say(
        f"  {at(clock.control_from)} control (v1.0, 99 %)   {at(clock.promotion)} T0: the canary (v1.1, "
        f"1 %)   {at(clock.spike)} the P0 spike"
    )
    walk.say(
        f"  {at(clock.spike + clock.exit_window)} the exit window is clean   {at(clock.now)} now: the newest bucket"
    )
    walk.step("The exporter's live feed: the 15 minutes before now, both cohorts, healthy")
    play.exporter.run("SET chat.actor = 'exporter';")
    live = clock.live_feed()
    written = play.put(live, f"$1: {len(live)} samples, buckets {span(live)}, cohorts canary (1 %) and control")
    walk.check(
        written.row.get("chat_put_v11_metric_samples") == len(live),
        f"{len(live):,} samples ({span(live)}) written in one all-or-nothing call",
    )
    verdict = ops.run(GATES_NOW)
    walk.check(
        (verdict.row.get("gate_p0_ok"), verdict.row.get("gate_p1_ok"), verdict.row.get("rollout_decision"),
         verdict.row.get("promotion_allowed")) == (True, True, "PROCEED", True),
        "judged on the 15 minutes before now: gate_p0_ok, gate_p1_ok, PROCEED, GO",
    )  # fmt: skip

    walk.step("Playbook §9 (GO) — promote off → canary_1 through the Go/No-Go")
    promote = play.state_call("canary_1", False, "canary 1 %")
    play.recorded["first_promote"] = promote.row.get("changed_at")
    walk.check(
        promote.error is None
        and state_of(promote) == ("canary_1", False, False, 2)
        and promote.row.get("traffic_percent") == 1,
        "accepted: canary_1 (1 % of traffic), not frozen, v2",
    )
    walk.say(
        f"The history records it at {utc(promote.row.get('changed_at'), 'clock')} UTC (real clock); the "
        f"story's canary starts at T0, {at(clock.promotion)}."
    )

    walk.step("Playbook §9 — 'stable in the agreed observation window': canary_5 is refused (RO006)")
    early = play.state_call("canary_5", False, "canary 5 %")
    walk.refused(early, "RO006", "canary_1 is observed for 30 minutes from its real promotion: refused (RO006)")
    blockers = ops.run("select promotion_allowed, blockers from public.chat_get_v11_release_gates();")
    listed = blockers.row.get("blockers") or []
    walk.check(
        blockers.row.get("promotion_allowed") is False and len(listed) == 1
        and "must be observed for 00:30:00" in listed[0],
        "the gates are green; the one blocker is the observation window, with its end time",
    )  # fmt: skip

    walk.step("Playbook §8 — hold at canary_1 (freeze without kill) until the backfill is in")
    hold = play.state_call("canary_1", False, "hold")
    walk.check(
        hold.error is None and state_of(hold) == ("canary_1", False, True, 3),
        "accepted: canary_1, promotion frozen, version 3",
    )
    listen = play.app.run(f"LISTEN {CHANNEL};")
    walk.accepted(listen, "an application server LISTENs on chat_v11_rollout, to react to a kill at once")


def the_p0_spike(play: Play) -> None:
    walk, ops, clock = play.walk, play.ops, play.clock
    spike = clock.clock(clock.spike)
    walk.chapter(
        "The P0 spike",
        f"Story clock: {spike} UTC, {clock.minutes_ago(clock.spike)}. The guardrail judges the backfilled spike now.",
    )
    walk.step("Playbook §5 (P0) — the backfill reaches the spike: the guardrail kills in the same call")
    older = clock.up_to_spike()
    walk.say(f"The exporter backfills the older buckets, {span(older)}. Its canary bucket of {spike}")
    walk.say(f"holds {SPIKE_EVENTS} of {SPIKE_ACKS} ACKs that got no receipt within 10 s.")
    put = play.put(
        older,
        f"$1: {len(older)} samples, control from {clock.clock(clock.control_from)}, canary from "
        f"T0 {clock.clock(clock.promotion)}, the spike bucket last",
    )
    walk.check(put.row.get("chat_put_v11_metric_samples") == len(older), f"all {len(older):,} samples are written")
    killed = ops.run(
        "select version, action, actor, to_stage, to_kill_switch, incident_id, changed_at, reason\n"
        "  from public.chat_get_v11_rollout_history(1);"
    )
    row = killed.row
    play.recorded["auto_kill"] = row.get("changed_at")
    play.incident_id = row.get("incident_id") or 0
    walk.check(
        (row.get("action"), row.get("actor"), row.get("to_stage"), row.get("to_kill_switch"), row.get("version"))
        == ("auto_kill", "guardrail", "canary_1", True, 4),
        "auto_kill by guardrail before the call returned: canary_1, kill switch on, version 4",
    )
    walk.check(
        row.get("incident_id") is not None,
        f"in the same transaction it declared P0 incident {play.incident_id}, which the kill names",
    )
    _rate_of_the_spike(play, row)
    _notification(play)
    walk.say(
        f"The kill is recorded at {utc(row.get('changed_at'), 'clock')} UTC (real clock); in the story the "
        f"guardrail killed at {clock.clock(clock.spike + BUCKET)}."
    )

    walk.step("Playbook §10 — re-evaluate a past moment: the gates at the spike's bucket, then now")
    then = ops.run(
        "select gate_p0_ok, rollout_decision, stage, kill_switch, failing_checks\n"
        f"  from public.chat_get_v11_release_gates(p_at => '{utc(clock.spike, 'sql')}');", table=True,
    )  # fmt: skip
    walk.check(
        (then.row.get("gate_p0_ok"), then.row.get("rollout_decision"), then.row.get("failing_checks"))
        == (False, "ROLLBACK", [f"{SPIKE_METRIC}: fail"]),
        f"at {spike}: gate_p0_ok false, ROLLBACK, failing {SPIKE_METRIC}",
    )
    walk.say(
        f"stage is the history's at p_at, on the real clock: {then.row.get('stage')} (promoted at "
        f"{utc(play.recorded.get('first_promote'), 'clock')}). T0 is the story's."
    )
    now = ops.run(GATES_NOW)
    blockers = now.row.get("blockers") or []
    walk.check(
        now.row.get("gate_p0_ok") is True and now.row.get("promotion_allowed") is False
        and any("kill switch is on" in b for b in blockers)
        and any(f"incident {play.incident_id} (P0, open" in b for b in blockers),
        "now gate_p0_ok is true (the spike left the 15-minute window); NO-GO: killed, incident open",
    )  # fmt: skip


def _rate_of_the_spike(play: Play, kill: dict) -> None:
    """The bucket's count against the rate the P0 rule reports (every cohort over its window)."""
    check = play.ops.run(
        'select metric, "window", value, volume, status\n'
        f"  from public.chat_get_v11_gate_checks(p_at => '{utc(play.clock.spike, 'sql')}')\n"
        f" where metric = '{SPIKE_METRIC}';"
    )
    value, volume = check.row.get("value"), check.row.get("volume") or 0
    play.facts.update(rate=value, volume=volume)
    play.walk.say(
        f"{SPIKE_EVENTS} of {SPIKE_ACKS} ACKs in the canary bucket of {play.clock.clock(play.clock.spike)}; "
        "the P0 rule counts every cohort over"
    )
    play.walk.say(
        f"its 15-minute window: {SPIKE_EVENTS} of {volume:,} ACKs, rate {value}, the rate in the kill's reason."
    )
    reason = kill.get("reason") or ""
    play.walk.check(
        value is not None and volume > 0 and float(value) == round(SPIKE_EVENTS / float(volume), 6)
        and f"{SPIKE_METRIC} = {value} (" in reason and f"{SPIKE_EVENTS} events in the 00:15:00" in reason,
        f"the kill's reason says the same: {SPIKE_METRIC} = {value}, {SPIKE_EVENTS} events",
    )  # fmt: skip


def _notification(play: Play) -> None:
    notes = list(play.app.conn.notifies(timeout=NOTIFY_TIMEOUT_S, stop_after=1))
    payloads = []
    for note in notes:
        try:
            payload = json.loads(note.payload)
        except ValueError:
            payload = {}
        payloads.append(payload)
        switch = "on" if payload.get("kill_switch") else "off"
        play.walk.console.print(
            f'Asynchronous notification "{note.channel}": {payload.get("action")} by {payload.get("actor")}, '
            f"v{payload.get('version')}, {payload.get('stage')}, kill switch {switch}"
        )
        if play.walk.verbose:
            play.walk.console.print(JSON(note.payload))
    if not notes:
        play.walk.console.print(Text(f"(no notification within {NOTIFY_TIMEOUT_S:g} s)", style="red"))
    play.walk.check(
        any(
            (p.get("action"), p.get("actor"), p.get("version"), p.get("stage"), p.get("kill_switch"))
            == ("auto_kill", "guardrail", 4, "canary_1", True)
            for p in payloads
        ),
        "the application server holds the payload: auto_kill by guardrail, v4, kill_switch true",
    )
