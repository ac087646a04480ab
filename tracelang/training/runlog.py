"""What a run reports: a JSONL metrics log, tensorboard when installed, and lines for the user."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any


class RunLog:
    def __init__(self, run_dir: Path, tensorboard: bool = True, echo: Callable[[str], None] = print,
                 enabled: bool = True):
        self.enabled = enabled
        self.echo = echo if enabled else (lambda _line: None)
        self.path = Path(run_dir) / "metrics.jsonl"
        self.writer = None
        if enabled:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        if enabled and tensorboard:
            try:
                from torch.utils.tensorboard import SummaryWriter
            except ImportError:  # optional: pip install 'tracelang[tensorboard]'
                self.echo("note: tensorboard is not installed; metrics go to metrics.jsonl only")
            else:
                self.writer = SummaryWriter(log_dir=str(Path(run_dir) / "tensorboard"))

    def truncate_after(self, step: int) -> None:
        """On resume: drop lines logged after the checkpoint (they will be logged again)."""
        if not self.enabled or not self.path.exists():
            return
        keep = []
        for line in self.path.read_text(encoding="utf-8").splitlines():
            try:
                row = json.loads(line)
            except json.JSONDecodeError:
                continue
            if row.get("step", 0) <= step:
                keep.append(line)
        self.path.write_text("".join(k + "\n" for k in keep), encoding="utf-8")

    def metrics(self, step: int, row: dict[str, Any], kind: str = "train") -> None:
        if not self.enabled:
            return
        full = {"kind": kind, "step": step, "time": round(time.time(), 3), **row}
        with self.path.open("a", encoding="utf-8") as fh:
            fh.write(json.dumps(full) + "\n")
        if self.writer is not None:
            for key, value in row.items():
                if isinstance(value, (int, float)) and not isinstance(value, bool):
                    self.writer.add_scalar(f"{kind}/{key}", value, step)
            self.writer.flush()

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
