#!/usr/bin/env python3
"""Released means pinned: migrations/released.sum holds the sha256 of every released revision's files.

    python tools/release.py --check          # every listed file matches; at most the head revision is unlisted
    python tools/release.py --release 0006   # pin a revision that has landed (its frozen scripts and revision file)

A revision is released once it lands on main. The release step adds its lines to migrations/released.sum (in the
commit that starts the next revision at the latest); from then on its upgrade and downgrade scripts and its revision
file never change, and --check (run by tools/lint and by pytest_tests/migrations/test_released.py) fails on a
single changed byte.
"""

from __future__ import annotations

import argparse
import hashlib
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SUM = ROOT / "migrations" / "released.sum"


def revision_files(revision: str, root: Path = ROOT) -> list[Path]:
    """The files that make a revision: its revision file and its frozen upgrade and downgrade scripts."""
    (version,) = (root / "migrations" / "versions").glob(f"{revision}_*.py")
    frozen = root / "migrations" / "frozen"
    return [version, frozen / f"{version.stem}.upgrade.sql", frozen / f"{version.stem}.downgrade.sql"]


def revisions(root: Path = ROOT) -> list[str]:
    return sorted(p.name[:4] for p in (root / "migrations" / "versions").glob("[0-9][0-9][0-9][0-9]_*.py"))


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def read_sum(root: Path = ROOT) -> dict[str, str]:
    """relative path -> sha256, from lines '<sha256>  <path>' (sha256sum's format)."""
    pinned = {}
    for line in (root / "migrations" / "released.sum").read_text(encoding="utf-8").splitlines():
        if line.strip() and not line.startswith("#"):
            sha, rel = line.split(maxsplit=1)
            pinned[rel.strip()] = sha
    return pinned


def check(root: Path = ROOT) -> list[str]:
    """What breaks the rule, in words; empty when every pinned file matches and only the head may be unpinned."""
    problems = []
    pinned = read_sum(root)
    for rel, sha in sorted(pinned.items()):
        path = root / rel
        if not path.is_file():
            problems.append(f"{rel}: released but missing")
        elif digest(path) != sha:
            problems.append(f"{rel}: released, but its sha256 is {digest(path)}, not {sha}")
    for revision in revisions(root)[:-1]:
        for path in revision_files(revision, root):
            rel = str(path.relative_to(root))
            if rel not in pinned:
                problems.append(f"{rel}: revision {revision} is not the head, so it is released, but not pinned")
    return problems


def release(revision: str) -> None:
    pinned = read_sum() if SUM.exists() else {}
    for path in revision_files(revision):
        pinned[str(path.relative_to(ROOT))] = digest(path)
    lines = ["# sha256 of every released revision's files (tools/release.py); never edit a listed file"]
    lines += [f"{sha}  {rel}" for rel, sha in sorted(pinned.items())]
    SUM.write_text("\n".join(lines) + "\n", encoding="utf-8")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    group = parser.add_mutually_exclusive_group(required=True)
    group.add_argument("--check", action="store_true")
    group.add_argument("--release", metavar="NNNN")
    args = parser.parse_args()
    if args.release:
        release(args.release)
        print(f"pinned revision {args.release} in {SUM.relative_to(ROOT)}")
        return 0
    problems = check()
    for problem in problems:
        print(problem, file=sys.stderr)
    print(f"{SUM.relative_to(ROOT)}: {'ok' if not problems else f'{len(problems)} problem(s)'}")
    return 1 if problems else 0


if __name__ == "__main__":
    raise SystemExit(main())
