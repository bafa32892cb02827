"""The spill file: what a run could not send to its tracking server, kept on disk.

``<output dir>/unsent/records.jsonl`` is append-only: a header line naming the run and the
(redacted) tracking URI, then one line per metric batch and, when the run ended while the
server was away, one ``close`` line (final status, tags, artifacts). Every append is fsynced,
so a crash loses at most the line being written. ``<output dir>/unsent/sent`` holds the byte
offset up to which the records are in the store; it only grows, so delivering the file again
(``lrexp-sync``) sends nothing twice. MLflow's SQL stores also ignore a metric point identical
to one they hold (key, value, timestamp and step), which covers a batch that was stored but
whose answer never arrived.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from lrexp.errors import ConfigError
from lrexp.tracking.uri import redact

SPILL_DIR = "unsent"
RECORDS = "records.jsonl"
SENT = "sent"

#: one metric point as the logger buffers it: key, value, timestamp (ms), step
Point = tuple[str, float, int, int]


@dataclass
class CloseRecord:
    """How a run ends: its status, final tags, files to log as artifacts and its figures'
    inputs (the planned LR CSV, if any, and the run's label)."""

    status: str
    tags: dict[str, str] = field(default_factory=dict)
    artifacts: list[str] = field(default_factory=list)
    planned_csv: str | None = None
    label: str = ""


@dataclass
class Header:
    run_id: str
    tracking_uri: str
    experiment_name: str


class SpillFile:
    """The append-only spill file of one run's output directory."""

    def __init__(self, output_dir: Path) -> None:
        self.folder = Path(output_dir) / SPILL_DIR
        self.path = self.folder / RECORDS
        self.sent_path = self.folder / SENT

    def exists(self) -> bool:
        return self.path.is_file()

    def _append(self, record: dict[str, Any]) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        with self.path.open("a", encoding="utf-8") as handle:
            handle.write(json.dumps(record, separators=(",", ":")) + "\n")
            handle.flush()
            os.fsync(handle.fileno())

    def start(self, run_id: str, tracking_uri: str, experiment_name: str) -> None:
        """Write the header line, once (credentials in the URI are redacted)."""
        if not self.exists():
            header = Header(run_id, redact(tracking_uri), experiment_name)
            self._append({"kind": "run", **asdict(header)})

    def append_points(self, points: list[Point]) -> None:
        self._append({"kind": "metrics", "points": points})

    def append_close(self, record: CloseRecord) -> None:
        self._append({"kind": "close", **asdict(record)})

    def header(self) -> Header:
        with self.path.open(encoding="utf-8") as handle:
            first = json.loads(handle.readline())
        if first.get("kind") != "run":
            raise ValueError(f"{self.path} does not start with a run header")
        return Header(first["run_id"], first["tracking_uri"], first["experiment_name"])

    def sent_offset(self) -> int:
        try:
            return int(self.sent_path.read_text().strip() or 0)
        except FileNotFoundError:
            return 0

    def mark_sent(self, offset: int) -> None:
        """Record (atomically, durably) that every line before byte ``offset`` is stored."""
        partial = self.sent_path.with_suffix(".tmp")
        with partial.open("w") as handle:
            handle.write(str(offset))
            handle.flush()
            os.fsync(handle.fileno())
        partial.replace(self.sent_path)

    def unsent(self) -> Iterator[tuple[int, dict[str, Any]]]:
        """``(end offset, record)`` for each complete line not yet stored, in file order."""
        if not self.exists():
            return
        offset = self.sent_offset()
        with self.path.open("rb") as handle:
            handle.seek(offset)
            for line in handle:
                if not line.endswith(b"\n"):
                    return  # a line cut short by a crash: nothing after it was written
                offset += len(line)
                record = json.loads(line)
                if record.get("kind") != "run":
                    yield offset, record

    def pending(self) -> bool:
        return next(self.unsent(), None) is not None


def check_unsent(output_dir: Path, run_id: str | None) -> None:
    """Refuse to start a run in an output directory that still holds another run's unsent
    records (``run_id``: the run being resumed, whose own records it may send)."""
    spill = SpillFile(output_dir)
    if spill.pending() and spill.header().run_id != run_id:
        raise ConfigError(
            "paths.output_dir",
            f"{spill.folder} holds records of run {spill.header().run_id} not yet sent; "
            f"send them first with: lrexp-sync {output_dir}",
        )


def close_record(record: dict[str, Any]) -> CloseRecord:
    fields = {k: v for k, v in record.items() if k != "kind"}
    return CloseRecord(**fields)
