"""`chatforge sft`: supervised fine-tuning on conversations, the loss on the assistant's turns.

    chatforge sft --model runs/pretrain/model --data data/splits/train --out runs/sft
    chatforge sft --model M --data data/support:0.7 data/smalltalk:0.3 --out runs/sft   # a weighted mixture
    chatforge sft ... --debug-data 3          # show what the model would learn from, then exit
    torchrun --nproc_per_node=2 -m chatforge sft ...                                   # several processes

Each conversation is rendered with the tokenizer's chat template into token ids and a
loss mask (`--train-on`): by default every assistant turn's content and its end-of-turn
token, so the model learns to answer and to stop, never to imitate the user. A
conversation longer than `--max-len` tokens keeps its system messages and loses its
oldest turns (whole turns, so that it starts with a user turn); one that cannot fit
even so is left out and counted. Text datasets may join the mixture (a knowledge base):
their documents train on every token, as in pretraining (`tokenize`).

Rows: with `--packing` (the default) conversations are packed whole into rows of
block-size tokens (best fit decreasing, so rows come out nearly full; the rows are then
shuffled), and each attends only to itself: a block-diagonal causal mask, with
positions restarting at 0 per conversation, so a packed row trains exactly as if its
conversations were run one by one (tested) with no compute spent on padding. Without
it, one conversation per row, padded to the longest in the batch.

An epoch draws each dataset's share by its weight (as `data mix` does: a smaller
dataset is repeated, a larger one sampled) and shuffles the conversations with the seed
and the epoch number, so the order is the same for any number of processes and a
resumed run sees exactly the rows an uninterrupted one would have. The loop is the
pretraining loop (`train/loop.py`: accumulation, clipping, schedules, validation, early
stopping, checkpoints, resume, DDP); validation runs on held-out conversations
(`--val-data`, or a `--val-fraction` of the training conversations by a hash of their id).
The run dir gets the same files as pretraining: OUT/model, metrics.jsonl, summary.json,
curves.png.
"""

from __future__ import annotations

import bisect
import hashlib
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from chatforge.checkpoint import load_model_dir
from chatforge.config import to_dict
from chatforge.data.dataset import open_dataset
from chatforge.data.mix import parse_source, plan_counts
from chatforge.errors import ConfigError, UserError
from chatforge.model import GPT
from chatforge.tokenizer import Tokenizer, fit_turns
from chatforge.tracking import RunLog
from chatforge.train.config import SFTConfig
from chatforge.train.loop import Batch, Dist, fit, init_distributed
from chatforge.train.pretrain import documents
from chatforge.train.run import checkpoint_step, finish_adapters, finish_run, prepare_run_dir, run_summary
from chatforge.ui import QUIET, UI

IGNORE = -100

# -- conversations as tokens -------------------------------------------------------------


@dataclass
class Conversations:
    """Tokenized conversations, concatenated: ids and loss mask, with each one's offset and dataset."""

    ids: np.ndarray  # int32, all conversations one after the other
    mask: np.ndarray  # uint8, 1 = train on this token
    offsets: np.ndarray  # int64, conversation i is [offsets[i], offsets[i + 1])
    source: np.ndarray  # int32, the dataset each conversation came from

    def __len__(self) -> int:
        return len(self.offsets) - 1

    def length(self, i: int) -> int:
        return int(self.offsets[i + 1] - self.offsets[i])

    def get(self, i: int) -> tuple[np.ndarray, np.ndarray]:
        a, b = self.offsets[i], self.offsets[i + 1]
        return self.ids[a:b], self.mask[a:b]

    @staticmethod
    def build(items: Sequence[tuple[list[int], list[int], int]]) -> Conversations:
        lengths = np.array([len(ids) for ids, _, _ in items], dtype=np.int64)
        offsets = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64)
        ids = np.fromiter((t for it, _, _ in items for t in it), dtype=np.int32, count=int(offsets[-1]))
        mask = np.fromiter((m for _, ms, _ in items for m in ms), dtype=np.uint8, count=int(offsets[-1]))
        return Conversations(ids, mask, offsets, np.array([s for _, _, s in items], dtype=np.int32))


