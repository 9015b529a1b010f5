"""The writer process's write-ahead file: synced as a blast runs, checkpointed when idle.

By SQLite's default a connection whose commit takes the write-ahead file past 1,000 pages
checkpoints it there and then: it copies the pages into the database and waits for two
``fdatasync`` calls, ~3-4 ms on this project's machines, with that commit's claims
unanswered. In a blast of 50,000 SMS that was 21 times, and each time the client's event
loop, every unit waiting on a claim, slept: 23-58 ms of a ~500 ms blast, 4-10% of its rate
(``benchmarks/RESULTS.md``, "twelfth pass"). So the writer's connections (the writer
process's and, once it runs, the caller's: ``SqliteLedger``) checkpoint the file only past
``WAL_PAGES``, a bound rather than a rhythm, and the writer process checkpoints whenever it
has had no frame for ``IDLE_SECONDS``: after a blast, between its jobs. A blast then starts
with the file checkpointed and runs its first ~100,000 SMS without a checkpoint.

Those checkpoints were also when the file was synced: with ``synchronous=NORMAL`` a commit
is written to the write-ahead file and synced to the disk at the next checkpoint only (a
killed process loses nothing; a power cut, what was not synced). So while frames come the
file is synced every ``SYNC_SECONDS`` instead, without a checkpoint: a power cut loses at
most the commits of the last ~0.05 s, as before the last ~1,000 pages (~0.03 s of a blast).

Both run in a thread of their own, the checkpoint on a connection of its own, ``PASSIVE``:
it never waits for the writer's transactions, nor makes them wait (SQLite's WAL lets a
checkpoint and a writer run together), and the thread holds no GIL while SQLite or the
disk works. A background checkpoint *during* a blast was measured too, every 20 or 50 ms
or past 4,000 or 10,000 pages: it costs the client as much as the checkpoints it replaces
(its CPU comes off the same two cores), so only an idle writer checkpoints; the syncs cost
the blast nothing measurable. Should one fail (a disk error, say), the thread stops: the
connections' own bound still checkpoints, and the ledger's close checkpoints the rest.
"""

from __future__ import annotations

import os
import sqlite3
import threading

__all__ = ["IDLE_SECONDS", "SYNC_SECONDS", "WAL_PAGES", "WalUpkeep"]

WAL_PAGES = 10_000
"""Past this many pages (~40 MB at SQLite's 4 KiB page) a commit checkpoints the
write-ahead file itself (``PRAGMA wal_autocheckpoint``; SQLite's default is 1,000): the
writer process's commits, and the caller's once a writer process runs."""

IDLE_SECONDS = 0.1
"""How long the writer process has had no frame before it checkpoints: a blast's frames
come every few ms, even against a slow gateway; a pause of 0.1 s is mostly the blast's end.
Not always: the parent's gen-2 collections grow with a blast's live objects, 96-127 ms
two-thirds into a 200,000-SMS blast against the in-process ``FakeGateway`` (~50-65 ms at
50,000), and the writer checkpointed 2-3 times during such a blast (qa12). Harmless: such
a checkpoint is ``PASSIVE`` and in its thread like the others."""


SYNC_SECONDS = 0.05
"""How often the write-ahead file is synced while the writer process writes: a power cut
loses at most this much of a blast's commits (alternated with none: the same rate)."""


class WalUpkeep:
    """The write-ahead file of the database at ``path``: synced every ``SYNC_SECONDS``
    after ``wrote``, checkpointed at each ``idle``; in a thread started at the first of
    either. ``close`` waits for what is under way and ends it."""

    def __init__(self, path: str) -> None:
        self._path = path
        self._wanted = threading.Condition()
        self._checkpoint = False  # asked for by ``idle``
        self._unsynced = False  # written since the last sync (``wrote``)
        self._closed = False
        self._thread: threading.Thread | None = None
        self.failed: BaseException | None = None
        """The error that stopped the upkeep, if one did (the writer goes on without it)."""

    def wrote(self) -> None:
        """The writer committed: the file is synced within ``SYNC_SECONDS``."""
        if not self._unsynced:  # once a sync's worth of commits: the lock, the first time
            self._ask(checkpoint=False)

    def idle(self) -> None:
        """The writer has had nothing to do for ``IDLE_SECONDS`` since it last wrote:
        checkpoint (in the background; returns at once)."""
        self._ask(checkpoint=True)

    def _ask(self, *, checkpoint: bool) -> None:
        with self._wanted:
            if self._closed or self.failed is not None:
                return
            if checkpoint:
                self._checkpoint = True
            else:
                self._unsynced = True
            self._wanted.notify()
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="ledger-wal", daemon=True)
                self._thread.start()

    def close(self) -> None:
        """End the thread (once what it does is done) and its connection: before the
        writer's own connection closes, which then checkpoints what is left and removes
        the write-ahead file, the last connection to close."""
        with self._wanted:
            self._closed = True
            self._wanted.notify()
            thread = self._thread
        if thread is not None:
            thread.join()

    def _run(self) -> None:
        conn: sqlite3.Connection | None = None
        wal: int | None = None
        try:
            while (task := self._next()) is not None:
                if task == "checkpoint":
                    if conn is None:
                        conn = sqlite3.connect(
                            self._path, isolation_level=None, check_same_thread=False
                        )
                    conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()
                else:
                    if wal is None:
                        wal = os.open(self._path + "-wal", os.O_RDONLY)
                    os.fdatasync(wal)
        except (sqlite3.Error, OSError) as error:
            self.failed = error
        finally:
            if conn is not None:
                conn.close()
            if wal is not None:
                os.close(wal)

    def _next(self) -> str | None:
        """What to do next: ``"checkpoint"``, or ``"sync"`` ``SYNC_SECONDS`` after the
        first commit not synced (the commits meanwhile go with it); ``None`` once closed."""
        with self._wanted:
            while not (self._checkpoint or self._unsynced or self._closed):
                self._wanted.wait()
            if not (self._checkpoint or self._closed):
                self._wanted.wait(SYNC_SECONDS)  # an ``idle`` or a close may come first
            if self._closed:
                return None
            if self._checkpoint:  # a checkpoint syncs the file first
                self._checkpoint = self._unsynced = False
                return "checkpoint"
            self._unsynced = False
            return "sync"
