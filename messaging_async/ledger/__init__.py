"""The message ledger: a durable record of every recipient of a job, every keyed single
send, and every delivery report, so blasts resume after a crash without sending twice.

``SqliteLedger`` is the default store, ``PostgresLedger`` the one for several machines;
any object with the ``Ledger`` protocol's methods and semantics can stand in. This package
is the SDK's only storage I/O.
"""

from ..errors import JobRunningError, LedgerError
from ._decide import SEQNO_MEMORY
from ._fingerprint import fingerprint
from ._models import (
    IN_FLIGHT,
    NO_REPORT_EXPECTED,
    Entry,
    JobSummary,
    LedgerRecord,
    Plan,
    key_of,
)
from ._owner import Owner
from ._postgres import PostgresLedger
from ._protocol import Ledger
from ._queries import AWAITING, NO_REPORT
from ._sqlite import SqliteLedger

__all__ = [
    "AWAITING",
    "IN_FLIGHT",
    "NO_REPORT",
    "NO_REPORT_EXPECTED",
    "SEQNO_MEMORY",
    "Entry",
    "JobRunningError",
    "JobSummary",
    "Ledger",
    "LedgerError",
    "LedgerRecord",
    "Owner",
    "Plan",
    "PostgresLedger",
    "SqliteLedger",
    "fingerprint",
    "key_of",
]
