"""`chatforge dpo`: Direct Preference Optimization from prompt / chosen / rejected pairs.

    chatforge dpo --model runs/sft/model --data data/clean/preferences --out runs/dpo [--beta 0.1]

DPO (Rafailov et al., 2023) trains the model to prefer the chosen answer over the rejected
one by more than a frozen reference model does (the starting model), with no reward model
and no sampling. For a pair, with log-probabilities of the answers' tokens summed,

    margin = beta * ((log pi(chosen) - log ref(chosen)) - (log pi(rejected) - log ref(rejected)))
    loss   = -log sigmoid(margin)

`beta` sets how far the model may move from the reference (higher: stays closer). The
reference's log-probabilities are computed once, before training (the reference model is
then not kept in memory). The "rewards" reported are beta * (log pi - log ref) of each
answer: the reward accuracy is the share of pairs whose chosen answer gets the higher
reward, and the margin the mean difference; both are measured on the held-out pairs
(or a sample of the training pairs) before and after training.

The loss is on the answer's tokens and its end-of-turn token only (the prompt is
conditioning). A long prompt loses its oldest turns, the same turns for both answers.
The loop is the shared training loop (checkpoints, resume, early stopping on the
held-out DPO loss, DDP).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from chatforge.checkpoint import load_model_dir
from chatforge.config import to_dict
from chatforge.data.dataset import open_dataset
from chatforge.errors import ConfigError, UserError
from chatforge.model import GPT
from chatforge.tokenizer import Tokenizer, fit_turns
from chatforge.tracking import RunLog
from chatforge.train.config import DPOConfig
from chatforge.train.loop import Batch, Dist, LossFn, autocast, fit, init_distributed
from chatforge.train.run import checkpoint_step, finish_adapters, finish_run, prepare_run_dir, run_summary
from chatforge.train.sft import IGNORE, Conversations, _held_out, collate, select_mask
from chatforge.ui import QUIET, UI


def dpo_loss(policy: torch.Tensor, reference: torch.Tensor, beta: float) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-pair DPO losses and margins. `policy`, `reference`: (pairs, 2) summed answer
    log-probabilities, column 0 the chosen answer, column 1 the rejected one."""
    ratios = policy - reference
    margin = beta * (ratios[:, 0] - ratios[:, 1])
    return -F.logsigmoid(margin), margin


