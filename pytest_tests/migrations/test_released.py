"""Issue 14, step 3: released means pinned. migrations/released.sum holds the sha256 of every released revision's
files; every listed file matches, at most the head revision is unlisted, and one changed byte is caught."""

from __future__ import annotations

import shutil

from tools import release

from chat_rollout import PROJECT_ROOT


def test_every_released_file_matches_its_pin_and_only_the_head_may_be_unpinned():
    assert release.check() == []


def _copy(tmp_path):
    root = tmp_path / "repo"
    shutil.copytree(PROJECT_ROOT / "migrations", root / "migrations",
                    ignore=shutil.ignore_patterns("__pycache__"))  # fmt: skip
    return root


def test_one_changed_byte_of_a_released_script_is_caught(tmp_path):
    root = _copy(tmp_path)
    assert release.check(root) == []
    script = root / "migrations" / "frozen" / "0002_metrics_and_gates.upgrade.sql"
    data = bytearray(script.read_bytes())
    data[100] = ord("X") if data[100] != ord("X") else ord("Y")
    script.write_bytes(bytes(data))
    problems = release.check(root)
    assert len(problems) == 1
    assert problems[0].startswith("migrations/frozen/0002_metrics_and_gates.upgrade.sql: released")


def test_a_new_revision_on_top_leaves_the_former_head_to_be_pinned(tmp_path):
    root = _copy(tmp_path)
    head = release.revisions(root)[-1]
    nxt = f"{int(head) + 1:04d}"
    (root / "migrations" / "versions" / f"{nxt}_next.py").write_text("# a new revision\n")
    pinned = release.read_sum(root)
    if all(str(p.relative_to(root)) in pinned for p in release.revision_files(head, root)):
        assert release.check(root) == []  # the former head was pinned already
    else:
        assert any(f"revision {head} is not the head" in p for p in release.check(root))
