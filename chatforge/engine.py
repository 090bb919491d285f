"""Generation: token ids in, token ids out, with a preallocated KV cache.

    engine = Engine(model, tokenizer)
    for piece in engine.chat(messages, Sampling(temperature=0.7, max_tokens=200, seed=1)):
        print(piece, end="", flush=True)

One sequence at a time: the prompt is run once (prefill) filling the cache, then each
new token costs one position (decode). Sampling: temperature (0 = greedy), top-k, top-p
(nucleus), a seed for reproducible samples; generation stops at the end-of-turn token
(or end of text), after `max_tokens`, or when the block size is full. `chat` streams
text that never holds half of a multi-byte character (the tokenizer's StreamDecoder).
A conversation longer than the model's context keeps its system messages and its
latest turns, as SFT truncates training conversations.

This is the engine `chatforge chat` uses; the server grows it (batching many requests).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import torch

from chatforge.model import GPT, KVCache
from chatforge.tokenizer import Tokenizer, fit_turns


@dataclass
class Sampling:
    """How the next token is picked."""

    temperature: float = 0.7  # 0 = greedy (always the most likely token)
    top_k: int = 0  # keep the k most likely tokens (0 = all)
    top_p: float = 1.0  # keep the smallest set of tokens holding this much probability
    max_tokens: int = 256
    seed: int | None = None  # same seed, same prompt, same model: same reply


def sample_next(logits: torch.Tensor, s: Sampling, gen: torch.Generator | None) -> int:
    """A token id from one position's logits (vocab,) under `s`."""
    if s.temperature <= 0:
        return int(logits.argmax())
    logits = logits.float() / s.temperature
    if 0 < s.top_k < logits.numel():
        kth = torch.topk(logits, s.top_k).values[-1]
        logits = logits.masked_fill(logits < kth, float("-inf"))
    probs = torch.softmax(logits, dim=-1)
    if s.top_p < 1.0:
        sorted_p, order = probs.sort(descending=True)
        # drop a token when the tokens before it already hold top_p (the first always stays)
        drop = (sorted_p.cumsum(0) - sorted_p) >= s.top_p
        sorted_p[drop] = 0
        probs = torch.zeros_like(probs).scatter_(0, order, sorted_p)
    return int(torch.multinomial(probs, 1, generator=gen))


# Below this many parameters a decode step is a few dozen tiny kernels: a second CPU
# thread only adds synchronization, and when other processes keep the cores busy torch's
# threads wait on each other (the quickstart model: 3.6 ms a token on one thread, 42 ms
# on two with the machine loaded).
SMALL_MODEL = 30_000_000


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
    """Generates from a model and its tokenizer (one sequence at a time)."""

    def __init__(self, model: GPT, tokenizer: Tokenizer, *, threads: int | None = None) -> None:
        self.model = model.eval()
        self.tok = tokenizer
        self.device = next(model.parameters()).device
        self.dtype = next(model.parameters()).dtype
        self.stop_ids = {tokenizer.end_id, tokenizer.eos_id}
        # CPU threads while generating: one for small models (see SMALL_MODEL), else torch's choice
        small = self.device.type == "cpu" and model.num_params() < SMALL_MODEL
        self.threads = threads if threads is not None else (1 if small else None)

    def generate(self, prompt: Sequence[int], s: Sampling) -> Iterator[int]:
        """Sampled token ids after `prompt`, up to (not including) a stop token."""
        with cpu_threads(self.threads):
            yield from self._generate(prompt, s)

    @torch.inference_mode()
    def _generate(self, prompt: Sequence[int], s: Sampling) -> Iterator[int]:
        block = self.model.cfg.block_size
        if not 0 < len(prompt) < block:
            raise ValueError(f"prompt of {len(prompt)} tokens: must be 1 to {block - 1} (the model's block size is {block})")
        budget = min(s.max_tokens, block - len(prompt))
        cache = KVCache(self.model.cfg, 1, len(prompt) + budget, self.dtype, self.device)
        gen = torch.Generator(device=self.device).manual_seed(s.seed) if s.seed is not None else None
        logits = self.model(torch.tensor([list(prompt)], device=self.device), cache=cache)[0, -1]
        for i in range(budget):
            nxt = sample_next(logits, s, gen)
            if nxt in self.stop_ids:
                return
            yield nxt
            if i + 1 < budget:
                logits = self.model(torch.tensor([[nxt]], device=self.device), cache=cache)[0, -1]

    def prompt_ids(self, messages: Sequence[Mapping[str, Any]], room: int) -> list[int]:
        """The conversation rendered for the assistant's next turn, leaving `room` tokens for
        the reply: the system messages and as many of the latest turns as fit."""
        contents = self.tok.encode_batch([m["content"] for m in messages])
        limit = self.model.cfg.block_size - max(1, room) - 1  # - the <|assistant|> token
        keep = fit_turns(messages, contents, limit, need_reply=False)
        if keep is None:
            raise ValueError(f"the last message does not fit in the model's context ({self.model.cfg.block_size} tokens)")
        ids, _ = self.tok.render_encoded([contents[i] for i in keep], [messages[i] for i in keep], add_generation_prompt=True)
        return ids

    def chat_prompt(self, messages: Sequence[Mapping[str, Any]], s: Sampling) -> list[int]:
        """`prompt_ids` with room for a reply of `s.max_tokens` (at most half the context:
        a long chat keeps more of its history rather than reserving the whole reply)."""
        return self.prompt_ids(messages, min(s.max_tokens, self.model.cfg.block_size // 2))

    def chat(self, messages: Sequence[Mapping[str, Any]], s: Sampling) -> Iterator[str]:
        """The assistant's reply to `messages`, as text pieces while it is generated."""
        dec = self.tok.stream_decoder(skip_special=True)
        for token in self.generate(self.chat_prompt(messages, s), s):
            piece = dec.push(token)
            if piece:
                yield piece
        rest = dec.flush()
        if rest:
            yield rest