def select_mask(mask: list[int], train_on: str) -> list[int]:
    """The loss mask for `--train-on`, from the chat template's (assistant turns and their ends)."""
    if train_on == "assistant":
        return mask
    if train_on == "all":
        return [0] + [1] * (len(mask) - 1)  # every token after <|bos|>
    # last-assistant: the last run of trained tokens is the last assistant turn with its end
    out = [0] * len(mask)
    end = len(mask)
    while end > 0 and not mask[end - 1]:
        end -= 1
    start = end
    while start > 0 and mask[start - 1]:
        start -= 1
    out[start:end] = [1] * (end - start)
    return out


def tokenize(
    paths: Sequence[str], tok: Tokenizer, *, limit: int, train_on: str, val_fraction: float, split: bool
) -> tuple[Conversations, Conversations, dict[str, int]]:
    """The conversations of `paths` as tokens: (train, held out, counts). With `split`, a
    `val_fraction` of each dataset's conversations (by a hash of their id) is held out.

    A text dataset's documents are trained on every token, as in pretraining (the same
    `<|bos|>` ... `<|eos|>` documents), in pieces of at most `limit` tokens: mixed in
    with conversations they teach a domain's facts (a knowledge base) as the
    conversations teach how to answer."""
    train: list[tuple[list[int], list[int], int]] = []
    held: list[tuple[list[int], list[int], int]] = []
    counts = {"conversations": 0, "truncated": 0, "too_long": 0, "no_assistant": 0, "documents": 0}
    for src, path in enumerate(paths):
        ds = open_dataset(path)
        if ds.kind not in ("conversations", "text"):
            raise UserError(f"{path}: holds {ds.kind}; sft trains on conversation datasets (and text datasets, on every token)")
        if ds.kind == "text":
            for rows in ds.iter_batches(1000):
                for row in rows:
                    counts["documents"] += 1
                    doc = documents(row, "text", tok)
                    to = held if split and _held_out(str(row["id"]), val_fraction) else train
                    # pieces overlap by a token, so every token but the first is a target once
                    to.extend((doc[a : a + limit], [1] * len(doc[a : a + limit]), src) for a in range(0, len(doc) - 1, limit - 1))
            continue
        for rows in ds.iter_batches(1000):
            convs = [r["messages"] for r in rows]
            encoded = iter(tok.encode_batch([m["content"] for c in convs for m in c]))
            for row, msgs in zip(rows, convs, strict=True):
                contents = [next(encoded) for _ in msgs]
                counts["conversations"] += 1
                if not any(m["role"] == "assistant" for m in msgs):
                    counts["no_assistant"] += 1
                    continue
                keep = fit_turns(msgs, contents, limit, need_reply=True, overhead=tok.turn_overhead)
                if keep is None:
                    counts["too_long"] += 1
                    continue
                if len(keep) < len(msgs):
                    counts["truncated"] += 1
                ids, mask = tok.render_encoded([contents[i] for i in keep], [msgs[i] for i in keep])
                item = (ids, select_mask(mask, train_on), src)
                (held if split and _held_out(str(row["id"]), val_fraction) else train).append(item)
    return Conversations.build(train), Conversations.build(held), counts


def _held_out(row_id: str, fraction: float) -> bool:
    h = int.from_bytes(hashlib.sha256(row_id.encode("utf-8")).digest()[:8], "little")
    return h / 2**64 < fraction


# -- rows and batches ----------------------------------------------------------------------


