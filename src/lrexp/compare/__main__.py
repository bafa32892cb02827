"""``python -m lrexp.compare``: the same as ``lrexp-compare``."""

from lrexp.compare.cli import main

if __name__ == "__main__":
    main()
