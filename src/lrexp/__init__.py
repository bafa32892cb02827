"""lrexp: learning-rate schedule experiments with Hydra, Lightning and MLflow."""

__version__ = "0.1.0"