def answer_logps(model: nn.Module, input_ids: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Summed log-probability of each row's labelled tokens (labels == IGNORE are skipped): (rows,)."""
    logits = model(input_ids).float()
    token = -F.cross_entropy(logits.reshape(-1, logits.size(-1)), labels.reshape(-1), ignore_index=IGNORE, reduction="none")
    return token.view(labels.shape).sum(dim=1)


def make_loss(beta: float) -> LossFn:
    def loss_fn(model: nn.Module, batch: Batch) -> tuple[torch.Tensor, int]:
        """Summed DPO loss of the batch's pairs, and their count."""
        policy = answer_logps(model, batch["input_ids"], batch["labels"]).view(-1, 2)
        losses, _ = dpo_loss(policy, batch["ref_logps"], beta)
        return losses.sum(), int(policy.shape[0])

    return loss_fn


# -- pairs as tokens ---------------------------------------------------------------------


def tokenize_pairs(
    paths: Sequence[str], tok: Tokenizer, *, limit: int, val_fraction: float, split: bool
) -> tuple[Conversations, Conversations, dict[str, int]]:
    """Preference pairs as tokens: conversation 2i is pair i's prompt + chosen answer, 2i + 1
    the same prompt + rejected answer, each with the loss mask on its answer. (train, held
    out, counts); with `split`, a `val_fraction` of the pairs (by id) is held out."""
    train: list[tuple[list[int], list[int], int]] = []
    held: list[tuple[list[int], list[int], int]] = []
    counts = {"pairs": 0, "truncated": 0, "too_long": 0}
    for src, path in enumerate(paths):
        ds = open_dataset(path)
        if ds.kind != "preferences":
            raise UserError(f"{path}: holds {ds.kind}, not preferences; dpo trains on prompt/chosen/rejected pairs")
        for rows in ds.iter_batches(1000):
            for row in rows:
                counts["pairs"] += 1
                answers = [{"role": "assistant", "content": row["chosen"]}, {"role": "assistant", "content": row["rejected"]}]
                prompt = list(row["prompt"])
                contents = tok.encode_batch([m["content"] for m in prompt] + [a["content"] for a in answers])
                # Truncate with the longer answer, so both answers see the same prompt.
                longer = max((0, 1), key=lambda k: len(contents[len(prompt) + k]))
                keep = fit_turns([*prompt, answers[longer]], [*contents[: len(prompt)], contents[len(prompt) + longer]], limit, need_reply=True, overhead=tok.turn_overhead)
                if keep is None or keep[-1] != len(prompt):
                    counts["too_long"] += 1
                    continue
                if len(keep) < len(prompt) + 1:
                    counts["truncated"] += 1
                kept = keep[:-1]
                dest = held if split and _held_out(str(row["id"]), val_fraction) else train
                for k in (0, 1):
                    msgs = [prompt[i] for i in kept] + [answers[k]]
                    ids, mask = tok.render_encoded([contents[i] for i in kept] + [contents[len(prompt) + k]], msgs)
                    dest.append((ids, select_mask(mask, "last-assistant"), src))
    return Conversations.build(train), Conversations.build(held), counts


def pair_batch(pairs: Sequence[int], convs: Conversations, ref: np.ndarray, *, pad_id: int, device: torch.device) -> Batch:
    """Pairs as one padded batch: rows 2j and 2j + 1 are pair j's chosen and rejected answers.
    `ref_logps` comes first: the loop averages over the first entry's rows (the pairs)."""
    rows = [[2 * p + k] for p in pairs for k in (0, 1)]
    b = collate(rows, convs, length=None, pad_id=pad_id, device=device)
    return {"ref_logps": torch.from_numpy(ref[list(pairs)]).to(device), "input_ids": b["input_ids"], "labels": b["targets"]}


@torch.no_grad()
def reference_logps(model: GPT, convs: Conversations, *, batch: int, pad_id: int, dtype: str, device: torch.device) -> np.ndarray:
    """The starting model's summed answer log-probabilities for every pair: (pairs, 2), float32."""
    model.eval()
    n = len(convs) // 2
    out = np.zeros((n, 2), dtype=np.float32)
    for i in range(0, n, batch):
        pairs = list(range(i, min(n, i + batch)))
        b = pair_batch(pairs, convs, out, pad_id=pad_id, device=device)
        with autocast(dtype, device):
            out[i : i + len(pairs)] = answer_logps(model, b["input_ids"], b["labels"]).view(-1, 2).float().cpu().numpy()
    return out


class PairRows:
    """The resumable stream of training pairs: a seeded permutation per epoch, this process's share."""

    def __init__(self, convs: Conversations, ref: np.ndarray, *, seed: int, pad_id: int, dist: Dist) -> None:
        self.n = len(convs) // 2
        if not self.n:
            raise UserError("no training pairs left (all held out or too long)")
        self.convs, self.ref, self.seed, self.pad_id, self.dist = convs, ref, seed, pad_id, dist
        self.epoch, self.cursor = 0, 0
        self.order = np.random.default_rng([seed, 0]).permutation(self.n)

    def _pair(self) -> int:
        if self.cursor >= self.n:
            self.epoch, self.cursor = self.epoch + 1, 0
            self.order = np.random.default_rng([self.seed, self.epoch]).permutation(self.n)
        self.cursor += 1
        return int(self.order[self.cursor - 1])

    def next_batch(self, n: int) -> Batch:
        pairs = [self._pair() for _ in range(n * self.dist.world)]
        mine = pairs[self.dist.rank * n : (self.dist.rank + 1) * n]
        return pair_batch(mine, self.convs, self.ref, pad_id=self.pad_id, device=self.dist.device)

    def state_dict(self) -> dict[str, Any]:
        return {"epoch": self.epoch, "cursor": self.cursor}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.epoch, self.cursor = int(state["epoch"]), int(state["cursor"])
        self.order = np.random.default_rng([self.seed, self.epoch]).permutation(self.n)


@torch.no_grad()
def preference_metrics(
    model: GPT, convs: Conversations, ref: np.ndarray, *, beta: float, batch: int, pad_id: int, dtype: str, device: torch.device
) -> dict[str, float]:
    """DPO loss, reward accuracy and mean margin of `model` on the pairs of `convs`."""
    model.eval()
    n = len(convs) // 2
    losses, margins, chosen, rejected = [], [], [], []
    for i in range(0, n, batch):
        b = pair_batch(range(i, min(n, i + batch)), convs, ref, pad_id=pad_id, device=device)
        with autocast(dtype, device):
            policy = answer_logps(model, b["input_ids"], b["labels"]).view(-1, 2).float()
        loss, margin = dpo_loss(policy, b["ref_logps"], beta)
        rewards = beta * (policy - b["ref_logps"])
        losses.append(loss)
        margins.append(margin)
        chosen.append(rewards[:, 0])
        rejected.append(rewards[:, 1])
    m = torch.cat(margins)
    return {
        "loss": float(torch.cat(losses).mean()),
        "reward_accuracy": float((m > 0).float().mean()),
        "reward_margin": float(m.mean()),
        "chosen_reward": float(torch.cat(chosen).mean()),
        "rejected_reward": float(torch.cat(rejected).mean()),
        "pairs": n,
    }


# -- the command ---------------------------------------------------------------------------


def main(cfg: DPOConfig, ui: UI = QUIET) -> dict[str, Any]:
    """Run `dpo`; returns a summary (also in OUT/summary.json)."""
    dist = init_distributed()
    out = Path(cfg.out)
    tok = Tokenizer.load(cfg.model)
    torch.manual_seed(cfg.seed)
    model = load_model_dir(cfg.model).to(dist.device)
    length = cfg.max_len or model.cfg.block_size
    if length > model.cfg.block_size:
        raise ConfigError(f"max_len: {length} is longer than the model's block size {model.cfg.block_size}")
    train, held, counts = tokenize_pairs(cfg.data, tok, limit=length, val_fraction=cfg.val_fraction, split=not cfg.val_data)
    if cfg.val_data:
        held, _, val_counts = tokenize_pairs(cfg.val_data, tok, limit=length, val_fraction=0, split=False)
        counts["val_pairs"] = val_counts["pairs"]
    if dist.main:
        prepare_run_dir(out, resume=cfg.resume, overwrite=cfg.overwrite)
    if dist.world > 1:
        torch.distributed.barrier()
    micro = cfg.train.micro_batch or cfg.train.batch_size // dist.world
    ui.note(f"dpo: the reference model's log-probabilities of {len(train) // 2 + len(held) // 2:,} pairs")

    def reference(convs: Conversations) -> np.ndarray:
        return reference_logps(model, convs, batch=micro, pad_id=tok.pad_id, dtype=cfg.train.dtype, device=dist.device)

    ref_train = reference(train)
    ref_held = reference(held) if len(held) else None
    # Before/after figures on the held-out pairs, or else on (up to 200 of) the training pairs.
    probe, probe_ref = (held, ref_held) if ref_held is not None else (train, ref_train)
    probe_pairs = min(len(probe) // 2, 200)
    probe = Conversations.build([(probe.get(i)[0].tolist(), probe.get(i)[1].tolist(), 0) for i in range(2 * probe_pairs)])
    probe_ref = probe_ref[:probe_pairs]

    def metrics() -> dict[str, float]:
        return preference_metrics(model, probe, probe_ref, beta=cfg.beta, batch=micro, pad_id=tok.pad_id, dtype=cfg.train.dtype, device=dist.device)

    before = metrics()
    rows = PairRows(train, ref_train, seed=cfg.seed, pad_id=tok.pad_id, dist=dist)
    val = None
    if ref_held is not None:
        held_ref = ref_held

        def val() -> Iterator[Batch]:
            n = len(held) // 2
            mine = list(range(dist.rank, n, dist.world))
            for i in range(0, len(mine), micro):
                yield pair_batch(mine[i : i + micro], held, held_ref, pad_id=tok.pad_id, device=dist.device)

    ui.note(
        f"dpo: {model.num_params() / 1e6:.2f}M parameters, {rows.n:,} training pairs, {len(held) // 2:,} held out, beta {cfg.beta}; "
        f"before: reward accuracy {before['reward_accuracy']:.2f}"
    )
    if cfg.lora.r:
        from chatforge.train.lora import add_lora, trainable_share

        add_lora(model, cfg.lora)
        ui.note(f"dpo: LoRA rank {cfg.lora.r}: training {trainable_share(model):.1%} of the weights")
    log = RunLog(out, stage="dpo", config=to_dict(cfg), enabled=dist.main, resume_step=None if not cfg.resume else checkpoint_step(out))
    try:
        result = fit(model, rows, cfg.train, run_dir=out, log=log, val=val, loss_fn=make_loss(cfg.beta), dist=dist, resume=cfg.resume, ui=ui, stage="dpo")
    finally:
        log.close()
    after = metrics()
    summary = {**run_summary(model, result, unit="pairs"), "data": counts, "before": before, "after": after}
    ui.note(
        f"dpo: reward accuracy {before['reward_accuracy']:.2f} -> {after['reward_accuracy']:.2f}, "
        f"margin {before['reward_margin']:.3f} -> {after['reward_margin']:.3f} on {after['pairs']} "
        + ("held-out" if ref_held is not None else "training")
        + " pairs"
    )
    model = finish_adapters(out, model, result, cfg.lora, cfg.model, dist)
    info = {"base_model": str(cfg.model), "beta": cfg.beta, "lora": to_dict(cfg.lora) if cfg.lora.r else None}
    finish_run(out, model, result, summary, stage="dpo", tokenizer_dir=cfg.model, info=info, dist=dist, ui=ui, unit="pairs", restored=bool(cfg.lora.r))
    return summary
