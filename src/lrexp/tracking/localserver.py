"""Throw-away tracking servers (tests, ``make bench-compare``): PostgreSQL and ``mlflow server``.

:class:`Postgres` runs Debian's PostgreSQL (``initdb`` as the ``postgres`` user when the tests
run as root, since initdb refuses root) in a temp data directory on a free loopback port.
:class:`MlflowServer` runs ``mlflow server`` against one of its databases, optionally with
MLflow's basic-auth app, and can be killed (SIGKILL of its whole process group) and started
again on the same port.
"""

from __future__ import annotations

import contextlib
import glob
import http.client
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

INSTALL_HINT = "install it with: apt-get install -y postgresql"
#: a migrated MLflow schema that each test's database is copied from (CREATE DATABASE TEMPLATE)
TEMPLATE_DB = "mlflow_template"
ADMIN = ("admin", "admin-secret-pw-1")
#: an offline, single-process server: no telemetry, no job-runner processes
QUIET_SERVER_ENV = {
    "MLFLOW_DISABLE_TELEMETRY": "true",
    "DO_NOT_TRACK": "true",
    "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false",
}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def health(port: int) -> str:
    """``GET /health`` on 127.0.0.1:<port>: "200" or what came back instead. Straight to the
    socket: ``urllib.request.urlopen`` keeps the proxies of its first call for the life of
    the process, so a proxy set then (a download test sets a dead one) would swallow it."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        connection.request("GET", "/health")
        response = connection.getresponse()
        return "200" if response.status == 200 else f"HTTP {response.status}"
    except (OSError, http.client.HTTPException) as err:
        return f"{type(err).__name__}: {err}"
    finally:
        connection.close()


def postgres_bin() -> Path | None:
    """The folder of ``initdb``/``pg_ctl`` (Debian keeps them in /usr/lib/postgresql/N/bin)."""
    found = shutil.which("initdb")
    if found:
        return Path(found).parent
    versions = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), key=os.path.getmtime)
    return Path(versions[-1]).parent if versions else None


class Postgres:
    """A throw-away PostgreSQL cluster: trust auth on 127.0.0.1:<port>, superuser postgres."""

    def __init__(self, root: Path) -> None:
        bindir = postgres_bin()
        if bindir is None:
            raise FileNotFoundError(f"no PostgreSQL found; {INSTALL_HINT}")
        self.bindir = bindir
        self.root = root
        self.data = root / "data"
        self.port = free_port()
        self.as_user: list[str] = []
        if os.geteuid() == 0:  # initdb and postgres refuse to run as root
            self.as_user = ["runuser", "-u", "postgres", "--"]
            shutil.chown(root, "postgres")
        self._cmd("initdb", "-D", str(self.data), "-U", "postgres", "--auth=trust", "-E", "UTF8")
        self.start()
        self.create_template()

    def start(self) -> None:
        """Start the server (again, after :meth:`stop`) on the same port and data."""
        options = f"-h 127.0.0.1 -p {self.port} -k {self.root} -c fsync=off -c max_connections=200"
        log = str(self.root / "log")
        self._cmd("pg_ctl", "-D", str(self.data), "-o", options, "-l", log, "-w", "start")

    def _cmd(self, tool: str, *args: str) -> None:
        result = subprocess.run(
            [*self.as_user, str(self.bindir / tool), *args], capture_output=True, text=True
        )
        if result.returncode != 0:
            raise RuntimeError(f"{tool} failed: {result.stderr[-2000:]}")

    def uri(self, database: str, driver: str = "postgresql") -> str:
        return f"{driver}://postgres@127.0.0.1:{self.port}/{database}"

    def execute(self, sql: str, database: str = "postgres") -> None:
        import psycopg

        with psycopg.connect(
            f"host=127.0.0.1 port={self.port} user=postgres dbname={database}", autocommit=True
        ) as con:
            con.execute(sql)

    def create_template(self) -> None:
        """Migrate MLflow's schema once; tests copy it instead of migrating (~20 s each)."""
        from mlflow.store.tracking.sqlalchemy_store import SqlAlchemyStore

        self.execute(f"CREATE DATABASE {TEMPLATE_DB}")
        store = SqlAlchemyStore(self.uri(TEMPLATE_DB), str(self.root / "template-artifacts"))
        store.engine.dispose()

    def new_database(self, name: str) -> str:
        """A fresh MLflow database copied from the template; its SQLAlchemy URI."""
        self.execute(f"CREATE DATABASE {name} TEMPLATE {TEMPLATE_DB}")
        return self.uri(name)

    def stop(self) -> None:
        self._cmd("pg_ctl", "-D", str(self.data), "-m", "fast", "-w", "stop")


