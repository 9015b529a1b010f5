"""The writer process itself (``_writer``): started, ended, and let go of in a fork.

``_writer_client.WriterProcess`` talks to it through the pipes these give it.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import weakref
from pathlib import Path

__all__ = ["end_child", "pipes_of", "start_child"]

_BOOT = """
import sys, types
for name, folder in (("", ""), (".ledger", "/ledger"), (".webhooks", "/webhooks")):
    package = types.ModuleType("messaging_async" + name)
    package.__path__ = [sys.argv[1] + folder]
    sys.modules[package.__name__] = package
from messaging_async.ledger._writer import main
main()
"""
"""What the child runs: ``_writer.main``, its packages' ``__init__`` left out. They import
the whole SDK (httpx, the clients, the PostgreSQL store); the writer needs none of it, and
starts in 0.06 s instead of 0.32 (``-X importtime``). Run with ``-P``: ``-c`` would put the
working directory first on ``sys.path``, and a ``types.py`` of the user's there be
imported in place of the standard library's."""


def start_child() -> subprocess.Popen[bytes]:
    """The writer process started (``_BOOT``), its pipes to be read and written without
    blocking (``pipes_of``), and let go of in a fork of this process."""
    package = str(Path(__file__).resolve().parents[1])
    child = subprocess.Popen(  # noqa: S603 (our own code, this interpreter)
        [sys.executable, "-P", "-c", _BOOT, package],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        close_fds=True,
    )
    for fd in pipes_of(child):
        os.set_blocking(fd, False)
    _LIVE.add(child)
    return child


def pipes_of(child: subprocess.Popen[bytes]) -> tuple[int, int]:
    """The file descriptors of ``child``'s stdin (written) and stdout (read)."""
    assert child.stdin is not None
    assert child.stdout is not None
    return child.stdin.fileno(), child.stdout.fileno()


def end_child(child: subprocess.Popen[bytes]) -> None:
    """End ``child`` (in a worker thread): its stdin closed, it finishes what it was given
    and exits (killed if it hangs)."""
    if child.stdin is not None:
        with contextlib.suppress(OSError):  # a child already gone
            child.stdin.close()
    try:
        child.wait(timeout=30)
    except subprocess.TimeoutExpired:
        child.kill()
        child.wait()
    if child.stdout is not None:
        child.stdout.close()


_LIVE: weakref.WeakSet[subprocess.Popen[bytes]] = weakref.WeakSet()
"""This process's writer processes, for a fork of it to let go of their pipes."""


def _let_go_in_a_fork() -> None:
    """In a forked copy of this process: close its copies of every writer's pipes. The
    writer ends when its stdin does; a fork holding a copy (a pre-forking server's worker,
    a ``multiprocessing`` fork) kept it from ending: ``aclose`` waited 30 s and killed it,
    and a parent that died left it running as long as the fork lived. The fork cannot use
    them anyway (``WriterProcess.request``)."""
    for child in list(_LIVE):
        for pipe in (child.stdin, child.stdout):
            if pipe is not None:
                with contextlib.suppress(OSError):
                    pipe.close()


if hasattr(os, "register_at_fork"):  # not on Windows, which does not fork
    os.register_at_fork(after_in_child=_let_go_in_a_fork)