def pack(order: Iterable[int], convs: Conversations, capacity: int) -> list[list[int]]:
    """Conversations packed whole into rows of at most `capacity` tokens, best fit decreasing:
    longest first (ties in `order`), each into the row it fills most closely. Rows come out
    nearly full (97-99% on the support world's ~100-token conversations in 257-token rows,
    vs 77% filling rows in order), so nearly every position computed is a conversation's,
    not padding. The rows come out roughly longest-first: shuffle them to train."""
    items = [int(i) for i in order]
    lengths = np.array([convs.length(i) for i in items], dtype=np.int64)
    rows: list[list[int]] = []
    by_space: dict[int, list[int]] = {}  # free tokens -> open rows with that much room
    spaces: list[int] = []  # the keys of by_space, sorted
    for k in np.argsort(-lengths, kind="stable"):
        n = int(lengths[k])
        at = bisect.bisect_left(spaces, n)  # the tightest row it fits in
        if at < len(spaces):
            space = spaces[at]
            r = by_space[space].pop()
            if not by_space[space]:
                del by_space[space], spaces[at]
        else:
            r, space = len(rows), capacity
            rows.append([])
        rows[r].append(items[k])
        left = space - n
        if left > 0:
            if left not in by_space:
                by_space[left] = []
                bisect.insort(spaces, left)
            by_space[left].append(r)
    return rows


def collate(rows: Sequence[Sequence[int]], convs: Conversations, *, length: int | None, pad_id: int, device: torch.device) -> Batch:
    """A batch of rows of conversations: input_ids, targets (IGNORE where not trained), and
    for packed rows (`length` given: every row holds `length` + 1 tokens) doc_ids and
    position_ids. Without `length`, rows are padded to the longest."""
    width = length + 1 if length is not None else max(sum(convs.length(i) for i in r) for r in rows)
    ids = np.full((len(rows), width), pad_id, dtype=np.int64)
    mask = np.zeros((len(rows), width), dtype=bool)
    doc = np.zeros((len(rows), width), dtype=np.int64)
    pos = np.zeros((len(rows), width), dtype=np.int64)
    for r, row in enumerate(rows):
        at = 0
        for d, i in enumerate(row):
            cid, cmask = convs.get(i)
            n = len(cid)
            ids[r, at : at + n] = cid
            mask[r, at : at + n] = cmask
            doc[r, at : at + n] = d
            pos[r, at : at + n] = np.arange(n)
            at += n
        doc[r, at:] = len(row)  # padding is a document of its own
        pos[r, at:] = np.arange(width - at)
    targets = np.where(mask[:, 1:], ids[:, 1:], IGNORE)
    batch = {"input_ids": torch.from_numpy(ids[:, :-1]), "targets": torch.from_numpy(targets)}
    if length is not None:
        batch["doc_ids"] = torch.from_numpy(doc[:, :-1])
        batch["position_ids"] = torch.from_numpy(pos[:, :-1])
    return {k: v.to(device) for k, v in batch.items()}


class SFTRows:
    """The resumable stream of training rows (see the module docstring for the epochs).

    Each call takes the next n rows of every process and keeps this process's share, so the
    data order is the same for any split into micro-batches or processes.
    """

    def __init__(
        self, convs: Conversations, weights: Sequence[float], *, length: int, packing: bool, seed: int, pad_id: int, dist: Dist
    ) -> None:
        if not len(convs):
            raise UserError("no training conversations left (all held out, too long, or without an assistant turn)")
        self.convs, self.length, self.packing, self.seed, self.pad_id, self.dist = convs, length, packing, seed, pad_id, dist
        self.by_source = [np.flatnonzero(convs.source == s) for s in range(len(weights))]
        present = [i for i, idx in enumerate(self.by_source) if len(idx)]
        sizes = [len(self.by_source[i]) for i in present]
        counts = plan_counts(sizes, [weights[i] for i in present], sum(sizes))
        self.counts = {i: c for i, c in zip(present, counts, strict=True)}
        self.epoch, self.cursor = 0, 0
        self.epoch_rows = self._plan(0)  # this epoch's rows, each a list of conversation indices

    def _plan(self, epoch: int) -> list[list[int]]:
        rng = np.random.default_rng([self.seed, epoch])
        parts = []
        for s, want in self.counts.items():
            idx = self.by_source[s]
            reps, rest = divmod(want, len(idx))
            parts += [idx] * reps + [rng.choice(idx, rest, replace=False)]
        order = rng.permutation(np.concatenate(parts))
        if not self.packing:
            return [[int(i)] for i in order]
        rows = pack(order, self.convs, self.length + 1)
        return [rows[i] for i in rng.permutation(len(rows))]

    def _row(self) -> list[int]:
        if self.cursor >= len(self.epoch_rows):
            self.epoch, self.cursor = self.epoch + 1, 0
            self.epoch_rows = self._plan(self.epoch)
        self.cursor += 1
        return self.epoch_rows[self.cursor - 1]

    @property
    def rows_per_epoch(self) -> int:
        return len(self.epoch_rows)

    def next_batch(self, n: int) -> Batch:
        rows = [self._row() for _ in range(n * self.dist.world)]
        mine = rows[self.dist.rank * n : (self.dist.rank + 1) * n]
        return collate(mine, self.convs, length=self.length if self.packing else None, pad_id=self.pad_id, device=self.dist.device)

    def state_dict(self) -> dict[str, Any]:
        return {"epoch": self.epoch, "cursor": self.cursor}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.epoch, self.cursor = int(state["epoch"]), int(state["cursor"])
        self.epoch_rows = self._plan(self.epoch)


