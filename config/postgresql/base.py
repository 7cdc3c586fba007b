"""Django's PostgreSQL backend; only the health check of a reused connection differs.

With CONN_HEALTH_CHECKS, Django checks a persistent connection before each request's first
query by running `SELECT 1`: a round trip on every request, a tenth of an API worker's time.
Here an idle connection is asked only when something is waiting to be read on its socket:
a connection the server closed (restart, idle timeout, pg_terminate_backend) has its goodbye
or end-of-file waiting, and then the real check runs and fails. A connection that looks
healthy but is not (a silent network drop) fails its first query, as it would have failed
the `SELECT 1`.
"""

from __future__ import annotations

import select
import sys

from django.db.backends.postgresql import base
from psycopg import pq


def socket_readable(fd: int, timeout: float = 0.0) -> bool:
    """Whether the server has sent something (or closed) on this socket, waiting up to timeout.

    poll, not select: select() raises ValueError for a descriptor above 1023, which a busy
    process (many files, sockets, threads) reaches, and the check would fail the request.
    """
    if sys.platform == "win32":  # no poll() there; descriptors are not small integers either
        return bool(select.select([fd], [], [], timeout)[0])
    poller = select.poll()
    poller.register(fd, select.POLLIN | select.POLLERR | select.POLLHUP)
    return bool(poller.poll(int(timeout * 1000)))


class DatabaseWrapper(base.DatabaseWrapper):
    def is_usable(self) -> bool:
        conn = self.connection
        if conn is None or conn.closed:
            return False
        pgconn = conn.pgconn
        if (
            pgconn.status != pq.ConnStatus.OK
            or pgconn.transaction_status != pq.TransactionStatus.IDLE
        ):
            return bool(super().is_usable())
        # A close the server has not yet sent, or that is still in flight, cannot be seen from
        # here (nor by Django's SELECT 1 a moment earlier): the first query then fails, Django
        # marks the error and closes the connection at the end of that request.
        if socket_readable(pgconn.socket):
            return bool(super().is_usable())
        return True
