"""What the playbook's section 8 calls do from the current state (SPEC 4.6, no surprise).

The playbook uses one call shape, chat_set_v11_rollout_state(stage, kill_switch, reason), for freeze, rollback,
resume and promote. `chat-rollout status` prints this table so an operator sees, before calling, what each call
would do now; README.md has the same rules as a static table.
"""

from __future__ import annotations

from typing import Any


def calls_now(state: dict[str, Any], gates: dict[str, Any], open_p0: dict[str, Any] | None) -> list[tuple[str, str]]:
    """(call, what it does now) for the four call shapes of playbook section 8."""
    stage, killed, frozen = state["stage"], state["kill_switch"], state["promotion_frozen"]
    next_stage = gates.get("next_stage")
    rows = []
    if killed:
        rows.append((f"('{stage}', true, …)", "kill again: recorded; the kill switch stays ON"))
    else:
        rows.append((f"('{stage}', true, …)", f"KILL: the kill switch goes ON at {stage}; promotion frozen"))
    if killed:
        if not gates.get("gate_p0_ok"):
            resume = "refused now (RO007): the P0 exit criteria do not hold"
        elif open_p0 is not None:
            resume = (f"refused now (RO018): P0 incident {open_p0['incident_id']} is {open_p0['status']}, "
                      "not resolved")
        else:
            resume = "allowed if the exit window is clean (else RO007)"
        rows.append((
            f"('{stage}', false, …)",
            f"RESUME, not hold: the kill switch would go OFF at {stage}; {resume}. "
            "To hold, do nothing: promotion is already frozen",
        ))
        rows.append(("(a lower stage, false, …)", f"RESUME and ROLLBACK to that stage; {resume}"))
        if next_stage:
            rows.append((f"('{next_stage}', false, …)", "refused (RO008): resume at this stage first"))
    else:
        rows.append((f"('{stage}', false, …)", "HOLD: promotion frozen; traffic and kill switch unchanged"))
        rows.append(("(a lower stage, false, …)", "ROLLBACK: traffic drops to that stage's percent; promotion frozen"))
        if next_stage:
            if frozen:
                promote = "refused (RO004): promotion is frozen; chat_lift_v11_freeze(reason) through the gate"
            elif gates.get("promotion_allowed"):
                promote = f"PROMOTE to {next_stage}"
            else:
                promote = "refused (RO005/RO006/RO041): the Go/No-Go does not hold; see the blockers"
            rows.append((f"('{next_stage}', false, …)", promote))
    return rows
