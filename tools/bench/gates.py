"""Gate latency: chat_get_v11_release_gates() and chat_get_v11_gate_checks() on 1 day, 30 days and ~10 M rows.

SPEC 6 (issue 19): with 30 days of samples p50 <= 1.5 ms and <= 1.1 x its own latency on 1 day (cost follows
the window, not the history); issue 6 adds a history of ~10 M rows (64 days, ``--big-days``), reported beside them. The
rollout is promoted to canary_1 first so that every check (P0 and P1) is evaluated on real, fresh, healthy data;
the statuses seen right before measuring are part of the report.

Plans: one untimed ``chat_get_v11_release_gates()`` call per history size under ``auto_explain`` (ANALYZE,
BUFFERS, nested statements): the statements the gate evaluation really runs, whatever functions they are in, and
the partitions of ``chat_v11.metric_sample`` they touch ("touches N of M partitions"). At 30 days the plans of
the statements reading the samples are in the report, and the EXPLAIN of one ``chat_v11.window_totals`` call (custom
and generic plan), the function ``evaluate_checks`` inlines for each check's window since revision 0013. Both fail
soft with a note.
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
P50_TARGET_MS = 1.5  # issue 19 (was 5 ms)
RATIO_TARGET = 1.1  # issue 19 (was 1.3)
EXPLAIN_METRIC = "recovery_p95_ms"  # a P1 check: the longest window (30 minutes) and a median
WINDOW_TOTALS = "chat_v11.window_totals(text,text,timestamptz,timestamptz,timestamptz,boolean)"
PLANNED_CALL = "select * from public.chat_get_v11_release_gates()"
MAX_PLANS = 3  # distinct statements reading the samples whose plans the report shows


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
    """The window_totals call explained: as one literal call (a custom plan), and as the plan cache's generic plan
    of the same statement with parameters (what a PL/pgSQL statement runs once the plan cache prefers it)."""

    call: str
    custom: list[str]
    generic: list[str]

    @staticmethod
    def cost(plan: list[str]) -> float:
        found = re.search(r"cost=[0-9.]+\.\.([0-9.]+) rows=([0-9]+)", plan[0])
        return float(found.group(1)) if found else float("nan")


def explain_window_totals(ctx: Context, history: History) -> Explained | str:
    """EXPLAIN (ANALYZE, BUFFERS) of one window_totals call as evaluate_checks makes it (the 30-minute P1 window,
    with the median); a note instead when that function is gone or the EXPLAIN fails."""
    if ctx.conn.execute("select to_regprocedure(%s) is null", (WINDOW_TOTALS,)).fetchone()[0]:
        return (f"`{WINDOW_TOTALS}` does not exist in this revision: the gate evaluation's statements are the "
                "ones above")
    try:
        return _explain_window_totals(ctx, history)
    except Exception as exc:
        ctx.log(f"  EXPLAIN of window_totals skipped: {exc}")
        return f"The EXPLAIN of one `window_totals` call failed: {type(exc).__name__}: {exc}"


def _explain_window_totals(ctx: Context, history: History) -> Explained:
    window = ctx.conn.execute(
        "select window_length from chat_v11.metric where metric = %s", (EXPLAIN_METRIC,)
    ).fetchone()[0]
    args = {"m": sql.Literal(EXPLAIN_METRIC), "w": sql.Literal(window)}
    # the floor is the window's own start here (evaluate_checks passes the start of its longest window)
    call = sql.SQL("select * from chat_v11.window_totals({m}, 'canary', now() - {w}, now(), now() - {w}, true)").format(
        **args
    )
    history.top_up()
    ctx.conn.execute(call).fetchall()  # warm, as the measured calls were
    custom = ctx.conn.execute(sql.SQL("explain (analyze, buffers) ") + call).fetchall()
    with ctx.connect() as conn:
        conn.execute("set plan_cache_mode = force_generic_plan")
        conn.execute(
            "prepare wt(text, text, timestamptz, timestamptz, timestamptz, boolean) as "
            "select * from chat_v11.window_totals($1, $2, $3, $4, $5, $6)"
        )
        generic = conn.execute(
            sql.SQL(
                "explain (analyze, buffers) execute wt({m}, 'canary', now() - {w}, now(), now() - {w}, true)"
            ).format(**args)
        ).fetchall()
    return Explained(call.as_string(ctx.conn), [r[0] for r in custom], [r[0] for r in generic])


@dataclass
class Statement:
    """One statement auto_explain logged during the call: its text, duration, plan and the partitions it read."""

    query: str
    ms: float
    plan: list[str]
    reads_samples: bool
    partitions: set[str]  # executed (at least one loop)
    planned: set[str]  # left in the plan after pruning at executor start, executed or not


@dataclass
class GatePlan:
    """The statements of one chat_get_v11_release_gates() call, and metric_sample's partitions (M)."""

    statements: list[Statement]
    partitioned: bool
    partitions: list[str]
    note: str = ""

    @property
    def sample_statements(self) -> list[Statement]:
        return [st for st in self.statements if st.reads_samples]

    @property
    def touched(self) -> set[str]:
        return set().union(*(st.partitions for st in self.sample_statements))

    def touches(self) -> str:
        """'touches N of M partitions' (union over the call's statements), or why not."""
        if self.note:
            return self.note
        if not self.partitioned:
            return "metric_sample is not partitioned: every statement reads the one table"
        n = len(self.sample_statements)
        most = max((len(st.partitions) for st in self.sample_statements), default=0)
        planned = set().union(*(st.planned for st in self.sample_statements))
        return (f"touches {len(self.touched)} of {len(self.partitions)} partitions "
                f"({n} statement{'s' if n != 1 else ''} read{'s' if n == 1 else ''} the samples, at most {most} "
                f"partition(s) each; {len(planned)} left in the plans after pruning at executor start)")


