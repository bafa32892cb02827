"""The single-pass power-law testbed of the loss-curve laws: its spectrum, its exact
population loss, one epoch with no repeated example, and its bad settings as one line."""

from __future__ import annotations

from collections.abc import Callable

import pytest
import torch
from omegaconf import DictConfig

from lrexp.config.planning import planned_steps
from lrexp.data.powerlaw import PowerLawRegression


def test_the_design_has_its_spectrum_and_the_population_loss_is_exact() -> None:
    """The training covariance is diag(i^-a) up to sampling error; the exact population loss
    of θ = 0 and of θ_true match the mean squared error on 20,000 test examples."""
    data = PowerLawRegression(
        steps=400, batch_size=50, features=30, spectrum_decay=2.0, noise=0.3, test_samples=20_000
    )
    data.setup()
    x = data.full_split("train")[0].double()
    assert x.shape == (400 * 50, 30)  # one epoch of 400 batches sees every example once
    covariance = torch.diagonal(x.T @ x / len(x))
    expected = torch.arange(1, 31, dtype=torch.float64) ** -2.0
    assert torch.allclose(covariance, expected, rtol=0.05)
    x_test, y_test = (t.double() for t in data.full_split("test"))
    zero = torch.zeros(30, dtype=torch.float64)
    measured_zero = float((y_test**2).mean())
    assert data.population_loss(zero) == pytest.approx(measured_zero, rel=0.03)
    truth = data.truth(torch.Generator().manual_seed(data.seed))
    assert data.population_loss(truth) == pytest.approx(0.3**2)
    measured_truth = float(((x_test @ truth - y_test.flatten()) ** 2).mean())
    assert measured_truth == pytest.approx(0.3**2, rel=0.05)
    assert data.exponent() == pytest.approx((1.5 - 1) / 2.0)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"signal_decay": 1.0}, "signal_decay must be > 1"),
        ({"spectrum_decay": 0}, "spectrum_decay must be a number > 0"),
        ({"steps": 0}, "steps must be an integer >= 1"),
        ({"batch_size": 2.5}, "batch_size must be an integer >= 1"),
    ],
)
def test_bad_settings_are_refused(kwargs: dict[str, float], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        PowerLawRegression(**kwargs)  # type: ignore[arg-type]


def test_the_study_is_one_epoch_of_its_steps(make_cfg: Callable[..., DictConfig]) -> None:
    cfg = make_cfg("experiment=powerlaw_study", "hydra.mode=RUN", "dataset.steps=300")
    assert planned_steps(cfg) == (300, 300)
