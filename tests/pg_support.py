"""A real PostgreSQL for the tests: Debian's server binaries, a cluster initialised into a temporary directory and
run by an unprivileged user on a free loopback port; or, when POLICYQA_TEST_DATABASE_URL is set, that server.

    with PostgresServer.start() as pg:
        url = pg.create_database()     # a fresh database: postgresql+psycopg://policyqa@127.0.0.1:PORT/test_…

`make test` installs the `postgresql` package when its binaries are missing (`make postgres`). Without them the
PostgreSQL tests are skipped with the reason, except under CI (CI=true), where they fail: a green CI run must
have run them.
"""
from __future__ import annotations

import glob
import os
import pwd
import shutil
import subprocess
import tempfile
import time
import uuid
from pathlib import Path

import pytest
from sqlalchemy.engine import make_url

from browser_support import free_port

DRIVER = "postgresql+psycopg"
SUPERUSER = "policyqa"  # the cluster's superuser (initdb -U); trust authentication, loopback only


def server_binaries() -> Path | None:
    """The newest /usr/lib/postgresql/N/bin (Debian's layout), else the directory of an initdb on PATH."""
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), key=lambda p: int(Path(p).parts[4]))
    if found:
        return Path(found[-1]).parent
    initdb = shutil.which("initdb")
    return Path(initdb).parent if initdb else None


def _unavailable(reason: str):
    if os.environ.get("CI"):
        pytest.fail(f"PostgreSQL tests cannot run in CI: {reason}")
    pytest.skip(reason)


def _server_user() -> str | None:
    """Whom the server runs as: PostgreSQL refuses to run as root, so root hands it to `postgres` (created by
    Debian's package) or `nobody`; anyone else runs it as themselves (None)."""
    if os.geteuid() != 0:
        return None
    for name in ("postgres", "nobody"):
        try:
            pwd.getpwnam(name)
            return name
        except KeyError:
            continue
    _unavailable("running as root and neither a `postgres` nor a `nobody` user exists to run the server")


class PostgresServer:
    def __init__(self, base_url: str, data_dir: Path | None = None, bin_dir: Path | None = None, user: str | None = None):
        self.base_url = make_url(base_url)
        self.data_dir, self.bin_dir, self.user = data_dir, bin_dir, user
        self._databases: list[str] = []

    @classmethod
    def start(cls) -> "PostgresServer":
        external = os.environ.get("POLICYQA_TEST_DATABASE_URL")
        if external:
            return cls(external)
        bin_dir = server_binaries()
        if bin_dir is None:
            _unavailable("PostgreSQL server binaries not found (install them with `make postgres`: apt-get install postgresql)")
        user = _server_user()
        root = Path(tempfile.mkdtemp(prefix="policyqa-pg-"))  # not under pytest's tmp dirs: those are root-only
        data_dir, socket_dir = root / "data", root / "socket"
        socket_dir.mkdir()
        if user:
            shutil.chown(root, user)
            shutil.chown(socket_dir, user)
        port = free_port()
        server = cls(f"{DRIVER}://{SUPERUSER}@127.0.0.1:{port}/postgres", data_dir, bin_dir, user)
        server._run("initdb", "-D", str(data_dir), "-U", SUPERUSER, "--auth=trust", "--encoding=UTF8",
                    "--locale=C.UTF-8", "--no-sync")
        # fsync off and no checkpoint pressure: a throwaway test cluster, not a store.
        server._run("pg_ctl", "-D", str(data_dir), "-l", str(root / "server.log"), "-w", "-t", "60", "-o",
                    f"-p {port} -k {socket_dir} -c listen_addresses=127.0.0.1 -c fsync=off -c full_page_writes=off "
                    f"-c synchronous_commit=off -c max_connections=100", "start")
        return server

    def _run(self, program: str, *args: str) -> None:
        command = [str(self.bin_dir / program), *args]
        if self.user:
            command = ["runuser", "-u", self.user, "--", *command]
        done = subprocess.run(command, capture_output=True, text=True, cwd="/")
        if done.returncode != 0:
            log = self.data_dir.parent / "server.log" if self.data_dir else None
            tail = log.read_text(errors="replace")[-2000:] if log and log.exists() else ""
            raise RuntimeError(f"{program} failed ({done.returncode}): {done.stderr or done.stdout}\n{tail}")

    def _admin(self, sql: str) -> None:
        import psycopg

        u = self.base_url
        with psycopg.connect(host=u.host, port=u.port, user=u.username, password=u.password, dbname=u.database,
                             autocommit=True) as conn:
            conn.execute(sql)

    def create_database(self) -> str:
        """A new empty database on this server; its SQLAlchemy URL."""
        name = f"test_{uuid.uuid4().hex[:12]}"
        self._admin(f'CREATE DATABASE "{name}" ENCODING \'UTF8\' TEMPLATE template0')
        self._databases.append(name)
        return self.base_url.set(database=name).render_as_string(hide_password=False)

    def stop(self) -> None:
        if self.data_dir is None:  # an external server: drop what the tests made, leave the server
            for name in self._databases:
                try:
                    self._admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
                except Exception:  # noqa: BLE001 - best effort on someone else's server
                    pass
            return
        try:
            self._run("pg_ctl", "-D", str(self.data_dir), "-m", "fast", "-w", "stop")
        finally:
            shutil.rmtree(self.data_dir.parent, ignore_errors=True)

    def __enter__(self) -> "PostgresServer":
        return self

    def __exit__(self, *exc) -> None:
        self.stop()


def wait_for(predicate, timeout: float, interval: float = 0.1):
    """Poll `predicate` until it returns something truthy; (value, seconds taken), or (last value, None) on timeout."""
    start = time.monotonic()
    value = None
    while time.monotonic() - start < timeout:
        value = predicate()
        if value:
            return value, time.monotonic() - start
        time.sleep(interval)
    return value, None
