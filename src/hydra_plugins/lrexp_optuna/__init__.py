"""Hydra sweeper plugin ``hydra/sweeper=lrexp_optuna``: Optuna search (see lrexp.search)."""
