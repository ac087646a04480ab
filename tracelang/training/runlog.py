"""What a run reports: a JSONL metrics log, the recipe's trackers (through accelerate), and lines for the user."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ..fileio import append_to, atomic_write, open_lines


def metric_rows(path: Path) -> list[dict[str, Any]]:
    """The rows of a metrics log, skipping a line cut by an interrupt (or one that is not an object).
    Python's JSON, not ``fileio.loads_line``: a row may hold NaN (a diverged loss) as ``metrics``
    wrote it."""
    rows = []
    if not path.is_file():
        return rows
    with open_lines(path) as lines:
        text = list(lines)
    for line in text:
        try:
            row = json.loads(line)
        except json.JSONDecodeError:
            continue
        if isinstance(row, dict):
            rows.append(row)
    return rows


class RunLog:
    def __init__(self, run_dir: Path, echo: Callable[[str], None] = print, enabled: bool = True,
                 accelerator: Any = None):
        """``accelerator``: one made with ``log_with`` and its trackers initialised; each row goes to
        them too (``Accelerator.log`` logs on the main process only)."""
        self.enabled = enabled
        self.echo = echo if enabled else (lambda _line: None)
        self.path = Path(run_dir) / "metrics.jsonl"
        self.accelerator = accelerator
        if enabled:
            self.path.parent.mkdir(parents=True, exist_ok=True)

    def truncate_after(self, step: int) -> None:
        """On resume: drop lines logged after the checkpoint (they will be logged again)."""
        if not self.enabled or not self.path.exists():
            return
        keep = [row for row in metric_rows(self.path) if row.get("step", 0) <= step]
        with atomic_write(self.path) as fh:
            fh.writelines(json.dumps(row) + "\n" for row in keep)  # as `metrics` writes them

    def metrics(self, step: int, row: dict[str, Any], kind: str = "train") -> None:
        if not self.enabled:
            return
        full = {"kind": kind, "step": step, "time": round(time.time(), 3), **row}
        with append_to(self.path) as fh:
            fh.write(json.dumps(full) + "\n")
        if self.accelerator is not None:
            from .trackers import scalars

            self.accelerator.log(scalars(kind, row), step=step)

    def close(self) -> None:
        if self.accelerator is not None:
            self.accelerator.end_training()