def val_batches(convs: Conversations, *, length: int, packing: bool, n: int, pad_id: int, dist: Dist) -> Iterator[Batch]:
    """The held-out conversations in order, packed like training rows; this process's share."""
    order = range(len(convs))
    rows = pack(order, convs, length + 1) if packing else [[i] for i in order]
    mine = rows[dist.rank :: dist.world]
    for i in range(0, len(mine), n):
        yield collate(mine[i : i + n], convs, length=length if packing else None, pad_id=pad_id, device=dist.device)


# -- the command ---------------------------------------------------------------------------


def show_rows(convs: Conversations, rows: Sequence[Sequence[int]], tok: Tokenizer, ui: UI) -> None:
    """Print rows token by token: trained tokens (the targets of the loss) bold green, the rest dim."""
    from rich.text import Text

    for r, row in enumerate(rows):
        ids = np.concatenate([convs.get(i)[0] for i in row])
        mask = np.concatenate([convs.get(i)[1] for i in row])
        trained = int(mask.sum())
        ui.out.print(Text(f"row {r}: {len(row)} conversation(s), {len(ids)} tokens, {trained} trained", style="bold"))
        text = Text()
        for t, m in zip(ids.tolist(), mask.tolist(), strict=True):
            piece = tok.decode([t])
            text.append(piece, style="bold green" if m else "dim")
        ui.out.print(text)
        ui.out.print()


def freeze_lower(model: GPT, n: int) -> float:
    """Freeze the token embeddings (and the output head, if tied to them) and the first `n`
    blocks; returns the share of the weights left trainable. Autograd then stops at block
    `n`: nothing below it needs a gradient, so the backward pass skips those blocks.
    `main` checks that `n` leaves a block to train."""
    from chatforge.train.lora import trainable_share

    model.model.embed_tokens.requires_grad_(False)
    for block in model.model.layers[:n]:
        block.requires_grad_(False)
    return trainable_share(model)


