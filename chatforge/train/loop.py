"""The training loop every stage shares (pretraining, SFT, DPO): one copy, here.

    result = fit(model, optimizer, train_batches, cfg.train, run_dir=..., loss_fn=lm_loss, ...)

One optimizer step = `batch_size` sequences, split into micro-batches of `micro_batch`
per process, gradients accumulated. The step's loss is the sum of token losses divided
by the number of target tokens in the whole step (counted across micro-batches and
processes first), so 8 micro-batches of 1 give the same gradients as 1 of 8 (tested),
whatever the padding. Then: gradient-norm clipping, the learning rate from the
schedule, AdamW. bf16 autocast where the hardware runs it fast (fp32 otherwise),
optional `torch.compile`.

Along the way: a progress bar with loss, tokens/s and ETA; metrics to
`RUN/metrics.jsonl`; validation loss (and bits per byte) every `eval_every` steps; early
stopping after `patience` evaluations without improvement; a checkpoint every
`save_every` steps, at the end, and on SIGINT/SIGTERM (then it stops). A non-finite
loss stops the run with a clear message before the optimizer step, so no checkpoint
ever holds non-finite weights.

Several processes (`torchrun --nproc_per_node=N chatforge pretrain ...`): the model is
wrapped in DistributedDataParallel (gloo on CPU, NCCL on GPU), each process draws its
own share of every batch, gradients are averaged, and only rank 0 logs and saves.
"""

from __future__ import annotations

import contextlib
import functools
import math
import os
import signal
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import torch
import torch.distributed as tdist
from torch import nn

from chatforge.checkpoint import checkpoint_weights, find_checkpoint, load_checkpoint, save_checkpoint
from chatforge.errors import ConfigError, UserError
from chatforge.model import GPT, bf16_supported
from chatforge.optim import lr_at, make_optimizer
from chatforge.tracking import RunLog
from chatforge.train.config import TrainConfig
from chatforge.ui import QUIET, UI

Batch = dict[str, torch.Tensor]
LossFn = Callable[[nn.Module, Batch], tuple[torch.Tensor, int]]


class Batches(Protocol):
    """A resumable stream of training batches for this process."""

    def next_batch(self, n: int) -> Batch: ...

    def state_dict(self) -> dict[str, Any]: ...

    def load_state_dict(self, state: dict[str, Any]) -> None: ...


@dataclass
class Dist:
    """This process's place among the training processes."""

    rank: int = 0
    world: int = 1
    local_rank: int = 0
    device: torch.device = field(default_factory=lambda: torch.device("cpu"))

    @property
    def main(self) -> bool:
        return self.rank == 0