def sample_relations(ctx: Context) -> tuple[bool, list[str]]:
    """(is chat_v11.metric_sample partitioned, the names of all its leaf partitions, the default one included)."""
    kind = ctx.conn.execute("select relkind from pg_catalog.pg_class where oid = 'chat_v11.metric_sample'::regclass"
                            ).fetchone()[0]
    if kind != "p":
        return False, []
    rows = ctx.conn.execute(
        "select c.relname from pg_catalog.pg_partition_tree('chat_v11.metric_sample') as t "
        "join pg_catalog.pg_class as c on c.oid = t.relid where t.isleaf order by c.relname"
    ).fetchall()
    return True, [r[0] for r in rows]


SCAN_ON = re.compile(r"\bon (?:[\w$]+\.)?\"?([\w$]+)\"?(?: [\w$]+)? {1,2}\(")


def parse_note(text: str, names: set[str]) -> Statement | None:
    """An auto_explain notice (text format): 'duration: X ms  plan:', 'Query Text: ...', then the plan."""
    found = re.match(r"duration: ([0-9.]+) ms\s+plan:\s*\n?Query Text: (.*)", text, re.S)
    if not found:
        return None
    lines = found.group(2).split("\n")
    start = next((i for i, ln in enumerate(lines) if i > 0 and ("(cost=" in ln or "(actual " in ln)), len(lines))
    query, plan = "\n".join(lines[:start]).strip(), [ln for ln in lines[start:] if ln.strip()]
    read: set[str] = set()
    planned: set[str] = set()
    for ln in plan:
        hit = SCAN_ON.search(ln)
        if hit and hit.group(1) in names:
            planned.add(hit.group(1))
            if "never executed" not in ln:
                read.add(hit.group(1))
    return Statement(query, float(found.group(1)), plan, bool(planned), read - {"metric_sample"},
                     planned - {"metric_sample"})


def explain_gate_call(ctx: Context, history: History) -> GatePlan:
    """One untimed call of chat_get_v11_release_gates() (after two warm ones in the same session) under
    auto_explain: ANALYZE, BUFFERS, timing, nested statements, to the client as notices. Superuser only (LOAD);
    fails soft: a GatePlan with a note."""
    partitioned, partitions = sample_relations(ctx)
    names = set(partitions) | {"metric_sample"}
    notes: list[str] = []
    try:
        with ctx.connect() as conn:
            conn.execute("load 'auto_explain'")
            for key, value in {"log_min_duration": "-1", "log_nested_statements": "on", "log_analyze": "on",
                               "log_buffers": "on", "log_timing": "on", "log_format": "text",
                               "log_level": "notice"}.items():
                conn.execute(f"set auto_explain.{key} = {value}")
            history.top_up()
            for _ in range(2):  # plans cached as the measured calls had them
                conn.execute(PLANNED_CALL).fetchall()
            conn.add_notice_handler(lambda d: notes.append(d.message_primary or ""))
            conn.execute("set auto_explain.log_min_duration = 0")
            conn.execute(PLANNED_CALL).fetchall()
            conn.execute("set auto_explain.log_min_duration = -1")
    except Exception as exc:  # no auto_explain, not a superuser, or the call failed: say so, go on
        ctx.log(f"  auto_explain of the gate call skipped: {exc}")
        return GatePlan([], partitioned, partitions, note=f"not available ({type(exc).__name__}: "
                                                          f"{str(exc).strip().splitlines()[0] if str(exc) else ''})")
    statements = [st for st in (parse_note(n, names) for n in notes) if st is not None]
    statements = [st for st in statements if "set auto_explain" not in st.query]
    return GatePlan(statements, partitioned, partitions)


