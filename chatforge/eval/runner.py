"""`chatforge eval`: how good is a model? Metrics on a test split, safety and bias probes.

    chatforge eval --model runs/sft/model --data data/splits/test
    chatforge eval --model M --data T --metrics perplexity generation --out eval.json
    chatforge eval --model M --metrics safety bias          # probes only, no test data

Metrics (`--metrics`, default all):

    perplexity   teacher-forced loss of the assistant turns (masked as in training: the
                 replies and their end-of-turn tokens): perplexity and bits per byte
    generation   the model answers each test conversation's last user turn; its reply
                 against the reference: BLEU (sacrebleu), ROUGE-1/2/L (rouge-score),
                 token F1 and exact match (SQuAD normalization)
    task         for rows that carry `meta.required_facts` (the support world): the share
                 of replies stating every required fact and no fact of another topic, per
                 intent, and the decline / false-decline rates (eval/support.py)
    safety       built-in harmful, out-of-scope and prompt-injection requests: the share
                 declined; ordinary requests: the share wrongly declined (eval/probes.py)
    bias         minimal pairs scored by log-likelihood (share preferring the stereotype,
                 ideal 0.5) and the same questions asked by people of different groups
                 (the gap in reply quality between groups), per category

Generation is greedy unless `--temperature` is set (then seeded per item), so results
repeat. Latency and throughput of the generation are reported too. The results go to a
JSON file (default: `eval.json` in the model's run dir) with the model dir's hash and
the dataset's content hash, so every figure names what it was measured on; `chatforge
report` turns run dirs with their eval.json into a report card.
"""

from __future__ import annotations

import math
import statistics
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from chatforge import tracking
from chatforge.atomic import atomic_write_json
from chatforge.checkpoint import load_model_dir, model_dir_hash
from chatforge.config import to_dict
from chatforge.data.dataset import open_dataset
from chatforge.engine import Engine, Sampling
from chatforge.errors import UserError
from chatforge.eval import metrics as M
from chatforge.eval import probes
from chatforge.eval.config import METRICS, NEEDS_DATA, EvalConfig
from chatforge.eval.support import score_reply, summarize
from chatforge.tokenizer import Tokenizer
from chatforge.ui import QUIET, UI

# -- loading ---------------------------------------------------------------------------------


def load(model_dir: str | Path) -> Engine:
    """The model and tokenizer of a model dir, ready to generate."""
    model = load_model_dir(model_dir)
    return Engine(model, Tokenizer.load(model_dir))


def test_rows(path: str, limit: int) -> list[dict[str, Any]]:
    """The test conversations that end with an assistant turn (the reference)."""
    ds = open_dataset(path)
    if ds.kind != "conversations":
        raise UserError(f"{path}: holds {ds.kind}, not conversations; eval needs conversations whose last turn is the reference answer")
    rows = []
    for row in ds:
        msgs = row["messages"]
        if msgs and msgs[-1]["role"] == "assistant" and any(m["role"] == "user" for m in msgs):
            rows.append(row)
            if limit and len(rows) >= limit:
                break
    if not rows:
        raise UserError(f"{path}: no conversation ends with an assistant reply to use as the reference")
    return rows


# -- perplexity --------------------------------------------------------------------------------


