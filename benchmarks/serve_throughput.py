"""Serving speed: our engine vs `transformers.generate`, and the server under concurrent load.

    python benchmarks/serve_throughput.py                 # ~5 minutes on 2 cores
    python benchmarks/serve_throughput.py --tokens 128 --duration 20

Issue 7, "Speed to reach". Two models, random weights, saved as model dirs (so
`transformers` loads the very same weights): the quickstart's GPT (1.1M parameters,
vocabulary 2048) and the 14M reference shape (6 layers, width 384, vocabulary 8192).

  (a) single-stream decode tokens/s: `Engine.generate` vs `LlamaForCausalLM.generate`
      (greedy, its KV cache, `--tokens` new tokens, stop tokens ignored on both sides),
      each with the CPU thread count it does best with (1 and 2 tried), interleaved over
      `--rounds` rounds; the figure is the median. Both in float32, and both in bf16 too
      where bf16 decodes faster (`--dtype bfloat16`: the 14M shape on a CPU with native
      bf16); the ratio is our best over theirs, with the ratio per dtype beside it.
  (b) aggregate tokens/s of 16 concurrent streaming clients against `chatforge serve` vs
      1 client (continuous batching should multiply it).
  (c) time to first token, p50 and p99, at 1, 8 and 32 concurrent clients.
  (d) 4x overload (more clients than the batch and the queue hold, for `--duration`
      seconds): the count of each status code (only 200s and 429s are acceptable), and
      whether a request succeeds right after the load stops.

The server runs as a separate process (`chatforge serve`, 127.0.0.1); the clients are
one asyncio process (httpx). Results go to benchmarks/results/serve_throughput.json.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
import torch

from chatforge.atomic import atomic_write_json
from chatforge.checkpoint import load_model_dir, save_model_dir
from chatforge.data import synth
from chatforge.data.steps import row_texts
from chatforge.engine import Engine, Sampling, cpu_threads, generation_dtype
from chatforge.model import GPT, ModelConfig, bf16_supported
from chatforge.tokenizer import Tokenizer, train_tokenizer

RESULTS = Path(__file__).parent / "results" / "serve_throughput.json"
SHAPES = {
    "quickstart-1M": (2048, dict(n_layer=4, n_embd=128, n_head=4, n_kv_head=4, block_size=256)),
    "reference-14M": (8192, dict(n_layer=6, n_embd=384, n_head=6, n_kv_head=6, block_size=256)),
}
PROMPT = [{"role": "user", "content": "Hi, I ordered a tent two weeks ago and it still has not arrived. Where is my order?"}]


def build(root: Path) -> dict[str, Path]:
    """A model dir per shape (random weights, a tokenizer trained on the support world)."""
    w = synth.generate(0, conversations=2000, test_conversations=1, heldout_conversations=1, kb_articles=40, preferences=1)
    texts = [t for r in w.conversations for t in row_texts(r, "conversations")]
    out = {}
    for name, (vocab, shape) in SHAPES.items():
        tok = train_tokenizer(texts, vocab)
        tok.save(root / f"tok-{name}")
        torch.manual_seed(0)
        model = GPT(ModelConfig(vocab_size=tok.vocab_size, **shape))
        out[name] = save_model_dir(root / name, model, tokenizer_dir=root / f"tok-{name}")
    return out


# -- (a) single stream ------------------------------------------------------------------------------


def ours_tokens_per_s(model_dir: Path, tokens: int, threads: int, dtype: str = "auto") -> float:
    engine = Engine.load(model_dir, dtype, threads=threads)
    engine.stop_ids = set()  # generate exactly `tokens`
    prompt = engine.chat_prompt(PROMPT, Sampling(max_tokens=tokens))
    s = Sampling(temperature=0, max_tokens=tokens)
    list(engine.generate(prompt, Sampling(temperature=0, max_tokens=8)))  # warm-up
    t = time.perf_counter()
    n = len(list(engine.generate(prompt, s)))
    return n / (time.perf_counter() - t)


def hf_tokens_per_s(model_dir: Path, tokens: int, threads: int, dtype: str = "float32") -> float:
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(model_dir, torch_dtype=getattr(torch, dtype)).eval()
    tok = Tokenizer.load(model_dir)
    prompt = Engine(load_model_dir(model_dir), tok).chat_prompt(PROMPT, Sampling(max_tokens=tokens))
    ids = torch.tensor([prompt])
    kw = dict(do_sample=False, use_cache=True, eos_token_id=None, pad_token_id=tok.pad_id)
    with cpu_threads(threads), torch.inference_mode():
        model.generate(ids, max_new_tokens=8, min_new_tokens=8, **kw)  # warm-up
        t = time.perf_counter()
        out = model.generate(ids, max_new_tokens=tokens, min_new_tokens=tokens, **kw)
        dt = time.perf_counter() - t
    return (out.shape[1] - ids.shape[1]) / dt


def single_stream(dirs: dict[str, Path], tokens: int, rounds: int) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name, d in dirs.items():
        model = load_model_dir(d)
        auto = generation_dtype("auto", model)
        # float32, and bfloat16 (`--dtype bfloat16`, packed for oneDNN) where it decodes faster
        dtypes = ["float32"] + (["bfloat16"] if bf16_supported(torch.device("cpu")) and model.num_params() >= 3_000_000 else [])
        runs: dict[str, list[float]] = {}
        for _ in range(rounds):
            for threads in (1, 2):
                for dtype in dtypes:
                    runs.setdefault(f"ours-{dtype}-{threads}t", []).append(ours_tokens_per_s(d, tokens, threads, dtype))
                    runs.setdefault(f"hf-{dtype}-{threads}t", []).append(hf_tokens_per_s(d, tokens, threads, dtype))
        med = {k: statistics.median(v) for k, v in runs.items()}
        ours = max(med[k] for k in med if k.startswith("ours"))
        hf = max(med[k] for k in med if k.startswith("hf"))
        per_dtype = {dt: max(med[f"ours-{dt}-{t}t"] for t in (1, 2)) / max(med[f"hf-{dt}-{t}t"] for t in (1, 2)) for dt in dtypes}
        out[name] = {"ratio_per_dtype": per_dtype, "auto_dtype": str(auto).removeprefix("torch."), "tokens_per_s_median": med, "rounds": runs, "ours_best": ours, "hf_best": hf, "ratio": ours / hf}
        print(f"(a) {name}: ours {ours:,.0f} tok/s, transformers.generate {hf:,.0f} tok/s -> {ours / hf:.2f}x (target >= 2.5); per dtype {', '.join(f'{k} {v:.2f}x' for k, v in per_dtype.items())}  {med}")
    return out


# -- (b)-(d) the server under load ----------------------------------------------------------------------


def start_server(model_dir: Path, port: int, max_batch: int, queue: int) -> subprocess.Popen[str]:
    exe = [sys.executable, "-m", "chatforge", "serve", "--model", str(model_dir), "--port", str(port), "--max-batch", str(max_batch), "--queue", str(queue), "--no-safety", "-q", "--store", str(model_dir.parent / "feedback.db")]
    proc = subprocess.Popen(exe, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    for _ in range(600):
        try:
            if httpx.get(f"http://127.0.0.1:{port}/health", timeout=1).status_code == 200:
                return proc
        except httpx.TransportError:
            time.sleep(0.1)
    proc.kill()
    raise SystemExit(f"server did not start: {proc.stderr.read() if proc.stderr else ''}")


async def one_stream(client: httpx.AsyncClient, url: str, max_tokens: int, seed: int) -> tuple[int, float, int]:
    """(status, time to first token, tokens) of one streamed request."""
    body = {"messages": PROMPT, "max_tokens": max_tokens, "temperature": 1.0, "seed": seed, "stream": True, "stream_options": {"include_usage": True}}
    t0 = time.perf_counter()
    ttft, tokens = float("nan"), 0
    async with client.stream("POST", url, json=body) as r:
        if r.status_code != 200:
            await r.aread()
            return r.status_code, ttft, 0
        async for line in r.aiter_lines():
            if not line.startswith("data: ") or line == "data: [DONE]":
                continue
            chunk = json.loads(line[6:])
            if chunk.get("choices") and chunk["choices"][0]["delta"].get("content") and ttft != ttft:
                ttft = time.perf_counter() - t0
            if chunk.get("usage"):
                tokens = chunk["usage"]["completion_tokens"]
    return 200, ttft, tokens


async def load(url: str, clients: int, requests_each: int, max_tokens: int) -> dict[str, Any]:
    """`clients` concurrent clients, each sending `requests_each` streamed requests in turn."""
    results: list[tuple[int, float, int]] = []
    limits = httpx.Limits(max_connections=clients + 4, max_keepalive_connections=clients + 4)
    async with httpx.AsyncClient(timeout=300, limits=limits) as client:

        async def worker(c: int) -> None:
            for i in range(requests_each):
                results.append(await one_stream(client, url, max_tokens, seed=c * 1000 + i))

        t = time.perf_counter()
        await asyncio.gather(*(worker(c) for c in range(clients)))
        dt = time.perf_counter() - t
    ok = [r for r in results if r[0] == 200]
    ttfts = sorted(r[1] for r in ok)
    return {
        "clients": clients,
        "requests": len(results),
        "tokens_per_s": sum(r[2] for r in ok) / dt,
        "ttft_p50": statistics.median(ttfts) if ttfts else None,
        "ttft_p99": ttfts[min(len(ttfts) - 1, int(0.99 * len(ttfts)))] if ttfts else None,
        "codes": {str(c): sum(1 for r in results if r[0] == c) for c in sorted({r[0] for r in results})},
        "seconds": dt,
    }


async def overload(url: str, clients: int, duration: float, max_tokens: int) -> dict[str, Any]:
    codes: dict[str, int] = {}
    deadline = time.perf_counter() + duration
    async with httpx.AsyncClient(timeout=300, limits=httpx.Limits(max_connections=clients + 4)) as client:

        async def worker(c: int) -> None:
            i = 0
            while time.perf_counter() < deadline:
                try:
                    status, _, _ = await one_stream(client, url, max_tokens, seed=c * 1000 + i)
                except httpx.HTTPError as e:
                    status = type(e).__name__  # type: ignore[assignment]
                codes[str(status)] = codes.get(str(status), 0) + 1
                i += 1
                if status == 429:
                    await asyncio.sleep(0.05)

        await asyncio.gather(*(worker(c) for c in range(clients)))
        after = await one_stream(client, url, 8, seed=1)
    return {"clients": clients, "seconds": duration, "codes": codes, "only_200_and_429": set(codes) <= {"200", "429"}, "recovered": after[0] == 200}


def server_load(model_dir: Path, args: argparse.Namespace) -> dict[str, Any]:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    batch, queue = 16, 32
    proc = start_server(model_dir, port, batch, queue)
    url = f"http://127.0.0.1:{port}/v1/chat/completions"
    out: dict[str, Any] = {"max_batch": batch, "queue": queue}
    try:
        asyncio.run(load(url, 2, 1, 8))  # warm-up
        one = asyncio.run(load(url, 1, 4, args.tokens))
        sixteen = asyncio.run(load(url, 16, 2, args.tokens))
        out["throughput"] = {"1_client": one, "16_clients": sixteen, "ratio": sixteen["tokens_per_s"] / one["tokens_per_s"]}
        print(f"(b) 1 client {one['tokens_per_s']:,.0f} tok/s, 16 clients {sixteen['tokens_per_s']:,.0f} tok/s -> {out['throughput']['ratio']:.2f}x (target >= 4)")
        out["ttft"] = {}
        for n in (1, 8, 32):
            r = one if n == 1 else asyncio.run(load(url, n, 1 if n == 32 else 2, args.tokens))
            out["ttft"][str(n)] = {"p50": r["ttft_p50"], "p99": r["ttft_p99"], "codes": r["codes"]}
            print(f"(c) {n:2d} clients: time to first token p50 {r['ttft_p50'] * 1000:.0f} ms, p99 {r['ttft_p99'] * 1000:.0f} ms")
        ov = asyncio.run(overload(url, 4 * (batch + queue), args.duration, args.tokens))
        out["overload"] = ov
        print(f"(d) {ov['clients']} clients for {ov['seconds']:.0f}s: {ov['codes']}; only 200/429: {ov['only_200_and_429']}; recovered: {ov['recovered']}")
    finally:
        proc.terminate()
        proc.wait(timeout=20)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--tokens", type=int, default=64, help="tokens generated per request")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--duration", type=float, default=15.0, help="seconds of overload")
    args = ap.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    results: dict[str, Any] = {"torch": torch.__version__, "cpus": os.cpu_count(), "tokens": args.tokens, "load_at_start": os.getloadavg()[0]}
    with tempfile.TemporaryDirectory(prefix="chatforge-serve-bench-") as tmp:
        dirs = build(Path(tmp))
        results["single_stream"] = single_stream(dirs, args.tokens, args.rounds)
        results["server"] = {name: server_load(d, args) for name, d in dirs.items()}
    results["load_at_end"] = os.getloadavg()[0]
    results["targets"] = {"single_stream_ratio": 2.5, "concurrency_ratio": 4.0}
    atomic_write_json(RESULTS, results)
    print(f"-> {RESULTS}")


if __name__ == "__main__":
    main()