class MlflowServer:
    """``mlflow server`` on 127.0.0.1:<port> with ``workers`` uvicorn processes (MLflow's
    default is 4; one keeps tests light); with ``auth``, MLflow's basic-auth app whose admin
    is :data:`ADMIN` and whose user database lives in ``root``."""

    def __init__(
        self,
        backend_uri: str,
        root: Path,
        auth: bool = False,
        port: int | None = None,
        workers: int = 1,
    ) -> None:
        self.backend_uri = backend_uri
        self.workers = workers
        self.root = root
        self.auth = auth
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.process: subprocess.Popen[bytes] | None = None
        self.log = root / "server.log"
        root.mkdir(parents=True, exist_ok=True)

    def start(self, timeout: float = 120) -> MlflowServer:
        """Launch the server and wait until it answers."""
        self.launch()
        self.wait_until_answering(timeout)
        return self

    def launch(self) -> None:
        """Start the server process without waiting for it (it migrates, then listens)."""
        args = [
            sys.executable, "-m", "mlflow", "server",
            "--backend-store-uri", self.backend_uri,
            "--artifacts-destination", str(self.root / "artifacts"),
            "--host", "127.0.0.1", "--port", str(self.port), "--workers", str(self.workers),
        ]  # fmt: skip
        env = {**os.environ, **QUIET_SERVER_ENV}
        for name in ("MLFLOW_TRACKING_USERNAME", "MLFLOW_TRACKING_PASSWORD"):
            env.pop(name, None)
        if self.auth:
            args += ["--app-name", "basic-auth"]
            config = self.root / "basic_auth.ini"
            config.write_text(
                "[mlflow]\ndefault_permission = READ\n"
                f"database_uri = sqlite:///{self.root}/basic_auth.db\n"
                f"admin_username = {ADMIN[0]}\nadmin_password = {ADMIN[1]}\n"
                "authorization_function = mlflow.server.auth:authenticate_request_basic_auth\n"
            )
            env["MLFLOW_AUTH_CONFIG_PATH"] = str(config)
            env["MLFLOW_FLASK_SERVER_SECRET_KEY"] = "lrexp-tests"
        with self.log.open("ab") as log:
            self.process = subprocess.Popen(
                args, stdout=log, stderr=subprocess.STDOUT, start_new_session=True, env=env
            )

    def wait_until_answering(self, timeout: float) -> None:
        """Return once ``/health`` answers 200; raise with its last answer and the log tail."""
        assert self.process is not None
        deadline = time.monotonic() + timeout
        answer = "no answer yet"
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"mlflow server exited: {self.log_tail()}")
            answer = health(self.port)
            if answer == "200":
                return
            time.sleep(0.3)
        raise RuntimeError(
            f"mlflow server did not answer /health in {timeout} s (last: {answer}): "
            f"{self.log_tail()}"
        )

    def log_tail(self, chars: int = 3000) -> str:
        return self.log.read_text(errors="replace")[-chars:] if self.log.exists() else ""

    def kill(self) -> None:
        """SIGKILL the server and its workers (as a crash or an OOM kill would)."""
        if self.process is None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait(timeout=30)
        self.process = None
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:  # the port is free again
            with socket.socket() as sock:
                if sock.connect_ex(("127.0.0.1", self.port)) != 0:
                    return
            time.sleep(0.1)

    def create_user(self, username: str, password: str) -> None:
        from mlflow.server.auth.client import AuthServiceClient

        with admin_env():
            AuthServiceClient(self.url).create_user(username, password)

    def set_experiment_permission(self, experiment_id: str, username: str, level: str) -> None:
        from mlflow.server.auth.client import AuthServiceClient

        with admin_env():
            AuthServiceClient(self.url).grant_user_permission(
                username, "experiment", experiment_id, level
            )


@contextlib.contextmanager
def admin_env() -> Iterator[None]:
    """MLFLOW_TRACKING_USERNAME/PASSWORD set to the admin's within the block."""
    names = ("MLFLOW_TRACKING_USERNAME", "MLFLOW_TRACKING_PASSWORD")
    saved = {name: os.environ.get(name) for name in names}
    os.environ.update(dict(zip(names, ADMIN, strict=True)))
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
