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

from django.db.backends.postgresql import base
from psycopg import pq


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
        readable, _, _ = select.select([pgconn.socket], [], [], 0)
        if readable:
            return bool(super().is_usable())
        return True
