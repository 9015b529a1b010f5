"""A throwaway PostgreSQL cluster for the test session: ``initdb`` into a temp dir, started
on a free loopback port (its unix socket in the temp dir too), stopped and removed at the end.

The binaries come from Debian's ``postgresql`` package (``make tools`` installs it where
``initdb``/``pg_ctl`` cannot be found). ``initdb`` refuses to run as root, so as root the
cluster is made and run as the ``postgres`` OS user (the package creates it; made here with
``useradd`` when missing) through ``runuser``. Durability is switched off (``fsync=off``,
``synchronous_commit=off``): a test cluster is thrown away, and the ledger's crash promises
are about the *client* process dying, which these settings do not touch.
"""

from __future__ import annotations

import contextlib
import glob
import os
import shutil
import socket
import subprocess
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path

__all__ = ["Cluster", "find_bindir", "running_cluster"]

_SUPERUSER = "postgres"


def find_bindir() -> Path | None:
    """Where ``initdb`` and ``pg_ctl`` are: ``pg_config --bindir``, Debian's versioned
    directories (newest first), then PATH."""
    candidates: list[Path] = []
    pg_config = shutil.which("pg_config")
    if pg_config is not None:
        with contextlib.suppress(OSError, subprocess.SubprocessError):
            found = subprocess.run(  # noqa: S603 - pg_config from PATH
                [pg_config, "--bindir"], capture_output=True, text=True, check=True, timeout=10
            )
            candidates.append(Path(found.stdout.strip()))
    versions = glob.glob("/usr/lib/postgresql/*/bin")
    versions.sort(key=lambda path: int(Path(path).parent.name.split(".")[0]), reverse=True)
    candidates += [Path(path) for path in versions]
    initdb = shutil.which("initdb")
    if initdb is not None:
        candidates.append(Path(initdb).resolve().parent)
    for bindir in candidates:
        if (bindir / "initdb").is_file() and (bindir / "pg_ctl").is_file():
            return bindir
    return None


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class Cluster:
    """A running cluster: ``dsn(database)`` to reach it, ``create_database()`` for a test."""

    def __init__(self, bindir: Path, root: Path, port: int):
        self.bindir, self.root, self.port = bindir, root, port

    def dsn(self, database: str = "postgres") -> str:
        return f"postgresql://{_SUPERUSER}@127.0.0.1:{self.port}/{database}"

    def create_database(self, *, icu_locale: str | None = None) -> str:
        """A fresh, empty database; returns its DSN. ``icu_locale``: its text sorts in that
        language's order (the cluster's own is byte order), as a production database's may."""
        import psycopg

        name = "t_" + uuid.uuid4().hex[:16]
        options = ""
        if icu_locale is not None:
            options = f" TEMPLATE template0 LOCALE_PROVIDER icu ICU_LOCALE '{icu_locale}'"
        with psycopg.connect(self.dsn(), autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"{options}'.encode())
        return self.dsn(name)


def _as_cluster_owner(command: list[str]) -> list[str]:
    """``command`` as the ``postgres`` OS user when we are root (initdb refuses root)."""
    if os.geteuid() != 0:
        return command
    with contextlib.suppress(KeyError):
        import pwd

        pwd.getpwnam(_SUPERUSER)
        return ["runuser", "-u", _SUPERUSER, "--", *command]
    useradd = ["useradd", "--system", "--no-create-home", _SUPERUSER]
    subprocess.run(useradd, check=True, timeout=60)  # noqa: S603 - the system's own
    return ["runuser", "-u", _SUPERUSER, "--", *command]


def _run(command: list[str], *, timeout: float = 120) -> None:
    done = subprocess.run(  # noqa: S603 - PostgreSQL's own binaries
        _as_cluster_owner(command), capture_output=True, text=True, timeout=timeout, check=False
    )
    if done.returncode != 0:
        raise RuntimeError(f"{command[0]} failed ({done.returncode}):\n{done.stdout}{done.stderr}")


@contextlib.contextmanager
def running_cluster(bindir: Path) -> Iterator[Cluster]:
    """One cluster, from ``initdb`` to ``pg_ctl stop`` and the temp dir's removal."""
    root = Path(tempfile.mkdtemp(prefix="messaging-pg-"))
    try:
        if os.geteuid() == 0:
            _as_cluster_owner(["true"])  # makes the postgres user if it is missing
            shutil.chown(root, user=_SUPERUSER)
        data = root / "data"
        _run(
            [
                str(bindir / "initdb"),
                "-D",
                str(data),
                "-U",
                _SUPERUSER,
                "--auth=trust",
                "--no-sync",
                "--encoding=UTF8",
                "--locale=C",
            ]
        )
        for attempt in range(3):
            port = _free_port()
            options = (
                f"-p {port} -k {root} -c listen_addresses=127.0.0.1 -c fsync=off"
                " -c synchronous_commit=off -c full_page_writes=off -c max_connections=200"
            )
            try:
                _run(
                    [
                        str(bindir / "pg_ctl"),
                        "-D",
                        str(data),
                        "-o",
                        options,
                        "-w",
                        "-t",
                        "60",
                        "-l",
                        str(root / "log"),
                        "start",
                    ]
                )
                break
            except RuntimeError:
                if attempt == 2:  # the port was taken between probe and bind, three times
                    raise
        try:
            yield Cluster(bindir, root, port)
        finally:
            _run([str(bindir / "pg_ctl"), "-D", str(data), "-m", "immediate", "-w", "stop"])
    finally:
        shutil.rmtree(root, ignore_errors=True)
