"""The client's one database connection: opened, LISTENing, loading the state, and waiting without a busy loop.

:class:`Link` wraps one autocommit psycopg connection (prepared statements off, TCP keepalives, a statement timeout
for the poll). With ``listen=True`` it is opened through :func:`chat_rollout.connect.connect`, which refuses a
declared transaction pool and proves that a notification reaches the connection (a LISTEN through a transaction
pool hears nothing) before LISTENing on ``chat_v11_rollout`` and ``chat_v11_assignment``.

Notifications reach the client two ways, both on the client's thread: while a query runs, psycopg hands them to a
notify handler (registered here); while idle, :meth:`Link.wait` blocks in ``select()`` on the connection's socket and
a wake-up socket, then reads them with libpq (``consume_input`` / ``notifies``). Either way they are only queued
(``deliver``): the client applies them after the query, never inside it.
"""

from __future__ import annotations

import select
import socket
from collections.abc import Callable

import psycopg
from psycopg import sql

from chat_rollout import connect as connecting
from chat_rollout.client.state import ASSIGNMENT_CHANNEL, LOAD_SQL, LOAD_SQL_NO_POLICY, ROLLOUT_CHANNEL, RolloutState

#: TCP keepalives (an idle connection) and a user timeout (unacknowledged data, e.g. a poll in flight): a silently
#: dead peer (a network cut with no RST) is noticed within about a minute rather than the kernel's quarter of an hour.
KEEPALIVES = {
    "keepalives": 1,
    "keepalives_idle": 15,
    "keepalives_interval": 5,
    "keepalives_count": 4,
    "tcp_user_timeout": 30_000,
}


class Link:
    """One open connection of the client; any psycopg.Error or OSError from it means: drop it and reconnect."""

    def __init__(
        self,
        dsn: str,
        *,
        listen: bool,
        connect_timeout: float,
        application_name: str,
        statement_timeout: float,
        deliver: Callable[[psycopg.Notify], None],
    ) -> None:
        kwargs = {
            "autocommit": True,
            "prepare_threshold": None,
            "connect_timeout": max(1, round(connect_timeout)),
            "application_name": application_name,
            **KEEPALIVES,
        }
        self.deliver = deliver
        self.listening = listen
        self.has_policy = True
        if listen:
            self.conn = connecting.connect(dsn, listen=True, what="RolloutClient", **kwargs)
        else:
            self.conn = psycopg.connect(dsn, **kwargs)
        try:
            self.conn.add_notify_handler(self._during_query)
            self.conn.execute(
                "select set_config('statement_timeout', %s, false)", (f"{int(statement_timeout * 1000)}",)
            )
            if listen:
                for channel in (ROLLOUT_CHANNEL, ASSIGNMENT_CHANNEL):
                    self.conn.execute(sql.SQL("listen {}").format(sql.Identifier(channel)))
        except BaseException:
            self.conn.close()
            raise
        self.backend_pid: int = self.conn.info.backend_pid

    def _during_query(self, notify: psycopg.Notify) -> None:
        self.deliver(notify)

    def load(self) -> RolloutState:
        """The state and the salt now, in one query (the default salt before revision 0011)."""
        if self.has_policy:
            try:
                row = self.conn.execute(LOAD_SQL).fetchone()
            except psycopg.errors.UndefinedFunction:
                self.has_policy = False
        if not self.has_policy:
            row = self.conn.execute(LOAD_SQL_NO_POLICY).fetchone()
        if row is None:
            raise psycopg.DataError("chat_get_v11_rollout_state() returned no row")
        return RolloutState.from_row(row)

    def wait(self, wake: socket.socket, timeout: float) -> bool:
        """Block until a notification, a wake-up or the timeout; queue what arrived. True when woken up.

        Raises psycopg.OperationalError when the connection is gone (EOF, reset, a terminated backend).
        """
        pgconn = self.conn.pgconn
        readable, _, _ = select.select([pgconn.socket, wake], [], [], max(0.0, timeout))
        if pgconn.socket in readable:
            pgconn.consume_input()
            self.drain()
            if pgconn.status != psycopg.pq.ConnStatus.OK:
                raise psycopg.OperationalError("the connection to the server was lost")
        return wake in readable

    def drain(self) -> None:
        """Queue the notifications libpq has already read."""
        pgconn = self.conn.pgconn
        encoding = self.conn.info.encoding
        while (n := pgconn.notifies()) is not None:
            self.deliver(psycopg.Notify(n.relname.decode(encoding), n.extra.decode(encoding), n.be_pid))

    def close(self) -> None:
        self.conn.close()
