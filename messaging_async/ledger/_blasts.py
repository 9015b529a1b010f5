"""The storage of blasts across machines (``messaging_async.workers``), in the PostgreSQL
ledger's schema: a blast, its slices (each tied to its Procrastinate job), and its
recipients waiting to be sent.

Asyncio only (a pool of psycopg's async connections), like Procrastinate, which shares
the database:
a slice's recipients are staged and its task deferred in one transaction, so a submission
killed half-way leaves whole slices, each with its task. A recipient's number and text are
here only until its slice is done (a worker on another machine must read them), then they
are deleted; what the ledger keeps of them is what it always keeps (a fingerprint, unless
``store_text``).
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, Sequence
from contextlib import AbstractAsyncContextManager
from types import TracebackType
from typing import TYPE_CHECKING, Any, NamedTuple, Self

from psycopg import sql

from ..errors import LedgerError
from ._pg_schema import DEFAULT_SCHEMA

if TYPE_CHECKING:
    import psycopg
    import psycopg_pool

__all__ = ["Blast", "BlastStore", "Input"]

RUNNING, STOPPED, CANCELLED = "running", "stopped", "cancelled"


class Blast(NamedTuple):
    name: str
    gateway: str
    slice_size: int
    total: int
    slices: int
    submitted: bool
    state: str  # running, stopped (a fatal answer), cancelled
    reason: str | None


class Input(NamedTuple):
    """One staged recipient: its position in the blast, wire number and text."""

    position: int
    number: str
    text: str

    def __repr__(self) -> str:  # the text may be personal: never in a repr
        return f"Input(position={self.position})"


class BlastStore:
    """Blasts in the database at ``dsn`` (the ledger's schema, migrated on open)."""

    def __init__(self, dsn: str, *, schema: str = DEFAULT_SCHEMA):
        self._dsn, self.schema = dsn, schema
        self._pool: psycopg_pool.AsyncConnectionPool | None = None

    async def __aenter__(self) -> Self:
        import anyio.to_thread
        import psycopg_pool

        from ._postgres import connect

        (await anyio.to_thread.run_sync(connect, self._dsn, self.schema)).close()  # migrated
        pool = psycopg_pool.AsyncConnectionPool(
            self._dsn, min_size=1, max_size=4, kwargs={"autocommit": True}, open=False
        )
        await pool.open()
        self._pool = pool
        return self

    async def __aexit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        pool, self._pool = self._pool, None
        if pool is not None:
            await pool.close()

    def connection(self) -> AbstractAsyncContextManager[psycopg.AsyncConnection[Any]]:
        """A connection of the pool (autocommit), for the time of one call."""
        if self._pool is None:
            raise LedgerError("the blast store is not open: use `async with BlastStore(...)`")
        return self._pool.connection()

    async def _one(self, query: sql.Composed, args: Sequence[Any]) -> Any:
        async with self.connection() as conn:
            return await (await conn.execute(query, args)).fetchone()

    async def _all(self, query: sql.Composed, args: Sequence[Any]) -> list[Any]:
        async with self.connection() as conn:
            return await (await conn.execute(query, args)).fetchall()

    def _q(self, text: str) -> sql.Composed:
        """``text`` with ``{s}`` standing for the ledger's schema."""
        return sql.SQL(text).format(s=sql.Identifier(self.schema))

    async def create(self, name: str, gateway: str, slice_size: int) -> Blast:
        """The blast ``name``, made now if new; a blast on another gateway is refused."""
        await self._one(
            self._q(
                "INSERT INTO {s}.blasts (name, gateway, slice_size, created_at)"
                " VALUES (%s, %s, %s, %s) ON CONFLICT (name) DO NOTHING RETURNING name"
            ),
            (name, gateway, slice_size, time.time()),
        )
        blast = await self.blast(name)
        assert blast is not None
        if blast.gateway != gateway:
            raise LedgerError(
                f"blast {name!r} was submitted for {blast.gateway}, not {gateway}: "
                "use a new job name"
            )
        return blast

    async def blast(self, name: str) -> Blast | None:
        row = await self._one(
            self._q(
                "SELECT name, gateway, slice_size, total, slices, submitted, state, reason"
                " FROM {s}.blasts WHERE name = %s"
            ),
            (name,),
        )
        return None if row is None else Blast(*row)

    async def staged(self, name: str) -> tuple[int, int]:
        """How many slices, and recipients, a submission of ``name`` staged so far."""
        row = await self._one(
            self._q(
                "SELECT count(*), coalesce(sum(size), 0) FROM {s}.blast_slices WHERE blast = %s"
            ),
            (name,),
        )
        return int(row[0]), int(row[1])

    async def stage_slice(
        self,
        name: str,
        number: int,
        start: int,
        inputs: Sequence[Input],
        defer: Callable[[psycopg.AsyncConnection[Any]], Awaitable[int]],
    ) -> None:
        """Stage one slice's recipients and defer its task (``defer(connection)`` returns
        the Procrastinate job id), in one transaction."""
        async with self.connection() as conn, conn.transaction():
            async with conn.cursor() as cursor:
                await cursor.executemany(
                    self._q(
                        "INSERT INTO {s}.blast_inputs (blast, position, number, text)"
                        " VALUES (%s, %s, %s, %s)"
                    ),
                    [(name, *row) for row in inputs],
                )
            task = await defer(conn)
            await conn.execute(
                self._q(
                    "INSERT INTO {s}.blast_slices (blast, slice, start, size, task)"
                    " VALUES (%s, %s, %s, %s, %s)"
                ),
                (name, number, start, len(inputs), task),
            )

    async def finish_submission(self, name: str) -> Blast:
        await self._one(
            self._q(
                "UPDATE {s}.blasts SET submitted = TRUE,"
                " slices = (SELECT count(*) FROM {s}.blast_slices WHERE blast = %s),"
                " total = (SELECT coalesce(sum(size), 0) FROM {s}.blast_slices WHERE blast = %s)"
                " WHERE name = %s RETURNING name"
            ),
            (name, name, name),
        )
        blast = await self.blast(name)
        assert blast is not None
        return blast

    async def slice_of(self, name: str, number: int) -> list[Input] | None:
        """A slice's recipients, in order; ``None`` if the slice is done (or unknown)."""
        row = await self._one(
            self._q(
                "SELECT start, size FROM {s}.blast_slices WHERE blast = %s AND slice = %s"
                " AND NOT done"
            ),
            (name, number),
        )
        if row is None:
            return None
        rows = await self._all(
            self._q(
                "SELECT position, number, text FROM {s}.blast_inputs WHERE blast = %s"
                " AND position >= %s AND position < %s ORDER BY position"
            ),
            (name, row[0], row[0] + row[1]),
        )
        return [Input(int(position), number, text) for position, number, text in rows]

    async def slice_done(self, name: str, number: int) -> None:
        """The slice's recipients all have their final outcome: their inputs go."""
        async with self.connection() as conn, conn.transaction():
            found = await conn.execute(
                self._q(
                    "UPDATE {s}.blast_slices SET done = TRUE WHERE blast = %s AND slice = %s"
                    " RETURNING start, size"
                ),
                (name, number),
            )
            row = await found.fetchone()
            if row is not None:
                await conn.execute(
                    self._q(
                        "DELETE FROM {s}.blast_inputs WHERE blast = %s"
                        " AND position >= %s AND position < %s"
                    ),
                    (name, row[0], row[0] + row[1]),
                )

    async def stop(self, name: str, state: str, reason: str) -> bool:
        """Stop a running blast (``stopped``: a fatal answer; ``cancelled``); False if it
        was stopped already."""
        row = await self._one(
            self._q(
                "UPDATE {s}.blasts SET state = %s, reason = %s WHERE name = %s"
                " AND state = 'running' RETURNING name"
            ),
            (state, reason, name),
        )
        return row is not None

    async def open_slices(self, name: str) -> list[tuple[int, int | None]]:
        """The slices not done, with their Procrastinate job ids."""
        rows = await self._all(
            self._q(
                "SELECT slice, task FROM {s}.blast_slices WHERE blast = %s AND NOT done"
                " ORDER BY slice"
            ),
            (name,),
        )
        return [(int(number), task) for number, task in rows]

    async def slice_states(self, name: str) -> dict[str, int]:
        """Slices by state: ``done``, else Procrastinate's job status (``todo``, ``doing``,
        ``failed``, ``cancelled``…)."""
        rows = await self._all(
            self._q(
                "SELECT CASE WHEN sl.done THEN 'done' ELSE coalesce(j.status::text, 'todo') END,"
                " count(*) FROM {s}.blast_slices sl LEFT JOIN procrastinate_jobs j"
                " ON j.id = sl.task WHERE sl.blast = %s GROUP BY 1"
            ),
            (name,),
        )
        return {str(state): int(count) for state, count in rows}
