#!/usr/bin/env python3
"""The one tool for Alembic revisions: one revision is one folder, migrations/versions/NNNN_name/.

    python tools/revision.py new NAME -m "what it does"   # start the next revision (pins the current head first)
    python tools/revision.py build                       # rebuild the unreleased head's upgrade.sql/downgrade.sql
    python tools/revision.py check                       # released.sum matches; the unreleased head is up to date
    python tools/revision.py release NNNN                # pin a landed revision in migrations/released.sum
    python tools/revision.py ledger [NNNN]               # the objects and the revision that last froze each

A revision's folder holds:
    revision.py           the Alembic revision; upgrade()/downgrade() run the two scripts below, verbatim
    upgrade.sql           built: the steps, then every changed sql/ file, then the `-- phase: after` steps
    downgrade.sql         built: the down fragments' part 1, the earlier text of every changed object, part 2
    steps/*.sql           hand-written upgrade steps (what a CREATE file in sql/ cannot say: ALTER, data moves)
    steps/down/*.sql      hand-written downgrade fragments (before `-- PART 2`: before the restores; after: drops)

A step's first comment lines may say `-- covers: sql/0160_table_metric_sample.sql, ...` (that file's object changes
through this step, so its CREATE text is not frozen again) and `-- phase: after` (runs after the sql/ files).

The ledger. Every frozen block of an earlier revision (`-- >>> sql/...` in its upgrade.sql) is keyed by the object
it creates, read from its text: `function chat_v11.current_gates(timestamptz)`, `table chat_v11.metric_sample`,
`trigger rollout_history_chain on chat_v11.rollout_history`, ...; a file that creates no object (roles, default
privileges, data) is keyed by its name without the number (`file data_initial_state`). A sql/ file is in the next
revision when its object is new or its text differs from the object's newest frozen text; the downgrade restores
that newest frozen text. So sql/ files may be renamed, renumbered or regrouped freely: only the object and its text
count. A function is keyed with its argument types, as PostgreSQL identifies it: a changed signature is a new
object, and the step that drops the old form and the down fragment that re-creates it are hand-written (as 0007's).

Released means pinned: migrations/released.sum holds the sha256 of a released revision's three files (`release`, at
the latest when the work that made it is handed over, or `new`), `check` (tools/lint,
pytest_tests/migrations/test_released.py) fails on one changed byte, and `build` refuses it.
"""

from __future__ import annotations

import argparse
import datetime as dt
import hashlib
import re
import sys
import textwrap
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
FILES = ("revision.py", "upgrade.sql", "downgrade.sql")


class RevisionError(Exception):
    """A refusal of this tool: printed as one paragraph, exit status 1."""


# ---------------------------------------------------------------------------------------------- the folders

def versions_dir(root: Path = ROOT) -> Path:
    return root / "migrations" / "versions"


def revision_dirs(root: Path = ROOT) -> list[Path]:
    """Every revision folder, oldest first."""
    return sorted(p for p in versions_dir(root).glob("[0-9][0-9][0-9][0-9]_*") if (p / "revision.py").is_file())


def find(revision: str, root: Path = ROOT) -> Path:
    matches = [p for p in revision_dirs(root) if p.name[:4] == revision]
    if not matches:
        raise RevisionError(f"no revision {revision} in {versions_dir(root).relative_to(root)}/")
    return matches[0]


def rel(path: Path, root: Path = ROOT) -> str:
    return path.resolve().relative_to(root.resolve()).as_posix()


# ---------------------------------------------------------------------------------------------- object keys

_CREATE = re.compile(
    r"""^[ \t]*create\s+(?:or\s+replace\s+)?(?:unique\s+)?
    (?P<kind>function|procedure|table|materialized\s+view|view|index|trigger|schema|type|sequence|domain|policy)\s+
    (?:concurrently\s+)?(?:if\s+not\s+exists\s+)?(?P<name>[\w."]+)""",
    re.I | re.M | re.X,
)
_TYPE_ALIASES = {
    "timestamp with time zone": "timestamptz", "int": "integer", "int4": "integer", "int8": "bigint",
    "int2": "smallint", "bool": "boolean", "float8": "double precision", "float4": "real",
    "character varying": "varchar", "decimal": "numeric",
}


def _arguments(text: str, start: int) -> tuple[str, int]:
    """The text inside the parentheses opening at text[start], and the index after the closing one."""
    depth, i = 0, start
    while i < len(text):
        depth += {"(": 1, ")": -1}.get(text[i], 0)
        i += 1
        if depth == 0:
            return text[start + 1:i - 1], i
    raise RevisionError("unbalanced parentheses in a function's argument list")


