"""Draw the learning-rate curve a configuration will follow, without training.

    python -m lrexp.plot_schedules schedule=step,cosine,onecycle --out lr.png --csv lr.csv
    python -m lrexp.plot_schedules --gallery docs/schedules.png

It takes the same Hydra overrides as ``train.py``; a comma list (or ``choice(...)``,
``range(...)``) in any override draws every combination in one figure. The step counts and the
per-step LR come from the step planner (:mod:`lrexp.plan`), so the plan can also be logged next
to the LR a run actually traced. Metric-driven families cannot be planned: they are drawn
dashed, as they stand before any validation result.

Modules: :mod:`.curves` (overrides -> configs -> planned curves), :mod:`.figures` (drawing),
:mod:`.cli` (the command line). No torch/Lightning import is needed.
"""

from lrexp.plot_schedules.cli import main

__all__ = ["main"]
