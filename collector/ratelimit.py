"""Rate limits kept in the database, so every server process (`collector serve --workers N`,
or several machines behind a load balancer) counts against the same limit.

Fixed windows: a counter per (key, window start), raised with one upsert that returns the
new count. Old windows are deleted as new ones begin.

    >>> from datetime import datetime, timezone
    >>> import sqlalchemy as sa
    >>> limiter = RateLimiter(sa.create_engine("sqlite://"))
    >>> t = datetime(2026, 3, 2, 9, 0, tzinfo=timezone.utc)
    >>> [limiter.hit("addr:10.0.0.1", limit=2, window=60, now=t) for _ in range(3)]
    [None, None, 60]
"""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite

__all__ = ["RateLimiter", "rate_metadata", "ENROL_PER_ADDRESS", "ENROL_PER_DEVICE", "ENROL_WINDOW_S"]

#: Enrolment attempts per source address per window: a technician enrolling a site's
#: kiosks from one laptop stays well under it; a guesser gets 30 tries per 10 minutes.
ENROL_PER_ADDRESS = 30
#: Enrolment attempts naming one device id per window, from any address.
ENROL_PER_DEVICE = 10
ENROL_WINDOW_S = 600

rate_metadata = sa.MetaData()
rate_counts = sa.Table(
    "rate_counts", rate_metadata,
    sa.Column("bucket", sa.String(200), primary_key=True),
    sa.Column("window_start", sa.BigInteger(), primary_key=True),  # epoch seconds
    sa.Column("hits", sa.Integer(), nullable=False),
)


class RateLimiter:
    """Counters in `rate_counts` on `engine` (created if missing)."""

    def __init__(self, engine: sa.Engine) -> None:
        self.engine = engine
        rate_metadata.create_all(engine)
        self._insert = postgresql.insert if engine.dialect.name == "postgresql" else sqlite.insert

    def hit(self, key: str, *, limit: int, window: int, now: datetime) -> int | None:
        """Count one attempt under `key`; None if within `limit`, else the seconds until the
        window ends (for Retry-After)."""
        t = int(now.timestamp())
        start = t - t % window
        stmt = self._insert(rate_counts).values(bucket=key[:200], window_start=start, hits=1)
        stmt = stmt.on_conflict_do_update(index_elements=["bucket", "window_start"],
                                          set_={"hits": rate_counts.c.hits + 1}).returning(rate_counts.c.hits)
        with self.engine.begin() as conn:
            hits = conn.execute(stmt).scalar_one()
            if hits == 1:  # the first hit of a new window: forget windows that ended
                conn.execute(rate_counts.delete().where(rate_counts.c.window_start < start - window))
        return None if hits <= limit else max(1, start + window - t)
