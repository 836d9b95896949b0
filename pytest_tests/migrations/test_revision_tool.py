"""Issue 14, step 2: one revision, one folder, one tool (tools/revision.py). The ledger is keyed by the object a
block creates, not by its sql/ path: sql/0530_function_current_gates.sql (frozen by earlier revisions as
sql/0530_function_gate_snapshot.sql) changes in a new revision, and that revision's downgrade restores the earlier
text, proven on a real database."""

from __future__ import annotations

import shutil

import psycopg
from alembic import command
from alembic.config import Config
from tools import revision

from chat_rollout import PROJECT_ROOT
from pytest_tests.support.catalog import assert_same_catalog, catalog_of

RENAMED = "sql/0530_function_current_gates.sql"
MARKER = "-- issue 14: a changed body, to be restored by the downgrade"


def test_object_keys_name_what_a_file_creates():
    key = revision.object_key
    assert key((PROJECT_ROOT / RENAMED).read_text(), RENAMED) == "function chat_v11.current_gates(timestamptz)"
    columnar = next((PROJECT_ROOT / "sql").glob("0705_*.sql"))
    assert key(columnar.read_text(), columnar.name) == (
        "function public.chat_put_v11_metric_samples("
        "text[], text[], timestamptz[], bigint[], bigint[], double precision[])"
    )
    assert key("create or replace function s.f(in p_a int, out p_b text, p_c timestamp with time zone "
               "default now()) returns void", "x.sql") == "function s.f(integer, timestamptz)"  # fmt: skip
    assert key("-- a comment\ncreate trigger t_x\nbefore update on chat_v11.t for each row", "x") == (
        "trigger t_x on chat_v11.t"
    )
    assert key("create table chat_v11.metric_sample (\n  a int\n)", "x") == "table chat_v11.metric_sample"
    assert key("insert into chat_v11.rollout_state values (1)", "sql/0900_data_initial_state.sql") == (
        "file data_initial_state"
    )


def test_every_frozen_block_creates_a_new_object_or_changes_one():
    """Keyed by object, the released history reads as it was built: no revision froze an object unchanged."""
    for folder in revision.revision_dirs():
        known = revision.ledger(folder.name[:4])
        for block in revision.blocks((folder / "upgrade.sql").read_text(encoding="utf-8"), folder.name):
            if block.source.startswith("sql/") and block.key in known.newest:
                assert known.newest[block.key].body != block.body, f"{folder.name} froze {block.key} unchanged"


def test_one_object_per_sql_file():
    files = revision.sql_files()
    assert files["function chat_v11.current_gates(timestamptz)"] == PROJECT_ROOT / RENAMED
    assert len(files) == len(list((PROJECT_ROOT / "sql").glob("*.sql")))


def _copy(tmp_path):
    root = tmp_path / "repo"
    for folder in ("migrations", "sql"):
        shutil.copytree(PROJECT_ROOT / folder, root / folder, ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy2(PROJECT_ROOT / "alembic.ini", root / "alembic.ini")
    return root


def test_sql_holds_nothing_the_revisions_have_not_frozen(tmp_path):
    root = _copy(tmp_path)
    revision.command_new("nothing_yet", "Nothing yet", root)
    assert revision.plan(revision.revision_dirs(root)[-1], root) == []


def _config(root, url: str) -> Config:
    cfg = Config(str(root / "alembic.ini"))
    cfg.set_main_option("script_location", str(root / "migrations"))
    cfg.attributes["dsn"] = url
    return cfg


def _prosrc(url: str) -> str:
    with psycopg.connect(url, autocommit=True) as conn:
        return conn.execute("select prosrc from pg_proc where oid = 'chat_v11.current_gates(timestamptz)'::regprocedure"
                            ).fetchone()[0]  # fmt: skip


def test_a_renamed_sql_file_is_restored_by_the_next_downgrade(tmp_path, empty_db):
    _, url = empty_db
    root = _copy(tmp_path)
    previous = revision.revision_dirs(root)[-1].name[:4]
    revision.command_new("gates_changed", "current_gates changes under its new file name", root)
    folder = revision.revision_dirs(root)[-1]
    renamed = root / RENAMED
    renamed.write_text(renamed.read_text().replace("as $$\n", f"as $$\n    {MARKER}\n", 1))
    revision.command_build(root)

    assert revision.plan(folder, root) == [renamed]
    earlier = revision.ledger(folder.name[:4], root).newest["function chat_v11.current_gates(timestamptz)"]
    assert earlier.source == "sql/0530_function_gate_snapshot.sql"  # frozen under its old name
    down = (folder / "downgrade.sql").read_text()
    assert (f"-- restored from revision {earlier.revision} (function chat_v11.current_gates(timestamptz); "
            f"now {RENAMED})\n{earlier.body}") in down  # fmt: skip
    assert "new in this revision" not in down

    cfg = _config(root, url)
    command.upgrade(cfg, previous)
    before = catalog_of(url)
    command.upgrade(cfg, "head")
    assert MARKER in _prosrc(url)
    command.downgrade(cfg, previous)
    assert MARKER not in _prosrc(url)
    assert_same_catalog(before, catalog_of(url), f"upgrade {previous}", f"upgrade {folder.name}, downgrade {previous}")
