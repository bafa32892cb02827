"""Benchmark lrexp-compare's history readers: ``python scripts/bench_compare.py [--runs N]``."""

from lrexp.bench.compare import main

if __name__ == "__main__":
    main()