def _split_top_level(text: str) -> list[str]:
    parts, depth, current = [], 0, []
    for ch in text:
        depth += {"(": 1, ")": -1}.get(ch, 0)
        if ch == "," and depth == 0:
            parts.append("".join(current))
            current = []
        else:
            current.append(ch)
    if "".join(current).strip():
        parts.append("".join(current))
    return parts


def _identity_type(argument: str) -> str | None:
    """The type of one argument as PostgreSQL's identity counts it (None for OUT arguments)."""
    words = re.split(r"\s+(?:default\b|=)", " ".join(argument.split()), maxsplit=1, flags=re.I)[0].split(" ")
    mode = words[0].lower()
    if mode in {"in", "out", "inout", "variadic"}:
        if mode == "out":
            return None
        words = words[1:]
    if len(words) > 1 and re.fullmatch(r"[a-z_][a-z0-9_]*", words[0]) and not re.fullmatch(
            r"(double|character|timestamp|time|bit|interval|national)", words[0], re.I):
        words = words[1:]  # the argument's name
    kind = " ".join(words).lower()
    base, arrays = re.match(r"(.*?)((?:\[\])*)$", kind).groups()
    return _TYPE_ALIASES.get(base.strip(), base.strip()) + arrays


def object_key(body: str, source: str) -> str:
    """The object a frozen block or a sql/ file creates (its first CREATE), e.g. 'function chat_v11.x(text)'."""
    match = _CREATE.search(body)
    if not match:
        return "file " + re.sub(r"^\d+_", "", Path(source).name).removesuffix(".sql")
    kind, name = " ".join(match["kind"].lower().split()), match["name"].lower()
    if kind in {"function", "procedure"}:
        opening = body.index("(", match.end())
        inner, _ = _arguments(body, opening)
        types = [t for t in (_identity_type(a) for a in _split_top_level(inner)) if t is not None]
        return f"{kind} {name}({', '.join(types)})"
    if kind in {"trigger", "policy", "index"}:
        on = re.search(r"\bon\s+([\w.\"]+)", body[match.end():], re.I)
        return f"{kind} {name} on {on[1].lower()}" if on else f"{kind} {name}"
    return f"{kind} {name}"


# ---------------------------------------------------------------------------------------------- the ledger

@dataclass(frozen=True)
class Block:
    revision: str  # the folder name, e.g. 0005_performance
    source: str  # the header's path, as frozen
    body: str  # the frozen text, ending in one newline

    @property
    def key(self) -> str:
        return object_key(self.body, self.source)


def blocks(upgrade_text: str, revision: str) -> list[Block]:
    out = []
    for part in re.split(r"(?m)^(?=-- >>> )", upgrade_text):
        if part.startswith("-- >>> "):
            header, body = part.split("\n", 1)
            out.append(Block(revision, header[len("-- >>> "):].strip(), body.rstrip() + "\n"))
    return out


def _covers(text: str) -> set[str]:
    found: set[str] = set()
    for match in re.finditer(r"(?m)^--\s*covers:\s*(.*)$", text):
        found |= {c.strip() for c in match.group(1).split(",") if c.strip()}
    return found


@dataclass
class Ledger:
    newest: dict[str, Block]  # object key -> its newest frozen block
    covered: set[str]  # object keys an earlier revision changed through a step (they change only through steps)


def ledger(before: str | None = None, root: Path = ROOT) -> Ledger:
    """What the revisions before `before` (all of them when None) froze, keyed by object."""
    newest: dict[str, Block] = {}
    by_path: dict[str, str] = {}
    covered_paths: set[str] = set()
    for folder in revision_dirs(root):
        if before is not None and folder.name[:4] >= before:
            break
        text = (folder / "upgrade.sql").read_text(encoding="utf-8")
        for block in blocks(text, folder.name):
            if block.source.startswith("sql/"):
                newest[block.key] = block
                by_path[block.source] = block.key
        covered_paths |= _covers(text)
    covered = {by_path[p] for p in covered_paths if p in by_path}
    return Ledger(newest, covered)


def sql_files(root: Path = ROOT) -> dict[str, Path]:
    """Object key -> the sql/ file that creates it; refuses two files creating one object."""
    out: dict[str, Path] = {}
    for path in sorted((root / "sql").glob("*.sql")):
        key = object_key(path.read_text(encoding="utf-8"), path.name)
        if key in out:
            raise RevisionError(f"{rel(out[key], root)} and {rel(path, root)} both create {key}: one object per file")
        out[key] = path
    return out


# ---------------------------------------------------------------------------------------------- build

def _header(step: Path) -> list[str]:
    return [line for line in step.read_text(encoding="utf-8").splitlines() if line.startswith("--")][:3]


