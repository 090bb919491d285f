"""Generation: token ids in, token ids out, many sequences at once (continuous batching).

    engine = Engine(model, tokenizer)
    for piece in engine.chat(messages, Sampling(temperature=0.7, max_tokens=200, seed=1)):
        print(piece, end="", flush=True)

    seq = engine.submit(prompt_ids, Sampling(...), on_token=..., on_done=...)   # a server's worker
    while engine.step(): ...                                                  # runs every sequence

Every sequence owns a slot of a preallocated KV cache (`SlotKVCache`). A scheduling step
admits waiting sequences into free slots (each prompt runs once, its prefill, filling its
slot) and then runs one decode step for every active sequence together: one batched
forward pass, one new token each. A sequence leaves the batch as soon as it ends, at its
end-of-turn (or end-of-text) token, after `max_tokens`, when the context is full, or when
it is cancelled (a client that went away), and a waiting one takes its slot at the next
step. So many concurrent users share one model, and each step costs about as much as one
user's, since a step's time on a small batch is mostly fixed overhead.

Sampling, per sequence: temperature (0 = greedy), top-k, top-p (nucleus), a repetition
penalty (CTRL's: the logits of tokens already in the prompt or reply are divided by it
when positive, multiplied when negative), a seed (each sequence has its own generator, so
a seeded reply is the same whatever else is in the batch), and optionally the log
probability of each chosen token with the most likely alternatives. Stop sequences are
text, so they are the caller's: it cancels a sequence when its decoded text holds one
(`chat` and the server do). Text streams never hold half of a multi-byte character (the
tokenizer's StreamDecoder). A conversation longer than the model's context keeps its
system messages and its latest turns, as SFT truncates training conversations.

Weights: a model in bf16 on a CPU with oneDNN gets its linear layers prepacked
(`pack_linears`), which makes bf16 decoding faster than float32 from a few million
parameters up: decoding reads every weight once a token, and bf16 halves the bytes.
`serve --dtype bfloat16` / `chat --dtype bfloat16` ask for it (`generation_dtype`).

The engine is not thread-safe except for `submit` and `cancel`: one thread runs `step`
(the server's worker, or the caller of `generate` / `generate_many`).
"""

from __future__ import annotations

import contextlib
import threading
from collections import deque
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from chatforge.model import GPT, SlotKVCache, bf16_supported, can_pack, pack_linears
from chatforge.model_config import check_dtype
from chatforge.tokenizer import Tokenizer, fit_turns


@dataclass
class Sampling:
    """How the next token is picked."""

    temperature: float = 0.7  # 0 = greedy (always the most likely token)
    top_k: int = 0  # keep the k most likely tokens (0 = all)
    top_p: float = 1.0  # keep the smallest set of tokens holding this much probability
    max_tokens: int = 256
    seed: int | None = None  # same seed, same prompt, same model: same reply
    repetition_penalty: float = 1.0  # > 1 makes tokens already seen less likely (1 = off)
    logprobs: int | None = None  # report each token's log probability and this many top alternatives (None = off)
    summary: bool = False  # record each token's log probability and the entropy of its distribution (for the feedback store)


def sample_next(logits: torch.Tensor, s: Sampling, gen: torch.Generator | None) -> int:
    """A token id from one position's logits (vocab,) under `s` (after any repetition penalty)."""
    if s.temperature <= 0:
        return int(logits.argmax())
    scaled = logits.float() / s.temperature
    if not bool(torch.isfinite(scaled).all()):
        # A temperature so small (1e-40) that logits / temperature overflow: the limit is greedy.
        return int(logits.float().nan_to_num(nan=float("-inf")).argmax())
    if 0 < s.top_k < scaled.numel():
        kth = torch.topk(scaled, s.top_k).values[-1]
        scaled = scaled.masked_fill(scaled < kth, float("-inf"))
    probs = torch.softmax(scaled, dim=-1)
    if s.top_p < 1.0:
        sorted_p, order = probs.sort(descending=True)
        # drop a token when the tokens before it already hold top_p (the first always stays)
        drop = (sorted_p.cumsum(0) - sorted_p) >= s.top_p
        drop[0] = False  # (a top_p below float32's smallest number compares as 0)
        sorted_p[drop] = 0
        probs = torch.zeros_like(probs).scatter_(0, order, sorted_p)
    if not float(probs.sum()) > 0:  # nothing left to sample from (every logit -inf): the limit is greedy
        return int(logits.float().nan_to_num(nan=float("-inf")).argmax())
    return int(torch.multinomial(probs, 1, generator=gen))


