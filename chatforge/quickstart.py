"""`chatforge quickstart`: the whole lifecycle that exists, on the built-in data, in one command.

    chatforge quickstart --workdir quickstart

Today that is: generate the support world (`data synth`) and look at it
(`data stats`). Each stage that lands adds its step here, so this command always
runs everything chatforge can do, offline, on a laptop CPU.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rich.table import Table
from rich.text import Text

from chatforge.config import opt, save_config
from chatforge.data import inspect, synth
from chatforge.data.dataset import open_dataset
from chatforge.ui import QUIET, UI


@dataclass
class QuickstartConfig:
    """`chatforge quickstart`: run every stage on the built-in support world."""

    workdir: str = opt("quickstart", "directory for everything quickstart writes (replaced parts are swapped atomically)")
    seed: int = opt(0, "random seed for every stage")
    synth: synth.WorldSize = opt(default_factory=synth.WorldSize)


def main(cfg: QuickstartConfig, ui: UI = QUIET) -> dict[str, Any]:
    """Run the quickstart; returns {step: result} and prints where everything went."""
    work = Path(cfg.workdir)
    work.mkdir(parents=True, exist_ok=True)
    save_config(cfg, work / "config.yaml")
    world_dir = work / "data" / "world"
    results: dict[str, Any] = {}
    written: list[tuple[str, str]] = [("resolved config", str(work / "config.yaml"))]

    def do_synth() -> Any:
        sc = synth.SynthConfig(out=str(world_dir), seed=cfg.seed, overwrite=True, **vars(cfg.synth))
        out = synth.main(sc, ui)
        for name in synth.DATASETS:
            written.append((f"dataset: {name}", str(world_dir / name)))
        return out

    def do_stats() -> Any:
        stats = {}
        for name in synth.DATASETS:
            ds = open_dataset(world_dir / name)
            stats[name] = inspect.compute_stats(ds)
            if name == "conversations" and not ui.quiet:
                inspect.print_stats(ds, stats[name], ui)
        return stats

    steps: list[tuple[str, str, Callable[[], Any]]] = [
        ("synth", "generate the built-in support world", do_synth),
        ("stats", "inspect the training conversations", do_stats),
    ]
    t0 = time.time()
    for i, (name, what, fn) in enumerate(steps, 1):
        if not ui.quiet:
            ui.out.rule(Text(f"[{i}/{len(steps)}] {name}: {what}"))
        t = time.time()
        results[name] = fn()
        ui.note(f"{name} done in {time.time() - t:.1f}s", style="dim")

    if not ui.quiet:
        ui.out.rule(f"quickstart finished in {time.time() - t0:.1f}s")
        table = Table(title="where everything was written", title_justify="left")
        table.add_column("what")
        table.add_column("path")
        for what, path in written:
            table.add_row(Text(what), Text(path))
        ui.out.print(table)
    return results
