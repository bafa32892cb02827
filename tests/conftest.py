"""Shared fixtures: real Hydra composition, a throwaway MLflow SQLite store, and a real
PostgreSQL cluster with ``mlflow server`` processes on it (:mod:`servers`)."""

from __future__ import annotations

import itertools
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest
from hydra import compose, initialize_config_dir
from omegaconf import DictConfig

from lrexp.config.schemas import register
from lrexp.tracking.history_file import HISTORY_FILE, TOKEN_TAG, read_history_file
from lrexp.tracking.localserver import MlflowServer, Postgres, postgres_bin

ROOT = Path(__file__).resolve().parents[1]
#: a one-layer GPT of width 32 on windows of 32 bytes: a language-model run of a few dozen
#: steps takes seconds
TINY_GPT = [
    "model.n_layer=1",
    "model.n_embd=32",
    "model.n_head=2",
    "model.block_size=32",
    "dataset.block_size=32",
    "dataset.batch_size=8",
    "dataset.val_windows=16",
    "schedule.warmup.steps=5",
]
CONF = ROOT / "conf"
register()  # the structured configs that conf/'s defaults lists name


def tmp_overrides(tmp_path: Path) -> list[str]:
    """Point every path of a run into ``tmp_path`` and silence the progress bar."""
    return [
        f"paths.root_dir={tmp_path}",
        f"paths.output_dir={tmp_path}/out",
        f"paths.data_dir={tmp_path}/data",
        "trainer.enable_progress_bar=false",
        "trainer.enable_model_summary=false",
    ]


@pytest.fixture
def make_cfg(tmp_path: Path) -> Callable[..., DictConfig]:
    """Compose ``conf/config.yaml`` with overrides, all outputs under ``tmp_path``."""

    def make(*overrides: str) -> DictConfig:
        with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
            return compose("config", overrides=[*tmp_overrides(tmp_path), *overrides])

    return make


@pytest.fixture
def tracking_uri(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path}/mlruns/mlflow.db"


def experiment_id(client: Any, name: str) -> str:
    """The id of the experiment ``name``, which must exist."""
    experiment = client.get_experiment_by_name(name)
    assert experiment is not None, f"no experiment {name!r}"
    return str(experiment.experiment_id)


def history_file_of(client: Any, run_id: str, folder: Path) -> tuple[str, dict[str, Any]]:
    """The token and histories of the run's history file; the run's tag must vouch for it."""
    path = client.download_artifacts(run_id, HISTORY_FILE, str(folder))
    token, history = read_history_file(Path(path).read_bytes())
    assert client.get_run(run_id).data.tags[TOKEN_TAG] == token
    return token, history


def run_cli(
    args: Sequence[str], cwd: Path, timeout: float = 300, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """Run ``python train.py ARGS`` from ``cwd`` the way a user does."""
    full_env = {**os.environ, "PYTHONUNBUFFERED": "1", **(env or {})}
    return subprocess.run(
        [sys.executable, str(ROOT / "train.py"), *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=timeout,
        env=full_env,
    )


#: set in CI (.ci/run): a missing PostgreSQL fails the server tests instead of skipping them
REQUIRE_POSTGRES = os.environ.get("LREXP_REQUIRE_POSTGRES") == "1"
DATABASES = itertools.count()


@pytest.fixture(scope="session")
def postgres() -> Iterator[Postgres]:
    """One PostgreSQL cluster per test process, in a temp dir the ``postgres`` user can enter."""
    if postgres_bin() is None:
        if REQUIRE_POSTGRES:
            pytest.fail("no PostgreSQL found (apt-get install -y postgresql)")
        pytest.skip("no PostgreSQL found; install it with: apt-get install -y postgresql")
    root = Path(tempfile.mkdtemp(prefix="lrexp-pg-"))
    cluster = Postgres(root)
    yield cluster
    cluster.stop()
    shutil.rmtree(root, ignore_errors=True)


@pytest.fixture
def new_server(
    postgres: Postgres, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Callable[..., MlflowServer]]:
    """Start ``mlflow server`` processes on fresh PostgreSQL databases; killed after the test."""
    started: list[MlflowServer] = []

    def start(auth: bool = False) -> MlflowServer:
        name = f"mlflow_{os.getpid()}_{next(DATABASES)}"
        root = tmp_path_factory.mktemp("mlflow-server")
        server = MlflowServer(postgres.new_database(name), root, auth=auth).start()
        started.append(server)
        return server

    yield start
    for server in started:
        server.kill()


@pytest.fixture(scope="module")
def pg_server(
    postgres: Postgres, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[MlflowServer]:
    """One PostgreSQL-backed ``mlflow server`` (no logins) shared by a test module."""
    name = f"mlflow_{os.getpid()}_{next(DATABASES)}"
    server = MlflowServer(postgres.new_database(name), tmp_path_factory.mktemp("pg-server"))
    yield server.start()
    server.kill()