def main(cfg: SFTConfig, ui: UI = QUIET) -> dict[str, Any]:
    """Run `sft`; returns a summary (also in OUT/summary.json)."""
    dist = init_distributed()
    out = Path(cfg.out)
    sources = [parse_source(s) for s in cfg.data]
    tok = Tokenizer.load(cfg.model)
    torch.manual_seed(cfg.seed)
    model = load_model_dir(cfg.model).to(dist.device)
    if cfg.dropout >= 0:
        model.cfg.dropout = cfg.dropout
        for m in model.modules():
            if isinstance(m, nn.Dropout):
                m.p = cfg.dropout
    if cfg.freeze_layers >= model.cfg.n_layer:
        raise ConfigError(f"freeze_layers: {cfg.freeze_layers} must leave at least one of the model's {model.cfg.n_layer} blocks to train")
    frozen = f", embeddings and blocks 0-{cfg.freeze_layers - 1} frozen" if cfg.freeze_layers else ""
    if cfg.lora.r:
        from chatforge.train.lora import add_lora, trainable_share

        add_lora(model, cfg.lora, first_layer=cfg.freeze_layers)
        ui.note(f"sft: LoRA rank {cfg.lora.r} on {', '.join(cfg.lora.targets)}{frozen}: training {trainable_share(model):.1%} of the weights")
    elif cfg.freeze_layers:
        share = freeze_lower(model, cfg.freeze_layers)
        ui.note(f"sft: {frozen[2:]}: training {share:.1%} of the weights")
    length = cfg.max_len or model.cfg.block_size
    if length > model.cfg.block_size:
        raise ConfigError(f"max_len: {length} is longer than the model's block size {model.cfg.block_size}")
    split = not cfg.val_data
    train, held, counts = tokenize(
        [p for p, _ in sources], tok, limit=length + 1, train_on=cfg.train_on, val_fraction=cfg.val_fraction, split=split
    )
    if cfg.val_data:
        held, _, val_counts = tokenize(cfg.val_data, tok, limit=length + 1, train_on=cfg.train_on, val_fraction=0, split=False)
        counts["val_conversations"] = val_counts["conversations"]
    if counts["too_long"] > 0.1 * counts["conversations"]:
        ui.warn(
            f"{counts['too_long']:,} of {counts['conversations']:,} conversations do not fit in {length} tokens even "
            "without their oldest turns, and are left out: raise --max-len (up to the model's block size)"
        )
    rows = SFTRows(train, [w for _, w in sources], length=length, packing=cfg.packing, seed=cfg.seed, pad_id=tok.pad_id, dist=dist)
    if cfg.debug_data:
        show_rows(train, rows.epoch_rows[: cfg.debug_data], tok, ui)
        return {"rows_shown": min(cfg.debug_data, rows.rows_per_epoch), **counts}
    if dist.main:
        prepare_run_dir(out, resume=cfg.resume, overwrite=cfg.overwrite)
    if dist.world > 1:
        torch.distributed.barrier()
    micro = cfg.train.micro_batch or cfg.train.batch_size // dist.world
    val = None
    if len(held):
        val = lambda: val_batches(held, length=length, packing=cfg.packing, n=micro, pad_id=tok.pad_id, dist=dist)  # noqa: E731
    trained = int(train.mask.sum())
    ui.note(
        f"sft: {model.num_params() / 1e6:.2f}M parameters, {len(train):,} training conversations"
        + (f" and pieces of {counts['documents']:,} documents " if counts["documents"] else " ")
        + f"({rows.rows_per_epoch:,} rows of {length} a epoch, {trained:,} trained tokens), {len(held):,} held out"
        + (f"; {counts['truncated']:,} truncated, {counts['too_long']:,} too long" if counts["truncated"] or counts["too_long"] else "")
    )
    log = RunLog(out, stage="sft", config=to_dict(cfg), enabled=dist.main, resume_step=None if not cfg.resume else checkpoint_step(out))
    try:
        result = fit(model, rows, cfg.train, run_dir=out, log=log, val=val, dist=dist, resume=cfg.resume, ui=ui, stage="sft")
    finally:
        log.close()
    summary = {**run_summary(model, result), "data": counts, "epochs": round(result.steps * cfg.train.batch_size / rows.rows_per_epoch, 2)}
    info = {"base_model": str(cfg.model), "train_on": cfg.train_on, "packing": cfg.packing, "lora": to_dict(cfg.lora) if cfg.lora.r else None}
    model = finish_adapters(out, model, result, cfg.lora, cfg.model, dist)
    finish_run(out, model, result, summary, stage="sft", tokenizer_dir=cfg.model, info=info, dist=dist, ui=ui, restored=bool(cfg.lora.r))
    return summary
