"""The writer process's WAL checkpoints, taken when it has nothing else to do.

By SQLite's default a connection whose commit takes the write-ahead file past 1,000 pages
checkpoints it there and then: it copies the pages into the database and waits for two
``fdatasync`` calls, ~3-4 ms on this project's machines, with that commit's claims
unanswered. In a blast of 50,000 SMS that was 21 times, and each time the client's event
loop, every unit waiting on a claim, slept: 23-58 ms of a ~500 ms blast, 4-10% of its rate
(``benchmarks/RESULTS.md``, "twelfth pass"). So the writer process's connection
checkpoints itself only past ``WAL_PAGES``, a bound on the file rather than a rhythm, and
the writer process checkpoints whenever it has had no frame for ``IDLE_SECONDS``: after a
blast, between its jobs. A blast then starts with the file checkpointed and runs its
first ~100,000 SMS without a checkpoint. (The connections in the caller's process, which
write single sends and delivery reports, keep SQLite's default: a checkpoint they take
runs in their worker thread, and never makes the writer process's claims wait.)

The idle checkpoint runs in a thread of its own on a connection of its own, and is
``PASSIVE``: it never waits for the writer's transactions, nor makes them wait (a frame
that comes meanwhile is written as usual; SQLite's WAL lets a checkpoint and a writer run
together), and ``sqlite3`` lets go of the GIL while it runs. A background checkpoint *during*
a blast was measured too, every 20 or 50 ms or past 4,000 or 10,000 pages: it costs the
client as much as the checkpoints it replaces (its CPU comes off the same two cores), so
only an idle writer checkpoints. Should one fail (a disk error, say), the thread stops:
the connections' own bound still checkpoints, and the ledger's close checkpoints the rest.
"""

from __future__ import annotations

import sqlite3
import threading

__all__ = ["IDLE_SECONDS", "WAL_PAGES", "IdleCheckpoints"]

WAL_PAGES = 10_000
"""Past this many pages (~40 MB at SQLite's 4 KiB page) the writer process's commit
checkpoints the write-ahead file itself (``PRAGMA wal_autocheckpoint``; SQLite's default
is 1,000)."""

IDLE_SECONDS = 0.1
"""How long the writer process has had no frame before it checkpoints: a blast's frames
come every few ms, even against a slow gateway; a pause of 0.1 s is mostly the blast's end.
Not always: the parent's gen-2 collections grow with a blast's live objects, 96-127 ms
two-thirds into a 200,000-SMS blast against the in-process ``FakeGateway`` (~50-65 ms at
50,000), and the writer checkpointed 2-3 times during such a blast (qa12). Harmless: such
a checkpoint is ``PASSIVE`` and in its thread like the others."""


class IdleCheckpoints:
    """Checkpoints of the database at ``path``, one each time ``idle`` is called, in a
    thread started at the first; ``close`` waits for the one under way and ends it."""

    def __init__(self, path: str) -> None:
        self._path = path
        self._wanted = threading.Condition()
        self._pending = False
        self._closed = False
        self._thread: threading.Thread | None = None
        self.failed: BaseException | None = None
        """The error that stopped the checkpoints, if one did (``failed`` is kept for a
        test to read; the writer goes on without them)."""

    def idle(self) -> None:
        """The writer has had nothing to do for ``IDLE_SECONDS`` since it last wrote:
        checkpoint (in the background; returns at once)."""
        with self._wanted:
            if self._closed or self.failed is not None:
                return
            self._pending = True
            self._wanted.notify()
            if self._thread is None:
                self._thread = threading.Thread(
                    target=self._run, name="ledger-checkpoints", daemon=True
                )
                self._thread.start()

    def close(self) -> None:
        """End the thread (once the checkpoint under way is done) and its connection:
        before the writer's own connection closes, which then checkpoints what is left and
        removes the write-ahead file, the last connection to close."""
        with self._wanted:
            self._closed = True
            self._wanted.notify()
            thread = self._thread
        if thread is not None:
            thread.join()

    def _run(self) -> None:
        conn: sqlite3.Connection | None = None
        try:
            conn = sqlite3.connect(self._path, isolation_level=None, check_same_thread=False)
            while self._next():
                conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()
        except sqlite3.Error as error:
            self.failed = error
        finally:
            if conn is not None:
                conn.close()

    def _next(self) -> bool:
        """Wait for a checkpoint to be wanted: ``True``, or ``False`` once closed."""
        with self._wanted:
            while not (self._pending or self._closed):
                self._wanted.wait()
            self._pending = False
            return not self._closed
