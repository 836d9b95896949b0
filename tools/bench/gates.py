"""Gate latency: chat_get_v11_release_gates() and chat_get_v11_gate_checks() on 1 day and on 30 days of samples.

SPEC 6: with 30 days of samples p50 <= 5 ms and <= 1.3 x its own latency on 1 day (cost follows the window,
not the history). The rollout is promoted to canary_1 first so that every check (P0 and P1) is evaluated on
real, fresh, healthy data; the statuses seen right before measuring are part of the report.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from psycopg import sql

from .common import Context, Latency, Section, SummaryRow, count, measure_latency, ms, table, verdict
from .history import History

TITLE = "Gate latency"
FUNCTIONS = {
    "chat_get_v11_release_gates()": "select * from public.chat_get_v11_release_gates()",
    "chat_get_v11_gate_checks()": "select * from public.chat_get_v11_gate_checks()",
}
P50_TARGET_MS = 5.0
RATIO_TARGET = 1.3
EXPLAIN_METRIC = "recovery_p95_ms"  # a P1 check: the longest window (30 minutes) and a median


def promote_to_canary(ctx: Context) -> str:
    stage = ctx.conn.execute("select stage from public.chat_get_v11_rollout_state()").fetchone()[0]
    if stage == "off":
        ctx.conn.execute("select * from public.chat_set_v11_rollout_state('canary_1', false, 'benchmark')")
    return ctx.conn.execute("select stage from public.chat_get_v11_rollout_state()").fetchone()[0]


def gate_statuses(ctx: Context) -> str:
    """The checks' statuses and the decision now, in words, e.g. '9 pass; rollout_decision PROCEED'."""
    rows = ctx.conn.execute(
        "select status, count(*) from public.chat_get_v11_gate_checks() group by status order by status"
    ).fetchall()
    decision = ctx.conn.execute(
        "select rollout_decision, gate_p0_ok, gate_p1_ok from public.chat_get_v11_release_gates()"
    ).fetchone()
    checks = ", ".join(f"{n} {status}" for status, n in rows)
    return f"checks: {checks}; gate_p0_ok {decision[1]}, gate_p1_ok {decision[2]}, rollout_decision {decision[0]}"


@dataclass
class Explained:
    """The cohort_window call explained: as one literal call (a custom plan), and as the plan cache's generic plan
    of the same statement with parameters (what a PL/pgSQL statement runs once the plan cache prefers it)."""

    call: str
    custom: list[str]
    generic: list[str]

    @staticmethod
    def cost(plan: list[str]) -> float:
        found = re.search(r"cost=[0-9.]+\.\.([0-9.]+) rows=([0-9]+)", plan[0])
        return float(found.group(1)) if found else float("nan")


def explain_cohort_window(ctx: Context, history: History) -> Explained:
    """EXPLAIN (ANALYZE, BUFFERS) of one cohort_window call as evaluate_checks makes it (the 30-minute P1 window)."""
    window = ctx.conn.execute(
        "select window_length from chat_v11.metric where metric = %s", (EXPLAIN_METRIC,)
    ).fetchone()[0]
    args = {"m": sql.Literal(EXPLAIN_METRIC), "w": sql.Literal(window)}
    call = sql.SQL("select * from chat_v11.cohort_window({m}, 'canary', now() - {w}, now())").format(**args)
    history.top_up()
    ctx.conn.execute(call).fetchall()  # warm, as the measured calls were
    custom = ctx.conn.execute(sql.SQL("explain (analyze, buffers) ") + call).fetchall()
    with ctx.connect() as conn:
        conn.execute("set plan_cache_mode = force_generic_plan")
        conn.execute(
            "prepare cw(text, text, timestamptz, timestamptz) as select * from chat_v11.cohort_window($1, $2, $3, $4)"
        )
        generic = conn.execute(
            sql.SQL("explain (analyze, buffers) execute cw({m}, 'canary', now() - {w}, now())").format(**args)
        ).fetchall()
    return Explained(call.as_string(ctx.conn), [r[0] for r in custom], [r[0] for r in generic])


