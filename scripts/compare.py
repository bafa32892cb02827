"""Compare MLflow runs without installing the console script: ``python scripts/compare.py -h``.

Same as ``lrexp-compare`` (see :mod:`lrexp.compare`).
"""

import sys
from pathlib import Path

try:
    from lrexp.compare import main
except ImportError:  # a plain checkout without ``pip install -e .``
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))
    from lrexp.compare import main

if __name__ == "__main__":
    main()
