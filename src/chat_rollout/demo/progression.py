"""Chapter 7 of the demo (SPEC 9): the healthy canary walks itself from canary_5 to canary_25, once a second person
approved. The scheduler (the exporter's session here) runs chat_run_v11_progression() as the guardrails' scheduler
would; the reviewer is a second login, played with SET SESSION AUTHORIZATION (the demo runs as a superuser)."""

from __future__ import annotations

import json

from .session import Session
from .story import Play


def _as(session: Session, label: str) -> str:
    """Show a session under another name (one connection, one notice handler); returns the old prompt."""
    old, session.prompt = session.prompt, f"{label}=# "
    return old

REVIEWER = "chat_demo_reviewer"


def the_canary_walks_itself(play: Play) -> None:
    walk, ops, clock = play.walk, play.ops, play.clock
    walk.chapter("The canary walks itself", f"Real clock; the samples still end at {clock.clock(clock.now)} UTC.")
    walk.step("SPEC 9 — auto-promotion with four eyes: canary_25 needs one approval, not the promoter's")
    scheduler, reviewer = play.exporter, ops
    exporter_prompt = _as(scheduler, "scheduler")
    ops.run("select 1 from public.chat_set_v11_stage_settings('canary_5', null, '0');")
    policy = ops.run(
        "select 1 from public.chat_set_v11_stage_policy('canary_25', $1::jsonb);",
        [json.dumps({"auto_promote": True, "approvals_required": 1})],
        comment="the policy of the stage promoted INTO: auto-promote, one approval",
    )
    waiting = scheduler.run("select action from public.chat_run_v11_progression();")
    walk.check(
        policy.error is None and waiting.row.get("action") == "none",
        "an admin lets canary_25 promote itself (canary_5: no wait): the scheduler waits for the approval",
    )
    ops.conn.execute(  # the reviewer: a role of the cluster, made once (no login: the demo speaks for it)
        f"do $$ begin if not exists (select from pg_roles where rolname = '{REVIEWER}') then create role {REVIEWER}; "
        f"end if; if not pg_has_role('{REVIEWER}', 'chat_rollout_operator', 'member') then "
        f"grant chat_rollout_operator to {REVIEWER}; end if; end $$; set session authorization {REVIEWER}"
    )
    ops_prompt = _as(reviewer, "reviewer")
    try:
        approval = reviewer.run("select approved_by from public.chat_approve_v11_promotion('canary_25', 'clean');")
    finally:
        ops.conn.execute("reset session authorization")
        reviewer.prompt = ops_prompt
    promoted = scheduler.run("select action, stage, version from public.chat_run_v11_progression();")
    walk.check(
        approval.row.get("approved_by") == REVIEWER
        and (promoted.row.get("action"), promoted.row.get("stage"), promoted.row.get("version"))
        == ("auto_promote", "canary_25", 9),
        f"{REVIEWER} approved; auto_promote: canary_25 (25 %), actor guardrail, v9",
    )
    scheduler.prompt = exporter_prompt
