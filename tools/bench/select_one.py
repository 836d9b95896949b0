"""Reference: `SELECT 1` latency with the same client as the other benchmarks (psycopg, prepared, autocommit).

It is the floor every latency of this report stands on: the round trip, the protocol and the client.
"""

from __future__ import annotations

from .common import Context, Section, SummaryRow, measure_latency, ms, table

TITLE = "Reference: SELECT 1"


def run(ctx: Context) -> Section:
    iterations = max(ctx.args.iterations * 5, 1000)
    lat = measure_latency(ctx.conn, "select 1", iterations=iterations, warmup=max(ctx.args.warmup * 5, 100))
    ctx.log(f"select 1: p50 {lat.p50:.3f} ms, p95 {lat.p95:.3f} ms, p99 {lat.p99:.3f} ms")
    ctx.facts["select_one_p50_ms"] = lat.p50
    section = Section(TITLE, summary=[SummaryRow("`SELECT 1` p50 (reference, same client)", ms(lat.p50))])
    section.body += [
        "The same client and settings as the gate latencies (psycopg, prepared statement, autocommit, "
        f"{max(ctx.args.warmup * 5, 100)} warm-up calls): the round trip every other latency includes.",
        "",
        *table(["query", "p50", "p95", "p99", "calls"],
               [["`select 1`", ms(lat.p50), ms(lat.p95), ms(lat.p99), str(lat.n)]], "lrrrr"),
    ]
    return section