def penalize(logits: torch.Tensor, seen: torch.Tensor, penalty: float) -> torch.Tensor:
    """CTRL's repetition penalty (Keskar et al. 2019) on the ids in `seen`."""
    if penalty == 1.0 or not len(seen):
        return logits
    logits = logits.clone()
    picked = logits[seen]
    logits[seen] = torch.where(picked > 0, picked / penalty, picked * penalty)
    return logits


@dataclass
class Token:
    """One generated token: its id, and (when asked for) its log probability and the top alternatives."""

    id: int
    logprob: float | None = None
    top: list[tuple[int, float]] | None = None
    entropy: float | None = None  # of the distribution it was drawn from (nats), with Sampling.summary


@dataclass
class Seq:
    """A sequence being generated: its prompt, sampling, what came out, and why it ended."""

    prompt: list[int]
    sampling: Sampling
    budget: int  # tokens it may generate
    on_token: Callable[[Seq, Token], None] | None = None
    on_done: Callable[[Seq], None] | None = None
    tokens: list[Token] = field(default_factory=list)
    finish_reason: str | None = None  # "stop" (end-of-turn token), "length", "cancelled"
    cancelled: bool = False
    slot: int = -1
    generator: torch.Generator | None = None
    seen: torch.Tensor | None = None  # ids for the repetition penalty (prompt + reply)

    @property
    def done(self) -> bool:
        return self.finish_reason is not None

    @property
    def ids(self) -> list[int]:
        return [t.id for t in self.tokens]


# Below this many parameters a decode step is a few dozen tiny kernels: a second CPU
# thread only adds synchronization, and when other processes keep the cores busy torch's
# threads wait on each other (the quickstart model: 3.6 ms a token on one thread, 42 ms
# on two with the machine loaded).
SMALL_MODEL = 30_000_000


# From about this size, a decode step on the CPU is bound by reading the weights, and bf16
# weights in oneDNN's packed layout decode faster than float32 (one stream, this 2-core
# machine: 4M parameters 357 vs 291 tokens/s, 14M 237 vs 149, SmolLM2-135M 31 vs 18).
# Below, a step is a few dozen tiny kernels, and bf16's are slower (the 1.1M quickstart
# model: 493 vs 768 tokens/s). But bf16 changes greedy replies: SmolLM2's first token for
# "What is the capital of France?" is a near tie that bf16 rounding flips, and the reply
# derails. So "auto" keeps float32 on CPUs; `--dtype bfloat16` asks for the speed.


def generation_dtype(choice: str, model: GPT) -> torch.dtype:
    """The weights' dtype to generate with: "float32", "bfloat16", or "auto": bfloat16 on a
    GPU with bf16, else float32 (on a CPU bf16 is faster for models of a few million
    parameters and up, but it is asked for, not assumed: its rounding changes replies)."""
    check_dtype(choice)
    if choice != "auto":
        return torch.bfloat16 if choice == "bfloat16" else torch.float32
    device = next(model.parameters()).device
    return torch.bfloat16 if device.type != "cpu" and bf16_supported(device) else torch.float32


@contextlib.contextmanager
def cpu_threads(n: int | None) -> Iterator[None]:
    """Run the block with torch using `n` CPU threads (None: leave as is)."""
    if n is None or n == torch.get_num_threads():
        yield
        return
    before = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(before)


