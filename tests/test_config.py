"""The Hydra config composes for every option of every group, with the documented defaults."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
import torch
from omegaconf import DictConfig, OmegaConf

from conftest import CONF, run_cli
from lrexp.config.validate import validate
from lrexp.errors import ConfigError
from lrexp.optim import schedule_free_class
from lrexp.targets import locate

GROUPS = (
    "task",
    "dataset",
    "model",
    "optimizer",
    "schedule",
    "trainer",
    "logger",
    "callbacks",
    "paths",
    "averaging",
)
#: options that need regression: they validate with the convex testbed and the linear model
REGRESSION = {
    ("task", "regression"),
    ("dataset", "convex"),
    ("dataset", "seed_linear"),
    ("dataset", "powerlaw"),
}
#: options of language models: they validate with the GPT on the offline text
LANGUAGE = {
    ("task", "language_model"),
    ("dataset", "text"),
    ("dataset", "tinyshakespeare"),
    ("model", "gpt"),
}
OPTIONS = [
    (group, path.stem)
    for group in GROUPS
    for path in sorted((CONF / group).glob("*.yaml"))
    if not path.stem.startswith("_")
]


def test_defaults(make_cfg: Callable[..., DictConfig]) -> None:
    cfg = make_cfg()
    picked = {g: cfg[g].get("name") for g in ("dataset", "model", "optimizer", "schedule")}
    assert picked == {"dataset": "digits", "model": "mlp", "optimizer": "sgd", "schedule": "cosine"}
    assert cfg.trainer.accelerator == "cpu"
    assert cfg.logger.enabled and cfg.logger.tracking_uri.startswith("sqlite:///")
    assert set(GROUPS) | {"seed", "ckpt_path"} <= set(cfg)


@pytest.mark.parametrize(("group", "option"), OPTIONS, ids=[f"{g}={o}" for g, o in OPTIONS])
def test_every_option_composes_and_validates(
    make_cfg: Callable[..., DictConfig], group: str, option: str
) -> None:
    regression = ["task=regression", "dataset=convex", "model=linear"]
    language = ["task=language_model", "dataset=text", "model=gpt"]
    paired = regression if (group, option) in REGRESSION else []
    paired = language if (group, option) in LANGUAGE else paired
    cfg = make_cfg(*paired, f"{group}={option}")
    OmegaConf.to_container(cfg, resolve=True)
    if schedule_free_class(locate(cfg.optimizer._target_, "optimizer")):  # needs constant
        with pytest.raises(ConfigError, match=r"needs schedule=constant"):
            validate(cfg)
        validate(make_cfg(f"{group}={option}", "schedule=constant"))
        return
    if (group, option) == ("dataset", "tinyshakespeare"):  # not on disk, and no download
        with pytest.raises(ConfigError, match=r"dataset\.download: no file at .*tinyshakespeare"):
            validate(cfg)
        return
    if cfg.trainer.accelerator == "gpu" and not torch.cuda.is_available():
        with pytest.raises(ConfigError, match=r"trainer\.devices: asks for 1 GPUs but 0"):
            validate(cfg)
        return
    validate(cfg)
    if group in ("dataset", "model", "optimizer", "schedule"):
        assert cfg[group].name == option


def test_every_group_has_options() -> None:
    for group in GROUPS:
        assert list((CONF / group).glob("*.yaml")), group


def test_launcher_presets_compose(tmp_path: Path) -> None:
    for launcher, target in (("parallel", "JoblibLauncher"), ("slurm", "SlurmLauncher")):
        result = run_cli([f"hydra/launcher={launcher}", "--cfg", "hydra"], cwd=tmp_path)
        assert result.returncode == 0, result.stderr[-2000:]
        assert target in result.stdout
