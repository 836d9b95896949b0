"""A PostgreSQL server to use (:class:`Server`) and the error when none can be had (:class:`ServerUnavailable`).

Shared by ``chat_rollout.server`` (which chooses the server) and ``chat_rollout.server_pg16`` (the PostgreSQL 16
throwaway server); import them from ``chat_rollout.server``.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import quote, urlsplit, urlunsplit

import psycopg


class ServerUnavailable(RuntimeError):
    """No server can be had this way; the message says why."""


@dataclass
class Server:
    """A PostgreSQL server to use: where it is, where it came from and how to let it go."""

    url: str
    source: str
    bin_dir: Path | None = None
    _release: Callable[[], None] | None = field(default=None, repr=False)

    def url_for(self, dbname: str) -> str:
        """The same server's URI with another database name."""
        return with_database(self.url, dbname)

    def version(self) -> str:
        with psycopg.connect(self.url, autocommit=True) as conn:
            return conn.execute("select version()").fetchone()[0]

    def version_num(self) -> int:
        with psycopg.connect(self.url, autocommit=True) as conn:
            return int(conn.execute("show server_version_num").fetchone()[0])

    def tool(self, name: str) -> str:
        """Path of a client program (psql, pg_dump) that matches this server where we know one."""
        if self.bin_dir is not None and (self.bin_dir / name).exists():
            return str(self.bin_dir / name)
        found = shutil.which(name)
        if found is None:
            raise ServerUnavailable(f"{name} is not installed (apt-get install postgresql-client)")
        return found

    def release(self) -> None:
        if self._release is not None:
            self._release()
            self._release = None


def with_database(url: str, dbname: str) -> str:
    """Replace the database of a libpq URI (postgresql://...) or key=value conninfo."""
    if "://" in url:
        parts = urlsplit(url)
        return urlunsplit((parts.scheme, parts.netloc, "/" + quote(dbname), parts.query, parts.fragment))
    return psycopg.conninfo.make_conninfo(url, dbname=dbname)
