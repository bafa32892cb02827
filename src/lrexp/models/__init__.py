"""lrexp's models: plain ``nn.Module`` classes named by ``_target_`` in ``conf/model/``.

Each takes ``input_shape`` and ``num_classes`` (``Linear``: ``num_outputs``), which lrexp
offers every model constructor that names them (:mod:`lrexp.config.parts`): a user's model is built
the same way.
"""

from lrexp.models.cnn import CNN
from lrexp.models.gpt import GPT
from lrexp.models.linear import Linear
from lrexp.models.lstm import LSTM
from lrexp.models.mlp import MLP

__all__ = ["CNN", "GPT", "LSTM", "MLP", "Linear"]
