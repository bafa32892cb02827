"""An outside project's parts for lrexp: a model, a DataLoader-based data module and a
schedule, with Hydra configs that ``hydra.searchpath=[pkg://lrexp_example.conf]`` adds."""

from lrexp_example.data import RingsDataModule, RingsDataset
from lrexp_example.model import RadialNet
from lrexp_example.schedule import Rex

__all__ = ["RadialNet", "Rex", "RingsDataModule", "RingsDataset"]