def plan_lines(gp: GatePlan, days: int) -> list[str]:
    """The report's part on the statements of the gate call at ``days`` days."""
    out = [
        "",
        f"The statements one `{PLANNED_CALL}` call runs at {days} days, as `auto_explain` logged them "
        "(`log_analyze`, `log_buffers`, `log_timing`, `log_nested_statements`; an untimed call after two warm "
        f"ones in the same session, so the cached plans are the measured calls' own): **{gp.touches()}**.",
    ]
    if gp.note or not gp.statements:
        return out
    groups: dict[str, list[Statement]] = {}
    for st in gp.sample_statements:
        groups.setdefault(st.query, []).append(st)
    rows = []
    for query, sts in groups.items():
        touched = set().union(*(st.partitions for st in sts))
        rows.append([f"`{' '.join(query.split())[:110]}`", str(len(sts)), f"{sum(st.ms for st in sts):.3f}",
                     f"{len(touched)} of {len(gp.partitions)}" if gp.partitioned else "one table"])
    whole = max(gp.statements, key=lambda st: st.ms)
    out += ["", *table(["statement reading `chat_v11.metric_sample`", "executions", "ms (sum)", "partitions"],
                       rows, "lrrr"),
            "", f"The whole call (the outermost statement) took {whole.ms:.3f} ms with instrumentation; "
                f"{len(gp.statements)} statements were logged in all."]
    if gp.partitioned:
        untouched = len(gp.partitions) - len(gp.touched)
        out += ["", f"Partitions of `chat_v11.metric_sample`: {len(gp.partitions)} (the default one included); "
                    f"read by this call: {', '.join(f'`{p}`' for p in sorted(gp.touched)) or 'none'}; "
                    f"the other {untouched} were pruned or never executed."]
    shown = sorted(groups.values(), key=lambda sts: -max(st.ms for st in sts))[:MAX_PLANS]
    for sts in shown:
        slow = max(sts, key=lambda st: st.ms)
        query = "\n".join(re.sub(r"(?<=\S) {2,}", " ", ln.rstrip()) for ln in slow.query.strip().splitlines())
        out += ["", f"The slowest of its {len(sts)} execution(s) ({slow.ms:.3f} ms):", "", "```sql",
                query.rstrip(";") + ";", "```", "", "```", *slow.plan, "```"]
    return out


def measure_generic(ctx: Context, history: History, query: str) -> Latency:
    """Diagnostic only: the same call with plan_cache_mode = force_generic_plan in the session (not a product
    setting), so that each PL/pgSQL statement of evaluate_checks is planned once instead of on every call."""
    with ctx.connect() as conn:
        conn.execute("set plan_cache_mode = force_generic_plan")
        history.top_up()
        return measure_latency(conn, query, iterations=ctx.args.iterations, warmup=ctx.args.warmup)


def history_sizes(args) -> list[int]:
    """1 day, --days (the SPEC's 30) and --big-days (~10 M rows), when given."""
    return sorted({1, args.days} | ({args.big_days} if getattr(args, "big_days", 0) else set()))


