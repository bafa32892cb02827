"""``python -m lrexp.predict``."""

from lrexp.predict.cli import entry

entry()
