"""The application client (SPEC 8): ``in_canary`` throughput, a kill reaching 50 clients, recovery after a restart.

- ``in_canary``: calls per second of ``RolloutClient.in_canary(key)`` on a started client (state at canary_25, kill
  switch off: every call hashes), one thread, distinct keys ``user-<n>``; floors in the same run: the bare rule
  ``assignment.in_canary(assignment.bucket(salt, key), percent, False)`` and a bare ``hashlib.sha256`` of the
  same bytes (``salt:key``, encoded beforehand). Best of 3 interleaved passes of each.
- Kill to 50 clients: 50 ``RolloutClient`` s connected to the bench database, in worker processes (one process of 50
  clients, and 5 processes of 10: 50 client threads in one process take turns on the GIL). Each round the state
  is reset to stage off, kill switch off (as the owner, through ``chat_v11.lock_state``/``apply_transition``;
  every client holds that version first), then the operator's kill ``chat_set_v11_rollout_state('off', true,
  'kill')`` runs; the time runs from just before the kill call to the moment the last of the 50 clients holds the
  kill (its ``on_change`` callback, which runs after the new state is published). Clocks: ``time.monotonic_ns``
  (CLOCK_MONOTONIC, one clock for every process of the machine). Floor, same layout, same run: a bare
  ``NOTIFY`` to 50 psycopg connections LISTENing in threads of the same worker processes, until the last holds it.
  The two are measured one after the other (the server's 100 connections cannot hold both sets at once).
- Restart: a private PostgreSQL cluster (the binaries of the bench server when they are on this machine), initdb'ed
  in a temporary folder, migrated, one client connected; ``pg_ctl stop -m fast``, ``pg_ctl start``; from the moment
  the server accepts connections again (polled every 5 ms) a state change is committed at once, and the time runs
  until the client holds it: reconnected and reloaded. With ``backoff_initial`` 1.0 (the default) and 0.2.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import multiprocessing as mp
import os
import shutil
import statistics
import tempfile
import threading
import time
from pathlib import Path

import psycopg

from chat_rollout import migrate
from chat_rollout.client import RolloutClient, assignment
from chat_rollout.server import (
    PG16_OS_USERS,
    ServerUnavailable,
    _free_port,
    _run_pg,
    closed_folder,
)

from .common import Context, Latency, Section, SummaryRow, count, ms, table

TITLE = "Application client"
KILL = "select version from public.chat_set_v11_rollout_state('off', true, 'kill')"
RESET = (
    "select version from chat_v11.apply_transition('rollback', %s, false, false, 'benchmark reset', null, null, null)"
)
FLOOR_CHANNEL = "bench_client_floor"
CLIENTS = 50
KILL_P99_TARGET = 10.0  # ms: SPEC 6, kill start -> 50 connected application clients hold it
LAYOUTS = [(1, 50), (5, 10)]  # (processes, clients each)
BACKOFFS = [1.0, 0.2]


def quiet_client_log() -> None:
    """The client logs each lost connection as a warning: expected here (the restarts), not worth the noise."""
    logging.getLogger("chat_rollout.client").setLevel(logging.ERROR)


# --- in_canary throughput -------------------------------------------------------------------------------------------


def reset(conn: psycopg.Connection, stage: str = "off") -> int:
    """The state to ``stage``, kill switch off, as the owner (the bench's own setting); the new version."""
    with conn.transaction():
        conn.execute("select chat_v11.lock_state()")
        return conn.execute(RESET, (stage,)).fetchone()[0]


def rate(fn, items: list, seconds: float) -> float:
    """Calls per second of ``fn`` over ``items`` (cycled) for about ``seconds``."""
    done, t0 = 0, time.perf_counter()
    while True:
        for item in items:
            fn(item)
        done += len(items)
        elapsed = time.perf_counter() - t0
        if elapsed >= seconds:
            return done / elapsed


def throughput(ctx: Context, seconds: float) -> dict[str, float]:
    version = reset(ctx.conn, "canary_25")
    keys = [f"user-{n}" for n in range(10_000)]
    with RolloutClient(ctx.url) as client:
        if not client.wait_ready(10) or not client.wait_for_version(version, 10):
            raise RuntimeError("the client did not load the state")
        state = client.state
        salt, percent = state.salt, state.traffic_percent
        data = [f"{salt}:{k}".encode() for k in keys]
        sha256 = hashlib.sha256
        bucket, rule = assignment.bucket, assignment.in_canary
        inside = sum(client.in_canary(k) for k in keys)
        if inside != sum(rule(bucket(salt, k), percent, False) for k in keys):
            raise RuntimeError("the client and the bare rule disagree")
        runs: dict[str, list[float]] = {"client": [], "rule": [], "sha256": []}
        for _ in range(3):
            runs["client"].append(rate(client.in_canary, keys, seconds))
            runs["rule"].append(rate(lambda k: rule(bucket(salt, k), percent, False), keys, seconds))
            runs["sha256"].append(rate(lambda b: sha256(b).digest(), data, seconds))
    reset(ctx.conn)
    return {name: max(values) for name, values in runs.items()} | {"inside": inside / len(keys)}


# --- kill to 50 clients ---------------------------------------------------------------------------------------------


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
    try:
        cur = conn.cursor()
        for i in range(warmup + rounds):
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


# --- recovery after a restart ----------------------------------------------------------------------------------------


def server_bin_dir(ctx: Context) -> Path:
    """The bench server's binaries when they are on this machine: its own (embedded), else pg_config's BINDIR."""
    candidates = [ctx.server.bin_dir] if ctx.server.bin_dir is not None else []
    with contextlib.suppress(psycopg.Error):
        candidates.append(Path(ctx.conn.execute("select setting from pg_config where name = 'BINDIR'").fetchone()[0]))
    for path in candidates:
        if path is not None and all((Path(path) / tool).is_file() for tool in ("initdb", "pg_ctl", "postgres")):
            return Path(path)
    raise ServerUnavailable("the bench server's binaries (initdb, pg_ctl) are not on this machine")


def os_user(bin_dir: Path) -> str | None:
    """Who runs the private cluster: ourselves, unless root (PostgreSQL refuses): then a user who can reach bin_dir."""
    if os.name != "posix" or os.geteuid() != 0:
        return None
    import pwd

    for name in (*PG16_OS_USERS, "embedded_postgres"):
        with contextlib.suppress(KeyError):
            pwd.getpwnam(name)
            if closed_folder(bin_dir, name) is None:
                return name
    raise ServerUnavailable(f"we run as root and no OS user of {PG16_OS_USERS} can run the binaries of {bin_dir}")


class PrivateServer:
    """A throwaway cluster in a temporary folder on a free 127.0.0.1 port (trust auth), stopped and started at will."""

    def __init__(self, bin_dir: Path) -> None:
        self.bin_dir, self.user = bin_dir, os_user(bin_dir)
        self.base = Path(tempfile.mkdtemp(prefix="chat-rollout-bench-client-"))
        self.data, sockets, self.log = self.base / "data", self.base / "sock", self.base / "postgres.log"
        os.chmod(self.base, 0o755)
        sockets.mkdir(mode=0o700)
        if self.user is not None:
            import pwd

            pw = pwd.getpwnam(self.user)
            for path in (self.base, sockets):
                os.chown(path, pw.pw_uid, pw.pw_gid)
        try:
            self.pg("initdb", "-D", str(self.data), "-U", "postgres", "--auth=trust", "-E", "UTF8", "--no-sync")
            self.port = _free_port()
            with open(self.data / "postgresql.conf", "a") as conf:
                conf.write(
                    f"listen_addresses = '127.0.0.1'\nport = {self.port}\nunix_socket_directories = "
                    f"'{sockets}'\nfsync = off\n"
                )
            self.pg("pg_ctl", "-D", str(self.data), "-l", str(self.log), "-w", "-t", "60", "start")
        except BaseException:
            self.release()
            raise
        self.url = f"postgresql://postgres@127.0.0.1:{self.port}/postgres"

    def pg(self, tool: str, *args: str) -> str:
        return _run_pg(self.bin_dir, self.user, self.base, tool, *args)

    def stop(self) -> None:
        self.pg("pg_ctl", "-D", str(self.data), "-m", "fast", "-w", "-t", "60", "stop")

    def start_nowait(self) -> None:
        self.pg("pg_ctl", "-D", str(self.data), "-l", str(self.log), "-W", "start")

    def wait_accepting(self, timeout: float = 60) -> int:
        """Poll a connection every 5 ms until one succeeds; the monotonic ns of that success."""
        deadline = time.monotonic() + timeout
        while True:
            try:
                with psycopg.connect(self.url, autocommit=True, connect_timeout=2):
                    return time.monotonic_ns()
            except psycopg.OperationalError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.005)

    def release(self) -> None:
        if (self.data / "postmaster.pid").exists():
            with contextlib.suppress(ServerUnavailable):
                self.stop()
        shutil.rmtree(self.base, ignore_errors=True)


