"""The playbook's SQL, verbatim from the seed document, run with psql the way the on-call engineer runs it.

Each ```sql block of chat-incident-playbook-v1.1.md goes to psql -X -v ON_ERROR_STOP=1 unchanged; the tests
arrange the rollout so the call makes sense (canary_1: promotion needs metric data a fresh database lacks)
and check what it did to the state and the history.
"""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest

from chat_rollout import PROJECT_ROOT
from pytest_tests.support.calls import arrange_state, history, snapshot, state

SEED_NAME = "chat-incident-playbook-v1.1.md"
# in CI the repository is a fresh clone with a copy of shared/ beside it; the vendored copy is the fallback
SHARED_SEED = PROJECT_ROOT.parent / "shared" / "seed" / SEED_NAME
VENDORED_SEED = PROJECT_ROOT / "docs" / "seed" / SEED_NAME

SEP = "\x1f"  # psql field separator that no value contains
FOOTER = re.compile(r"\((\d+) rows?\)")


def playbook_text() -> str:
    path = SHARED_SEED if SHARED_SEED.is_file() else VENDORED_SEED
    return path.read_text(encoding="utf-8")


def sql_blocks(text: str) -> list[str]:
    return re.findall(r"^```sql\n(.*?)^```", text, flags=re.MULTILINE | re.DOTALL)


def block(marker: str) -> str:
    """The one playbook block that contains ``marker``."""
    found = [b for b in sql_blocks(playbook_text()) if marker in b]
    assert len(found) == 1, f"expected one playbook block with {marker!r}, found {len(found)}"
    return found[0]


SOURCES_OF_TRUTH = "chat_get_v11_release_gates"
P0_KILL = "'incident P0'"
HOLD = "'hold'"
KILL_SWITCH = "'kill switch'"
RESUME = "'resume controlled'"


def run_block(pg_server, url: str, sql: str, tmp_path: Path) -> subprocess.CompletedProcess:
    """psql -X -v ON_ERROR_STOP=1 -f <block>, unaligned output, errors printed with their SQLSTATE."""
    script = tmp_path / "block.sql"
    script.write_text(sql, encoding="utf-8")
    return subprocess.run(
        [pg_server.tool("psql"), "-X", "-v", "ON_ERROR_STOP=1", "-v", "VERBOSITY=verbose", "-A", "-F", SEP,
         "-d", url, "-f", str(script)],
        capture_output=True,
        text=True,
        timeout=60,
    )  # fmt: skip


def result_sets(stdout: str) -> list[list[dict]]:
    """The result sets psql printed (unaligned: header, rows, "(n rows)"), as lists of column -> text."""
    sets, lines = [], []
    for line in stdout.splitlines():
        footer = FOOTER.fullmatch(line)
        if footer is None:
            lines.append(line)
            continue
        header, *rows = lines
        columns = header.split(SEP)
        assert len(rows) == int(footer.group(1)), stdout
        sets.append([dict(zip(columns, row.split(SEP), strict=True)) for row in rows])
        lines = []
    assert not [line for line in lines if line.strip()], f"unparsed psql output: {lines}"
    return sets


@pytest.fixture
def at_canary_1(conn):
    """The rollout at canary_1, kill switch off, not frozen (history: init, promote)."""
    arrange_state(conn, "promote", "canary_1", False, False)
    return conn


# --- the seed document ---------------------------------------------------------------------------------------


def test_the_playbook_has_its_five_sql_blocks():
    blocks = [b.strip() for b in sql_blocks(playbook_text())]
    assert blocks == [
        "select * from public.chat_get_v11_release_gates();\n"
        "select * from public.chat_get_v11_rollout_state();\n"
        "select * from public.chat_get_v11_rollout_history(50);",
        "select * from public.chat_set_v11_rollout_state('canary_1', true, 'incident P0');",
        "select * from public.chat_set_v11_rollout_state('canary_1', false, 'hold');",
        "select * from public.chat_set_v11_rollout_state('canary_1', true, 'kill switch');",
        "select * from public.chat_set_v11_rollout_state('canary_1', false, 'resume controlled');",
    ]


def test_the_vendored_playbook_is_a_byte_identical_copy_of_the_seed():
    if not SHARED_SEED.is_file():
        pytest.skip(f"no shared seed beside the repository ({SHARED_SEED}); the vendored copy is used")
    assert VENDORED_SEED.read_bytes() == SHARED_SEED.read_bytes()


# --- section 4: common start --------------------------------------------------------------------------------------


