"""The generation engine: KV-cache decoding equals full recomputation, sampling rules,
streaming text, long conversations."""

from __future__ import annotations

import pytest
import torch

from chatforge.data import synth
from chatforge.data.steps import row_texts
from chatforge.engine import Engine, Sampling, sample_next
from chatforge.model import GPT, ModelConfig
from chatforge.tokenizer import Tokenizer, train_tokenizer


@pytest.fixture(scope="module")
def tok() -> Tokenizer:
    w = synth.generate(1, conversations=150, test_conversations=1, heldout_conversations=1, kb_articles=10, preferences=1)
    return train_tokenizer([t for r in w.conversations for t in row_texts(r, "conversations")] + ["héllo wörld ✓ 日本語 🙂"] * 5, 500)


def model(attention: str = "manual", block: int = 96) -> GPT:
    torch.manual_seed(0)
    return GPT(ModelConfig(vocab_size=512, n_layer=2, n_embd=48, n_head=4, n_kv_head=2, block_size=block, attention=attention))


def recompute(m: GPT, prompt: list[int], s: Sampling, stop: set[int]) -> list[int]:
    """Generation without a cache: the whole sequence through the model for every token."""
    gen = torch.Generator().manual_seed(s.seed) if s.seed is not None else None
    out: list[int] = []
    with torch.no_grad():
        for _ in range(s.max_tokens):
            nxt = sample_next(m(torch.tensor([prompt + out]))[0, -1], s, gen)
            if nxt in stop:
                break
            out.append(nxt)
    return out


@pytest.mark.parametrize("attention", ["manual", "sdpa"])
@pytest.mark.parametrize("sampling", [Sampling(temperature=0, max_tokens=40), Sampling(temperature=1.0, top_k=50, top_p=0.9, max_tokens=40, seed=7)])
def test_cached_generation_equals_full_recomputation(tok, attention, sampling):
    m = model(attention).eval()
    engine = Engine(m, tok)
    prompt = tok.render([{"role": "user", "content": "Where is my order?"}], add_generation_prompt=True)[0]
    got = list(engine.generate(prompt, sampling))
    assert got == recompute(m, prompt, sampling, engine.stop_ids)
    assert len(got) > 5  # an untrained model rambles on, so many cached steps were compared


def test_sampling_rules():
    logits = torch.tensor([0.0, 3.0, 2.9, -1.0, 1.0])
    assert sample_next(logits, Sampling(temperature=0), None) == 1
    assert sample_next(logits, Sampling(temperature=1.0, top_k=1), torch.Generator().manual_seed(0)) == 1
    assert sample_next(logits, Sampling(temperature=1.0, top_p=1e-6), torch.Generator().manual_seed(0)) == 1
    g = torch.Generator().manual_seed(0)
    picks = {sample_next(logits, Sampling(temperature=1.0, top_k=2), g) for _ in range(300)}
    assert picks == {1, 2}
    g = torch.Generator().manual_seed(0)
    picks = {sample_next(logits, Sampling(temperature=5.0), g) for _ in range(300)}
    assert picks == {0, 1, 2, 3, 4}  # a high temperature flattens the distribution
    a = [sample_next(logits, Sampling(temperature=1.0), torch.Generator().manual_seed(3)) for _ in range(5)]
    assert len(set(a)) == 1  # the same seed draws the same token


def test_chat_streams_whole_characters_that_join_to_the_decoded_reply(tok):
    engine = Engine(model(), tok)
    messages = [{"role": "system", "content": "Be kind."}, {"role": "user", "content": "héllo wörld ✓ 日本語 🙂"}]
    s = Sampling(temperature=1.0, max_tokens=40, seed=3)
    pieces = list(engine.chat(messages, s))
    ids = list(engine.generate(engine.chat_prompt(messages, s), s))
    assert "".join(pieces) == tok.decode(ids, skip_special=True)


def test_long_conversations_keep_the_system_prompt_and_the_latest_turns(tok):
    engine = Engine(model(block=96), tok)
    system = {"role": "system", "content": "You help Larkspur Goods customers."}
    turns = []
    for i in range(20):
        turns += [{"role": "user", "content": f"Question number {i} about my order?"}, {"role": "assistant", "content": f"Answer {i}."}]
    messages = [system, *turns, {"role": "user", "content": "And the last one?"}]
    ids = engine.prompt_ids(messages, room=20)
    assert len(ids) <= 96 - 20
    text = tok.decode(ids)
    assert text.startswith("<|bos|><|system|>You help Larkspur Goods customers.<|end|><|user|>")
    assert text.endswith("<|user|>And the last one?<|end|><|assistant|>")
    assert "Question number 0 " not in text and "Question number 19 " in text
    with pytest.raises(ValueError, match="does not fit"):
        engine.prompt_ids([{"role": "user", "content": "word " * 500}], room=20)