def init_distributed() -> Dist:
    """Join the process group if started by torchrun (RANK/WORLD_SIZE set), else a single process."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world == 1:
        return Dist(device=torch.device("cuda" if torch.cuda.is_available() else "cpu"))
    rank, local = int(os.environ["RANK"]), int(os.environ.get("LOCAL_RANK", "0"))
    if torch.cuda.is_available():
        torch.cuda.set_device(local)
        device, backend = torch.device("cuda", local), "nccl"
    else:
        device, backend = torch.device("cpu"), "gloo"
        # Each process gets its share of the cores instead of all of them each.
        torch.set_num_threads(max(1, (os.cpu_count() or 1) // int(os.environ.get("LOCAL_WORLD_SIZE", world))))
    if not tdist.is_initialized():
        tdist.init_process_group(backend)
    return Dist(rank, world, local, device)


def autocast(dtype: str, device: torch.device) -> contextlib.AbstractContextManager[Any]:
    """bf16 autocast for `dtype` (auto: when supported), else nothing."""
    use = dtype == "bf16" or (dtype == "auto" and bf16_supported(device))
    if not use:
        return contextlib.nullcontext()
    return torch.autocast(device.type, dtype=torch.bfloat16)


def use_bf16(dtype: str, device: torch.device) -> bool:
    return dtype == "bf16" or (dtype == "auto" and bf16_supported(device))


class MasterWeights:
    """Mixed precision without autocast: the model's weights are bf16 (so every matmul runs in
    bf16 with no per-call casts, ~6x faster than fp32 autocast on a CPU here), and fp32
    master copies of them are what the optimizer updates and checkpoints hold. After each
    step the masters are copied back into the bf16 weights. Frozen weights (the base of a
    LoRA run) keep an fp32 copy too, so checkpoints and the final model hold them exactly,
    not rounded to bf16. With `bf16=False` the masters are the model's own parameters and
    every method is a no-op."""

    def __init__(self, model: GPT, bf16: bool) -> None:
        self.model, self.bf16 = model, bf16
        self.frozen: dict[str, torch.Tensor] = {}
        if bf16:
            self.frozen = {n: p.detach().float().clone() for n, p in model.named_parameters() if not p.requires_grad}
            model.to(torch.bfloat16)
        self.pairs: list[tuple[nn.Parameter, nn.Parameter]] = []
        seen: set[int] = set()
        for p in model.parameters():
            if p.requires_grad and id(p) not in seen:
                seen.add(id(p))
                self.pairs.append((p, nn.Parameter(p.detach().float().clone()) if bf16 else p))
        self.by_id = {id(p): m for p, m in self.pairs}

    def grads_to_masters(self) -> None:
        if self.bf16:
            for p, m in self.pairs:
                m.grad = None if p.grad is None else p.grad.float()
                p.grad = None

    @torch.no_grad()
    def masters_to_model(self) -> None:
        if self.bf16:
            for p, m in self.pairs:
                p.copy_(m)

    def state_dict(self) -> dict[str, torch.Tensor]:
        """The weights under the model's names, in fp32 (the masters), for checkpoints."""
        state = {k: v.detach() for k, v in self.model.state_dict().items()}
        if self.bf16:
            names = {id(p): n for n, p in self.model.named_parameters()}
            for p, m in self.pairs:
                state[names[id(p)]] = m.detach()
            state.update(self.frozen)
        if self.model.cfg.tie_embeddings:
            state.pop("lm_head.weight", None)  # shares the embedding's memory (safetensors refuses)
        return {k: v.contiguous() for k, v in state.items()}

    @torch.no_grad()
    def load(self, weights: dict[str, torch.Tensor]) -> None:
        """Set masters (and the model) from a checkpoint's fp32 weights."""
        self.model.load_state_dict(weights, strict=False)
        if self.bf16:
            names = {id(p): n for n, p in self.model.named_parameters()}
            for p, m in self.pairs:
                m.copy_(weights[names[id(p)]])
            for n, t in self.frozen.items():
                t.copy_(weights[n])

    @torch.no_grad()
    def finish(self) -> None:
        """Leave the model in fp32 holding the master weights."""
        if self.bf16:
            self.model.float()
            for p, m in self.pairs:
                p.copy_(m)
            params = dict(self.model.named_parameters())
            for n, t in self.frozen.items():
                params[n].copy_(t)