@torch.inference_mode()
def lm_scores(engine: Engine, rows: Sequence[dict[str, Any]], batch_size: int, advance: Callable[..., None]) -> dict[str, Any]:
    """Teacher-forced negative log-likelihood of the assistant turns (and their end-of-turn
    tokens), as in training: perplexity per token and bits per byte of the reply text."""
    model, tok = engine.model, engine.tok
    block = model.cfg.block_size
    items: list[tuple[list[int], list[int]]] = []
    skipped = 0
    for row in rows:
        ids, mask = tok.render(row["messages"])
        if len(ids) > block + 1:  # keep the latest tokens: the replies that end the conversation
            ids, mask = ids[-(block + 1) :], mask[-(block + 1) :]
        if sum(mask[1:]) == 0:
            skipped += 1
            continue
        items.append((ids, mask))
    # Bytes each token stands for (special tokens: none), to turn nats into bits per byte.
    n_bytes_of = np.array([len(tok.decode_bytes([i], skip_special=True)) for i in range(tok.vocab_size)], dtype=np.int64)
    nats, tokens, n_bytes = 0.0, 0, 0
    order = sorted(range(len(items)), key=lambda i: len(items[i][0]))  # similar lengths together: little padding
    for start in range(0, len(order), batch_size):
        chunk = [items[i] for i in order[start : start + batch_size]]
        width = max(len(ids) for ids, _ in chunk)
        inp = torch.full((len(chunk), width - 1), tok.pad_id, dtype=torch.long)
        tgt = torch.full((len(chunk), width - 1), -100, dtype=torch.long)
        for r, (ids, mask) in enumerate(chunk):
            t = torch.tensor(ids)
            m = torch.tensor(mask[1:], dtype=torch.bool)
            inp[r, : len(ids) - 1] = t[:-1]
            tgt[r, : len(ids) - 1] = torch.where(m, t[1:], -100)
        # Right padding needs no mask: causal attention never lets a position see later pads.
        logits = model(inp.to(engine.device))
        loss = F.cross_entropy(logits.float().flatten(0, 1), tgt.flatten().to(engine.device), ignore_index=-100, reduction="sum")
        nats += float(loss)
        kept = tgt[tgt != -100].numpy()
        tokens += len(kept)
        n_bytes += int(n_bytes_of[kept].sum())
        advance(len(chunk))
    return {
        "conversations": len(items),
        "skipped": skipped,
        "tokens": tokens,
        "loss": nats / tokens if tokens else float("nan"),
        "perplexity": M.perplexity(nats, tokens),
        "bits_per_byte": M.bits_per_byte(nats, n_bytes),
    }


# -- generation ------------------------------------------------------------------------------


@dataclass
class Reply:
    text: str
    tokens: int
    stopped: bool  # ended at the end-of-turn token (not cut by max_tokens or the context)
    first_token_s: float  # time to the first token (prefill)
    seconds: float
    fits: bool = True  # False: the last message did not fit the model's context (no reply; counted as a failure)


def replies(engine: Engine, prompts: Sequence[Sequence[dict[str, Any]]], samplings: Sequence[Sampling], advance: Callable[..., None] = lambda n=1: None) -> list[Reply]:
    """The model's answers to conversations (each ending with a user turn), generated together
    (the engine's continuous batching), each timed from the start to its first and last token."""
    t0 = time.perf_counter()
    first: dict[int, float] = {}
    end: dict[int, float] = {}

    def on_token(seq: Any, _: Any) -> None:
        first.setdefault(id(seq), time.perf_counter() - t0)

    def on_done(seq: Any) -> None:
        end[id(seq)] = time.perf_counter() - t0
        advance(1)

    seqs: list[Any] = []
    for messages, s in zip(prompts, samplings, strict=True):
        try:
            ids = engine.chat_prompt(messages, s)
        except ValueError:  # the last message alone is longer than the context allows
            seqs.append(None)
            advance(1)
            continue
        seqs.append(engine.submit(ids, s, on_token=on_token, on_done=on_done))
    while engine.step():
        pass
    out = []
    for seq in seqs:
        if seq is None:
            out.append(Reply("", 0, False, 0.0, 0.0, fits=False))
            continue
        done = end.get(id(seq), time.perf_counter() - t0)
        text = engine.tok.decode(seq.ids, skip_special=True).strip()
        out.append(Reply(text, len(seq.tokens), seq.finish_reason == "stop", first.get(id(seq), done), done))
    return out


def reply(engine: Engine, messages: Sequence[dict[str, Any]], s: Sampling) -> Reply:
    """The model's answer to one conversation."""
    return replies(engine, [messages], [s])[0]


def _sampling(cfg: EvalConfig, i: int) -> Sampling:
    return Sampling(temperature=cfg.temperature, top_p=cfg.top_p, max_tokens=cfg.max_tokens, seed=cfg.seed + i if cfg.temperature > 0 else None)


def generate_all(engine: Engine, prompts: Sequence[Sequence[dict[str, Any]]], cfg: EvalConfig, advance: Callable[..., None], offset: int = 0) -> list[Reply]:
    return replies(engine, prompts, [_sampling(cfg, offset + i) for i in range(len(prompts))], advance)


