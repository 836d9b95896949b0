"""Issue 14, step 3: released means pinned. migrations/released.sum holds the sha256 of every released revision's
files (revision.py, upgrade.sql, downgrade.sql); every listed file matches, at most the head revision is unlisted,
one changed byte is caught, and the tool refuses to rebuild a released revision."""

from __future__ import annotations

import shutil

import pytest
from tools import revision

from chat_rollout import PROJECT_ROOT


def test_every_released_file_matches_its_pin_and_only_the_head_may_be_unpinned():
    assert revision.check_released() == []


def _copy(tmp_path):
    root = tmp_path / "repo"
    for folder in ("migrations", "sql"):
        shutil.copytree(PROJECT_ROOT / folder, root / folder, ignore=shutil.ignore_patterns("__pycache__"))
    return root


def test_one_changed_byte_of_a_released_script_is_caught(tmp_path):
    root = _copy(tmp_path)
    assert revision.check_released(root) == []
    script = root / "migrations" / "versions" / "0002_metrics_and_gates" / "upgrade.sql"
    data = bytearray(script.read_bytes())
    data[100] = ord("X") if data[100] != ord("X") else ord("Y")
    script.write_bytes(bytes(data))
    problems = revision.check_released(root)
    assert len(problems) == 1
    assert problems[0].startswith("migrations/versions/0002_metrics_and_gates/upgrade.sql: released, but its sha256")
    with pytest.raises(revision.RevisionError, match="0002_metrics_and_gates/upgrade.sql: released"):
        revision.command_check(root)


def test_a_released_head_is_never_rebuilt(tmp_path):
    root = _copy(tmp_path)
    head = revision.revision_dirs(root)[-1]
    if not revision.is_released(head, root):
        revision.release(head.name[:4], root)
    before = {name: (head / name).read_bytes() for name in revision.FILES}
    with pytest.raises(revision.RevisionError, match="is released"):
        revision.command_build(root)
    assert {name: (head / name).read_bytes() for name in revision.FILES} == before


def test_a_new_revision_pins_the_former_head_and_starts_unpinned(tmp_path):
    root = _copy(tmp_path)
    head = revision.revision_dirs(root)[-1]
    said = revision.command_new("next_step", "The next step", root)
    assert said[-1].startswith(f"created migrations/versions/{int(head.name[:4]) + 1:04d}_next_step/")
    assert revision.is_released(head, root)
    new = revision.revision_dirs(root)[-1]
    assert not revision.is_released(new, root)
    assert revision.check_released(root) == []  # the head may be unpinned
    assert "Revises: " + head.name[:4] in (new / "revision.py").read_text()