class Engine:
    """Generates from a model and its tokenizer, up to `max_batch` sequences at once.

    A bf16 model on a CPU has its linear layers packed in place (`pack_linears`): from then
    on it serves inference only."""

    def __init__(self, model: GPT, tokenizer: Tokenizer, *, max_batch: int = 16, threads: int | None = None) -> None:
        self.model = model.eval()
        if can_pack(model):
            pack_linears(model)  # bf16 on a CPU: oneDNN's prepacked weights (see the module docstring)
        self.tok = tokenizer
        self.device = next(model.parameters()).device
        self.dtype = next(model.parameters()).dtype
        self.stop_ids = {tokenizer.end_id, tokenizer.eos_id}
        self.vocab = min(tokenizer.vocab_size, model.cfg.vocab_size)
        self.max_batch = max_batch
        # CPU threads while generating: one for small models (see SMALL_MODEL), else torch's choice
        small = self.device.type == "cpu" and model.num_params() < SMALL_MODEL
        self.threads = threads if threads is not None else (1 if small else None)
        self._cache: SlotKVCache | None = None
        self._active: list[Seq] = []  # in slot order: _active[i].slot == i
        self._waiting: deque[Seq] = deque()
        self._lock = threading.Lock()

    # -- the queue (thread-safe) -------------------------------------------------------------

    @classmethod
    def load(cls, path: str | Path, dtype: str = "auto", **kwargs: Any) -> Engine:
        """An engine over model dir `path` (weights and tokenizer), its weights in
        `generation_dtype(dtype, model)`; `kwargs` go to the constructor."""
        from chatforge.checkpoint import load_model_dir

        model = load_model_dir(path)
        return cls(model.to(generation_dtype(dtype, model)), Tokenizer.load(path), **kwargs)

    def submit(
        self,
        prompt: Sequence[int],
        s: Sampling,
        *,
        on_token: Callable[[Seq, Token], None] | None = None,
        on_done: Callable[[Seq], None] | None = None,
    ) -> Seq:
        """Queue a sequence; `step` admits it when a slot is free. Callbacks run in the stepping thread."""
        block = self.model.cfg.block_size
        if not 0 < len(prompt) < block:
            raise ValueError(f"prompt of {len(prompt)} tokens: must be 1 to {block - 1} (the model's block size is {block})")
        seq = Seq(list(prompt), s, min(s.max_tokens, block - len(prompt)), on_token, on_done)
        if s.seed is not None:
            seq.generator = torch.Generator(device=self.device).manual_seed(s.seed)
        if s.repetition_penalty != 1.0:
            seq.seen = torch.tensor(sorted(set(prompt)), dtype=torch.long, device=self.device)
        with self._lock:
            self._waiting.append(seq)
        return seq

    def cancel(self, seq: Seq) -> None:
        """Stop a sequence at the next step (its slot is freed for another)."""
        seq.cancelled = True

    @property
    def waiting(self) -> int:
        return len(self._waiting)

    @property
    def active(self) -> int:
        return len(self._active)

    # -- scheduling ------------------------------------------------------------------------------
    def step(self) -> bool:
        """Admit waiting sequences into free slots, then one decode step for the others; False if idle."""
        with cpu_threads(self.threads), torch.inference_mode():
            self._drop_cancelled()
            running = len(self._active)  # slots 0 .. running-1; newcomers take the next ones
            self._admit()  # each newcomer's prefill gives its first token
            if running:
                self._decode(running)
            self._compact()
            return bool(self._active or self._waiting)

    def _slots(self) -> SlotKVCache:
        if self._cache is None:
            cfg = self.model.cfg
            self._cache = SlotKVCache(cfg, self.max_batch, cfg.block_size, self.dtype, self.device)
        return self._cache

    def _admit(self) -> None:
        cache = self._slots()
        while len(self._active) < self.max_batch:
            with self._lock:
                if not self._waiting:
                    break
                seq = self._waiting.popleft()
            if seq.cancelled:
                self._finish(seq, "cancelled")
                continue
            seq.slot = len(self._active)
            self._active.append(seq)  # before its prefill: a prefill that raises still leaves it where fail_all sees it
            cache.reset(seq.slot)
            cache.select(seq.slot, seq.slot + 1)
            logits = self.model(torch.tensor([seq.prompt], device=self.device), cache=cache)[0, -1]
            self._emit(seq, logits)

    def _decode(self, n: int) -> None:
        """One new token for each of the first `n` active sequences, in one forward pass."""
        rows = self._active[:n]
        cache = self._slots()
        cache.select(0, n)
        last = torch.tensor([[seq.tokens[-1].id] for seq in rows], device=self.device)
        logits = self.model(last, cache=cache)[:, -1]  # (n, vocab)
        for i, seq in enumerate(rows):
            if not seq.done:
                self._emit(seq, logits[i])

    def _emit(self, seq: Seq, logits: torch.Tensor) -> None:
        """Pick the next token of `seq` from its logits and hand it out (or end the sequence)."""
        s = seq.sampling
        logits = logits[: self.vocab]  # a model's padded vocabulary rows are never sampled
        if seq.seen is not None:
            logits = penalize(logits, seq.seen, s.repetition_penalty)
        token = sample_next(logits, s, seq.generator)
        if token in self.stop_ids:
            self._finish(seq, "stop")
            return
        out = Token(token)
        if s.logprobs is not None or s.summary:
            logp = torch.log_softmax(logits.float(), dim=-1)
            out.logprob = float(logp[token])
            if s.summary:
                out.entropy = float(-(logp.exp() * logp).nan_to_num().sum())
            if s.logprobs:
                values, ids = logp.topk(min(s.logprobs, logp.numel()))
                out.top = list(zip(ids.tolist(), values.tolist(), strict=True))
        seq.tokens.append(out)
        if seq.seen is not None and token not in set(seq.seen.tolist()):
            seq.seen = torch.cat([seq.seen, torch.tensor([token], device=self.device)])
        if seq.on_token is not None:
            seq.on_token(seq, out)
        if len(seq.tokens) >= seq.budget:
            self._finish(seq, "length")

    def fail_all(self, reason: str = "error") -> int:
        """End every active and waiting sequence with `reason` (after a failed step: their
        requests get an error instead of waiting forever); how many were ended."""
        with self._lock:
            waiting, self._waiting = list(self._waiting), deque()
        ended = [*self._active, *waiting]
        self._active = []
        for seq in ended:
            self._finish(seq, reason)
        return len(ended)

    def _finish(self, seq: Seq, reason: str) -> None:
        if seq.finish_reason is None:
            seq.finish_reason = reason
            if seq.on_done is not None:
                seq.on_done(seq)

    def _drop_cancelled(self) -> None:
        for seq in self._active:
            if seq.cancelled:
                self._finish(seq, "cancelled")
        self._compact()

    def _compact(self) -> None:
        """Remove ended sequences; the ones after them move down into the freed slots."""
        if all(not seq.done for seq in self._active):
            return
        cache = self._slots()
        kept = [seq for seq in self._active if not seq.done]
        for new_slot, seq in enumerate(kept):
            if seq.slot != new_slot:
                cache.move(seq.slot, new_slot)
                seq.slot = new_slot
        self._active = kept

    # -- convenience: generation in the calling thread --------------------------------------------
    def generate(self, prompt: Sequence[int], s: Sampling) -> Iterator[int]:
        """Sampled token ids after `prompt`, up to (not including) a stop token; runs the
        engine in the calling thread (not while another thread steps it)."""
        got: deque[int] = deque()
        seq = self.submit(prompt, s, on_token=lambda _, t: got.append(t.id))
        try:
            while not seq.done:
                self.step()
                while got:
                    yield got.popleft()
            while got:
                yield got.popleft()
        finally:
            if not seq.done:  # the consumer stopped early
                self.cancel(seq)
                while self.step():
                    pass

    def generate_many(self, prompts: Sequence[Sequence[int]], samplings: Sequence[Sampling]) -> list[Seq]:
        """Generate for many prompts at once (continuous batching in the calling thread); in order."""
        seqs = [self.submit(p, s) for p, s in zip(prompts, samplings, strict=True)]
        while self.step():
            pass
        return seqs

    def prompt_ids(self, messages: Sequence[Mapping[str, Any]], room: int) -> list[int]:
        """The conversation rendered for the assistant's next turn, leaving `room` tokens for
        the reply: the system messages and as many of the latest turns as fit."""
        contents = self.tok.encode_batch([m["content"] for m in messages])
        limit = self.model.cfg.block_size - max(1, room) - 1  # - the <|assistant|> token
        keep = fit_turns(messages, contents, limit, need_reply=False, overhead=self.tok.turn_overhead)
        if keep is None:
            raise ValueError(f"the last message does not fit in the model's context ({self.model.cfg.block_size} tokens)")
        ids, _ = self.tok.render_encoded([contents[i] for i in keep], [messages[i] for i in keep], add_generation_prompt=True)
        return ids

    def chat_prompt(self, messages: Sequence[Mapping[str, Any]], s: Sampling) -> list[int]:
        """`prompt_ids` with room for a reply of `s.max_tokens` (at most half the context:
        a long chat keeps more of its history rather than reserving the whole reply)."""
        return self.prompt_ids(messages, min(s.max_tokens, self.model.cfg.block_size // 2))

    def chat(self, messages: Sequence[Mapping[str, Any]], s: Sampling, stop: Sequence[str] = ()) -> Iterator[str]:
        """The assistant's reply to `messages`, as text pieces while it is generated; it ends
        early (without the stop text) when the reply reaches one of the `stop` strings."""
        dec = self.tok.stream_decoder(skip_special=True)
        held = ""  # text that may be the start of a stop string, not shown yet
        for token in self.generate(self.chat_prompt(messages, s), s):
            held += dec.push(token)
            if stop:
                cut = min((i for i in (held.find(x) for x in stop) if i >= 0), default=-1)
                if cut >= 0:
                    if held[:cut]:
                        yield held[:cut]
                    return
                keep = max((len(x) - 1 for x in stop), default=0)
                if len(held) > keep:
                    yield held[: len(held) - keep]
                    held = held[len(held) - keep :]
            elif held:
                yield held
                held = ""
        held += dec.flush()
        if stop:
            cut = min((i for i in (held.find(x) for x in stop) if i >= 0), default=-1)
            held = held[:cut] if cut >= 0 else held
        if held:
            yield held