def recovery(ctx: Context, rounds: int) -> dict[float, dict[str, list[float]]]:
    """Per backoff_initial: seconds down (stop start -> accepting), and up -> client holds the change, stop -> holds."""
    server = PrivateServer(server_bin_dir(ctx))
    out: dict[float, dict[str, list[float]]] = {}
    try:
        ctx.log(f"  private cluster on port {server.port}: alembic upgrade head")
        migrate.upgrade(server.url)
        for initial in BACKOFFS:
            got = out.setdefault(initial, {"down": [], "up to held": [], "stop to held": [], "reconnects": []})
            with RolloutClient(server.url, backoff_initial=initial) as client:
                if not client.wait_ready(30):
                    raise RuntimeError("the client did not load the state on the private cluster")
                for _ in range(rounds):
                    before = client.stats["reconnects"]
                    t_stop = time.monotonic_ns()
                    server.stop()
                    server.start_nowait()
                    t_up = server.wait_accepting()
                    with psycopg.connect(server.url, autocommit=True) as conn:
                        version = reset(conn)
                    if not client.wait_for_version(version, 120):
                        raise RuntimeError(f"the client did not recover within 120 s (backoff {initial})")
                    t_held = time.monotonic_ns()
                    if not client.connected:
                        raise RuntimeError("the client holds the new version but says it is not connected")
                    got["down"].append((t_up - t_stop) / 1e9)
                    got["up to held"].append((t_held - t_up) / 1e9)
                    got["stop to held"].append((t_held - t_stop) / 1e9)
                    got["reconnects"].append(client.stats["reconnects"] - before)
    finally:
        server.release()
    return out