def plan(folder: Path, root: Path = ROOT) -> list[Path]:
    """What the upgrade of this revision freezes, in order: steps, changed sql/ files, `phase: after` steps."""
    steps = sorted((folder / "steps").glob("*.sql"))
    known = ledger(folder.name[:4], root)
    files = sql_files(root)
    by_path = {rel(p, root): k for k, p in files.items()}
    covered = set(known.covered)
    before, after = [], []
    for step in steps:
        header = _header(step)
        covered |= {by_path.get(p, p) for p in _covers("\n".join(header))}
        (after if any(re.match(r"--\s*phase:\s*after", line) for line in header) else before).append(step)
    changed = []
    for key, path in sorted(files.items(), key=lambda item: item[1].name):
        if key in covered:
            continue
        body = path.read_text(encoding="utf-8").rstrip() + "\n"
        if key not in known.newest or known.newest[key].body != body:
            changed.append(path)
    return before + changed + after


def render(files: list[Path], root: Path = ROOT) -> str:
    return "\n".join(f"-- >>> {rel(p, root)}\n{p.read_text(encoding='utf-8').rstrip()}\n" for p in files)


def downgrade_text(folder: Path, files: list[Path], root: Path = ROOT) -> str:
    known = ledger(folder.name[:4], root)
    pre, post = [], []
    for fragment in sorted((folder / "steps" / "down").glob("*.sql"), reverse=True):
        head, _, tail = fragment.read_text(encoding="utf-8").partition("-- PART 2")
        pre.append(f"-- >>> {rel(fragment, root)} (part 1)\n{head.rstrip()}\n")
        if tail:
            post.append(f"-- >>> {rel(fragment, root)} (part 2)\n-- PART 2{tail.rstrip()}\n")
    new, restored = [], []
    for path in files:
        if path.resolve().parent != (root / "sql").resolve():
            continue
        key = object_key(path.read_text(encoding="utf-8"), path.name)
        if key in known.newest:
            block = known.newest[key]
            restored.append(f"-- restored from revision {block.revision} ({key}; now {rel(path, root)})\n{block.body}")
        else:
            new.append(f"-- new in this revision, drop it after the restores: {key} ({rel(path, root)})\n")
    return (
        f"-- Downgrade of revision {folder.name}: generated by tools/revision.py build; no data is dropped.\n\n"
        + "\n".join(pre) + "\n" + "".join(new) + "\n" + "\n".join(restored) + "\n" + "\n".join(post)
    )


def built(folder: Path, root: Path = ROOT) -> dict[str, str]:
    files = plan(folder, root)
    return {"upgrade.sql": render(files, root), "downgrade.sql": downgrade_text(folder, files, root)}


# ---------------------------------------------------------------------------------------------- released.sum

def sum_path(root: Path = ROOT) -> Path:
    return root / "migrations" / "released.sum"


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def read_sum(root: Path = ROOT) -> dict[str, str]:
    """relative path -> sha256, from lines '<sha256>  <path>' (sha256sum's format)."""
    pinned = {}
    if sum_path(root).exists():
        for line in sum_path(root).read_text(encoding="utf-8").splitlines():
            if line.strip() and not line.startswith("#"):
                sha, path = line.split(maxsplit=1)
                pinned[path.strip()] = sha
    return pinned


def is_released(folder: Path, root: Path = ROOT) -> bool:
    return rel(folder / "revision.py", root) in read_sum(root)


def check_released(root: Path = ROOT) -> list[str]:
    """What breaks 'released means pinned', in words; empty when every pinned file matches and only the head
    may be unpinned."""
    problems = []
    pinned = read_sum(root)
    for path_text, sha in sorted(pinned.items()):
        path = root / path_text
        if not path.is_file():
            problems.append(f"{path_text}: released but missing")
        elif digest(path) != sha:
            problems.append(f"{path_text}: released, but its sha256 is {digest(path)}, not {sha}")
    for folder in revision_dirs(root)[:-1]:
        for name in FILES:
            if rel(folder / name, root) not in pinned:
                problems.append(f"{rel(folder / name, root)}: revision {folder.name[:4]} is not the head, "
                                "so it is released, but not pinned")
    return problems


def release(revision: str, root: Path = ROOT) -> list[str]:
    folder = find(revision, root)
    pinned = read_sum(root)
    added = []
    for name in FILES:
        path_text = rel(folder / name, root)
        if path_text in pinned and pinned[path_text] != digest(folder / name):
            raise RevisionError(f"{path_text} is pinned with another sha256: a released file never changes")
        if path_text not in pinned:
            added.append(path_text)
        pinned[path_text] = digest(folder / name)
    lines = ["# sha256 of every released revision's files (tools/revision.py release); never edit a listed file"]
    lines += [f"{sha}  {path_text}" for path_text, sha in sorted(pinned.items())]
    sum_path(root).write_text("\n".join(lines) + "\n", encoding="utf-8")
    return added


# ---------------------------------------------------------------------------------------------- commands

