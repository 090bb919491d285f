"""`chatforge runs list` and `chatforge runs compare`: tables of runs from their run dirs.

    chatforge runs list                       # every run dir under the current directory
    chatforge runs list quickstart/runs --sort best_val_loss
    chatforge runs compare runs/sft runs/sft-lr3e-3

No server and no MLflow needed: the tables come from the files each run dir holds
(config.json, summary.json, metrics.jsonl, eval.json). `compare` shows the config fields
that differ, the training figures and the eval figures side by side.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from chatforge.config import opt
from chatforge.errors import UserError
from chatforge.tracking import flatten
from chatforge.ui import QUIET, UI


@dataclass
class RunsListConfig:
    """`chatforge runs list`: the run dirs under some directories, one line each."""

    roots: list[str] = opt(default_factory=lambda: ["."], help="directories to look in (run dirs are found up to 4 levels down)", positional=True, metavar="DIR")
    sort: str = opt("time", "order by: time, stage, steps, final_loss, best_val_loss, task_success")


@dataclass
class RunsCompareConfig:
    """`chatforge runs compare`: two or more runs side by side (config differences and figures)."""

    runs: list[str] = opt(default_factory=list, help="run dirs to compare", positional=True, required=True, metavar="RUN_DIR")


def _json(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError):
        return {}
    return data if isinstance(data, dict) else {}


def is_run_dir(path: Path) -> bool:
    return (path / "config.json").is_file() and ((path / "metrics.jsonl").is_file() or (path / "eval.json").is_file())


def find_runs(roots: list[str], depth: int = 4) -> list[Path]:
    """Run dirs under `roots` (not inside checkpoints or model dirs)."""
    found: list[Path] = []

    def walk(p: Path, level: int) -> None:
        if is_run_dir(p):
            found.append(p)
            return
        if level >= depth:
            return
        try:
            children = sorted(c for c in p.iterdir() if c.is_dir() and not c.name.startswith(".") and c.name not in ("checkpoints", "model", "data"))
        except OSError:
            return
        for c in children:
            walk(c, level + 1)

    for r in roots:
        root = Path(r)
        if not root.is_dir():
            raise UserError(f"{root}: no such directory")
        walk(root, 0)
    return found


def row(run: Path) -> dict[str, Any]:
    """The figures of one run dir."""
    config, summary, ev = _json(run / "config.json"), _json(run / "summary.json"), _json(run / "eval.json")
    return {
        "run": str(run),
        "stage": config.get("stage", "eval" if ev else "?"),
        "time": (run / "metrics.jsonl").stat().st_mtime if (run / "metrics.jsonl").is_file() else (run / "config.json").stat().st_mtime,
        "params": summary.get("params"),
        "steps": summary.get("steps"),
        "final_loss": summary.get("final_loss"),
        "best_val_loss": summary.get("best_val_loss"),
        "seconds": summary.get("seconds"),
        "task_success": (ev.get("task") or {}).get("success"),
        "status": summary.get("stopped", "running?" if not summary and not ev else ""),
    }


def _fmt(v: Any) -> str:
    if v is None:
        return "-"
    if isinstance(v, bool):
        return str(v).lower()
    if isinstance(v, float):
        return f"{v:.4g}"
    if isinstance(v, int):
        return f"{v:,}"
    return str(v)


def list_main(cfg: RunsListConfig, ui: UI = QUIET) -> list[dict[str, Any]]:
    rows = [row(r) for r in find_runs(cfg.roots)]
    key = cfg.sort
    if key not in ("time", "stage", "steps", "final_loss", "best_val_loss", "task_success"):
        raise UserError(f"--sort: {key!r}; choose time, stage, steps, final_loss, best_val_loss or task_success")
    rows.sort(key=lambda r: (r[key] is None, r[key] if r[key] is not None else 0), reverse=key in ("time", "task_success"))
    from rich.table import Table
    from rich.text import Text

    t = Table(title=f"{len(rows)} runs", title_justify="left")
    for col in ("run", "stage", "when", "params", "steps", "final loss", "best val loss", "task success", "status"):
        t.add_column(col, justify="right" if col in ("params", "steps", "final loss", "best val loss", "task success") else "left", overflow="fold")
    for r in rows:
        when = time.strftime("%m-%d %H:%M", time.localtime(r["time"]))
        params = f"{r['params'] / 1e6:.2f}M" if r["params"] else "-"
        t.add_row(Text(r["run"]), r["stage"], when, params, _fmt(r["steps"]), _fmt(r["final_loss"]), _fmt(r["best_val_loss"]), _fmt(r["task_success"]), r["status"])
    ui.out.print(t)
    return rows


def compare_main(cfg: RunsCompareConfig, ui: UI = QUIET) -> dict[str, Any]:
    if len(cfg.runs) < 2:
        raise UserError("give two or more run dirs to compare")
    runs = []
    for r in cfg.runs:
        p = Path(r)
        if not is_run_dir(p):
            raise UserError(f"{p}: not a run dir (no config.json with metrics.jsonl or eval.json)")
        runs.append(p)
    configs = [flatten(_json(p / "config.json")) for p in runs]
    keys = sorted({k for c in configs for k in c})
    differ = [k for k in keys if len({json.dumps(c.get(k), sort_keys=True) for c in configs}) > 1 and k not in ("out",)]
    rows = [row(p) for p in runs]
    from chatforge.eval.runner import headline

    evals = [dict(headline(_json(p / "eval.json"))) for p in runs]
    eval_keys = [k for k in dict.fromkeys(k for e in evals for k in e)]
    from rich.table import Table
    from rich.text import Text

    t = Table(title="runs compared", title_justify="left")
    t.add_column("")
    for p in runs:
        t.add_column(Text(str(p)))
    t.add_row(Text("config (what differs)", style="bold"), *[""] * len(runs))
    for k in differ:
        t.add_row(Text(k), *[Text(_fmt(c.get(k))) for c in configs])
    t.add_row(Text("training", style="bold"), *[""] * len(runs))
    for k in ("stage", "params", "steps", "final_loss", "best_val_loss", "seconds", "status"):
        t.add_row(k.replace("_", " "), *[_fmt(r[k]) for r in rows])
    if eval_keys:
        t.add_row(Text("eval", style="bold"), *[""] * len(runs))
        for k in eval_keys:
            t.add_row(Text(k), *[Text(e.get(k, "-")) for e in evals])
    ui.out.print(t)
    return {"differ": {k: [c.get(k) for c in configs] for k in differ}, "rows": rows, "eval": evals}
