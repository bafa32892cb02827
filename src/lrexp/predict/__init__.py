"""Predict before you run: loss-curve laws fitted on a few runs, checked on held-out ones, and
the convex bound (``lrexp-predict``). The building blocks take plain arrays; only
:mod:`lrexp.predict.cli` composes configs."""

from lrexp.predict.fit import Fit, fit_law, resample_seeds
from lrexp.predict.laws import Curve, MultiPowerLaw, TissueLaw, make_law, predict_curve

__all__ = [
    "Curve",
    "Fit",
    "MultiPowerLaw",
    "TissueLaw",
    "fit_law",
    "make_law",
    "predict_curve",
    "resample_seeds",
]