class _SummedCrossEntropy(torch.autograd.Function):
    """sum over rows of -log_softmax(float(logits))[target], a few rows at a time.

    The same loss as `F.cross_entropy(logits.float(), targets, reduction="sum")` and the
    same gradient (softmax - one-hot, scaled, in float32, then in the logits' dtype),
    without the full-size float32 copies of bf16 logits that it makes and keeps (the
    upcast, the log-probabilities, a gradient filled with zeros first): each chunk of rows
    is upcast and reduced while it is in the CPU's cache, forward (log-sum-exp) and
    backward (softmax) alike. Only the logits and one float per row are kept for backward.
    On the 14M benchmark shape (4,096 x 8,192 bf16 logits) loss and gradient take ~65 ms
    instead of ~215 ms a step, and ~400 MB less memory. (Keeping the gradient from the
    forward pass instead, and only scaling it in backward, measured slower: ~88 ms.)

    With `fused`, each pass is one `torch.compile`d kernel over all rows instead (see
    `_fused_kernels`): ~30 ms. Used when the model itself is compiled.
    """

    @staticmethod
    def forward(ctx: Any, logits: torch.Tensor, targets: torch.Tensor, chunk: int, fused: bool) -> torch.Tensor:
        if fused:
            lse = _fused_kernels()[0](logits)
        else:
            lse = torch.empty(logits.shape[0], dtype=torch.float32, device=logits.device)
            for a in range(0, logits.shape[0], chunk):
                lse[a : a + chunk] = torch.logsumexp(logits[a : a + chunk].float(), dim=-1)
        picked = logits.gather(1, targets[:, None]).squeeze(1).float()
        ctx.save_for_backward(logits, targets, lse)
        ctx.chunk, ctx.fused = chunk, fused
        return (lse - picked).sum()

    @staticmethod
    def backward(ctx: Any, scale: torch.Tensor) -> tuple[torch.Tensor, None, None, None]:
        logits, targets, lse = ctx.saved_tensors
        if ctx.fused:
            return _fused_kernels()[1](logits, lse, targets, scale), None, None, None
        out = torch.empty_like(logits)
        rows = torch.arange(min(ctx.chunk, logits.shape[0]), device=logits.device)
        for a in range(0, logits.shape[0], ctx.chunk):
            b = min(a + ctx.chunk, logits.shape[0])
            p = logits[a:b].float()  # the chunk's softmax, in place: one float32 buffer, not three
            p.sub_(lse[a:b, None]).exp_()
            p[rows[: b - a], targets[a:b]] -= 1
            p.mul_(scale)
            out[a:b] = p
        return out, None, None, None


def _log_sum_exp(logits: torch.Tensor) -> torch.Tensor:
    return torch.logsumexp(logits.float(), dim=-1)


def _softmax_grad(logits: torch.Tensor, lse: torch.Tensor, targets: torch.Tensor, scale: torch.Tensor) -> torch.Tensor:
    p = torch.exp(logits.float() - lse[:, None])
    hot = torch.arange(logits.shape[1], device=logits.device)[None, :] == targets[:, None]
    return ((p - hot.to(p.dtype)) * scale).to(logits.dtype)


@functools.cache
def _fused_kernels() -> tuple[Callable[..., torch.Tensor], Callable[..., torch.Tensor]]:
    """The loss's forward (log-sum-exp per row) and backward ((softmax - one-hot) * scale) as
    compiled kernels: each reads the logits once, in their dtype, and upcasts in registers,
    so no float32 copy is ever written. Compiled on first use (a few seconds, and again once
    when the number of rows first changes: then for any number of rows)."""
    return torch.compile(_log_sum_exp), torch.compile(_softmax_grad)


