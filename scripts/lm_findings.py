"""The field's schedule findings on lrexp's small GPT: ``python scripts/lm_findings.py``
(``--help``; the manual's page docs/findings.md)."""

from lrexp.findings.study import main

if __name__ == "__main__":
    main()
