"""chat-rollout benchmarks (SPEC section 6): ``make bench``, or ``python -m tools.bench --help``.

One module per benchmark, one shared runner:

- ``runner``     the server (DATABASE_URL, else the embedded PostgreSQL 18), a fresh migrated database,
                 latency/throughput helpers, the machine facts and the Markdown report; drops the database.
- ``history``    the metric history the gate benchmarks read, loaded with COPY as the table owner.
- ``select_one`` reference: ``SELECT 1`` latency with the same client.
- ``gates``      ``chat_get_v11_release_gates()`` / ``chat_get_v11_gate_checks()`` latency, 1 day vs 30 days.
- ``ingest``     ingestion throughput through the public path vs a bare COPY of the same rows.

A benchmark module has ``TITLE`` and ``run(ctx) -> Section``; add it to ``BENCHMARKS`` in ``runner``.
"""
