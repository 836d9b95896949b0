"""A kill reaching 50 application clients (part of the ``client`` benchmark, tools/bench/client.py).

Worker processes hold the clients (one process of 50, or 5 of 10: 50 client threads in one process take turns on the
GIL); each round the state is reset, every client holds that version, then the operator's kill runs and the time
runs until the last client holds it (``time.monotonic_ns``, one clock for every process of the machine). The floor,
same layout, same run: a bare ``NOTIFY`` to 50 LISTENing connections in threads of the same worker processes.
Between rounds (untimed) the current bucket's samples go through the public ingestion path every few seconds, as
they do in production: the evaluation ingestion stores is what the kill records (issue 19), so the kill here takes
the path it takes in production rather than evaluating the gates itself.
"""

from __future__ import annotations

import contextlib
import logging
import multiprocessing as mp
import os
import statistics
import threading
import time

import psycopg

from chat_rollout.client import RolloutClient

from .client_restart import reset
from .common import Context, Latency
from .rollout import feed_current_bucket

FLOOR_CHANNEL = "bench_client_floor"
KILL = "select version from public.chat_set_v11_rollout_state('off', true, 'kill')"
FEED_EVERY = 5.0  # seconds: the current bucket's samples through the public path, as ingestion sends them


def quiet_client_log() -> None:
    """The client logs each lost connection as a warning: expected here (the restarts), not worth the noise."""
    logging.getLogger("chat_rollout.client").setLevel(logging.ERROR)


class Holds:
    """Per key (a version or a round), when each of n holders held it (monotonic ns); the waiter wakes once all did."""

    def __init__(self, n: int) -> None:
        self.n = n
        self.times: dict[int, dict[int, int]] = {}
        self.cond = threading.Condition()

    def record(self, key: int, holder: int) -> None:
        at = time.monotonic_ns()
        with self.cond:
            got = self.times.setdefault(key, {})
            got.setdefault(holder, at)
            if len(got) == self.n:
                self.cond.notify_all()

    def wait(self, key: int, timeout: float) -> list[int]:
        with self.cond:
            self.cond.wait_for(lambda: len(self.times.get(key, {})) == self.n, timeout)
            return list(self.times.pop(key, {}).values())


def bare_listener(url: str, index: int, holds: Holds, ready: threading.Semaphore, stop: threading.Event) -> None:
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(f"listen {FLOOR_CHANNEL}")
        ready.release()
        while not stop.is_set():
            for note in conn.notifies(timeout=0.2):
                holds.record(int(note.payload), index)


def holder_process(url: str, mode: str, n: int, pipe) -> None:
    """A worker: n RolloutClients (mode "client") or n bare LISTEN threads (mode "bare"); answers the parent's
    commands: ("sync", version), ("arm", key) then the hold times of key, ("stop", None)."""
    quiet_client_log()
    holds = Holds(n)
    clients: list[RolloutClient] = []
    stop = threading.Event()
    threads: list[threading.Thread] = []
    try:
        if mode == "client":
            for i in range(n):  # one at a time: each connect also opens a short-lived probe connection
                client = RolloutClient(url, application_name=f"bench client {os.getpid()}.{i}")

                def killed(old, new, i=i) -> None:
                    if new.kill_switch and (old is None or not old.kill_switch):
                        holds.record(new.version, i)

                client.on_change(killed)
                clients.append(client.start())
                if not client.wait_ready(30):
                    raise RuntimeError(f"client {i} did not load the state")
        else:
            ready = threading.Semaphore(0)
            for i in range(n):
                t = threading.Thread(target=bare_listener, args=(url, i, holds, ready, stop), daemon=True)
                t.start()
                threads.append(t)
            for _ in range(n):
                if not ready.acquire(timeout=30):
                    raise RuntimeError("a bare listener did not start")
        pipe.send(("ready", None))
        while True:
            command, arg = pipe.recv()
            if command == "stop":
                break
            if command == "sync":
                pipe.send(("synced", all(c.wait_for_version(arg, 10) for c in clients)))
            elif command == "arm":
                pipe.send(("armed", None))
                pipe.send(("held", holds.wait(arg, 10)))
    except Exception as exc:  # reported to the parent
        pipe.send(("error", f"{type(exc).__name__}: {exc}"))
    finally:
        stop.set()
        for client in clients:
            client.close()
        for t in threads:
            t.join(timeout=5)