def test_common_start_snapshot_prints_gates_state_and_history_and_changes_nothing(
    pg_server, at_canary_1, db_url, tmp_path
):
    conn = at_canary_1
    before = snapshot(conn)
    decision = conn.execute("select rollout_decision from public.chat_get_v11_release_gates()").fetchone()[0]

    result = run_block(pg_server, db_url, block(SOURCES_OF_TRUTH), tmp_path)

    assert result.returncode == 0, result.stderr
    gates, states, rows = result_sets(result.stdout)
    assert len(gates) == 1
    assert {"gate_p0_ok", "gate_p1_ok", "rollout_decision", "promotion_allowed", "blockers"} <= gates[0].keys()
    assert (gates[0]["stage"], gates[0]["kill_switch"], gates[0]["gate_p0_ok"]) == ("canary_1", "f", "f")
    assert gates[0]["rollout_decision"] == decision
    assert gates[0]["promotion_allowed"] == "f"
    assert [(s["stage"], s["kill_switch"], s["promotion_frozen"], s["version"]) for s in states] == [
        ("canary_1", "f", "f", "2")
    ]
    assert [(h["version"], h["action"], h["to_stage"]) for h in rows] == [
        ("2", "promote", "canary_1"),
        ("1", "init", "off"),
    ]
    assert snapshot(conn) == before


# --- section 4: P0 kill switch ----------------------------------------------------------------------------------


def test_p0_block_engages_the_kill_switch_at_canary_1(pg_server, at_canary_1, db_url, tmp_path):
    conn = at_canary_1

    result = run_block(pg_server, db_url, block(P0_KILL), tmp_path)

    assert result.returncode == 0, result.stderr
    [[printed]] = result_sets(result.stdout)
    assert (printed["stage"], printed["kill_switch"], printed["promotion_frozen"], printed["note"]) == (
        "canary_1", "t", "t", ""
    )  # fmt: skip
    s = state(conn)
    assert (s["stage"], s["kill_switch"], s["promotion_frozen"], s["version"]) == ("canary_1", True, True, 3)
    last = history(conn, 1)[0]
    assert (last["version"], last["action"], last["reason"]) == (3, "kill", "incident P0")
    assert (last["from_stage"], last["to_stage"], last["from_kill_switch"], last["to_kill_switch"]) == (
        "canary_1", "canary_1", False, True
    )  # fmt: skip
    assert last["promotion_frozen"] is True


def test_p0_block_at_stage_off_still_stops_and_says_what_it_did_not_apply(pg_server, conn, db_url, tmp_path):
    # the playbook names canary_1; before any promotion the rollout is at off: the stop must not fail
    result = run_block(pg_server, db_url, block(P0_KILL), tmp_path)

    assert result.returncode == 0, result.stderr
    assert "NOTICE" in result.stderr
    [[printed]] = result_sets(result.stdout)
    assert printed["note"]
    s = state(conn)
    assert (s["stage"], s["kill_switch"], s["promotion_frozen"], s["version"]) == ("off", True, True, 2)
    last = history(conn, 1)[0]
    assert (last["action"], last["to_stage"], last["reason"]) == ("kill", "off", "incident P0")
    assert last["note"] == printed["note"]


# --- section 8: rollback and control, in the playbook's order --------------------------------------------------


def test_hold_block_freezes_promotion_without_kill(pg_server, at_canary_1, db_url, tmp_path):
    conn = at_canary_1

    result = run_block(pg_server, db_url, block(HOLD), tmp_path)

    assert result.returncode == 0, result.stderr
    s = state(conn)
    assert (s["stage"], s["kill_switch"], s["promotion_frozen"], s["version"]) == ("canary_1", False, True, 3)
    last = history(conn, 1)[0]
    assert (last["action"], last["reason"]) == ("hold", "hold")
    assert (last["to_stage"], last["from_kill_switch"], last["to_kill_switch"]) == ("canary_1", False, False)


def test_kill_switch_block_after_hold_engages_the_kill_switch(pg_server, at_canary_1, db_url, tmp_path):
    conn = at_canary_1
    assert run_block(pg_server, db_url, block(HOLD), tmp_path).returncode == 0

    result = run_block(pg_server, db_url, block(KILL_SWITCH), tmp_path)

    assert result.returncode == 0, result.stderr
    s = state(conn)
    assert (s["stage"], s["kill_switch"], s["promotion_frozen"], s["version"]) == ("canary_1", True, True, 4)
    last = history(conn, 1)[0]
    assert (last["action"], last["reason"], last["from_kill_switch"], last["to_kill_switch"]) == (
        "kill", "kill switch", False, True
    )  # fmt: skip


def test_resume_block_is_refused_while_the_p0_exit_criteria_do_not_hold(pg_server, at_canary_1, db_url, tmp_path):
    conn = at_canary_1
    for step in (HOLD, KILL_SWITCH):
        assert run_block(pg_server, db_url, block(step), tmp_path).returncode == 0
    before = snapshot(conn)
    assert before[0]["kill_switch"] is True

    result = run_block(pg_server, db_url, block(RESUME), tmp_path)

    # no metric data: gate_p0_ok is false and the exit window is not covered
    assert result.returncode == 3, (result.stdout, result.stderr)  # psql: a script error under ON_ERROR_STOP
    assert re.search(r"ERROR:\s+RO007:", result.stderr), result.stderr
    assert result.stdout == ""
    assert snapshot(conn) == before
    s = state(conn)
    assert (s["stage"], s["kill_switch"], s["promotion_frozen"], s["version"]) == ("canary_1", True, True, 4)
    assert history(conn, 1)[0]["action"] == "kill"
