"""Blasts across machines: one job's recipients in the PostgreSQL ledger, its slices run by
Procrastinate workers on as many machines as you like (``pip install
'messaging-async[postgres]'``).

``migrate_database(dsn)`` makes the database ready (``messaging-async db migrate``).
"""

from __future__ import annotations

from ._db import Migrated, migrate_database

__all__ = ["Migrated", "migrate_database"]