def speed(out: Sequence[Reply], seconds: float) -> dict[str, Any]:
    """Throughput and latency of generations run together for `seconds` (the engine's batches:
    a reply's latency includes waiting for a slot)."""
    too_long = sum(not r.fits for r in out)
    out = [r for r in out if r.fits]
    if not out:
        return {"too_long": too_long}
    secs = sorted(r.seconds for r in out)
    total_tokens = sum(r.tokens for r in out)
    return {
        "replies": len(out),
        "tokens": total_tokens,
        "tokens_per_s": total_tokens / max(seconds, 1e-9),
        "latency_s_p50": statistics.median(secs),
        "latency_s_p95": secs[min(len(secs) - 1, math.ceil(0.95 * len(secs)) - 1)],
        "time_to_first_token_s_mean": statistics.fmean(r.first_token_s for r in out),
        "stop_rate": sum(r.stopped for r in out) / len(out),
        "too_long": too_long,
    }


def generation_metrics(replies: Sequence[Reply], refs: Sequence[str]) -> dict[str, Any]:
    hyps = [r.text for r in replies]
    return {
        "replies": len(hyps),
        "bleu": M.corpus_bleu(hyps, refs),
        **M.rouge(hyps, refs),
        "f1": statistics.fmean(M.token_f1(h, r) for h, r in zip(hyps, refs, strict=True)),
        "exact_match": statistics.fmean(M.exact_match(h, r) for h, r in zip(hyps, refs, strict=True)),
    }


# -- probes ------------------------------------------------------------------------------------


def _ask(system: str, question: str) -> list[dict[str, str]]:
    return ([{"role": "system", "content": system}] if system else []) + [{"role": "user", "content": question}]


def safety_probes(engine: Engine, cfg: EvalConfig, system: str, advance: Callable[..., None]) -> tuple[dict[str, Any], list[Reply]]:
    """Decline rates on the built-in harmful / out-of-scope / injection requests; false declines on ordinary ones."""
    asked = [(category, q) for category, questions in probes.SAFETY.items() for q in questions]
    got = generate_all(engine, [_ask(system, q) for _, q in asked], cfg, advance)  # all at once: one batch stream
    result: dict[str, Any] = {"per_category": {}, "examples": {}}
    for category in probes.SAFETY:
        mine = [(q, r) for (c, q), r in zip(asked, got, strict=True) if c == category]
        declined = [probes.is_refusal(r.text) for _, r in mine]
        result["per_category"][category] = sum(declined) / len(declined)
        result["examples"][category] = [{"prompt": q, "reply": r.text, "declined": d} for (q, r), d in list(zip(mine, declined, strict=True))[:3]]
    per = result["per_category"]
    result["decline_rate"] = statistics.fmean(per[c] for c in probes.DECLINE_CATEGORIES)
    result["false_decline_rate"] = per["normal"]
    return result, got


def sentence_logprob(engine: Engine, text: str) -> float:
    """log p(text) under the model: the sum over its tokens, read as a document after <|bos|>."""
    ids = [engine.tok.bos_id, *engine.tok.encode(text)]
    x = torch.tensor([ids], device=engine.device)
    with torch.inference_mode():
        logp = F.log_softmax(engine.model(x[:, :-1]).float(), dim=-1)[0]
    return float(logp.gather(1, x[0, 1:, None])[:, 0].sum())


def pair_preference(engine: Engine, stereo: str, anti: str) -> float:
    """log p(stereotyped sentence) - log p(the other): > 0 when the model prefers the stereotype.

    Whole-sentence log-likelihoods, as lm-evaluation-harness scores CrowS-Pairs for causal
    models (the masked-LM original scores the shared words given the differing ones, which a
    left-to-right model cannot do for words before the group term).
    """
    return sentence_logprob(engine, stereo) - sentence_logprob(engine, anti)


def bias_pairs(engine: Engine, advance: Callable[..., None]) -> dict[str, Any]:
    """Per category, the share of minimal pairs where the model prefers the stereotyped sentence (ideal 0.5)."""
    per: dict[str, Any] = {}
    for category, pairs in probes.BIAS_PAIRS.items():
        prefs = []
        for stereo, anti in pairs:
            prefs.append(pair_preference(engine, stereo, anti))
            advance(1)
        per[category] = {"stereotype_preferred": sum(p > 0 for p in prefs) / len(prefs), "pairs": len(prefs), "mean_logprob_gap": statistics.fmean(prefs)}
    overall = statistics.fmean(v["stereotype_preferred"] for v in per.values())
    return {"per_category": per, "stereotype_preferred": overall}


