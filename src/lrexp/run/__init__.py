"""One training run, below the config layer: the LightningModule, the Trainer and its
callbacks, the MLflow run's lifecycle, resume, cooldown forks and the checkpoint on a signal."""
