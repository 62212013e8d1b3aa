"""A throwaway PostgreSQL server on loopback for the test session.

``INBOXCRM_TEST_POSTGRES_URL`` points the tests at a server you already run instead. Without
it, the tests make a cluster in a temporary folder with the machine's PostgreSQL binaries
(``make test`` installs them), start it on a free port on 127.0.0.1, and stop it at the end.
PostgreSQL refuses to run as root, so as root the server runs as the ``postgres`` user.
"""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
from dataclasses import dataclass


@dataclass
class Server:
    url: str
    directory: str | None
    run_as: str | None
    bindir: str | None

    def fresh_database(self, name: str) -> str:
        """Drop and create the database ``name`` on this server; its SQLAlchemy URL."""
        from sqlalchemy import text

        from services.db import make_engine

        admin = make_engine(self.url, isolation_level="AUTOCOMMIT")
        with admin.connect() as connection:
            connection.execute(text(f'DROP DATABASE IF EXISTS "{name}"'))
            connection.execute(text(f'CREATE DATABASE "{name}"'))
        admin.dispose()
        return self.url.rsplit("/", 1)[0] + "/" + name

    def stop(self) -> None:
        if self.directory and self.bindir:
            _run(
                [
                    os.path.join(self.bindir, "pg_ctl"),
                    "-D",
                    os.path.join(self.directory, "data"),
                    "-m",
                    "immediate",
                    "stop",
                ],
                self.run_as,
            )
            shutil.rmtree(self.directory, ignore_errors=True)


def find_bindir() -> str | None:
    pg_config = shutil.which("pg_config")
    candidates = []
    if pg_config:
        candidates.append(subprocess.run([pg_config, "--bindir"], capture_output=True, text=True).stdout.strip())
    candidates += sorted(glob.glob("/usr/lib/postgresql/*/bin"), reverse=True)
    return next((d for d in candidates if d and os.path.exists(os.path.join(d, "initdb"))), None)


def _run(command: list[str], user: str | None) -> None:
    if user:
        command = ["runuser", "-u", user, "--", *command]
    subprocess.run(command, check=True, capture_output=True, text=True)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start() -> Server:
    url = os.environ.get("INBOXCRM_TEST_POSTGRES_URL")
    if url:
        return Server(url, None, None, None)
    bindir = find_bindir()
    if bindir is None:
        raise RuntimeError(
            "PostgreSQL is not installed: run `make test`, which installs it, or set INBOXCRM_TEST_POSTGRES_URL"
        )
    run_as = "postgres" if os.geteuid() == 0 else None
    directory = tempfile.mkdtemp(prefix="inboxcrm-pg-")
    if run_as:
        entry = pwd.getpwnam(run_as)
        os.chown(directory, entry.pw_uid, entry.pw_gid)
    data = os.path.join(directory, "data")
    _run(
        [os.path.join(bindir, "initdb"), "-D", data, "-U", "postgres", "--auth=trust", "-E", "UTF8", "--no-sync"],
        run_as,
    )
    port = _free_port()
    # Durability off: a test server that loses its data on a crash is fine, and much quicker.
    options = f"-p {port} -k {directory} -c listen_addresses=127.0.0.1 -c fsync=off -c synchronous_commit=off -c full_page_writes=off"
    _run(
        [
            os.path.join(bindir, "pg_ctl"),
            "-D",
            data,
            "-o",
            options,
            "-l",
            os.path.join(directory, "log"),
            "-w",
            "start",
        ],
        run_as,
    )
    return Server(f"postgresql+psycopg://postgres@127.0.0.1:{port}/postgres", directory, run_as, bindir)
