"""Draw planned LR curves without training: ``python scripts/plot_schedules.py schedule=a,b``.

A thin shim over :mod:`lrexp.plot_schedules` (also ``lrexp-plot-schedules`` and
``python -m lrexp.plot_schedules``); see ``--help``.
"""

import sys

from lrexp.plot_schedules import main

if __name__ == "__main__":
    sys.exit(main())
