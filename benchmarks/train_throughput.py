"""Training throughput: our GPT vs Hugging Face `LlamaForCausalLM`, same shape, same machine, one run.

    python benchmarks/train_throughput.py            # ~8 minutes on 2 cores (torch.compile included)
    python benchmarks/train_throughput.py --quick    # fewer steps, for a smoke check

Shape (issue 4): n_layer=6, n_embd=384, n_head=6, block 256, vocab 8192 (~14M parameters),
16 rows of 256 tokens per optimizer step. Prints and writes benchmarks/results/train_throughput.json:

  (a) the bf16 and fp32 matmul peak of this machine (best GFLOP/s over square matmuls
      and every GEMM shape of the training step, all cores);
  (b) our training tokens/s in each mode (fp32; bf16 weights with fp32 master weights,
      SDPA and explicit-softmax attention; with and without torch.compile) -- a full
      optimizer step: forward, loss, backward, clipping, AdamW;
  (c) HF LlamaForCausalLM built from the same config (`ModelConfig.to_hf`), fp32 eager,
      the same step with torch's AdamW;
  (d) the same step's matmuls alone (every GEMM of the step at its shape, nothing else):
      the highest MFU any implementation of this shape can reach on this machine;
  (e) DDP with 2 processes (one thread each, gloo) vs 1 process with 2 threads.

MFU = (6 N + 12 L T C) tokens/s / bf16 peak, N = parameters in matmuls (embedding lookup
excluded, output head included), L layers, T tokens of context, C width.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

import torch
import torch.nn.functional as F

from chatforge.model import GPT, ModelConfig
from chatforge.optim import OptimConfig, make_optimizer
from chatforge.train.loop import Dist, MasterWeights, lm_loss, train_step

RESULTS = Path(__file__).parent / "results" / "train_throughput.json"
SHAPE = dict(vocab_size=8192, n_layer=6, n_embd=384, n_head=6, n_kv_head=6, block_size=256)
ROWS, SEQ = 16, 256


def step_gemms() -> tuple[list[tuple[int, int, int]], list[tuple[int, int, int, int]]]:
    """The matmuls of one training step at this shape: (m, k, n) of every nn.Linear's three
    GEMMs (y = x W^T, dx = dy W, dW = dy^T x), and (batch, m, k, n) of the attention's six
    batched ones per layer (scores, weighted values, and their gradients)."""
    model = GPT(ModelConfig(**SHAPE))
    m = ROWS * SEQ
    gemms = []
    for mod in model.modules():
        if isinstance(mod, torch.nn.Linear):
            k, n = mod.in_features, mod.out_features
            gemms += [(m, k, n), (m, n, k), (n, m, k)]
    heads, hd = ROWS * SHAPE["n_head"], SHAPE["n_embd"] // SHAPE["n_head"]
    return gemms, [(heads, SEQ, hd, SEQ), (heads, SEQ, SEQ, hd)] * 3 * SHAPE["n_layer"]


def matmul_peak(dtype: torch.dtype, seconds: float) -> tuple[float, str]:
    """Best GFLOP/s over square matmuls and every GEMM shape of this model's training step.

    On CPUs with native bf16 (AVX-512 BF16 here, AMX elsewhere), bf16 throughput depends
    strongly on the shape (here from ~400 GFLOP/s for the output head to ~1,700 for
    4096x384x384), so the peak is taken over the shapes the step really runs, not over a
    few squares."""
    shapes = sorted({(2048, 2048, 2048), (4096, 4096, 4096), *step_gemms()[0]})
    best, best_shape = 0.0, ""
    for m, k, n in shapes:
        a, b = torch.randn(m, k, dtype=dtype), torch.randn(k, n, dtype=dtype)
        for _ in range(3):
            a @ b
        reps, t0 = 0, time.perf_counter()
        while time.perf_counter() - t0 < seconds:
            a @ b
            reps += 1
        gflops = 2 * m * k * n * reps / (time.perf_counter() - t0) / 1e9
        if gflops > best:
            best, best_shape = gflops, f"{m}x{k}x{n}"
    return best, best_shape


def matmul_ceiling(seconds: float) -> tuple[float, float]:
    """Tokens/s and GFLOP/s of this model's training-step matmuls alone (`step_gemms`), in
    bf16, back to back, with nothing else: no implementation of this shape trains faster on
    this machine, so its GFLOP/s over the peak bounds the MFU any code can reach here.
    (Transposed weight-gradient operands are made contiguous here, so this is an upper bound.)
    """
    gemms, bmms = step_gemms()
    flops = sum(2 * a * b * c for a, b, c in gemms) + sum(2 * h * a * b * c for h, a, b, c in bmms)
    bf = torch.bfloat16
    ops = [(torch.randn(a, b, dtype=bf), torch.randn(b, c, dtype=bf), torch.mm) for a, b, c in gemms]
    ops += [(torch.randn(h, a, b, dtype=bf), torch.randn(h, b, c, dtype=bf), torch.bmm) for h, a, b, c in bmms]

    def step() -> None:
        for x, y, op in ops:
            op(x, y)

    step()
    best, t_end = float("inf"), time.perf_counter() + seconds
    while time.perf_counter() < t_end:
        t0 = time.perf_counter()
        step()
        best = min(best, time.perf_counter() - t0)
    return ROWS * SEQ / best, flops / best / 1e9


def flops_per_token(cfg: ModelConfig) -> float:
    model = GPT(cfg)
    n = sum(p.numel() for name, p in model.named_parameters() if "embed_tokens" not in name)
    if cfg.tie_embeddings:
        n += cfg.vocab_size * cfg.n_embd
    return 6 * n + 12 * cfg.n_layer * SEQ * cfg.n_embd


def batch(seed: int) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    x = torch.randint(0, SHAPE["vocab_size"], (ROWS, SEQ + 1), generator=g)
    return {"input_ids": x[:, :-1], "targets": x[:, 1:]}


def time_steps(step, steps: int, warmup: int) -> float:
    """Tokens/s of `step()` over `steps` calls after `warmup`, best of two halves."""
    for _ in range(warmup):
        step()
    rates = []
    for _ in range(2):
        t0 = time.perf_counter()
        for _ in range(steps):
            step()
        rates.append(ROWS * SEQ * steps / (time.perf_counter() - t0))
    return max(rates)


def ours(mode: str, steps: int, warmup: int) -> float:
    torch.manual_seed(0)
    bf16 = mode.startswith("bf16")
    cfg = ModelConfig(**SHAPE, attention="manual" if "manual" in mode else "sdpa")
    model = GPT(cfg)
    weights = MasterWeights(model, bf16=bf16)
    opt = make_optimizer(model, OptimConfig(lr=1e-3), masters=weights.by_id)
    fwd = torch.compile(model) if "compile" in mode else model
    data = batch(0)

    def step() -> None:
        train_step(fwd, [data], opt, loss_fn=lm_loss, grad_clip=1.0, dtype="bf16" if bf16 else "fp32", dist=Dist(), weights=weights)

    return time_steps(step, steps, warmup + (3 if "compile" in mode else 0))


def hf(steps: int, warmup: int) -> float:
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(0)
    cfg = ModelConfig(**SHAPE)
    model = LlamaForCausalLM(LlamaConfig(**cfg.to_hf(), attn_implementation="eager"))
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3, weight_decay=0.1)
    data = batch(0)

    def step() -> None:
        logits = model(input_ids=data["input_ids"]).logits
        loss = F.cross_entropy(logits.float().reshape(-1, logits.size(-1)), data["targets"].reshape(-1))
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        opt.zero_grad(set_to_none=True)

    return time_steps(step, steps, warmup)


DDP_WORKER = textwrap.dedent(
    """
    import sys, time, torch
    import torch.distributed as tdist
    from torch.nn.parallel import DistributedDataParallel as DDP
    sys.path.insert(0, sys.argv[1])
    import train_throughput as tt
    from chatforge.model import GPT, ModelConfig
    from chatforge.optim import OptimConfig, make_optimizer
    from chatforge.train.loop import MasterWeights, init_distributed, lm_loss, train_step
    dist = init_distributed()
    steps, warmup = int(sys.argv[2]), int(sys.argv[3])
    torch.manual_seed(0)
    model = GPT(ModelConfig(**tt.SHAPE))
    weights = MasterWeights(model, bf16=True)
    opt = make_optimizer(model, OptimConfig(lr=1e-3), masters=weights.by_id)
    ddp = DDP(model) if dist.world > 1 else model
    full = tt.batch(0)
    share = tt.ROWS // dist.world
    data = {k: v[dist.rank * share:(dist.rank + 1) * share] for k, v in full.items()}
    step = lambda: train_step(ddp, [data], opt, loss_fn=lm_loss, grad_clip=1.0, dtype="bf16", dist=dist, weights=weights)
    for _ in range(warmup):
        step()
    t0 = time.perf_counter()
    for _ in range(steps):
        step()
    if dist.main:
        print(tt.ROWS * tt.SEQ * steps / (time.perf_counter() - t0))
    if dist.world > 1:
        tdist.destroy_process_group()
    """
)


def ddp(procs: int, steps: int, warmup: int) -> float:
    with tempfile.TemporaryDirectory() as tmp:
        script = Path(tmp) / "worker.py"
        script.write_text(DDP_WORKER)
        env = {**os.environ, "OMP_NUM_THREADS": str(max(1, (os.cpu_count() or 2) // procs))}
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        cmd = [sys.executable, "-m", "torch.distributed.run", f"--nproc_per_node={procs}", "--master_addr=127.0.0.1",
               f"--master_port={port}", str(script), str(Path(__file__).parent), str(steps), str(warmup)]
        out = subprocess.run(cmd, capture_output=True, text=True, env=env, check=True, timeout=1800)
        return float(out.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="fewer steps (a smoke check; numbers are noisier)")
    ap.add_argument("--no-compile", action="store_true", help="skip the torch.compile modes (slow to compile)")
    args = ap.parse_args()
    steps, warmup, secs = (3, 1, 0.5) if args.quick else (10, 3, 2.0)
    torch.set_num_threads(os.cpu_count() or 1)

    peak_bf16, shape_bf16 = matmul_peak(torch.bfloat16, secs)
    peak_fp32, shape_fp32 = matmul_peak(torch.float32, secs)
    print(f"matmul peak: bf16 {peak_bf16:.0f} GFLOP/s ({shape_bf16}), fp32 {peak_fp32:.0f} GFLOP/s ({shape_fp32})")

    ceiling_rate, ceiling_gflops = matmul_ceiling(4 * secs)
    print(
        f"matmul-only step (this shape's GEMMs alone, bf16): {ceiling_rate:.0f} tok/s, {ceiling_gflops:.0f} GFLOP/s "
        f"= {ceiling_gflops / peak_bf16:.2f} of the peak: the highest MFU any code reaches at this shape here"
    )
    fpt = flops_per_token(GPT(ModelConfig(**SHAPE)).cfg)
    modes = ["fp32", "bf16-manual", "bf16-sdpa"] + ([] if args.no_compile else ["bf16-manual-compile"])
    rates: dict[str, float] = {}
    for mode in modes:
        try:
            rates[mode] = ours(mode, steps, warmup)
        except Exception as e:  # torch.compile needs a C++ compiler; report, don't fail the run
            print(f"  ours {mode}: failed ({type(e).__name__}: {str(e).splitlines()[0][:120]})")
            continue
        print(f"  ours {mode:18s} {rates[mode]:8.0f} tok/s   MFU {fpt * rates[mode] / (peak_bf16 * 1e9):.3f}")
    hf_rate = hf(steps, warmup)
    print(f"  HF Llama fp32 eager  {hf_rate:8.0f} tok/s   MFU {fpt * hf_rate / (peak_bf16 * 1e9):.3f}")
    best = max(rates, key=rates.__getitem__)
    mfu = fpt * rates[best] / (peak_bf16 * 1e9)
    print(f"ours best ({best}): {rates[best]:.0f} tok/s, MFU {mfu:.3f} (target 0.70), ours/HF {rates[best] / hf_rate:.2f}x (target 2.5x)")
    print(f"ours best / matmul-only step: {rates[best] / ceiling_rate:.2f} (the share of the step that is matmuls)")

    one = ddp(1, steps, warmup)
    two = ddp(2, steps, warmup)
    print(f"DDP bf16 (auto attention): 1 process x {os.cpu_count()} threads {one:.0f} tok/s, 2 processes {two:.0f} tok/s, ratio {two / one:.2f}")

    RESULTS.parent.mkdir(exist_ok=True)
    RESULTS.write_text(json.dumps({
        "shape": SHAPE, "rows": ROWS, "seq": SEQ, "threads": torch.get_num_threads(), "torch": torch.__version__,
        "peak_gflops": {"bf16": round(peak_bf16, 1), "bf16_shape": shape_bf16, "fp32": round(peak_fp32, 1), "fp32_shape": shape_fp32},
        "flops_per_token": fpt,
        "matmul_only_step": {
            "tokens_per_s": round(ceiling_rate, 1), "gflops": round(ceiling_gflops, 1),
            "mfu_bound": round(ceiling_gflops / peak_bf16, 3),
        },
        "ours_tokens_per_s": {k: round(v, 1) for k, v in rates.items()},
        "hf_fp32_eager_tokens_per_s": round(hf_rate, 1),
        "best_mode": best, "mfu": round(mfu, 3), "ours_over_hf": round(rates[best] / hf_rate, 2),
        "ours_over_matmul_only": round(rates[best] / ceiling_rate, 3),
        "ddp_tokens_per_s": {"1_process": round(one, 1), "2_processes": round(two, 1), "ratio": round(two / one, 2)},
    }, indent=2) + "\n")
    print(f"-> {RESULTS}")


if __name__ == "__main__":
    main()
