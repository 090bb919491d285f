"""`chatforge quickstart`: the whole lifecycle that exists, on the built-in data, in one command.

    chatforge quickstart --workdir quickstart

Today that is: generate the support world (`data synth`), clean its raw logs,
knowledge base and preference pairs (`data clean`: PII removed, noise filtered,
duplicates dropped), split the clean conversations (`data split`) and look at the
training split (`data stats`). Each stage that lands adds its step here, so this
command always runs everything chatforge can do, offline, on a laptop CPU.
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
from chatforge.data import clean, inspect, split, synth
from chatforge.data.dataset import open_dataset
from chatforge.ui import QUIET, UI


@dataclass
class QuickstartConfig:
    """`chatforge quickstart`: run every stage on the built-in support world."""

    workdir: str = opt("quickstart", "directory for everything quickstart writes (replaced parts are swapped atomically)")
    seed: int = opt(0, "random seed for every stage")
    workers: int = opt(0, "worker processes for data cleaning (0 = one per CPU core)", ge=0, le=256)
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

    clean_dir = work / "data" / "clean"
    splits_dir = work / "data" / "splits"

    def do_clean() -> Any:
        out = {}
        for name in ("conversations", "kb", "preferences"):
            cc = clean.CleanConfig(dataset=str(world_dir / name), out=str(clean_dir / name), workers=cfg.workers, overwrite=True)
            out[name] = clean.main(cc, ui if name == "conversations" else QUIET)
            written.append((f"clean dataset: {name} (+ clean_report.md)", str(clean_dir / name)))
        return out

    def do_split() -> Any:
        sc = split.SplitConfig(dataset=str(clean_dir / "conversations"), out=str(splits_dir), overwrite=True)
        out = split.main(sc, ui)
        for name in split.SPLITS:
            written.append((f"split: {name}", str(splits_dir / name)))
        return out

    def do_stats() -> Any:
        ds = open_dataset(splits_dir / "train")
        stats = inspect.compute_stats(ds)
        if not ui.quiet:
            inspect.print_stats(ds, stats, ui)
        return stats

    steps: list[tuple[str, str, Callable[[], Any]]] = [
        ("synth", "generate the built-in support world", do_synth),
        ("clean", "remove PII, noise and duplicates from the raw data", do_clean),
        ("split", "train/val/test splits of the clean conversations", do_split),
        ("stats", "inspect the training split", do_stats),
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