def _quality(reply_text: str, row: dict[str, Any]) -> float:
    """How good a reply is: task success when the row carries required facts, else token F1 with the reference."""
    meta = row.get("meta") or {}
    if meta.get("required_facts") or meta.get("forbidden_facts"):
        return float(score_reply(reply_text, meta)["ok"])
    return M.token_f1(reply_text, row["messages"][-1]["content"])


def bias_generation(engine: Engine, rows: Sequence[dict[str, Any]], cfg: EvalConfig, advance: Callable[..., None]) -> dict[str, Any]:
    """The same test questions asked by people of different groups: reply quality per group and
    the largest gap between groups, per category (ideal gap 0)."""
    base = [r for r in rows if (r.get("meta") or {}).get("intent") not in ("out_of_scope",)][: cfg.bias_questions]
    asked: list[tuple[str, str, int]] = []  # (category, who, base row)
    prompts = []
    for category, groups in probes.GROUPS.items():
        for who in groups:
            for i, row in enumerate(base):
                msgs = [dict(m) for m in row["messages"][:-1]]
                msgs[-1]["content"] = probes.with_group(msgs[-1]["content"], who)
                asked.append((category, who, i))
                prompts.append(msgs)
    got = generate_all(engine, prompts, cfg, advance)
    per: dict[str, Any] = {}
    for category, groups in probes.GROUPS.items():
        scores = {
            who: statistics.fmean(_quality(r.text, base[i]) for (c, w, i), r in zip(asked, got, strict=True) if c == category and w == who) if base else float("nan")
            for who in groups
        }
        per[category] = {"quality_by_group": scores, "max_gap": max(scores.values()) - min(scores.values()) if base else 0.0}
    return {"questions": len(base), "per_category": per, "max_gap": max((v["max_gap"] for v in per.values()), default=0.0)}


# -- the command ---------------------------------------------------------------------------------


def default_out(model_dir: Path) -> Path:
    """eval.json in the run dir a model dir lives in (RUN/model), else in the current dir."""
    parent = model_dir.resolve().parent
    if (parent / "config.json").is_file() and (parent / "metrics.jsonl").is_file():
        return parent / "eval.json"
    return Path("eval.json")


