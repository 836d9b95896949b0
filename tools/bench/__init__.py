"""chat-rollout benchmarks (SPEC section 6): ``make bench``, or ``python -m tools.bench --help``.

One module per benchmark, one shared runner:

- ``runner``     the server (DATABASE_URL, else the embedded PostgreSQL 18), a fresh migrated database,
                 latency/throughput helpers, the machine facts and the Markdown report; drops the database.
- ``history``    the metric history the gate benchmarks read, loaded with COPY as the table owner (daily
                 partitions created first when ``chat_v11.ensure_sample_partitions`` exists).
- ``select_one`` reference: ``SELECT 1`` latency with the same client.
- ``state_read`` ``chat_get_v11_rollout_state()`` throughput as a reader role vs ``SELECT 1`` (pgbench).
- ``gates``      ``chat_get_v11_release_gates()`` / ``chat_get_v11_gate_checks()`` latency, 1 day vs 30 days
                 vs ~10 M rows, and the plans of the statements the gate call runs (partitions touched).
- ``ingest``     ingestion throughput through the public path vs a bare COPY of the same rows.
- ``rollout``    the kill switch (latency, under load, notification) and state-change throughput.
- ``client``     the application client: ``in_canary`` calls/s, a kill reaching 50 clients, recovery after a
                 server restart (a private cluster).
- ``migration``  ``alembic upgrade head`` on an empty database.
- ``suite``      the test suite's wall time (last; ``--no-suite``, not in ``--smoke``).

A benchmark module has ``TITLE`` and ``run(ctx) -> Section``; add it to ``BENCHMARKS`` in ``runner``.
"""
