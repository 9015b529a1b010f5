"""Who runs a job, and whether that run is still alive.

A run is owned by a process: host name, pid, and the process's start time (so a pid the
OS gave to a new process is not mistaken for the old one). On the same host a dead owner
is seen at once; on another host only its lease can tell, so it is dead once the lease
ran out without renewal.
"""

from __future__ import annotations

import os
import socket
import time
from functools import cache

from attrs import frozen

__all__ = ["Owner", "owner_alive"]


@frozen
class Owner:
    host: str
    pid: int
    started: float  # the process's start, in clock ticks since boot (Linux) or epoch seconds

    @classmethod
    def current(cls) -> Owner:
        return _current()

    def describe(self) -> str:
        return f"pid {self.pid} on {self.host}"


@cache
def _current() -> Owner:
    pid = os.getpid()
    started = _start_time(pid)
    return Owner(socket.gethostname(), pid, started if started is not None else time.time())


def _start_time(pid: int) -> float | None:
    """The process's start time from ``/proc`` (Linux), ``None`` where there is none."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as stat:
            text = stat.read()
    except OSError:
        return None
    # The command name (field 2) may hold spaces and parentheses: split after its end.
    fields = text[text.rindex(b")") + 2 :].split()
    if fields[0] in (b"Z", b"X"):
        return -1.0  # a zombie (killed, not yet reaped) is dead: matches no owner
    return float(fields[19])  # field 22 of the whole line: starttime


def owner_alive(owner: Owner, *, lease_until: float, now: float) -> bool:
    """True while ``owner`` may still be running; see the module docstring."""
    here = _current()
    if owner.host != here.host:
        return lease_until > now
    if owner.pid == here.pid:
        return owner.started == here.started or lease_until > now
    try:
        os.kill(owner.pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass  # alive, someone else's
    started = _start_time(owner.pid)
    if started is None:
        return True  # no /proc: the pid exists, so assume it is the owner
    return started == owner.started
