"""Blasts across machines: one job's recipients in the PostgreSQL ledger, its slices run by
Procrastinate workers on as many machines as you like (``pip install
'messaging-async[postgres]'``; asyncio, like Procrastinate).

``migrate_database(dsn)`` makes the database ready (``messaging-async db migrate``);
``submit_blast`` stages a blast and defers its slices; ``blast_status`` and
``cancel_blast`` follow and stop it; ``run_worker`` sends slices, on every machine.
"""

from __future__ import annotations

from ..ledger._blasts import Blast
from ._control import BlastStatus, blast_status, cancel_blast
from ._db import Migrated, migrate_database
from ._submit import submit_blast
from ._worker import run_worker

__all__ = [
    "Blast",
    "BlastStatus",
    "Migrated",
    "blast_status",
    "cancel_blast",
    "migrate_database",
    "run_worker",
    "submit_blast",
]
