"""`chatforge data mix`: one dataset from several, in chosen proportions (multitask mixtures).

    chatforge data mix data/support:0.7 data/smalltalk:0.3 --out data/mixed [--rows 10000]

Each source gets `rows * weight / sum(weights)` rows (default `rows`: the total of the
sources). A source with fewer rows than its share is repeated whole, then topped up
with a random sample (upsampling); one with more is sampled without replacement. The
sample is drawn with `--seed` (same inputs and seed: same output hash). Rows keep their
order within each source and sources follow each other: training shuffles anyway. A
row repeated for upsampling gets the id `ID~rep2`, `ID~rep3`, ...; an id used by two
sources is kept for the first and suffixed `~src2` (by source index) for the others.
The manifest records the weights, the sources' hashes and the rows taken from each.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from chatforge.config import opt, to_dict
from chatforge.data.dataset import DatasetWriter, open_dataset
from chatforge.errors import ConfigError, UserError
from chatforge.ui import QUIET, UI


@dataclass
class MixConfig:
    """`chatforge data mix`: combine datasets with sampling weights."""

    sources: list[str] = opt(
        default_factory=list, help="datasets with weights, DIR:WEIGHT (weight 1 if omitted)", positional=True, required=True, metavar="DIR:WEIGHT"
    )
    out: str = opt("", "output dataset directory", required=True)
    rows: int = opt(0, "rows in the mixture (0 = the sources' total)", ge=0)
    seed: int = opt(0, "random seed for the sampling")
    overwrite: bool = opt(False, "replace OUT if it is a previous dataset (atomically)")

    def validate(self) -> None:
        for spec in self.sources:
            parse_source(spec)


def parse_source(spec: str) -> tuple[str, float]:
    """'DIR:0.7' -> ('DIR', 0.7); 'DIR' -> ('DIR', 1.0)."""
    path, sep, weight = spec.rpartition(":")
    if not sep or "/" in weight or not path:
        return spec, 1.0
    try:
        w = float(weight)
    except ValueError:
        raise ConfigError(f"sources: {spec!r}: weight {weight!r} is not a number (use DIR:WEIGHT, e.g. data/a:0.7)") from None
    if not w > 0 or w != w or w == float("inf"):
        raise ConfigError(f"sources: {spec!r}: weight must be a positive number, got {weight}")
    return path, w


def plan_counts(sizes: list[int], weights: list[float], total: int) -> list[int]:
    """Rows to take from each source: shares of `total` by weight, rounded so they sum to `total`."""
    exact = [total * w / sum(weights) for w in weights]
    counts = [int(x) for x in exact]
    # hand the remaining rows to the largest remainders (ties: earlier source)
    order = sorted(range(len(exact)), key=lambda i: (-(exact[i] - counts[i]), i))
    for i in order[: total - sum(counts)]:
        counts[i] += 1
    return counts


def main(cfg: MixConfig, ui: UI = QUIET) -> dict[str, Any]:
    """Run `data mix`; returns the new dataset's manifest."""
    parsed = [parse_source(s) for s in cfg.sources]
    datasets = [open_dataset(p) for p, _ in parsed]
    if any(Path(cfg.out).resolve() == d.path.resolve() for d in datasets):
        raise UserError(f"{cfg.out}: is one of the sources; write the mixture to another --out")
    kinds = {d.kind for d in datasets}
    if len(kinds) > 1:
        raise UserError("sources hold different kinds of data: " + ", ".join(f"{d.path} ({d.kind})" for d in datasets))
    for d in datasets:
        if d.num_rows == 0:
            raise UserError(f"{d.path}: dataset is empty; it cannot contribute rows to a mixture")
    sizes = [d.num_rows for d in datasets]
    weights = [w for _, w in parsed]
    total = cfg.rows or sum(sizes)
    counts = plan_counts(sizes, weights, total)
    rng = random.Random(cfg.seed)
    taken: list[dict[str, Any]] = []
    seen: set[str] = set()
    with DatasetWriter(
        cfg.out,
        datasets[0].kind,
        created_by={"command": "data mix", "config": to_dict(cfg)},
        parents=[d.content_hash for d in datasets],
        overwrite=cfg.overwrite,
    ) as w, ui.progress("mix", total=total) as advance:
        for si, (d, n) in enumerate(zip(datasets, counts, strict=True)):
            # copies[i] = how many times row i of this source is written
            full, rest = divmod(n, d.num_rows)
            copies = [full] * d.num_rows
            for i in rng.sample(range(d.num_rows), rest):
                copies[i] += 1
            for i, row in enumerate(d):
                for k in range(copies[i]):
                    rid = row["id"] if k == 0 else f"{row['id']}~rep{k + 1}"
                    if rid in seen:
                        rid = f"{rid}~src{si + 1}"
                    seen.add(rid)
                    w.write({**row, "id": rid})
                advance(copies[i])
            taken.append({"path": str(d.path), "content_hash": d.content_hash, "weight": weights[si], "rows_available": d.num_rows, "rows_taken": n})
        w.manifest_extra["mix"] = {"rows": total, "sources": taken, "seed": cfg.seed}
    assert w.manifest is not None
    ui.note(f"mixed {len(datasets)} sources into {total:,} rows -> {cfg.out}: " + ", ".join(f"{t['path']} {t['rows_taken']:,}" for t in taken))
    return w.manifest
