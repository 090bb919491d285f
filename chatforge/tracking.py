"""Run records: every stage writes its resolved config and its metrics over time.

    log = RunLog(run_dir, stage="pretrain", config=to_dict(cfg))
    log.log(step=10, loss=3.2, lr=1e-3)          # one JSON line in RUN/metrics.jsonl

`metrics.jsonl` is always written (one JSON object per line, flushed as it goes, so a
crash loses nothing already logged). On resume, lines past the checkpoint's step are
dropped, so the record reads as one continuous run.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any

from chatforge.atomic import atomic_write_json, atomic_write_text

METRICS = "metrics.jsonl"


class RunLog:
    """metrics.jsonl and the resolved config of one run (only the main process writes)."""

    def __init__(self, run_dir: Path, *, stage: str, config: dict[str, Any], enabled: bool = True, resume_step: int | None = None) -> None:
        self.run_dir = Path(run_dir)
        self.enabled = enabled
        self._f = None
        if not enabled:
            return
        self.run_dir.mkdir(parents=True, exist_ok=True)
        atomic_write_json(self.run_dir / "config.json", {"stage": stage, **config})
        path = self.run_dir / METRICS
        if resume_step is not None and path.is_file():
            kept = [line for line in path.read_text(encoding="utf-8").splitlines() if _step_of(line) <= resume_step]
            atomic_write_text(path, "".join(line + "\n" for line in kept))
        elif resume_step is None and path.is_file():
            path.unlink()
        self._f = open(path, "a", encoding="utf-8")  # noqa: SIM115 - closed in close()

    def log(self, **metrics: Any) -> None:
        """Append one record (with a timestamp)."""
        if self._f is None:
            return
        self._f.write(json.dumps({"time": round(time.time(), 3), **metrics}) + "\n")
        self._f.flush()

    def close(self) -> None:
        if self._f is not None:
            self._f.flush()
            os.fsync(self._f.fileno())
            self._f.close()
            self._f = None


def _step_of(line: str) -> int:
    try:
        return int(json.loads(line).get("step", 0))
    except (json.JSONDecodeError, TypeError, ValueError):
        return 1 << 62  # unreadable (a line cut by a crash): dropped


def read_metrics(run_dir: Path) -> list[dict[str, Any]]:
    """Every record of a run's metrics.jsonl."""
    path = Path(run_dir) / METRICS
    if not path.is_file():
        return []
    out = []
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            out.append(json.loads(line))
        except json.JSONDecodeError:
            continue
    return out
