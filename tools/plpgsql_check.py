#!/usr/bin/env python3
"""plpgsql_check on every PL/pgSQL function of chat-rollout, in a scratch database built by Alembic.

    CHAT_ROLLOUT_LINT_URL=postgresql://postgres@127.0.0.1:5432/postgres tools/plpgsql_check.py

CHAT_ROLLOUT_LINT_URL is a libpq URI of a server where the plpgsql_check extension is available (Debian:
postgresql-NN-plpgsql-check) and of a role that may create databases and extensions. Without it the
script prints why it skipped and exits 0 (CI always sets it). With it: create a scratch database, run
`alembic upgrade head` into it, `create extension plpgsql_check`, check every plpgsql function and procedure
of schemas public and chat_v11 that no extension owns (a trigger function once per table it is a trigger
of, since plpgsql_check needs that relation), print every finding, drop the scratch database.

Checks enabled: other, extra, performance, security and compatibility warnings, and fatal_errors off, so
every error of a function is listed rather than only the first. What fails the run, by reported level:
- error                   fails: the function cannot run as written (unknown column, wrong type, ...).
- security                fails: dynamic SQL open to injection; the API functions are SECURITY DEFINER
                          (all but public.chat_get_v11_rollout_state(), the hot read path: a SECURITY INVOKER
                          language sql function, so not checked here; pytest_tests/security/test_read_path.py
                          proves it inlined, search_path-proof and reading only chat_v11_read's view).
- warning                 printed only (unwanted casts, a variable overlapping a parameter, unused variables).
- warning extra           printed only (missing RETURN, shadowed variables, dead code, never-read parameters,
                          unmodified variables): worth reading, not worth a red build.
- performance             printed only: advice (type modifiers on declared types, implicit casts that may keep
                          an index unused); the benchmarks under tools/ decide what is fast enough.
- compatibility           printed only (obsolete constructs, such as setting a cursor's internal name).
A trigger function that no trigger uses cannot be checked; it is printed as a warning.
Language sql functions are not plpgsql_check's business: PostgreSQL validates their bodies at creation.
Schema chat_v11_read holds views only (no function), so it is not searched.
"""

from __future__ import annotations

import os

import psycopg

from scratch_db import run_in_scratch

SCHEMAS = ["public", "chat_v11"]
FAIL_LEVELS = {"error", "security"}

# Every plpgsql function or procedure of the project, paired with each relation it is a trigger of
# (relid 0 for an ordinary function; null for a trigger function no trigger uses), and the names of the transition
# tables its triggers on that relation declare (REFERENCING OLD/NEW TABLE), which the checker must know.
TARGETS = """
select pg_catalog.format('%%I.%%I(%%s)', n.nspname, p.proname,
                         pg_catalog.pg_get_function_identity_arguments(p.oid)) as signature,
       p.oid as funcoid,
       case when p.prorettype = 'pg_catalog.trigger'::regtype then t.tgrelid else 0 end as relid,
       t.tgrelid::regclass::text as relation,
       t.oldtable,
       t.newtable
  from pg_catalog.pg_proc as p
  join pg_catalog.pg_namespace as n on n.oid = p.pronamespace
  join pg_catalog.pg_language as l on l.oid = p.prolang
  left join lateral (
      select tr.tgrelid, max(tr.tgoldtable::text) as oldtable, max(tr.tgnewtable::text) as newtable
        from pg_catalog.pg_trigger as tr
       where tr.tgfoid = p.oid
       group by tr.tgrelid
  ) as t on p.prorettype = 'pg_catalog.trigger'::regtype
 where n.nspname = any(%s)
   and l.lanname = 'plpgsql'
   and p.prokind in ('f', 'p')
   and not exists (
       select from pg_catalog.pg_depend as d
        where d.classid = 'pg_catalog.pg_proc'::regclass and d.objid = p.oid and d.deptype = 'e'
   )
 order by 1, 4
"""

CHECK = """
select cf.lineno, cf.statement, cf.sqlstate, cf.message, cf.detail, cf.hint, cf.level, cf.query
  from plpgsql_check_function_tb(
      %s::oid::regprocedure, %s::oid::regclass,
      oldtable => %s::name, newtable => %s::name,
      fatal_errors => false, other_warnings => true, extra_warnings => true,
      performance_warnings => true, security_warnings => true, compatibility_warnings => true
  ) as cf
"""


def check(url: str) -> int:
    return run_in_scratch(url, "chat_rollout_lint", _check_database)


def _check_database(conn: psycopg.Connection, scratch_url: str, scratch: str, server: str) -> int:
    version = conn.execute("select extversion from pg_catalog.pg_extension where extname = 'plpgsql_check'")
    print(f"plpgsql_check {version.fetchone()[0]} on PostgreSQL {server}, scratch database {scratch}")
    targets = conn.execute(TARGETS, [SCHEMAS]).fetchall()
    if not targets:
        print(f"error: no plpgsql function found in schemas {', '.join(SCHEMAS)}: did the migration run?")
        return 1
    counts: dict[str, int] = {}
    functions = set()
    for signature, funcoid, relid, relation, oldtable, newtable in targets:
        functions.add(signature)
        where = f"{signature} on {relation}" if relation else signature
        if relid is None:
            counts["warning"] = counts.get("warning", 0) + 1
            print(f"{where}: warning: trigger function used by no trigger, not checked")
            continue
        for lineno, statement, sqlstate, message, detail, hint, level, query in conn.execute(
            CHECK, [funcoid, relid, oldtable, newtable]
        ):
            counts[level] = counts.get(level, 0) + 1
            line = f"line {lineno}" if lineno is not None else "header"
            print(f"{where}: {line}{f' ({statement})' if statement else ''}: {level} [{sqlstate}]: {message}")
            for label, text in (("detail", detail), ("hint", hint), ("query", query)):
                if text:
                    print(f"    {label}: {text}")
    failing = sum(n for level, n in counts.items() if level in FAIL_LEVELS)
    found = ", ".join(f"{n} {level}" for level, n in sorted(counts.items())) or "no findings"
    print(f"checked {len(functions)} functions ({len(targets)} checks): {found}")
    return 1 if failing else 0


def main() -> int:
    url = os.environ.get("CHAT_ROLLOUT_LINT_URL")
    if not url:
        print("skipped: set CHAT_ROLLOUT_LINT_URL (a libpq URI of a server with plpgsql_check available) to run it")
        return 0
    return check(url)


if __name__ == "__main__":
    raise SystemExit(main())
