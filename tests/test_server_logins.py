"""Logins on a real ``mlflow server --app-name basic-auth`` backed by PostgreSQL: bad or
missing credentials and refused experiments are one line (exit 2, no run, no traceback);
the right credentials train and log, and the password is written nowhere."""

from __future__ import annotations

import os
import subprocess
import sys
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from mlflow.tracking import MlflowClient

from conftest import run_cli, tmp_overrides
from lrexp.errors import ConfigError
from lrexp.tracking.localserver import MlflowServer, Postgres, admin_env, health
from lrexp.tracking.server import check_server_access

PASSWORD = "Alice-pw-7f3q9-secret"
DATABASES = iter(range(1000))


@pytest.fixture(scope="module")
def auth_server(
    postgres: Postgres, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[MlflowServer]:
    name = f"mlflow_auth_{os.getpid()}_{next(DATABASES)}"
    server = MlflowServer(
        postgres.new_database(name), tmp_path_factory.mktemp("auth-server"), auth=True
    ).start()
    server.create_user("alice", PASSWORD)
    yield server
    server.kill()


def as_user(user: str | None, password: str | None) -> dict[str, str]:
    """The environment of a run: these credentials (None: no such variable)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("MLFLOW_TRACKING_")}
    if user is not None:
        env["MLFLOW_TRACKING_USERNAME"] = user
    if password is not None:
        env["MLFLOW_TRACKING_PASSWORD"] = password
    return env


def train_args(tmp_path: Path, server: MlflowServer, experiment: str, *extra: str) -> list[str]:
    return [
        *tmp_overrides(tmp_path),
        f"logger.tracking_uri={server.url}",
        f"logger.experiment_name={experiment}",
        *extra,
    ]


def runs_named(server: MlflowServer, experiment: str) -> list[object]:
    with admin_env():
        client = MlflowClient(server.url)
        found = client.get_experiment_by_name(experiment)
        return list(client.search_runs([found.experiment_id])) if found else []


@pytest.mark.parametrize(
    ("user", "password", "who"),
    [
        ("alice", "wrong-password", "as user 'alice'"),
        ("mallory", PASSWORD, "as user 'mallory'"),
        (None, None, "without credentials (set MLFLOW_TRACKING_USERNAME"),
    ],
)
def test_bad_or_missing_login_is_one_line_and_no_run(
    auth_server: MlflowServer, tmp_path: Path, user: str | None, password: str | None, who: str
) -> None:
    result = run_cli(
        train_args(tmp_path, auth_server, "logins-bad", "trainer.max_steps=3"),
        cwd=tmp_path,
        env=as_user(user, password),
    )
    assert result.returncode == 2, result.stderr[-2000:]
    assert result.stderr.strip().splitlines() == [
        f"lrexp: error: logger.tracking_uri: {auth_server.url}: authentication failed {who}"
        + (" and MLFLOW_TRACKING_PASSWORD)" if user is None else "")
    ]
    assert not (tmp_path / "out").exists()  # failed before data loaded or anything was written
    assert runs_named(auth_server, "logins-bad") == []


def test_right_login_trains_logs_and_writes_the_password_nowhere(
    auth_server: MlflowServer, tmp_path: Path
) -> None:
    result = run_cli(
        train_args(tmp_path, auth_server, "logins-ok", "trainer.max_epochs=1"),
        cwd=tmp_path,
        env=as_user("alice", PASSWORD),
    )
    assert result.returncode == 0, result.stderr[-3000:]
    (run,) = runs_named(auth_server, "logins-ok")
    assert run.info.status == "FINISHED"  # type: ignore[attr-defined]
    run_id = run.info.run_id  # type: ignore[attr-defined]
    with admin_env():
        client = MlflowClient(auth_server.url)
        assert [m.step for m in client.get_metric_history(run_id, "lr")] == list(range(40))
        artifacts = {a.path for a in client.list_artifacts(run_id)}
        assert {"resolved_config.yaml", "planned_lr.csv", "lr_plan.png"} <= artifacts
        folder = Path(client.download_artifacts(run_id, "", str(tmp_path / "artifacts")))
    data = run.data  # type: ignore[attr-defined]
    texts = [*data.params.values(), *data.tags.values(), result.stdout, result.stderr]
    assert not [t for t in texts if PASSWORD in t]
    compared = subprocess.run(
        [sys.executable, "-m", "lrexp.compare", "--tracking-uri", auth_server.url,
         "--experiment", "logins-ok", "--out", str(tmp_path / "cmp")],
        capture_output=True, text=True, timeout=120, env=as_user("alice", PASSWORD),
    )  # fmt: skip
    assert compared.returncode == 0, compared.stderr[-2000:]
    assert "bulk read failed" not in compared.stderr  # the bulk endpoint took the login
    assert (tmp_path / "cmp" / "summary.csv").is_file()
    secret = PASSWORD.encode()
    files = [p for p in [*folder.rglob("*"), *(tmp_path / "out").rglob("*")] if p.is_file()]
    assert files and not [p for p in files if secret in p.read_bytes()]


@pytest.mark.parametrize(("level", "when"), [("DENY", "checked"), ("READ", "opened")])
def test_experiment_without_permission_is_one_line(
    auth_server: MlflowServer, tmp_path: Path, level: str, when: str
) -> None:
    experiment = f"private-{level.lower()}"
    with admin_env():
        experiment_id = MlflowClient(auth_server.url).create_experiment(experiment)
    auth_server.set_experiment_permission(experiment_id, "alice", level)
    result = run_cli(
        train_args(tmp_path, auth_server, experiment, "trainer.max_steps=3"),
        cwd=tmp_path,
        env=as_user("alice", PASSWORD),
    )
    assert result.returncode == 2, result.stderr[-3000:]
    lines = [line for line in result.stderr.splitlines() if line.startswith("lrexp")]
    assert lines == [
        f"lrexp: error: logger.experiment_name: {auth_server.url}: user 'alice' has no "
        f"permission to log to experiment {experiment!r}"
    ], result.stderr[-3000:]
    assert "Traceback" not in result.stderr
    assert runs_named(auth_server, experiment) == []


def test_a_proxy_left_by_an_earlier_download_hides_no_server(
    auth_server: MlflowServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``urlopen`` keeps the proxies of its first call for the whole process: a download that
    failed through a dead proxy must not hide the server from the login check or the probe."""
    monkeypatch.setattr(urllib.request, "_opener", None)  # the process's opener, restored after
    with monkeypatch.context() as offline:
        offline.setenv("http_proxy", "http://127.0.0.1:9")
        offline.setenv("no_proxy", "")
        with pytest.raises(urllib.error.URLError):
            urllib.request.urlopen("http://download.invalid/data.tar.gz", timeout=5)
    for name in ("MLFLOW_TRACKING_USERNAME", "MLFLOW_TRACKING_PASSWORD", "MLFLOW_TRACKING_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    with pytest.raises(urllib.error.URLError):  # what the old probe and login check hit
        urllib.request.urlopen(f"{auth_server.url}/health", timeout=5)
    assert health(auth_server.port) == "200"
    with pytest.raises(ConfigError, match="authentication failed without credentials"):
        check_server_access(auth_server.url, "logins-bad")
