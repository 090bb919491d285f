"""`chatforge pretrain`: next-token pretraining of the GPT on text (and rendered conversations).

    chatforge pretrain --config configs/pretrain-cpu-tiny.yaml --data data/kb-clean data/splits/train \\
        --tokenizer runs/tokenizer --out runs/pretrain
    chatforge pretrain ... --resume                  # continue from the latest checkpoint
    torchrun --nproc_per_node=2 -m chatforge pretrain ...   # several processes (DDP)

Every row of the input datasets becomes one document: a text row is `<|bos|> text
<|eos|>`; a conversation is rendered with the chat template (so the model meets the
chat format early) and ends with `<|eos|>`. Documents are tokenized once into a token
file in the run dir (reused on resume), a share of them (by a hash of their id) held
out for validation. Training rows are windows of `block_size + 1` tokens cut from the
concatenated stream, visited in a seeded random order per epoch; the position in that
order is saved in every checkpoint, so a resumed run sees exactly the batches an
uninterrupted one would have.

The run dir holds `config.json` (resolved), `metrics.jsonl`, `checkpoints/` and, at
the end, `model/` (a Hugging Face model dir with the tokenizer), `summary.json` and
`curves.png` (loss, validation loss, learning rate and tokens/s over the steps).
"""

from __future__ import annotations

import hashlib
import json
import math
from pathlib import Path
from typing import Any

import numpy as np
import torch

from chatforge.atomic import atomic_write_json, fsync_dir
from chatforge.config import to_dict
from chatforge.data.dataset import open_dataset
from chatforge.data.steps import row_texts
from chatforge.model import GPT
from chatforge.tokenizer import Tokenizer
from chatforge.tracking import RunLog
from chatforge.train.config import PretrainConfig
from chatforge.train.data import TokenWindows, val_batches
from chatforge.train.loop import fit, init_distributed
from chatforge.train.run import checkpoint_step, finish_run, prepare_run_dir, run_summary
from chatforge.ui import QUIET, UI

# -- tokens on disk --------------------------------------------------------------------


def documents(row: dict[str, Any], kind: str, tok: Tokenizer) -> list[int]:
    """The token ids of one row as a pretraining document."""
    if kind == "text":
        return [tok.bos_id, *tok.encode(row["text"]), tok.eos_id]
    if kind == "conversations":
        ids, _ = tok.render(row["messages"])
    else:
        ids, _ = tok.render([*row["prompt"], {"role": "assistant", "content": row["chosen"]}])
    return [*ids, tok.eos_id]


def _is_val(row_id: str, fraction: float) -> bool:
    return fraction > 0 and int.from_bytes(hashlib.sha256(row_id.encode()).digest()[:8], "big") / 2**64 < fraction


def tokenize_to_files(
    datasets: list[str], val_datasets: list[str], val_fraction: float, tok: Tokenizer, tokenizer_dir: str, out: Path, ui: UI
) -> dict[str, Any]:
    """Write OUT/train.bin and OUT/val.bin (token ids, uint16 or uint32) and their meta; reuse them if up to date."""
    dsets = [open_dataset(d) for d in datasets]
    vsets = [open_dataset(d) for d in val_datasets]
    tok_hash = hashlib.sha256((Path(tokenizer_dir) / "tokenizer.json").read_bytes()).hexdigest()
    key = {
        "datasets": [d.content_hash for d in dsets],
        "val_datasets": [d.content_hash for d in vsets],
        "val_fraction": val_fraction if not vsets else None,
        "tokenizer": tok_hash,
    }
    meta_path = out / "meta.json"
    if meta_path.is_file():
        meta = json.loads(meta_path.read_text())
        if meta.get("key") == key and (out / "train.bin").is_file():
            return dict(meta)
    out.mkdir(parents=True, exist_ok=True)
    dtype = np.uint16 if tok.vocab_size <= 65535 else np.uint32
    counts = {"train": 0, "val": 0}
    nbytes = {"train": 0, "val": 0}
    files = {name: open(out / f"{name}.bin.tmp", "wb") for name in ("train", "val")}  # noqa: SIM115
    try:
        total = sum(d.num_rows for d in dsets + vsets)
        with ui.progress("tokenize", total=total) as advance:
            for split_sets, fixed in ((dsets, None), (vsets, "val")):
                for ds in split_sets:
                    for batch in ds.iter_batches(1000):
                        for row in batch:
                            name = fixed or ("val" if not vsets and _is_val(row["id"], val_fraction) else "train")
                            ids = documents(row, ds.kind, tok)
                            np.asarray(ids, dtype=dtype).tofile(files[name])
                            counts[name] += len(ids)
                            nbytes[name] += sum(len(t.encode("utf-8")) for t in row_texts(row, ds.kind))
                        advance(len(batch))
    finally:
        for f in files.values():
            f.flush()
            f.close()
    for name in files:
        (out / f"{name}.bin.tmp").replace(out / f"{name}.bin")
    fsync_dir(out)
    meta = {"key": key, "dtype": np.dtype(dtype).name, "tokens": counts, "bytes": nbytes}
    atomic_write_json(meta_path, meta)
    return meta


# -- the stage -------------------------------------------------------------------------


def main(cfg: PretrainConfig, ui: UI = QUIET) -> dict[str, Any]:
    """Run `pretrain`; returns a summary (also in OUT/summary.json)."""
    dist = init_distributed()
    out = Path(cfg.out)
    if dist.main:
        prepare_run_dir(out, resume=cfg.resume, overwrite=cfg.overwrite)
    tok = Tokenizer.load(cfg.tokenizer)
    # The embedding gets a row per token, rounded up to a multiple of 64 (faster matmuls;
    # the spare rows are never produced by the tokenizer).
    cfg.model.vocab_size = 64 * math.ceil(tok.vocab_size / 64)
    torch.manual_seed(cfg.seed)
    model = GPT(cfg.model).to(dist.device)
    if dist.main:
        meta = tokenize_to_files(cfg.data, cfg.val_data, cfg.val_fraction, tok, cfg.tokenizer, out / "tokens", ui)
    if dist.world > 1:
        torch.distributed.barrier()
        meta = json.loads((out / "tokens" / "meta.json").read_text())
    seq = cfg.model.block_size
    train = TokenWindows(out / "tokens" / "train.bin", meta["dtype"], seq, cfg.seed, dist)
    has_val = meta["tokens"]["val"] > seq
    micro = cfg.train.micro_batch or cfg.train.batch_size // dist.world
    val = (lambda: val_batches(out / "tokens" / "val.bin", meta["dtype"], seq, micro, dist)) if has_val else None
    bpt = meta["bytes"]["val"] / meta["tokens"]["val"] if has_val else None
    log = RunLog(out, stage="pretrain", config=to_dict(cfg), enabled=dist.main, resume_step=None if not cfg.resume else checkpoint_step(out))
    ui.note(
        f"pretrain: {model.num_params() / 1e6:.2f}M parameters, {meta['tokens']['train']:,} training tokens "
        f"({train.n_windows:,} rows of {seq}), {meta['tokens']['val']:,} validation tokens"
    )
    try:
        result = fit(model, train, cfg.train, run_dir=out, log=log, val=val, dist=dist, resume=cfg.resume, bytes_per_token=bpt, ui=ui, stage="pretrain")
    finally:
        log.close()
    summary = run_summary(model, result, bpt)
    finish_run(out, model, result, summary, stage="pretrain", tokenizer_dir=cfg.tokenizer, info={}, dist=dist, ui=ui)
    return summary

