#!/usr/bin/env python3
"""Freeze SQL from sql/ into the frozen upgrade script of an Alembic revision.

    tools/freeze_revision.py migrations/versions/0002_metrics.py sql/0700_*.sql sql/0640_*.sql

writes migrations/frozen/0002_metrics.upgrade.sql: the files' text, in order, each behind a header
naming its source. A revision then applies that frozen copy forever, whatever sql/ becomes.
With --check, exits 1 when the frozen file differs from what the files would give (nothing written).
With no files, --check compares against the files the frozen script already names. There is no way to
re-freeze a released revision: add a new revision instead.
"""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def render(files: list[Path]) -> str:
    parts = []
    for path in files:
        rel = path.resolve().relative_to(ROOT)
        parts.append(f"-- >>> {rel}\n{path.read_text(encoding='utf-8').rstrip()}\n")
    return "\n".join(parts)


def earlier_blocks(revision_stem: str) -> dict[str, str]:
    """The newest frozen text of every sql/ file in the revisions before this one (by file name order)."""
    blocks: dict[str, str] = {}
    for frozen in sorted((ROOT / "migrations" / "frozen").glob("*.upgrade.sql")):
        if frozen.name.split(".")[0] >= revision_stem:
            continue
        for part in re.split(r"(?m)^(?=-- >>> )", frozen.read_text(encoding="utf-8")):
            if part.startswith("-- >>> "):
                name, body = part.split("\n", 1)
                blocks[name[len("-- >>> "):].strip()] = (frozen.name.split(".")[0], body.rstrip() + "\n")
    return blocks


def restore_script(revision_stem: str, files: list[Path]) -> str:
    """Downgrade body: the previous text of every file this revision changes; new files are listed to drop."""
    blocks = earlier_blocks(revision_stem)
    restored, new = [], []
    for path in files:
        rel = str(path.resolve().relative_to(ROOT))
        if rel in blocks:
            rev, body = blocks[rel]
            restored.append(f"-- restored from revision {rev}: {rel}\n{body}")
        else:
            new.append(rel)
    head = "".join(f"-- new in this revision, drop it after the restores: {n}\n" for n in new)
    return head + "\n" + "\n".join(restored)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("revision", type=Path, help="the revision file, migrations/versions/NNNN_name.py")
    parser.add_argument("files", type=Path, nargs="*", help="sql/ files to freeze, applied in the given order")
    parser.add_argument("--check", action="store_true", help="compare only")
    parser.add_argument("--restores", action="store_true",
                        help="print the downgrade's restore section (previous frozen text of each changed file)")
    args = parser.parse_args()
    target = ROOT / "migrations" / "frozen" / f"{args.revision.stem}.upgrade.sql"
    if not args.files:
        if not (args.check and target.exists()):
            parser.error("name the sql/ files to freeze (without files only --check works)")
        args.files = [ROOT / line[len("-- >>> "):].strip() for line in target.read_text(encoding="utf-8").splitlines()
                      if line.startswith("-- >>> ")]
    if args.restores:
        print(restore_script(args.revision.stem, args.files))
        return 0
    text = render(args.files)
    if args.check:
        same = target.exists() and target.read_text(encoding="utf-8") == text
        print(f"{target.relative_to(ROOT)}: {'up to date' if same else 'differs'}")
        return 0 if same else 1
    if target.exists():
        print(f"refusing to overwrite {target.relative_to(ROOT)}: revisions are immutable", file=sys.stderr)
        return 1
    target.write_text(text, encoding="utf-8")
    print(f"wrote {target.relative_to(ROOT)} ({len(args.files)} files)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
