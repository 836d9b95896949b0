"""Test-suite wall time: the whole suite as ``make test`` runs it, timed from outside (last: it loads the machine).

``python -m pytest -q -p no:cacheprovider`` in a subprocess from the project root with this run's environment:
DATABASE_URL's server when it is set (the suite clones its own databases there), else the suite starts its own
embedded PostgreSQL 18, exactly as ``make test`` does. Skipped with ``--no-suite`` and in ``--smoke``.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time

from chat_rollout import PROJECT_ROOT

from .common import Context, Section, SummaryRow, table

TITLE = "Test-suite wall time"
COMMAND = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider"]
OUTCOMES = ("passed", "failed", "errors", "error", "skipped", "xfailed", "xpassed", "deselected")


def outcome_counts(output: str) -> dict[str, int]:
    """The counts of pytest's final line, e.g. '412 passed, 3 skipped in 180.00s (0:03:00)'."""
    counts: dict[str, int] = {}
    lines = [ln for ln in output.splitlines() if re.search(r"\b(passed|failed|errors?|skipped)\b.* in [0-9.]+s", ln)]
    if lines:
        for n, word in re.findall(r"(\d+) (" + "|".join(OUTCOMES) + r")\b", lines[-1]):
            key = "errors" if word == "error" else word
            counts[key] = counts.get(key, 0) + int(n)
    return counts


def run(ctx: Context) -> Section:
    env = dict(os.environ)
    where = "DATABASE_URL's server" if env.get("DATABASE_URL") else "its own embedded PostgreSQL 18"
    ctx.log(f"  {' '.join(['python', *COMMAND[1:]])} on {where}")
    t0 = time.monotonic()
    out = subprocess.run(COMMAND, cwd=PROJECT_ROOT, env=env, capture_output=True, text=True)
    seconds = time.monotonic() - t0
    text = out.stdout + out.stderr
    counts = outcome_counts(text)
    passed, skipped = counts.get("passed", 0), counts.get("skipped", 0)
    bad = counts.get("failed", 0) + counts.get("errors", 0)
    ok = out.returncode == 0 and bad == 0 and passed > 0
    ctx.log(f"  suite: {seconds:.1f} s, exit {out.returncode}, {counts}")
    ctx.facts["suite"] = {"seconds": seconds, **counts}
    summary = ", ".join(f"{n} {k}" for k, n in counts.items()) or f"no summary line (exit {out.returncode})"
    section = Section(TITLE, summary=[
        SummaryRow("test suite (`pytest`, as `make test`) wall time", f"{seconds / 60:.1f} min ({summary})",
                   "every test passes", ok),
    ])
    section.body += [
        f"`{' '.join(['python', *COMMAND[1:]])}` from the project root, in a subprocess with the environment of "
        f"this run (here: {where}), as `make test` runs it; timed from outside, server start and template "
        "migration included. It runs after every other benchmark so as not to disturb their figures.",
        "",
        *table(["wall time", "passed", "skipped", "failed + errors", "exit code"],
               [[f"{seconds:.1f} s", str(passed), str(skipped), str(bad), str(out.returncode)]], "rrrrr"),
    ]
    problems = [ln for ln in text.splitlines() if ln.startswith(("FAILED ", "ERROR "))]
    if problems or not ok:
        tail = problems[:20] or text.strip().splitlines()[-20:]
        section.body += ["", "What went wrong (first lines):", "", "```", *tail, "```"]
    return section
