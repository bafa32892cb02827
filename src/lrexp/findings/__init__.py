"""The field's schedule findings reproduced on lrexp's small GPT (``experiment=lm_findings``):
:mod:`lrexp.findings.claims` says what each finding claims and which runs test it,
:mod:`lrexp.findings.study` runs what is missing, :mod:`lrexp.findings.report` tests and
tabulates. ``python scripts/lm_findings.py --help``; the manual's page: docs/findings.md."""
