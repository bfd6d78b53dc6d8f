"""A throwaway PostgreSQL server for tests: initdb + pg_ctl on a loopback port in a temp dir.

One server per test session, started on first use and stopped at exit. Each caller gets a fresh
database. Tests skip (with the reason) when PostgreSQL's binaries or psycopg are missing.
"""

from __future__ import annotations

import atexit
import contextlib
import glob
import itertools
import os
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path

import pytest

_server: dict[str, str] = {}
_counter = itertools.count()


def postgres_binaries() -> Path | None:
    """The folder with initdb and pg_ctl (Debian keeps them out of PATH), or None."""
    found = shutil.which("initdb")
    if found:
        return Path(found).resolve().parent
    candidates = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), reverse=True)
    return Path(candidates[0]).parent if candidates else None


def fresh_database_url() -> str:
    """A new, empty database on the session's server; skips the test if there cannot be one."""
    try:
        import psycopg
    except ImportError:
        pytest.skip("psycopg is not installed")
    if not _server:
        _start_server()
    name = f"t{os.getpid()}_{next(_counter)}"
    with psycopg.connect(_server["admin"], autocommit=True) as connection:
        connection.execute(f"CREATE DATABASE {name}")
    return _server["base"] + name


def _start_server() -> None:
    binaries = postgres_binaries()
    if binaries is None:
        pytest.skip("PostgreSQL server binaries (initdb, pg_ctl) not installed")
    root = Path(tempfile.mkdtemp(prefix="crowdwatch-pg-"))
    data = root / "data"
    runner = _runner(root)
    port = _free_port()
    subprocess.run(
        [
            *runner,
            str(binaries / "initdb"),
            "-D",
            str(data),
            "-U",
            "crowdwatch",
            "--auth=trust",
            "-E",
            "UTF8",
            "--no-sync",
        ],
        check=True,
        capture_output=True,
    )
    options = f"-p {port} -k {root} -c listen_addresses=127.0.0.1 -c fsync=off"
    subprocess.run(
        [
            *runner,
            str(binaries / "pg_ctl"),
            "-D",
            str(data),
            "-o",
            options,
            "-l",
            str(root / "log"),
            "-w",
            "-t",
            "30",
            "start",
        ],
        check=True,
        capture_output=True,
    )
    atexit.register(_stop_server, runner, binaries, data, root)
    _server["base"] = f"postgresql://crowdwatch@127.0.0.1:{port}/"
    _server["admin"] = _server["base"] + "postgres"
    _wait_for(port)


def _runner(root: Path) -> list[str]:
    """PostgreSQL refuses to run as root: run it as the ``postgres`` user then."""
    if os.geteuid() != 0:
        return []
    shutil.chown(root, "postgres")
    return ["runuser", "-u", "postgres", "--"]


def _stop_server(runner: list[str], binaries: Path, data: Path, root: Path) -> None:
    subprocess.run(
        [*runner, str(binaries / "pg_ctl"), "-D", str(data), "-m", "immediate", "stop"],
        capture_output=True,
    )
    shutil.rmtree(root, ignore_errors=True)


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _wait_for(port: int, timeout_s: float = 20.0) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 1):
            return
        time.sleep(0.1)
    raise RuntimeError(f"PostgreSQL did not start on port {port}")