def measure_generic(ctx: Context, history: History, query: str) -> Latency:
    """Diagnostic only: the same call with plan_cache_mode = force_generic_plan in the session (not a product
    setting), so that each PL/pgSQL statement of evaluate_checks is planned once instead of on every call."""
    with ctx.connect() as conn:
        conn.execute("set plan_cache_mode = force_generic_plan")
        history.top_up()
        return measure_latency(conn, query, iterations=ctx.args.iterations, warmup=ctx.args.warmup)


def run(ctx: Context) -> Section:
    history = ctx.get_history()
    stage = "off"
    args = ctx.args
    results: dict[int, dict[str, Latency]] = {}
    states: dict[int, str] = {}
    rows_at: dict[int, int] = {}
    maint: dict[int, float] = {}
    generic: dict[int, dict[str, Latency]] = {}
    explain: Explained | None = None
    for days in sorted({1, args.days}):
        history.extend_to(days)
        maint[days] = history.maintain()
        ctx.log(f"  vacuum (analyze) + checkpoint in {maint[days]:.1f} s")
        history.top_up()
        stage = promote_to_canary(ctx)  # the Go/No-Go needs fresh P0 data: after the first load
        states[days] = gate_statuses(ctx)
        ctx.log(f"  {days} day(s): {states[days]}")
        results[days] = {}
        with ctx.connect() as conn:  # a new session per history size: no plan cached from the previous one
            for name, query in FUNCTIONS.items():
                history.top_up()
                lat = measure_latency(conn, query, iterations=args.iterations, warmup=args.warmup)
                results[days][name] = lat
                ctx.log(f"  {name} at {days} day(s): p50 {lat.p50:.3f} ms, p95 {lat.p95:.3f} ms, "
                        f"p99 {lat.p99:.3f} ms")
        generic[days] = {}
        for name, query in FUNCTIONS.items():
            generic[days][name] = lat = measure_generic(ctx, history, query)
            ctx.log(f"  diagnostic, force_generic_plan: {name} at {days} day(s): p50 {lat.p50:.3f} ms")
        rows_at[days] = history.rows
        if days == args.days:
            explain = explain_cohort_window(ctx, history)

    short, long = min(results), max(results)
    section = Section(f"{TITLE}: release gates on 1 day and {long} days of samples")
    for name in FUNCTIONS:
        a, b = results[short][name], results[long][name]
        ratio = b.p50 / a.p50
        section.summary.append(
            SummaryRow(f"`{name}` p50, {long} days of samples", ms(b.p50), f"<= {P50_TARGET_MS:g} ms",
                       b.p50 <= P50_TARGET_MS)
        )
        section.summary.append(
            SummaryRow(f"`{name}` p50 {long} days / {short} day", f"{ratio:.2f}", f"<= {RATIO_TARGET:g}",
                       ratio <= RATIO_TARGET)
        )

    body = section.body
    body += [
        f"Every metric of the catalog ({len(history.series) // 2}) for both cohorts, one sample per 10-second bucket "
        f"({len(history.series) * 8640:,} rows a day), loaded with COPY as the table owner in time order, the "
        f"newest bucket at the server's now rounded down to 10 s and topped up right before each measurement "
        f"(freshness is 2 minutes). Healthy data: no P0 event, P1 rates of about 0.2 % in both cohorts. "
        f"After each load: `VACUUM (ANALYZE)` and a `CHECKPOINT`. Rollout at stage `{stage}`, so P0 and P1 "
        f"checks are all evaluated. Client: psycopg, a new connection per history size, prepared statements, "
        f"autocommit (one "
        f"transaction per call), {args.warmup} warm-up calls then {args.iterations} timed calls, round trip "
        f"and fetching every row included; the caller is the database owner.",
        "",
    ]
    rows = []
    for days in sorted(results):
        for name, lat in results[days].items():
            rows.append([f"`{name}`", f"{days}", count(rows_at[days]), ms(lat.p50), ms(lat.p95), ms(lat.p99),
                         str(lat.n)])
    body += table(["function", "days", "rows in metric_sample", "p50", "p95", "p99", "calls"], rows, "lrrrrrr")
    body += [""]
    rows = []
    for name in FUNCTIONS:
        a, b = results[short][name], results[long][name]
        rows.append([f"`{name}`", f"{b.p50 / a.p50:.2f}", f"{b.p95 / a.p95:.2f}", f"{b.p99 / a.p99:.2f}",
                     f"<= {RATIO_TARGET:g} (p50)", verdict(b.p50 / a.p50 <= RATIO_TARGET)])
    body += table(["function", f"p50 {long} d / {short} d", "p95 ratio", "p99 ratio", "target", "met"], rows,
                  "lrrrll")
    body += ["", "What the gates said right before the measurements (real data, not an empty table):", ""]
    body += [f"- {days} day(s): {states[days]}" for days in sorted(states)]
    body += ["", "Loads (COPY as the owner, text format, into the table with its primary key and checks):", ""]
    body += table(
        ["load", "rows", "seconds", "rows/s"],
        [[ld.label, count(ld.rows), f"{ld.seconds:.1f}", count(ld.rate)] for ld in history.loads
         if ld.label != "top-up"]
        + [["top-ups (sum)", count(sum(ld.rows for ld in history.loads if ld.label == "top-up")), "", ""]],
        "lrrr",
    )
    body += [""] + [f"- `VACUUM (ANALYZE)` + `CHECKPOINT` after {d} day(s): {sec:.1f} s"
                    for d, sec in sorted(maint.items())]
    rows = []
    for name in FUNCTIONS:
        a, b = generic[short][name], generic[long][name]
        rows.append([f"`{name}`", ms(a.p50), ms(b.p50), f"{b.p50 / a.p50:.2f}"])
    body += [
        "",
        "Diagnostic, not a product setting: the same calls with `plan_cache_mode = force_generic_plan` in the "
        "session, so that every PL/pgSQL statement of `evaluate_checks` (one `cohort_window` per metric and cohort, "
        "18 per call) is planned once instead of on every call:",
        "",
        *table(["function", f"p50 {short} d", f"p50 {long} d", "ratio"], rows, "lrrr"),
    ]
    if explain is not None:
        custom_cost, generic_cost = Explained.cost(explain.custom), Explained.cost(explain.generic)
        body += [
            "",
            f"`EXPLAIN (ANALYZE, BUFFERS)` of one `cohort_window` call at {long} days, as `evaluate_checks` makes "
            f"it for `{EXPLAIN_METRIC}` (the longest window), after the measurements:",
            "",
            "```sql",
            f"explain (analyze, buffers) {explain.call};",
            "```",
            "",
            "```",
            *explain.custom,
            "```",
            "",
            "The generic plan of the same statement with parameters (`prepare cw(text, text, timestamptz, "
            "timestamptz) as select * from chat_v11.cohort_window($1, $2, $3, $4)`, executed under "
            "`plan_cache_mode = force_generic_plan`): the plan cache of a PL/pgSQL statement keeps re-planning "
            "with the values (a custom plan) while the generic plan's estimated cost is above the custom plans' "
            f"average. Here: generic {generic_cost:,.0f} against custom {custom_cost:,.0f}.",
            "",
            "```",
            *explain.generic,
            "```",
        ]
    missed = [
        f"`{name}` ({results[long][name].p50 / results[short][name].p50:.2f}, generic plans "
        f"{generic[long][name].p50 / generic[short][name].p50:.2f})"
        for name in FUNCTIONS
        if results[long][name].p50 / results[short][name].p50 > RATIO_TARGET
        and generic[long][name].p50 / generic[short][name].p50 <= RATIO_TARGET
    ]
    if missed:
        body += [
            "",
            f"**Reading:** {' and '.join(missed)} miss the {long} d / {short} d target while the same calls with "
            "generic plans keep it: what grows is not the work on the window (the plans above read the same few "
            "buffers) but planning. With more history the generic plan's row estimate for an unknown time range "
            "(a default fraction of the rows of one metric and cohort) grows with the table, so the plan cache "
            "stops preferring it and re-plans each `cohort_window` statement, SQL function inlining included, on "
            "every call.",
        ]
    ctx.facts["gates"] = {d: {n: lat.p50 for n, lat in r.items()} for d, r in results.items()}
    return section
