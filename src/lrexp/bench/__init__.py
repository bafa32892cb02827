"""``make bench``: lrexp's per-step overhead (:mod:`.steps`) and its startup (:mod:`.startup`),
each as ratios measured in one run; :mod:`.cli` prints them."""

from lrexp.bench.cli import main

__all__ = ["main"]
