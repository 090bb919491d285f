"""`chatforge data split`: train / val / test splits that never move, and never leak.

    chatforge data split data/clean --out data/splits --val 0.05 --test 0.05

A row's split is a function of its content alone (a hash of its normalized text,
`steps.split_key`): adding rows to a data set never moves an existing row to another
split, and the same content always lands in the same split. An augmented row follows
its original (`meta.origin_key`); one whose original is in val or test is dropped, so
augmented rows only ever train.

Leakage check: a training row that is an exact or near duplicate (word 3-gram Jaccard
>= `threshold`) of a val or test row would let the model see the test; such rows are
dropped from train and counted in the manifest. MinHash is an estimate, so the check is
tuned to err on the side of dropping: 256 permutations, LSH bands tuned for
`threshold - 0.2`, and a match at an estimated `threshold - 0.05` (a pair at Jaccard 0.8
is caught with probability > 0.99; a few train rows near 0.75 are dropped too).

Writes OUT/train, OUT/val, OUT/test (datasets) and OUT/split.json, swapped in together.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from chatforge.atomic import atomic_write_json, staged_dir
from chatforge.config import opt, to_dict
from chatforge.data.dataset import DatasetWriter, open_dataset
from chatforge.data.dedup import DedupConfig, DedupIndex, Signer
from chatforge.data.steps import content_key, dedup_text, split_key
from chatforge.errors import ConfigError, UserError
from chatforge.ui import QUIET, UI

SPLITS = ("train", "val", "test")
SplitName = Literal["train", "val", "test"]


@dataclass
class SplitConfig:
    """`chatforge data split`: deterministic train/val/test splits by content hash, with a leakage check."""

    dataset: str = opt("", "input dataset directory", positional=True, required=True, metavar="IN_DIR")
    out: str = opt("", "output directory; OUT/train, OUT/val and OUT/test are written inside it", required=True)
    val: float = opt(0.05, "share of rows for validation", ge=0, lt=1)
    test: float = opt(0.05, "share of rows for test", ge=0, lt=1)
    salt: str = opt("", "change to draw a different split (still stable as the data grows)")
    leakage: bool = opt(True, "drop training rows that duplicate or nearly duplicate a val/test row")
    threshold: float = opt(0.8, "Jaccard similarity at which a training row leaks a val/test row", gt=0, lt=1)
    overwrite: bool = opt(False, "replace OUT if it is a previous split output (atomically)")

    def validate(self) -> None:
        if self.val + self.test >= 1:
            raise ConfigError(f"val + test: must be < 1, got {self.val} + {self.test}")


def assign(key: str, val: float, test: float, salt: str = "") -> SplitName:
    """The split of a row with split key `key` (a hex digest)."""
    digest = hashlib.sha256((salt + key).encode()).digest() if salt else bytes.fromhex(key)
    u = int.from_bytes(digest[:8], "big") / 2**64
    if u < test:
        return "test"
    if u < test + val:
        return "val"
    return "train"


def _is_split_dir(path: Path) -> bool:
    ours = {*SPLITS, "split.json"}
    return (path / "split.json").is_file() and all(p.name in ours for p in path.iterdir())


def main(cfg: SplitConfig, ui: UI = QUIET) -> dict[str, Any]:
    """Run `data split`; returns the summary written to OUT/split.json."""
    src = open_dataset(cfg.dataset)
    kind = src.kind
    out = Path(cfg.out).resolve()
    if out == src.path.resolve() or out in src.path.resolve().parents:
        raise UserError(f"{cfg.out}: would replace the input dataset; write the splits to another --out")
    created_by = {"command": "data split", "config": to_dict(cfg)}
    counts = {name: 0 for name in SPLITS}
    dropped = {"augmented_heldout": 0, "leak_duplicate": 0, "leak_near_duplicate": 0}
    # The leakage check is tuned for recall: 256 permutations, LSH bands tuned well below the
    # threshold, and a verification margin, so it errs on the side of dropping a train row.
    dcfg = DedupConfig(threshold=cfg.threshold, num_perm=256)
    signer = Signer(dcfg.num_perm, dcfg.ngram)
    with staged_dir(Path(cfg.out), overwrite=cfg.overwrite, replaceable=_is_split_dir, what="a split output") as tmp:
        writers = {
            name: DatasetWriter(tmp / name, kind, created_by=created_by, parents=[src.content_hash]) for name in SPLITS
        }
        for w in writers.values():
            w.__enter__()
        try:
            cand, verify = max(0.3, cfg.threshold - 0.2), max(0.0, cfg.threshold - 0.05)
            with DedupIndex(dcfg, candidate_threshold=cand, verify_threshold=verify) as index, ui.progress("split", total=2 * src.num_rows) as advance:
                # Pass 1: val and test rows, which also go into the leakage index.
                for batch in src.iter_batches(1000):
                    held = []
                    for row in batch:
                        where = assign(split_key(row, kind), cfg.val, cfg.test, cfg.salt)
                        if where == "train":
                            continue
                        if "augmented_from" in row["meta"]:
                            dropped["augmented_heldout"] += 1
                            continue
                        writers[where].write(row)
                        counts[where] += 1
                        held.append(row)
                    if cfg.leakage and held:
                        sigs = signer.signatures([dedup_text(r, kind) for r in held])
                        keys = [bytes.fromhex(content_key(r, kind))[:16] for r in held]
                        index.check([r["id"] for r in held], keys, sigs, insert_all=True)
                    advance(len(batch))
                # Pass 2: training rows, unless they leak a held-out row.
                for batch in src.iter_batches(1000):
                    train = [r for r in batch if assign(split_key(r, kind), cfg.val, cfg.test, cfg.salt) == "train"]
                    verdicts: list[str | None] = [None] * len(train)
                    if cfg.leakage and train:
                        sigs = signer.signatures([dedup_text(r, kind) for r in train])
                        keys = [bytes.fromhex(content_key(r, kind))[:16] for r in train]
                        verdicts = [v.reason for v in index.check([r["id"] for r in train], keys, sigs, insert=False)]
                    for row, reason in zip(train, verdicts, strict=True):
                        if reason is not None:
                            dropped["leak_" + reason] += 1
                            continue
                        writers["train"].write(row)
                        counts["train"] += 1
                    advance(len(batch))
            summary = {
                "input": {"path": str(src.path), "content_hash": src.content_hash, "rows": src.num_rows},
                "rows": counts,
                "dropped": dropped,
                "config": to_dict(cfg),
            }
            assert src.num_rows == sum(counts.values()) + sum(dropped.values())
            for name, w in writers.items():
                w.manifest_extra["split"] = {"name": name, **summary}
        except BaseException as e:
            for w in writers.values():
                w.__exit__(type(e), e, e.__traceback__)
            raise
        for w in writers.values():
            w.__exit__(None, None, None)
        summary["datasets"] = {name: w.manifest["content_hash"] for name, w in writers.items() if w.manifest}
        atomic_write_json(tmp / "split.json", summary)
    ui.note(
        f"split {src.num_rows:,} rows -> train {counts['train']:,}, val {counts['val']:,}, test {counts['test']:,}; "
        f"dropped: {dropped['leak_duplicate'] + dropped['leak_near_duplicate']:,} leaking, "
        f"{dropped['augmented_heldout']:,} augmented rows of held-out originals -> {cfg.out}"
    )
    return summary
