"""Simulated error rate, CI coverage and seed plans of lrexp-compare's verdicts:
``python scripts/verdict_calibration.py [--sweeps N]``."""

from lrexp.compare.calibration import main

if __name__ == "__main__":
    main()