REVISION_TEMPLATE = '''"""{message}

Revision ID: {number}
Revises: {previous}
Create Date: {date}

Its SQL is upgrade.sql and downgrade.sql beside this file (tools/revision.py build); no data is dropped.
"""

from chat_rollout.migration_support import frozen_sql, run_sql

revision = "{number}"
down_revision = "{previous}"
branch_labels = None
depends_on = None


def upgrade() -> None:
    run_sql(frozen_sql(__file__, "upgrade"))


def downgrade() -> None:
    run_sql(frozen_sql(__file__, "downgrade"))
'''


def command_new(name: str, message: str, root: Path = ROOT) -> list[str]:
    if not re.fullmatch(r"[a-z][a-z0-9_]{1,40}", name):
        raise RevisionError(f"revision name {name!r}: lower-case letters, digits and _ (e.g. metrics_in_and_out)")
    folders = revision_dirs(root)
    said = []
    if folders and not is_released(folders[-1], root):
        release(folders[-1].name[:4], root)
        said.append(f"pinned {folders[-1].name} in migrations/released.sum (it is on main, so it is released)")
    previous = folders[-1].name[:4] if folders else None
    number = f"{int(previous) + 1:04d}" if previous else "0001"
    folder = versions_dir(root) / f"{number}_{name}"
    (folder / "steps" / "down").mkdir(parents=True)
    (folder / "revision.py").write_text(REVISION_TEMPLATE.format(
        message=textwrap.fill(message.strip().rstrip(".") + ".", width=116), number=number, previous=previous,
        date=dt.date.today().isoformat()), encoding="utf-8")
    for direction, text in built(folder, root).items():
        (folder / direction).write_text(text, encoding="utf-8")
    said.append(f"created {rel(folder, root)}/ (revision {number}, revises {previous}); "
                "add steps under steps/ and steps/down/, edit sql/, then `tools/revision.py build`")
    return said


def command_build(root: Path = ROOT) -> list[str]:
    folder = revision_dirs(root)[-1]
    if is_released(folder, root):
        raise RevisionError(
            f"revision {folder.name} is released (pinned in migrations/released.sum): its scripts never change. "
            "Start the next one: tools/revision.py new NAME -m MESSAGE")
    files = plan(folder, root)
    for direction, text in built(folder, root).items():
        (folder / direction).write_text(text, encoding="utf-8")
    return [f"built {rel(folder, root)}/upgrade.sql and downgrade.sql: " + (", ".join(rel(f, root) for f in files)
                                                                           or "nothing changed")]


def command_check(root: Path = ROOT) -> list[str]:
    problems = check_released(root)
    sql_files(root)  # one object per file
    folder = revision_dirs(root)[-1]
    if not is_released(folder, root):
        for direction, text in built(folder, root).items():
            path = folder / direction
            if not path.exists() or path.read_text(encoding="utf-8") != text:
                problems.append(f"{rel(path, root)}: differs from what sql/ and its steps give; "
                                "run tools/revision.py build")
    if problems:
        raise RevisionError("; ".join(problems))
    state = "released (pinned)" if is_released(folder, root) else "unreleased, up to date with sql/ and its steps"
    return [f"migrations/released.sum: ok; head {folder.name}: {state}"]


def command_ledger(before: str | None, root: Path = ROOT) -> list[str]:
    known = ledger(before, root)
    files = sql_files(root)
    lines = []
    for key, block in sorted(known.newest.items()):
        now = files.get(key)
        where = rel(now, root) if now else "(no sql/ file creates it now)"
        steps = "  [changes through steps]" if key in known.covered else ""
        lines.append(f"{block.revision[:4]}  {key}  ->  {where}{steps}")
    return lines


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    new = sub.add_parser("new", help="start the next revision folder")
    new.add_argument("name")
    new.add_argument("-m", "--message", required=True)
    sub.add_parser("build", help="rebuild the unreleased head's scripts from sql/ and its steps")
    sub.add_parser("check", help="released.sum matches; the unreleased head is up to date")
    rel_parser = sub.add_parser("release", help="pin a landed revision in migrations/released.sum")
    rel_parser.add_argument("revision", metavar="NNNN")
    led = sub.add_parser("ledger", help="print the object ledger (before revision NNNN, or all)")
    led.add_argument("before", nargs="?", metavar="NNNN")
    args = parser.parse_args(argv)
    try:
        if args.command == "new":
            said = command_new(args.name, args.message)
        elif args.command == "build":
            said = command_build()
        elif args.command == "check":
            said = command_check()
        elif args.command == "release":
            added = release(args.revision)
            said = [f"pinned revision {args.revision}: " + (", ".join(added) if added else "already pinned")]
        else:
            said = command_ledger(args.before)
    except RevisionError as refusal:
        print(f"tools/revision.py {args.command}: {refusal}", file=sys.stderr)
        return 1
    print("\n".join(said))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