def run(ctx: Context) -> Section:
    history = ctx.get_history()
    stage = "off"
    args = ctx.args
    results: dict[int, dict[str, Latency]] = {}
    states: dict[int, str] = {}
    rows_at: dict[int, int] = {}
    maint: dict[int, float] = {}
    generic: dict[int, dict[str, Latency]] = {}
    plans: dict[int, GatePlan] = {}
    explain: Explained | str | None = None
    for days in history_sizes(args):
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
        plans[days] = explain_gate_call(ctx, history)
        ctx.log(f"  gate call at {days} day(s): {plans[days].touches()}")
        if days == args.days:
            explain = explain_window_totals(ctx, history)

    short, long = 1, args.days
    big = max(results) if max(results) > long else None
    labels = [f"{d} day{'s' if d > 1 else ''}" + (f" (~{rows_at[d] / 1e6:.1f} M rows)" if d == big else "")
              for d in sorted(results)]
    section = Section(f"{TITLE}: release gates on " + (", ".join(labels[:-1]) + " and " if len(labels) > 1 else "")
                      + labels[-1] + " of samples")
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
        if big:
            c = results[big][name]
            section.summary.append(
                SummaryRow(f"`{name}` p50, {big} days ({rows_at[big] / 1e6:.1f} M rows; issue 6: also 10 M)",
                           f"{ms(c.p50)}; {c.p50 / a.p50:.2f} x {short} day",
                           f"<= {P50_TARGET_MS:g} ms and <= {RATIO_TARGET:g} x (the {long}-day bounds)",
                           c.p50 <= P50_TARGET_MS and c.p50 / a.p50 <= RATIO_TARGET)
            )
    if long in plans:
        section.summary.append(SummaryRow(f"gate call at {long} days: partitions of `metric_sample` read",
                                          plans[long].touches()))

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
        f"and fetching every row included; the caller is the database owner."
        + (" `chat_v11.ensure_sample_partitions(date, date)` exists: the loader had it create the daily "
           "partitions of the loaded days (a day of margin each side) before each COPY."
           if history.partitioned_by_function else ""),
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
    for days in sorted(results):
        if days == short:
            continue
        for name in FUNCTIONS:
            a, b = results[short][name], results[days][name]
            target = days == long
            rows.append([f"`{name}`", f"{days} d / {short} d", f"{b.p50 / a.p50:.2f}", f"{b.p95 / a.p95:.2f}",
                         f"{b.p99 / a.p99:.2f}", f"<= {RATIO_TARGET:g} (p50)" + ("" if target else ", applied"),
                         verdict(b.p50 / a.p50 <= RATIO_TARGET)])
    body += table(["function", "history", "p50 ratio", "p95 ratio", "p99 ratio", "target", "met"], rows,
                  "llrrrll")
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
        row = [f"`{name}`"] + [ms(generic[d][name].p50) for d in sorted(generic)]
        row += [f"{generic[d][name].p50 / generic[short][name].p50:.2f}" for d in sorted(generic) if d != short]
        rows.append(row)
    heads = ([f"p50 {d} d" for d in sorted(generic)]
             + [f"{d} d / {short} d" for d in sorted(generic) if d != short])
    body += [
        "",
        "Diagnostic, not a product setting: the same calls with `plan_cache_mode = force_generic_plan` in the "
        "session, so that every statement inside (PL/pgSQL or SQL function) is planned once instead of on every "
        "call:",
        "",
        *table(["function", *heads], rows, "l" + "r" * len(heads)),
    ]
    body += ["", "Partitions of `chat_v11.metric_sample` the gate call reads, per history size:", ""]
    body += [f"- {days} day(s), {count(rows_at[days])} rows: {plans[days].touches()}" for days in sorted(plans)]
    if long in plans:
        body += plan_lines(plans[long], long)
    if isinstance(explain, str):
        body += ["", f"The EXPLAIN of one `window_totals` call: {explain}."]
    elif explain is not None:
        custom_cost, generic_cost = Explained.cost(explain.custom), Explained.cost(explain.generic)
        body += [
            "",
            f"`EXPLAIN (ANALYZE, BUFFERS)` of one `window_totals` call at {long} days, as `evaluate_checks` makes "
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
            "The generic plan of the same statement with parameters (`prepare wt(text, text, timestamptz, "
            "timestamptz, timestamptz, boolean) as select * from chat_v11.window_totals($1, $2, $3, $4, $5, $6)`, "
            "executed under "
            "`plan_cache_mode = force_generic_plan`): the plan cache of a PL/pgSQL statement keeps re-planning "
            "with the values (a custom plan) while the generic plan's estimated cost is above the custom plans' "
            f"average, unless the function sets `plan_cache_mode`. Here: generic {generic_cost:,.0f} against "
            f"custom {custom_cost:,.0f}.",
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
            "stops preferring it and re-plans each statement on every call.",
        ]
    ctx.facts["gates"] = {d: {n: lat.p50 for n, lat in r.items()} for d, r in results.items()}
    return section
