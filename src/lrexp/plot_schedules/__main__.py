"""``python -m lrexp.plot_schedules``."""

import sys

from lrexp.plot_schedules.cli import main

sys.exit(main())
