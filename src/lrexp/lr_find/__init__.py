"""The LR range test (Lightning's LR finder): ``tune=lr_find``, ``optimizer.lr=auto``.

Modules, bottom to top: :mod:`.settings` (the ``tune.*`` settings and the ``auto`` marker; a
leaf that config validation imports), :mod:`.search` (the search itself), :mod:`.report`
(CSV, figure, MLflow entries) and :mod:`.cli` (the step that runs before training, and
``lrexp-lr-find``). This ``__init__`` imports none of them, so importing the leaf stays light.
"""