def summed_cross_entropy(logits: torch.Tensor, targets: torch.Tensor, *, fused: bool = False) -> torch.Tensor:
    """Cross entropy of (N, vocab) logits against N targets (all in range), summed, computed in float32.

    `fused`: with `torch.compile`d kernels (see `_SummedCrossEntropy`); needs what
    `torch.compile` needs (a C++ compiler on CPU)."""
    chunk = max(1, _CHUNK_ELEMENTS // logits.shape[-1])
    return _SummedCrossEntropy.apply(logits, targets, chunk, fused)  # type: ignore[no-any-return]


_CHUNK_ELEMENTS = 1 << 19  # logits per chunk of `summed_cross_entropy`: 2 MB in float32, a core's L2 cache


def is_compiled(model: nn.Module) -> bool:
    """Whether `model` (or the model inside a DistributedDataParallel) is a `torch.compile`d module."""
    inner = model.module if isinstance(model, nn.parallel.DistributedDataParallel) else model
    return isinstance(inner, torch._dynamo.eval_frame.OptimizedModule)


def lm_loss(model: nn.Module, batch: Batch) -> tuple[torch.Tensor, int]:
    """Next-token cross entropy summed over target tokens (targets == -100 are skipped), and their count.

    When some positions have no target (SFT's prompts and padding), the model computes
    logits at the target positions only (`select`): the same loss, without the output
    head and softmax over the whole vocabulary at the positions that don't count. A
    compiled model gets the compiled loss kernels too (`summed_cross_entropy(fused=True)`)."""
    targets = batch["targets"]
    keep = targets != -100
    n = int(keep.sum())
    fused = is_compiled(model)
    if n == targets.numel():  # every position is a target (pretraining): nothing to leave out
        logits = model(batch["input_ids"], position_ids=batch.get("position_ids"), doc_ids=batch.get("doc_ids"))
        return summed_cross_entropy(logits.reshape(-1, logits.size(-1)), targets.reshape(-1), fused=fused), n
    logits = model(batch["input_ids"], position_ids=batch.get("position_ids"), doc_ids=batch.get("doc_ids"), select=keep)  # (n, vocab)
    return summed_cross_entropy(logits, targets[keep], fused=fused), n


def batch_count(batch: Batch) -> int:
    """What a batch's loss is averaged over: target tokens (LM losses) or rows (e.g. DPO pairs)."""
    if "targets" in batch:
        return int((batch["targets"] != -100).sum())
    return int(next(iter(batch.values())).shape[0])


class NonFiniteLoss(UserError):
    """The loss became NaN or infinite."""


@dataclass
class StepStats:
    loss: float
    grad_norm: float
    tokens: int


def train_step(
    model: nn.Module,
    micro_batches: list[Batch],
    optimizer: torch.optim.Optimizer,
    *,
    loss_fn: LossFn,
    grad_clip: float,
    dtype: str,
    dist: Dist,
    weights: MasterWeights | None = None,
) -> StepStats:
    """One optimizer step over `micro_batches` (this process's share): accumulate, clip, step.

    Loss = sum of token losses / target tokens of the whole step across processes, so the
    gradient does not depend on how the step is split into micro-batches or processes.
    Raises NonFiniteLoss before touching the weights if the loss is NaN or infinite.
    """
    total = torch.tensor([float(sum(batch_count(b) for b in micro_batches))])
    if dist.world > 1:
        tdist.all_reduce(total)
    total_tokens = max(1.0, float(total.item()))
    loss_sum = torch.zeros(())
    for i, batch in enumerate(micro_batches):
        last = i == len(micro_batches) - 1
        sync = contextlib.nullcontext() if last or dist.world == 1 else model.no_sync()  # type: ignore[operator]
        with sync, (contextlib.nullcontext() if weights is not None and weights.bf16 else autocast(dtype, dist.device)):
            loss, _n = loss_fn(model, batch)
            # DDP averages gradients over processes; scale back to the global token mean.
            (loss * (dist.world / total_tokens)).backward()
        loss_sum += loss.detach().float()
    if dist.world > 1:
        tdist.all_reduce(loss_sum)
    mean_loss = float(loss_sum) / total_tokens
    if not math.isfinite(mean_loss):
        optimizer.zero_grad(set_to_none=True)
        model.zero_grad(set_to_none=True)
        raise NonFiniteLoss(f"the loss became {mean_loss}")
    if weights is not None:
        weights.grads_to_masters()
    params = [p for g in optimizer.param_groups for p in g["params"]]
    norm = torch.nn.utils.clip_grad_norm_(params, grad_clip if grad_clip > 0 else float("inf"))
    if not torch.isfinite(norm):
        optimizer.zero_grad(set_to_none=True)
        raise NonFiniteLoss(f"the gradient norm became {float(norm)}")
    optimizer.step()
    optimizer.zero_grad(set_to_none=True)
    if weights is not None:
        weights.masters_to_model()
    return StepStats(mean_loss, float(norm), int(total_tokens))


@torch.no_grad()
def evaluate(model: nn.Module, batches: Iterable[Batch], *, loss_fn: LossFn, dtype: str, dist: Dist) -> float:
    """Mean token loss over `batches` (summed over processes)."""
    was_training = model.training
    model.eval()
    total = torch.zeros(2)
    for batch in batches:
        with autocast(dtype, dist.device):
            loss, n = loss_fn(model, batch)
        total += torch.tensor([float(loss), float(n)])
    if dist.world > 1:
        tdist.all_reduce(total)
    model.train(was_training)
    return float(total[0]) / max(float(total[1]), 1.0)


@dataclass
class FitResult:
    steps: int
    final_loss: float
    best_val: float | None
    best_checkpoint: str | None
    stopped: str  # "done", "early_stopping" or "signal"
    seconds: float  # of this process's run (since the resume, if resumed)
    tokens: int  # all steps, including those before a resume
    session_tokens: int  # the steps of this run only: tokens / s = session_tokens / seconds


class _StopFlag:
    """Set by SIGINT/SIGTERM: the loop saves a checkpoint and stops at the end of the step."""

    def __init__(self) -> None:
        self.signal: int | None = None
        self._old: dict[int, Any] = {}

    def __enter__(self) -> _StopFlag:
        for sig in (signal.SIGINT, signal.SIGTERM):
            with contextlib.suppress(ValueError):  # not the main thread
                self._old[sig] = signal.signal(sig, self._handle)
        return self

    def _handle(self, signum: int, frame: Any) -> None:
        if self.signal is not None and signum == signal.SIGINT:
            raise KeyboardInterrupt  # a second Ctrl-C: stop now
        self.signal = signum

    def __exit__(self, *exc: Any) -> None:
        for sig, old in self._old.items():
            signal.signal(sig, old)


def fit(
    model: GPT,
    train: Batches,
    cfg: TrainConfig,
    *,
    run_dir: Path,
    log: RunLog,
    val: Callable[[], Iterator[Batch]] | None = None,
    loss_fn: LossFn = lm_loss,
    dist: Dist | None = None,
    resume: bool = False,
    bytes_per_token: float | None = None,
    ui: UI = QUIET,
    stage: str = "train",
    extra_state: dict[str, Any] | None = None,
) -> FitResult:
    """Train `model` for `cfg.steps` optimizer steps (from the latest checkpoint if `resume`).

    On return the model is in fp32 holding the trained weights (in bf16 mode, the masters).
    """
    dist = dist or Dist()
    world_share = cfg.batch_size // dist.world
    if cfg.batch_size % dist.world:
        raise ConfigError(f"train.batch_size: must be a multiple of the number of processes ({dist.world}), got {cfg.batch_size}")
    micro = cfg.micro_batch or world_share
    if world_share % micro:
        raise ConfigError(f"train.micro_batch: must divide the per-process batch ({world_share}), got {micro}")
    n_micro = world_share // micro

    weights = MasterWeights(model, use_bf16(cfg.dtype, dist.device))
    optimizer = make_optimizer(model, cfg.optim, weights.by_id)
    state: dict[str, Any] = {"step": 0, "best_val": None, "best_checkpoint": None, "bad_evals": 0, "tokens": 0}
    if resume:
        ck = find_checkpoint(run_dir, ui.warn)
        if ck is None:
            ui.warn(f"{run_dir}: no checkpoint to resume from; starting from scratch")
        else:
            loaded = load_checkpoint(ck, model, optimizer)
            weights.load(checkpoint_weights(ck))
            train.load_state_dict(loaded["data"])
            state.update({k: loaded[k] for k in state if k in loaded})
            ui.note(f"resumed from {ck} (step {state['step']})")
    net: nn.Module = model
    if cfg.compile:
        net = torch.compile(model)  # type: ignore[assignment]
    if dist.world > 1:
        net = nn.parallel.DistributedDataParallel(net, device_ids=[dist.local_rank] if dist.device.type == "cuda" else None)
    net.train()

    def save(step: int) -> None:
        if not dist.main:
            return
        keep = {state["best_checkpoint"]} if state["best_checkpoint"] else set()
        save_checkpoint(
            run_dir, step, model, optimizer, {**state, "data": train.state_dict(), "stage": stage, **(extra_state or {})},
            keep_last=cfg.keep_last, keep=keep, weights=weights.state_dict(),
        )

    def validate(step: int) -> tuple[bool, bool]:
        """Validation loss: (improved on the best so far, stop early now)."""
        if val is None:
            return False, False
        loss = evaluate(net, _take(val(), cfg.eval_batches), loss_fn=loss_fn, dtype=cfg.dtype, dist=dist)
        record: dict[str, Any] = {"step": step, "val_loss": loss}
        if bytes_per_token:
            record["val_bpb"] = loss / math.log(2) / bytes_per_token
        log.log(**record)
        if state["best_val"] is None or loss < state["best_val"]:
            state["best_val"], state["bad_evals"] = loss, 0
            state["best_checkpoint"] = f"step_{step:06d}"
            return True, False
        state["bad_evals"] += 1
        return False, bool(cfg.patience) and state["bad_evals"] >= cfg.patience

    start_step, start_tokens = state["step"], state["tokens"]
    t0 = time.perf_counter()
    tokens_window, t_window = 0, time.perf_counter()
    stopped, last_loss = "done", float("nan")
    with _StopFlag() as flag, ui.progress(stage, total=cfg.steps, unit="steps") as advance:
        advance(start_step)
        step = start_step
        while step < cfg.steps:
            lr = lr_at(step, cfg.steps, cfg.optim)
            for group in optimizer.param_groups:
                group["lr"] = lr
            batches = [train.next_batch(micro) for _ in range(n_micro)]
            try:
                stats = train_step(net, batches, optimizer, loss_fn=loss_fn, grad_clip=cfg.optim.grad_clip, dtype=cfg.dtype, dist=dist, weights=weights)
            except NonFiniteLoss as e:
                good = state["best_checkpoint"] or "none yet"
                raise NonFiniteLoss(
                    f"{stage}: {e} at step {step + 1}; nothing was saved from this step (last checkpoint: {good}). "
                    "Lower the learning rate (--train.optim.lr) or check the data."
                ) from None
            step += 1
            state["step"] = step
            state["tokens"] += stats.tokens
            tokens_window += stats.tokens
            last_loss = stats.loss
            if step % cfg.log_every == 0 or step == cfg.steps:
                now = time.perf_counter()
                log.log(step=step, loss=stats.loss, lr=lr, grad_norm=stats.grad_norm, tokens=state["tokens"], tok_per_s=tokens_window / max(now - t_window, 1e-9))
                tokens_window, t_window = 0, now
            advance(1, status=f"loss {stats.loss:.3f}  lr {lr:.1e}")
            improved, early = False, False
            if (cfg.eval_every and step % cfg.eval_every == 0) or step == cfg.steps:
                improved, early = validate(step)
            if improved or flag.signal is not None or early or step == cfg.steps or (cfg.save_every and step % cfg.save_every == 0):
                save(step)  # the best checkpoint is always saved (and kept by pruning)
            if early:
                stopped = "early_stopping"
                ui.note(f"{stage}: no improvement in {cfg.patience} validations; stopping early at step {step}")
                break
            if flag.signal is not None:
                stopped = "signal"
                ui.note(f"{stage}: stopped by signal {flag.signal} at step {step}; checkpoint saved, resume with --resume")
                break
    weights.finish()
    return FitResult(step, last_loss, state["best_val"], state["best_checkpoint"], stopped, time.perf_counter() - t0, state["tokens"], state["tokens"] - start_tokens)


def _take(it: Iterator[Batch], n: int) -> Iterator[Batch]:
    for i, b in enumerate(it):
        if i >= n:
            return
        yield b