def main(cfg: EvalConfig, ui: UI = QUIET) -> dict[str, Any]:
    """Run `chatforge eval`; returns the results (also written to --out)."""
    wanted = [m for m in METRICS if m in cfg.metrics]
    needs_data = [m for m in wanted if m in NEEDS_DATA]
    if needs_data and not cfg.data:
        raise UserError(f"--data: {', '.join(needs_data)} need a test dataset; give --data DIR or --metrics safety bias")
    model_dir = Path(cfg.model)
    engine = load(model_dir)
    torch.manual_seed(cfg.seed)
    rows = test_rows(cfg.data, cfg.limit) if cfg.data else []
    data_info: dict[str, Any] = {}
    if cfg.data:
        ds = open_dataset(cfg.data)
        data_info = {"path": cfg.data, "content_hash": ds.content_hash, "rows": len(rows)}
    has_facts = any((r.get("meta") or {}).get("required_facts") for r in rows)
    if "task" in wanted and not has_facts:
        ui.warn(f"{cfg.data}: no row carries meta.required_facts; task success is skipped")
        wanted.remove("task")
    system = cfg.system or next((m["content"] for r in rows for m in r["messages"] if m["role"] == "system"), "")
    results: dict[str, Any] = {
        "model": {"path": str(model_dir), "hash": model_dir_hash(model_dir), "parameters": engine.model.num_params()},
        "data": data_info,
        "config": to_dict(cfg),
        "created_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }
    generate = "generation" in wanted or "task" in wanted
    total = (
        len(rows) * ("perplexity" in wanted)
        + len(rows) * generate
        + sum(map(len, probes.SAFETY.values())) * ("safety" in wanted)
        + ("bias" in wanted) * (sum(map(len, probes.BIAS_PAIRS.values())) + min(cfg.bias_questions, len(rows)) * sum(map(len, probes.GROUPS.values())))
    )
    t0 = time.perf_counter()
    timed: tuple[list[Reply], float] | None = None  # the generation the speed figures describe
    with ui.progress("eval", total=total, unit="items") as advance:
        if "perplexity" in wanted:
            results["perplexity"] = lm_scores(engine, rows, cfg.batch_size, advance)
        if generate:
            t = time.perf_counter()
            got = generate_all(engine, [r["messages"][:-1] for r in rows], cfg, advance)
            timed = (got, time.perf_counter() - t)
            refs = [r["messages"][-1]["content"] for r in rows]
            if "generation" in wanted:
                results["generation"] = generation_metrics(got, refs)
            if "task" in wanted:
                scored = [
                    {"id": r["id"], "intent": (r.get("meta") or {}).get("intent", "?"), "stopped": g.stopped, **score_reply(g.text, r.get("meta") or {})}
                    for r, g in zip(rows, got, strict=True)
                ]
                results["task"] = summarize(scored)
                results["task"]["failures"] = [{**s, "reply": g.text} for s, g in zip(scored, got, strict=True) if not s["ok"]][:10]
            results["samples"] = [
                {"id": r["id"], "prompt": r["messages"][-2]["content"], "reference": ref, "reply": g.text}
                for r, ref, g in list(zip(rows, refs, got, strict=True))[: cfg.samples]
            ]
        if "safety" in wanted:
            t = time.perf_counter()
            results["safety"], got = safety_probes(engine, cfg, system, advance)
            timed = timed or (got, time.perf_counter() - t)
        if "bias" in wanted:
            results["bias"] = {"pairs": bias_pairs(engine, advance)}
            if rows and cfg.bias_questions:
                results["bias"]["generation"] = bias_generation(engine, rows, cfg, advance)
    results["speed"] = {**(speed(*timed) if timed else {}), "batch": engine.max_batch, "seconds": round(time.perf_counter() - t0, 2)}
    out = Path(cfg.out) if cfg.out else default_out(model_dir)
    atomic_write_json(out, results)
    tracking.log_results(f"eval:{model_dir.resolve().parent.name if model_dir.name == 'model' else model_dir.name}", results, (out,))
    print_results(results, ui)
    ui.note(f"results -> {out}")
    return results


def headline(results: dict[str, Any]) -> Iterator[tuple[str, str]]:
    """The main figures of an eval, as (name, formatted value) pairs (terminal and report)."""
    ppl = results.get("perplexity")
    if ppl:
        yield "perplexity", f"{ppl['perplexity']:.3f}"
        yield "bits per byte", f"{ppl['bits_per_byte']:.3f}"
    gen = results.get("generation")
    if gen:
        yield "BLEU", f"{gen['bleu']:.1f}"
        yield "ROUGE-1 / 2 / L", f"{gen['rouge1']:.3f} / {gen['rouge2']:.3f} / {gen['rougeL']:.3f}"
        yield "token F1", f"{gen['f1']:.3f}"
        yield "exact match", f"{gen['exact_match']:.3f}"
    task = results.get("task")
    if task:
        yield "task success", f"{task['success']:.3f}"
        if task.get("decline_rate") is not None:
            yield "declines (out of scope)", f"{task['decline_rate']:.3f}"
    saf = results.get("safety")
    if saf:
        yield "safety: declined", f"{saf['decline_rate']:.3f} (" + ", ".join(f"{k} {v:.2f}" for k, v in saf["per_category"].items() if k != "normal") + ")"
        yield "safety: false declines", f"{saf['false_decline_rate']:.3f}"
    bias = results.get("bias")
    if bias:
        pairs = bias["pairs"]
        yield "bias: stereotype preferred", f"{pairs['stereotype_preferred']:.3f} (ideal 0.5; " + ", ".join(f"{k} {v['stereotype_preferred']:.2f}" for k, v in pairs["per_category"].items()) + ")"
        if "generation" in bias:
            yield "bias: largest quality gap", f"{bias['generation']['max_gap']:.3f} (ideal 0)"
    sp = results.get("speed")
    if sp and sp.get("replies"):
        yield "stop rate", f"{sp['stop_rate']:.3f}"
        yield "generation", f"{sp['tokens_per_s']:.0f} tokens/s, p50 latency {sp['latency_s_p50']:.2f}s, first token {sp['time_to_first_token_s_mean'] * 1000:.0f} ms"


def print_results(results: dict[str, Any], ui: UI) -> None:
    if ui.quiet:
        return
    from rich.table import Table

    t = Table(title=f"eval of {results['model']['path']}", title_justify="left")
    t.add_column("metric")
    t.add_column("value")
    for name, value in headline(results):
        t.add_row(name, value)
    ui.out.print(t)
