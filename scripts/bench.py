"""Benchmark lrexp's per-step overhead: ``python scripts/bench.py [--json out.json]``."""

from lrexp.bench import main

if __name__ == "__main__":
    main()
