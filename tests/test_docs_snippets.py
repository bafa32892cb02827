"""The manual's shown commands are run, and what they print is compared with what is shown.

``docs/snippets/*.console`` hold console sessions that the pages include (``pymdownx.snippets``):
a line ``$ python train.py ARGS`` is a command, the lines after it are what it prints, ``…``
stands for any text (a line of only ``…`` for any number of lines) and ``$ echo $?`` followed
by a number is the command's exit status. Each command runs from an empty temporary folder.

The first run trains, so it is its own ``python train.py`` process, started the way the README
says to run commands: a shell whose PATH does not hold the venv until it sources
``.venv/bin/activate``, where ``python`` must then be the venv's own. The error sessions stop
in the check before Hydra starts: one fresh interpreter runs ``train.py`` as ``__main__`` once
per command (what ``python train.py ARGS`` does, without paying torch's import ten times),
beside the training run.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from conftest import ROOT

#: the environment the tests run in: the README's ``.venv`` (CI: ``make test``)
VENV = Path(sys.prefix)

SNIPPETS = ROOT / "docs" / "snippets"
ERROR_SNIPPETS = ("errors-overrides.console", "errors-built.console")
#: runs each command of argv[1] (a JSON list of argument lists) as ``python train.py ARGS``
DRIVER = """
import contextlib, io, json, runpy, sys
commands, script = json.loads(sys.argv[1]), sys.argv[2]
results = []
for args in commands:
    out = io.StringIO()
    sys.argv = [script, *args]
    code = 0
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(out):
        try:
            runpy.run_path(script, run_name="__main__")
        except SystemExit as stop:
            code = stop.code if isinstance(stop.code, int) else 1
    results.append({"output": out.getvalue(), "code": code})
print(json.dumps(results))
"""


@dataclass
class Shown:
    """One command of a snippet: its arguments, the lines shown after it, its exit status."""

    args: list[str]
    lines: list[str]
    status: int | None = None


def read_snippet(path: Path) -> list[Shown]:
    """Parse a console snippet; every command must be ``python train.py`` or ``echo $?``."""
    shown: list[Shown] = []
    lines = path.read_text().splitlines()
    index = 0
    while index < len(lines):
        line = lines[index]
        index += 1
        if line == "$ echo $?":
            shown[-1].status = int(lines[index])
            index += 1
        elif line.startswith("$ python train.py"):
            shown.append(Shown(line.split()[3:], []))
        else:
            assert shown and not line.startswith("$"), f"{path.name}: untested command {line!r}"
            shown[-1].lines.append(line)
    return shown


def pattern(lines: list[str]) -> re.Pattern[str]:
    """A regex for the whole output: ``…`` matches any text, a lone ``…`` any lines."""
    parts = []
    for line in lines:
        if line == "…":
            parts.append(r"(?:[^\n]*\n)*")
        else:
            parts.append(".*".join(re.escape(piece) for piece in line.split("…")) + r"\n")
    return re.compile("".join(parts))


def assert_prints(shown: Shown, output: str, code: int) -> None:
    """The command printed the shown lines (and nothing else) and exited as shown."""
    text = output.replace("\r", "\n")
    text = text if text.endswith("\n") else text + "\n"
    command = "python train.py " + " ".join(shown.args)
    assert pattern(shown.lines).fullmatch(text), f"{command} printed:\n{text[-3000:]}"
    if shown.status is not None:
        assert code == shown.status, f"{command} exited {code}, the manual shows {shown.status}"
    if any(line.startswith("lrexp: error: ") for line in shown.lines):
        assert code == 2, f"{command} exited {code}; a config error exits 2"


def run_activated(args: list[str], cwd: Path, timeout: float) -> subprocess.CompletedProcess[str]:
    """``source .venv/bin/activate`` then ``python train.py ARGS``, in a bash whose PATH holds
    none of the venv before it (a fresh shell, as the README's reader has)."""
    bare_path = os.pathsep.join(
        d for d in os.environ.get("PATH", "").split(os.pathsep) if not d.startswith(str(VENV))
    )
    env = {**os.environ, "PATH": bare_path, "PYTHONUNBUFFERED": "1"}
    env.pop("VIRTUAL_ENV", None)
    command = (
        f"source {shlex.quote(str(VENV / 'bin' / 'activate'))} && "
        f"python {shlex.quote(str(ROOT / 'train.py'))} {shlex.join(args)}"
    )
    return subprocess.run(
        ["bash", "-c", command], cwd=cwd, capture_output=True, text=True, timeout=timeout, env=env
    )


def test_read_snippet_and_pattern_follow_the_documented_syntax(tmp_path: Path) -> None:
    snippet = tmp_path / "s.console"
    snippet.write_text("$ python train.py a=1\n…\nx … y\n$ echo $?\n3\n")
    (shown,) = read_snippet(snippet)
    assert shown == Shown(["a=1"], ["…", "x … y"], 3)
    assert pattern(shown.lines).fullmatch("noise\nmore\nx 1 2 y\n")
    assert not pattern(shown.lines).fullmatch("x 1 2 y\ntrailing\n")
    assert not pattern(["a.b"]).fullmatch("axb\n")


def test_quick_start_and_errors_print_what_the_manual_shows(tmp_path: Path) -> None:
    (first,) = read_snippet(SNIPPETS / "first-run.console")
    errors = [shown for name in ERROR_SNIPPETS for shown in read_snippet(SNIPPETS / name)]
    assert len(errors) >= 9 and any(shown.status == 2 for shown in errors)
    (tmp_path / "run").mkdir()
    (tmp_path / "errors").mkdir()
    checks = subprocess.Popen(
        [
            sys.executable,
            "-c",
            DRIVER,
            json.dumps([s.args for s in errors]),
            str(ROOT / "train.py"),
        ],
        cwd=tmp_path / "errors",
        stdout=subprocess.PIPE,
        text=True,
    )
    run = run_activated(first.args, cwd=tmp_path / "run", timeout=240)
    output, _ = checks.communicate(timeout=240)
    assert checks.returncode == 0

    assert_prints(first, run.stdout, run.returncode)
    assert run.returncode == 0, run.stderr[-3000:]
    (checkpoint,) = (tmp_path / "run" / "outputs").glob("*/*/checkpoints/last.ckpt")
    assert str(checkpoint.parents[1]) in run.stdout  # the `outputs:` line names the real folder

    for shown, result in zip(errors, json.loads(output), strict=True):
        assert_prints(shown, result["output"], result["code"])
    assert not (tmp_path / "errors" / "mlruns").exists()  # "none of these leave a run"