class Workers:
    """The worker processes of one layout and mode."""

    def __init__(self, url: str, mode: str, processes: int, each: int) -> None:
        ctx = mp.get_context("spawn")
        self.n = processes * each
        self.pipes, self.procs = [], []
        for _ in range(processes):
            parent, child = ctx.Pipe()
            proc = ctx.Process(target=holder_process, args=(url, mode, each, child), daemon=True)
            proc.start()
            self.pipes.append(parent)
            self.procs.append(proc)
        for pipe in self.pipes:
            self.expect(pipe, "ready", 120)

    @staticmethod
    def expect(pipe, what: str, timeout: float = 30):
        if not pipe.poll(timeout):
            raise RuntimeError(f"a worker did not answer {what!r} within {timeout:g} s")
        tag, value = pipe.recv()
        if tag == "error":
            raise RuntimeError(f"a worker failed: {value}")
        if tag != what:
            raise RuntimeError(f"a worker answered {tag!r}, expected {what!r}")
        return value

    def sync(self, version: int) -> None:
        for pipe in self.pipes:
            pipe.send(("sync", version))
        if not all(self.expect(pipe, "synced") for pipe in self.pipes):
            raise RuntimeError(f"a client did not reach version {version}")

    def arm(self, key: int) -> None:
        for pipe in self.pipes:
            pipe.send(("arm", key))
        for pipe in self.pipes:
            self.expect(pipe, "armed")

    def held(self) -> list[int]:
        out: list[int] = []
        for pipe in self.pipes:
            out += self.expect(pipe, "held")
        if len(out) != self.n:
            raise RuntimeError(f"{len(out)} of {self.n} holders held it within 10 s")
        return out

    def close(self) -> None:
        for pipe in self.pipes:
            with contextlib.suppress(OSError):
                pipe.send(("stop", None))
        for proc in self.procs:
            proc.join(timeout=30)
            if proc.is_alive():
                proc.kill()


def kill_rounds(ctx: Context, processes: int, each: int, rounds: int, warmup: int) -> dict[str, Latency]:
    """(all hold, first holds, median holder) latencies of the kill to clients, and the bare NOTIFY's all-hold."""
    out: dict[str, list[float]] = {
        k: []
        for k in (
            "call",
            "all",
            "first",
            "median",
            *(f"{f} {w}" for f in ("bare", "durable") for w in ("all", "first", "median")),
        )
    }
    conn = ctx.conn
    with contextlib.suppress(psycopg.Error):  # the days loaded by earlier sections flushed now, not during the rounds
        conn.execute("checkpoint")  # (a superuser or pg_checkpoint; without it the rounds share the disk with it)
    conn.execute("create schema if not exists bench")
    conn.execute("create table if not exists bench.client_ref (id int primary key, version bigint not null)")
    conn.execute("insert into bench.client_ref values (1, 1) on conflict do nothing")
    workers = Workers(ctx.url, "bare", processes, each)
    try:
        with ctx.connect() as floor:
            floor.execute("set synchronous_commit = on")
            cur = floor.cursor()
            for i in range(warmup + rounds):
                for durable in (False, True):
                    key = 2 * i + durable
                    workers.arm(key)
                    t0 = time.monotonic_ns()
                    if durable:
                        with floor.transaction():
                            cur.execute("update bench.client_ref set version = version + 1 where id = 1", prepare=True)
                            cur.execute(f"notify {FLOOR_CHANNEL}, '{key}'")
                    else:
                        cur.execute(f"notify {FLOOR_CHANNEL}, '{key}'")
                    held = workers.held()
                    if i >= warmup:
                        name = "durable" if durable else "bare"
                        out[f"{name} all"].append((max(held) - t0) / 1e6)
                        out[f"{name} first"].append((min(held) - t0) / 1e6)
                        out[f"{name} median"].append((statistics.median(held) - t0) / 1e6)
                    time.sleep(0.005)
    finally:
        workers.close()
    reset(conn)
    workers = Workers(ctx.url, "client", processes, each)
    fed = 0.0
    try:
        cur = conn.cursor()
        with ctx.connect() as feeder:
            feed_current_bucket(feeder)  # ingestion as in production: the evaluation a kill records (issue 19)
            fed = time.monotonic()
        for i in range(warmup + rounds):
            if time.monotonic() - fed > FEED_EVERY:  # untimed, between rounds: one bucket's batch every few seconds
                with ctx.connect() as feeder:
                    feed_current_bucket(feeder)
                fed = time.monotonic()
            version = reset(conn)
            workers.sync(version)
            workers.arm(version + 1)
            t0 = time.monotonic_ns()
            killed = cur.execute(KILL, prepare=True).fetchone()[0]
            t1 = time.monotonic_ns()
            if killed != version + 1:
                raise RuntimeError(f"the kill made version {killed}, expected {version + 1}")
            held = workers.held()
            if i >= warmup:
                out["call"].append((t1 - t0) / 1e6)
                out["all"].append((max(held) - t0) / 1e6)
                out["first"].append((min(held) - t0) / 1e6)
                out["median"].append((statistics.median(held) - t0) / 1e6)
            time.sleep(0.005)
    finally:
        workers.close()
        reset(conn)
    return {k: Latency(v) for k, v in out.items()}
