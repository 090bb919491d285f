"""SFT throughput: `chatforge sft` vs TRL's `SFTTrainer` (and a plain loop over HF's Llama), same run, one process.

    python benchmarks/sft_throughput.py                      # ~4 minutes on 2 cores
    python benchmarks/sft_throughput.py --rounds 5 --steps 6 # longer, a tighter spread

Issue 5, "Speed to reach". The same conversations (the built-in support world, clean:
`synth.generate(seed, noise=0)`, rendered with a tokenizer trained on it), the same ~14M
Llama shape (n_layer=6, n_embd=384, n_head=6, block 256, vocab 8192; the HF model is built
from our config with `ModelConfig.to_hf` and starts from the same weights), 16 rows of 256
tokens (~4k) per optimizer step, bf16 on both sides, the loss on the assistant turns
(the tokenizer's mask, handed to TRL as `assistant_masks` with the same token ids):

  ours          chatforge's SFT path: `sft.tokenize` (truncation, masks), `SFTRows` (whole
                conversations packed per row by best fit, block-diagonal causal mask,
                positions restarting per conversation: no attention across conversations)
                and `loop.train_step` (bf16 weights with fp32 masters, logits only at the
                trained positions, clipping, fused AdamW);
  trl-default   `SFTTrainer` with its defaults and `packing=True` (best-fit-decreasing
                packing; on CPU that is padding-free: each batch becomes one 4k-token
                sequence with a block mask; gradient checkpointing on; bf16 autocast);
  trl-*         TRL's faster CPU settings (see SETTINGS): no gradient checkpointing,
                `packing_strategy="wrapped"` (rows cut mid-conversation, conversations
                attend to each other), eager vs SDPA attention, a bf16 model (bf16
                weights updated in bf16 by AdamW: faster, less exact than fp32 masters);
                "TRL's best" is the fastest of those run, by median;
  hf-loop       a plain loop over `LlamaForCausalLM` on wrapped rows (bf16 autocast,
                torch AdamW): what HF's model does with no trainer around it.

Tokens/s counts the non-padding tokens the model reads (ours: input positions holding a
conversation token; TRL: its `attention_mask` sum, or the flattened length when
padding-free), over whole optimizer steps (data, forward, backward, clipping, AdamW)
after a warm-up. The machine is shared, so the settings run interleaved: each round
runs every setting once (warm-up, then `--steps` timed steps); the figure is the median
over rounds, and the spread (min-max) is printed and saved. Ratios are medians of the
per-round ratios. Writes benchmarks/results/sft_throughput.json.

TRL is a benchmark-only dependency: `pip install -e '.[bench]'` (with the torch constraint).
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from chatforge.atomic import atomic_write_json
from chatforge.checkpoint import save_model_dir
from chatforge.data import synth
from chatforge.data.dataset import write_dataset
from chatforge.data.steps import row_texts
from chatforge.model import GPT, ModelConfig
from chatforge.optim import OptimConfig, make_optimizer
from chatforge.tokenizer import train_tokenizer
from chatforge.train.loop import Dist, MasterWeights, lm_loss, train_step
from chatforge.train.sft import Conversations, SFTRows, tokenize

RESULTS = Path(__file__).parent / "results" / "sft_throughput.json"
SHAPE = dict(vocab_size=8192, n_layer=6, n_embd=384, n_head=6, n_kv_head=6, block_size=256)
ROWS, SEQ = 16, 256  # per optimizer step: 16 rows of 256 tokens

# TRL settings: SFTConfig arguments on top of the shared ones (output dir, steps, batch,
# max_length); "model_dtype" and "attn" set how the HF model is built, "batch" the rows per
# step. The defaults are TRL's defaults and its fastest CPU settings found; the others
# were slower here (2 cores): padding-free best-fit packing without gradient checkpointing
# (one 4k-token sequence per step: its attention is 4k x 4k), no packing (40 padded
# conversations a step, ~4k tokens), and not listed: `torch_compile=True` (slower than
# eager, compile time aside), `attn_implementation="flex_attention"` (no backward on CPU)
# and `optim="adamw_torch_fused"` (already TRL's default).
SETTINGS: dict[str, dict[str, Any]] = {
    "trl-default": {"packing": True},
    "trl-bfd-nogc": {"packing": True, "gradient_checkpointing": False},
    "trl-nopack-nogc-bf16model-eager": {"packing": False, "batch": 40, "gradient_checkpointing": False, "model_dtype": "bf16", "attn": "eager"},
    "trl-wrapped-nogc": {"packing": True, "packing_strategy": "wrapped", "gradient_checkpointing": False},
    "trl-wrapped-nogc-eager": {"packing": True, "packing_strategy": "wrapped", "gradient_checkpointing": False, "attn": "eager"},
    "trl-wrapped-nogc-bf16model": {"packing": True, "packing_strategy": "wrapped", "gradient_checkpointing": False, "model_dtype": "bf16"},
    "trl-wrapped-nogc-bf16model-eager": {"packing": True, "packing_strategy": "wrapped", "gradient_checkpointing": False, "model_dtype": "bf16", "attn": "eager"},
}
DEFAULT_SETTINGS = ["trl-default", "trl-wrapped-nogc", "trl-wrapped-nogc-eager", "trl-wrapped-nogc-bf16model", "trl-wrapped-nogc-bf16model-eager"]


# -- the shared run ------------------------------------------------------------------------


class Run:
    """Everything every setting shares: the tokenizer, the model dir, the tokenized conversations."""

    def __init__(self, tmp: Path, seed: int) -> None:
        world = synth.generate(seed, noise=0.0)
        texts = [t for r in world.kb for t in row_texts(r, "text")] + [t for r in world.conversations for t in row_texts(r, "conversations")]
        self.tok = train_tokenizer(texts, SHAPE["vocab_size"])
        self.tok.save(tmp / "tokenizer")
        torch.manual_seed(seed)
        self.cfg = ModelConfig(**SHAPE)
        save_model_dir(tmp / "model", GPT(self.cfg), tokenizer_dir=tmp / "tokenizer")
        self.model_dir = tmp / "model"
        write_dataset(tmp / "conversations", "conversations", world.conversations, created_by={"command": "benchmark"})
        # sft.main's own tokenization: a conversation longer than SEQ + 1 loses its oldest turns.
        self.convs, _, self.counts = tokenize([str(tmp / "conversations")], self.tok, limit=SEQ + 1, train_on="assistant", val_fraction=0, split=False)
        self.seed, self.tmp = seed, tmp

    def initial_state(self) -> dict[str, torch.Tensor]:
        from chatforge.checkpoint import load_model_dir

        return load_model_dir(self.model_dir).state_dict()

    def hf_model(self, attn: str = "sdpa", dtype: torch.dtype = torch.float32) -> Any:
        from transformers import LlamaConfig, LlamaForCausalLM

        cfg = {k: v for k, v in self.cfg.to_hf().items() if k not in ("architectures", "model_type", "torch_dtype")}
        model = LlamaForCausalLM(LlamaConfig(**cfg, pad_token_id=self.tok.pad_id, bos_token_id=self.tok.bos_id, eos_token_id=self.tok.end_id))
        model.load_state_dict(self.initial_state(), strict=True)
        model.config._attn_implementation = attn
        return model.to(dtype)

    def wrapped_rows(self) -> tuple[np.ndarray, np.ndarray]:
        """All conversations end to end, cut into rows of SEQ + 1 tokens (TRL's "wrapped")."""
        n = (len(self.convs.ids) // (SEQ + 1)) * (SEQ + 1)
        return self.convs.ids[:n].reshape(-1, SEQ + 1).astype(np.int64), self.convs.mask[:n].reshape(-1, SEQ + 1).astype(bool)


def timed_steps(step: Callable[[], int], warmup: int, steps: int) -> float:
    """Non-padding tokens/s of `step()` (which returns its token count) over `steps` calls after `warmup`."""
    for _ in range(warmup):
        step()
    t0 = time.perf_counter()
    tokens = sum(step() for _ in range(steps))
    return tokens / (time.perf_counter() - t0)


# -- ours ------------------------------------------------------------------------------------


def ours(run: Run, warmup: int, steps: int) -> float:
    """chatforge's SFT step on its packed rows: what `fit` runs each step (minus logging)."""
    model = GPT(ModelConfig(**SHAPE))
    model.load_state_dict(run.initial_state())
    weights = MasterWeights(model, bf16=True)
    opt = make_optimizer(model, OptimConfig(lr=1e-4, weight_decay=0.0), masters=weights.by_id)
    rows = SFTRows(run.convs, [1.0], length=SEQ, packing=True, seed=run.seed, pad_id=run.tok.pad_id, dist=Dist())
    model.train()

    def step() -> int:
        batch = rows.next_batch(ROWS)
        train_step(model, [batch], opt, loss_fn=lm_loss, grad_clip=1.0, dtype="bf16", dist=Dist(), weights=weights)
        return int((batch["input_ids"] != run.tok.pad_id).sum())

    return timed_steps(step, warmup, steps)


# -- TRL -------------------------------------------------------------------------------------


def trl_dataset(convs: Conversations) -> Any:
    from datasets import Dataset

    ids = [convs.get(i)[0].tolist() for i in range(len(convs))]
    masks = [convs.get(i)[1].tolist() for i in range(len(convs))]
    return Dataset.from_dict({"input_ids": ids, "assistant_masks": masks})


def trl_run(run: Run, setting: str, warmup: int, steps: int) -> float:
    """TRL's SFTTrainer for warmup + steps optimizer steps; tokens/s of the timed ones."""
    from transformers import PreTrainedTokenizerFast, TrainerCallback
    from trl import SFTConfig, SFTTrainer

    opts = dict(SETTINGS[setting])
    attn, dtype = opts.pop("attn", "sdpa"), torch.bfloat16 if opts.pop("model_dtype", "") == "bf16" else torch.float32
    batch = opts.pop("batch", ROWS)
    tokens: list[int] = []
    ends: list[float] = []

    class Counting(SFTTrainer):
        def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):  # type: ignore[no-untyped-def]
            if "attention_mask" in inputs:
                tokens.append(int(inputs["attention_mask"].sum()))
            else:  # padding-free: one flattened sequence, no padding
                tokens.append(int(inputs["position_ids"].numel()))
            return super().compute_loss(model, inputs, return_outputs, num_items_in_batch)

    class Clock(TrainerCallback):
        def on_step_begin(self, args, state, control, **kw):  # type: ignore[no-untyped-def]
            if not ends:
                ends.append(time.perf_counter())

        def on_step_end(self, args, state, control, **kw):  # type: ignore[no-untyped-def]
            ends.append(time.perf_counter())

    args = SFTConfig(
        output_dir=str(run.tmp / "trl" / setting),
        max_steps=warmup + steps,
        per_device_train_batch_size=batch,
        max_length=SEQ,
        report_to="none",
        use_cpu=True,
        save_strategy="no",
        disable_tqdm=True,
        seed=run.seed,
        **opts,
    )
    tok = PreTrainedTokenizerFast.from_pretrained(str(run.model_dir))
    trainer = Counting(model=run.hf_model(attn, dtype), args=args, train_dataset=trl_dataset(run.convs), processing_class=tok, callbacks=[Clock()])
    trainer.train()
    # ends[0]: the first step's start; ends[i]: step i's end. Time from the end of the warm-up.
    timed = sum(tokens[warmup : warmup + steps])
    return timed / (ends[warmup + steps] - ends[warmup])


# -- a plain loop over HF's Llama -------------------------------------------------------------


def hf_loop(run: Run, warmup: int, steps: int) -> float:
    model = run.hf_model("sdpa")
    model.train()
    opt = torch.optim.AdamW(model.parameters(), lr=1e-4, weight_decay=0.0)
    ids, mask = run.wrapped_rows()
    cursor = [0]

    def step() -> int:
        r = cursor[0] % (len(ids) // ROWS) * ROWS
        cursor[0] += 1
        x = torch.from_numpy(ids[r : r + ROWS])
        y = torch.where(torch.from_numpy(mask[r : r + ROWS, 1:]), x[:, 1:], -100)
        with torch.autocast("cpu", dtype=torch.bfloat16):
            logits = model(input_ids=x[:, :-1]).logits
        loss = F.cross_entropy(logits.float().reshape(-1, logits.size(-1)), y.reshape(-1), ignore_index=-100)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        opt.zero_grad(set_to_none=True)
        return ROWS * SEQ

    return timed_steps(step, warmup, steps)


# -- the benchmark --------------------------------------------------------------------------


def spread(values: list[float]) -> dict[str, float]:
    return {"median": round(statistics.median(values), 1), "min": round(min(values), 1), "max": round(max(values), 1)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=3, help="rounds; each runs every setting once (interleaved)")
    ap.add_argument("--steps", type=int, default=3, help="timed optimizer steps per setting per round")
    ap.add_argument("--warmup", type=int, default=1, help="untimed optimizer steps before them")
    ap.add_argument("--settings", nargs="+", default=DEFAULT_SETTINGS, choices=sorted(SETTINGS), help="TRL settings to run")
    ap.add_argument("--no-hf-loop", action="store_true", help="skip the plain HF loop")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=os.cpu_count() or 1, help="torch threads (default: every core; 1 on a machine busy with other work)")
    args = ap.parse_args()
    try:
        import trl
    except ImportError:
        sys.exit("sft_throughput: needs TRL, a benchmark-only dependency: pip install -c .venv/constraints.txt -e '.[bench]'")
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")
    torch.set_num_threads(args.threads)
    load = os.getloadavg()[0]

    with tempfile.TemporaryDirectory() as tmp:
        run = Run(Path(tmp), args.seed)
        lengths = np.diff(run.convs.offsets)
        print(
            f"{len(run.convs):,} conversations, {int(lengths.sum()):,} tokens (mean {lengths.mean():.0f}, max {lengths.max()}), "
            f"{run.convs.mask.mean():.0%} trained; tokenizer {run.tok.vocab_size} ids; model {GPT(ModelConfig(**SHAPE)).num_params() / 1e6:.1f}M params"
        )
        runners: dict[str, Callable[[], float]] = {"ours": lambda: ours(run, args.warmup, args.steps)}
        for s in args.settings:
            runners[s] = lambda s=s: trl_run(run, s, args.warmup, args.steps)
        if not args.no_hf_loop:
            runners["hf-loop"] = lambda: hf_loop(run, args.warmup, args.steps)
        rates: dict[str, list[float]] = {name: [] for name in runners}
        t_start = time.perf_counter()
        for r in range(args.rounds):
            for name, fn in runners.items():
                rates[name].append(fn())
            print(f"round {r + 1}/{args.rounds}: " + ", ".join(f"{n} {v[-1]:.0f}" for n, v in rates.items()) + f" tok/s (load {os.getloadavg()[0]:.1f})")
        seconds = time.perf_counter() - t_start

    trl_names = [n for n in rates if n.startswith("trl-")]
    best_trl = max((n for n in trl_names if n != "trl-default"), key=lambda n: statistics.median(rates[n]), default=None)
    ratios: dict[str, dict[str, float]] = {}
    for name in rates:
        if name != "ours":
            ratios[f"ours/{name}"] = spread([o / t for o, t in zip(rates["ours"], rates[name], strict=True)])
    print(f"\ntokens/s (non-padding), median [min-max] over {args.rounds} interleaved rounds of {args.steps} steps:")
    for name, v in rates.items():
        s = spread(v)
        print(f"  {name:28s} {s['median']:8.0f}  [{s['min']:.0f}-{s['max']:.0f}]")
    for name, s in ratios.items():
        print(f"  {name:28s} {s['median']:8.2f}x [{s['min']:.2f}-{s['max']:.2f}]")
    if "ours/trl-default" in ratios:
        print(f"ours / TRL defaults: {ratios['ours/trl-default']['median']:.2f}x (target 4x)")
    if best_trl:
        print(f"ours / TRL's best ({best_trl}): {ratios[f'ours/{best_trl}']['median']:.2f}x (target 2x)")

    atomic_write_json(RESULTS, {
        "shape": SHAPE, "rows": ROWS, "seq": SEQ, "threads": torch.get_num_threads(), "load_before": round(load, 2),
        "load_after": round(os.getloadavg()[0], 2), "torch": torch.__version__,
        "trl": trl.__version__, "rounds": args.rounds, "steps": args.steps, "warmup": args.warmup, "seconds": round(seconds, 1),
        "data": {"conversations": len(run.convs), "tokens": int(lengths.sum()), **run.counts},
        "settings": {n: SETTINGS[n] for n in trl_names},
        "tokens_per_s": {n: spread(v) for n, v in rates.items()},
        "tokens_per_s_rounds": {n: [round(x, 1) for x in v] for n, v in rates.items()},
        "ratios": ratios, "best_trl": best_trl,
        "targets": {"ours/trl-default": 4.0, "ours/best_trl": 2.0},
    })
    print(f"-> {RESULTS}")


if __name__ == "__main__":
    main()