# --- the section ------------------------------------------------------------------------------------------------------


def run(ctx: Context) -> Section:
    smoke = getattr(ctx.args, "smoke", False)
    quiet_client_log()
    seconds = 0.1 if smoke else 1.0
    rounds, warmup = (5, 1) if smoke else (300, 10)
    restarts = 1 if smoke else 3
    section = Section(TITLE)

    rates = throughput(ctx, seconds)
    ctx.log(
        f"  in_canary: {rates['client']:,.0f} calls/s (bare rule {rates['rule']:,.0f}, bare sha256 "
        f"{rates['sha256']:,.0f})"
    )

    kills: dict[tuple[int, int], dict[str, Latency]] = {}
    for processes, each in LAYOUTS:
        lat = kill_rounds(ctx, processes, each, rounds, warmup)
        kills[(processes, each)] = lat
        ctx.log(
            f"  kill -> {CLIENTS} clients in {processes} process(es): p50 {lat['all'].p50:.3f} ms, p99 "
            f"{lat['all'].p99:.3f} ms (bare NOTIFY p99 {lat['bare all'].p99:.3f} ms, durable UPDATE + NOTIFY p99 "
            f"{lat['durable all'].p99:.3f} ms; the kill call alone p50 "
            f"{lat['call'].p50:.3f} ms, p99 {lat['call'].p99:.3f} ms; load {os.getloadavg()[0]:.2f})"
        )

    restart_error = None
    try:
        restart = recovery(ctx, restarts)
        for initial, got in restart.items():
            ctx.log(
                f"  restart, backoff_initial {initial:g}: up -> held median "
                f"{statistics.median(got['up to held']):.2f} s"
            )
    except (ServerUnavailable, RuntimeError, psycopg.Error, OSError) as exc:
        restart, restart_error = {}, f"{type(exc).__name__}: {exc}"
        ctx.log(f"  restart not measured: {restart_error}")

    target = not smoke
    headline = kills[LAYOUTS[-1]]
    head_procs, head_each = LAYOUTS[-1]
    section.summary += [
        SummaryRow(
            "`RolloutClient.in_canary` calls/s, one thread",
            f"{count(rates['client'])} calls/s "
            f"({rates['client'] / rates['rule']:.2f} x bare bucket + rule, {rates['client'] / rates['sha256']:.2f}"
            " x bare sha256)",
        ),
        SummaryRow(
            f"kill call start -> {CLIENTS} connected clients hold it, p99 ({head_procs} processes x {head_each})",
            f"{ms(headline['all'].p99)} ({headline['all'].p99 / headline['bare all'].p99:.1f} x bare NOTIFY, "
            f"{headline['all'].p99 / headline['durable all'].p99:.1f} x durable UPDATE + NOTIFY to {CLIENTS} "
            f"listeners; the kill call alone {ms(headline['call'].p99)})",
            f"<= {KILL_P99_TARGET:g} ms",
            headline["all"].p99 <= KILL_P99_TARGET if target else None,
        ),
    ]
    for (processes, each), lat in kills.items():
        if (processes, each) != LAYOUTS[-1]:
            section.summary.append(
                SummaryRow(
                    f"kill call start -> {CLIENTS} clients hold it, p99 ({processes} process x {each} threads)",
                    f"{ms(lat['all'].p99)} ({lat['all'].p99 / lat['bare all'].p99:.1f} x bare NOTIFY, "
                    f"{lat['all'].p99 / lat['durable all'].p99:.1f} x durable UPDATE + NOTIFY)",
                )
            )
    for initial, got in restart.items():
        section.summary.append(
            SummaryRow(
                f"client recovery after a server restart, backoff_initial {initial:g} s, median",
                f"{statistics.median(got['up to held']):.2f} s from the server accepting connections "
                f"({statistics.median(got['stop to held']):.2f} s from the stop)",
            )
        )

    section.body += [
        "`RolloutClient.in_canary(key)` on a started client holding stage canary_25 (kill switch off: every call "
        f"hashes), one thread, 10,000 distinct keys `user-<n>` cycled, about {seconds:g} s per pass, best of 3 "
        "interleaved passes. Floors in the same run: the bare rule `assignment.in_canary(assignment.bucket(salt, "
        "key), percent, False)` and a bare `hashlib.sha256(b).digest()` of the same bytes `salt:key`, encoded "
        f"beforehand. {rates['inside']:.1%} of the keys are in (target share 25 %).",
        "",
        *table(
            ["call", "calls/s", "÷ bare rule", "÷ bare sha256"],
            [
                [
                    "`client.in_canary(key)`",
                    count(rates["client"]),
                    f"{rates['client'] / rates['rule']:.2f}",
                    f"{rates['client'] / rates['sha256']:.2f}",
                ],
                [
                    "bare `in_canary(bucket(salt, key), percent, False)`",
                    count(rates["rule"]),
                    "1",
                    f"{rates['rule'] / rates['sha256']:.2f}",
                ],
                ["bare `sha256(salt:key bytes).digest()`", count(rates["sha256"]), "", "1"],
            ],
            "lrrr",
        ),
        "",
        f"Kill to {CLIENTS} clients: {CLIENTS} `RolloutClient` s (defaults: LISTEN, poll every 5 s) connected to "
        "the bench database from worker processes. Each round the state is reset to stage off, kill switch off "
        "(owner, `chat_v11.apply_transition`), every client holds that version, then `" + KILL + "` runs; the time "
        f"runs from just before the call to the moment the last of the {CLIENTS} clients holds the kill (its "
        "`on_change` callback, which runs after the new state is published to `in_canary`). "
        f"{warmup} warm-up rounds, then {rounds} timed. Clock: `time.monotonic_ns` (CLOCK_MONOTONIC, shared by "
        f"the processes). Floors: `notify {FLOOR_CHANNEL}` (autocommit, no write), and a durable transaction "
        "`update` of a one-row table + the same `notify` (`synchronous_commit = on`, as the kill's commit), each "
        f"to {CLIENTS} psycopg connections LISTENing in threads of the same layout of worker processes, until the "
        "first / median / last holds it (the two floors interleaved, in the rounds just before the clients': the "
        "server's 100 connections cannot hold the listeners and the clients at once). The kill's own call time "
        "(its durable commit, which the notification waits for) is in the last row of each layout. 50 client "
        "threads in one process take turns on the GIL to read and apply the notification; 5 processes of 10 "
        "spread them over the CPUs (the summary's figure).",
        "",
        *table(
            [
                "layout",
                "measure",
                "p50",
                "p99",
                "n",
                "bare NOTIFY p50",
                "p99",
                "durable UPDATE + NOTIFY p50",
                "p99",
                "p99 ÷ bare",
                "p99 ÷ durable",
            ],
            [
                [
                    f"{p} x {e}",
                    label,
                    ms(lat[key].p50),
                    ms(lat[key].p99),
                    str(lat[key].n),
                    *(
                        [
                            ms(lat[f"bare {floor}"].p50),
                            ms(lat[f"bare {floor}"].p99),
                            ms(lat[f"durable {floor}"].p50),
                            ms(lat[f"durable {floor}"].p99),
                            f"{lat[key].p99 / lat[f'bare {floor}'].p99:.1f}",
                            f"{lat[key].p99 / lat[f'durable {floor}'].p99:.1f}",
                        ]
                        if floor
                        else [""] * 6
                    ),
                ]
                for (p, e), lat in kills.items()
                for label, key, floor in (
                    ("kill start -> the last client holds it", "all", "all"),
                    ("kill start -> the median client holds it", "median", "median"),
                    ("kill start -> the first client holds it", "first", "first"),
                    ("the kill call itself (start -> its row, durable commit included)", "call", None),
                )
            ],
            "llrrrrrrrrr",
        ),
        "",
    ]
    if restart_error is not None:
        section.body.append(f"Restart: not measured here ({restart_error}).")
    else:
        section.body += [
            "Restart: a private cluster (the bench server's binaries, `initdb` in a temporary folder, `fsync = off`, "
            "migrated), one client connected (poll every 5 s, jitter 0.2). `pg_ctl stop -m fast`, then `pg_ctl start`; "
            "the server is polled every 5 ms until it accepts a connection, then a state change is committed at "
            "once; the time runs until the client holds it (reconnected after its backoff, LISTENing, reloaded). "
            f"{restarts} restart(s) per backoff; the client's reconnect delays are backoff_initial, then twice it, "
            "each plus up to 20 % jitter, so the recovery is about the first delay that ends after the server is "
            "back.",
            "",
            *table(
                [
                    "backoff_initial",
                    "server down (stop -> accepting), median",
                    "accepting -> client holds, median",
                    "max",
                    "stop -> client holds, median",
                    "reconnects per restart",
                ],
                [
                    [
                        f"{initial:g} s",
                        f"{statistics.median(got['down']):.2f} s",
                        f"{statistics.median(got['up to held']):.2f} s",
                        f"{max(got['up to held']):.2f} s",
                        f"{statistics.median(got['stop to held']):.2f} s",
                        ", ".join(str(n) for n in got["reconnects"]),
                    ]
                    for initial, got in restart.items()
                ],
                "lrrrrl",
            ),
        ]
    return section
