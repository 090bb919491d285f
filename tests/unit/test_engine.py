"""The generation engine: KV-cache decoding equals full recomputation, sampling rules,
streaming text, long conversations."""

from __future__ import annotations

import copy

import pytest
import torch

from chatforge.data import synth
from chatforge.data.steps import row_texts
from chatforge.engine import Engine, Sampling, generation_dtype, penalize, sample_next
from chatforge.errors import ConfigError
from chatforge.model import GPT, ModelConfig, PackedLinear, can_pack, pack_linears
from chatforge.tokenizer import Tokenizer, train_tokenizer


@pytest.fixture(scope="module")
def tok() -> Tokenizer:
    w = synth.generate(1, conversations=150, test_conversations=1, heldout_conversations=1, kb_articles=10, preferences=1)
    return train_tokenizer([t for r in w.conversations for t in row_texts(r, "conversations")] + ["héllo wörld ✓ 日本語 🙂"] * 5, 500)


def model(attention: str = "manual", block: int = 96) -> GPT:
    torch.manual_seed(0)
    return GPT(ModelConfig(vocab_size=512, n_layer=2, n_embd=48, n_head=4, n_kv_head=2, block_size=block, attention=attention))


def recompute(m: GPT, prompt: list[int], s: Sampling, stop: set[int], vocab: int) -> list[int]:
    """Generation without a cache: the whole sequence through the model for every token
    (sampling among the tokenizer's `vocab` ids: the model's extra rows are padding)."""
    gen = torch.Generator().manual_seed(s.seed) if s.seed is not None else None
    out: list[int] = []
    with torch.no_grad():
        for _ in range(s.max_tokens):
            nxt = sample_next(m(torch.tensor([prompt + out]))[0, -1, :vocab], s, gen)
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
    assert got == recompute(m, prompt, sampling, engine.stop_ids, tok.vocab_size)
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


def prompts_of(tok: Tokenizer, n: int) -> list[list[int]]:
    questions = ["Where is my order?", "Can I return shoes?", "How much is shipping to Canada?", "hi", "My card was charged twice, why?", "Do you sell tents?"]
    return [tok.render([{"role": "user", "content": questions[i % len(questions)] * (1 + i % 3)}], add_generation_prompt=True)[0] for i in range(n)]


def test_batched_generation_gives_the_tokens_of_one_at_a_time(tok):
    """Continuous batching: sequences of different lengths share decode steps, join while
    others run (more prompts than slots) and leave when done; greedy tokens are unchanged."""
    m = model().eval()
    prompts = prompts_of(tok, 7)
    budgets = [5, 30, 12, 40, 3, 25, 18]
    alone = [list(Engine(m, tok).generate(p, Sampling(temperature=0, max_tokens=b))) for p, b in zip(prompts, budgets, strict=True)]
    engine = Engine(m, tok, max_batch=3)
    seqs = engine.generate_many(prompts, [Sampling(temperature=0, max_tokens=b) for b in budgets])
    assert [s.ids for s in seqs] == alone
    assert all(s.finish_reason in ("stop", "length") for s in seqs)
    assert engine.active == 0 and engine.waiting == 0


def test_a_seeded_sample_does_not_depend_on_the_rest_of_the_batch(tok):
    m = model().eval()
    prompts = prompts_of(tok, 4)
    s = Sampling(temperature=1.0, top_p=0.9, max_tokens=20, seed=11)
    alone = list(Engine(m, tok).generate(prompts[0], s))
    crowd = Engine(m, tok, max_batch=4).generate_many(prompts, [s, *[Sampling(temperature=1.0, max_tokens=20, seed=i) for i in range(3)]])
    assert crowd[0].ids == alone
    assert Engine(m, tok).generate_many([prompts[0]], [s])[0].ids == alone


def test_cancelled_sequences_free_their_slot_for_waiting_ones(tok):
    m = model().eval()
    engine = Engine(m, tok, max_batch=2)
    prompts = prompts_of(tok, 3)
    long = [engine.submit(p, Sampling(temperature=0, max_tokens=60)) for p in prompts[:2]]
    third = engine.submit(prompts[2], Sampling(temperature=0, max_tokens=5))
    engine.step()
    engine.step()
    assert engine.active == 2 and engine.waiting == 1 and not third.tokens  # no slot for it yet
    engine.cancel(long[0])
    engine.step()
    assert long[0].finish_reason == "cancelled" and third.tokens  # it took the freed slot at once
    while engine.step():
        pass
    assert third.ids == list(Engine(m, tok).generate(prompts[2], Sampling(temperature=0, max_tokens=5)))
    assert long[1].ids == list(Engine(m, tok).generate(prompts[1], Sampling(temperature=0, max_tokens=60)))


def test_logprobs_and_top_alternatives(tok):
    m = model().eval()
    prompt = prompts_of(tok, 1)[0]
    (seq,) = Engine(m, tok).generate_many([prompt], [Sampling(temperature=0, max_tokens=6, logprobs=3)])
    ids = list(prompt)
    with torch.no_grad():
        for t in seq.tokens:
            logp = torch.log_softmax(m(torch.tensor([ids]))[0, -1, : tok.vocab_size], dim=-1)
            assert t.logprob == pytest.approx(float(logp[t.id]), abs=1e-4)
            assert t.top is not None and len(t.top) == 3 and t.top[0][0] == t.id  # greedy: the top alternative
            assert [i for i, _ in t.top] == logp.topk(3).indices.tolist()
            ids.append(t.id)


def test_repetition_penalty_lowers_the_logits_of_seen_tokens():
    logits = torch.tensor([2.0, -1.0, 0.5, 3.0])
    out = penalize(logits, torch.tensor([0, 1]), 2.0)
    assert out.tolist() == [1.0, -2.0, 0.5, 3.0]
    assert penalize(logits, torch.tensor([0]), 1.0) is logits


def test_chat_stops_before_a_stop_string(tok):
    m = model().eval()
    engine = Engine(m, tok)
    messages = [{"role": "user", "content": "Where is my order?"}]
    s = Sampling(temperature=1.0, max_tokens=40, seed=3)
    full = "".join(engine.chat(messages, s))
    assert len(full) > 10  # an untrained model rambles
    stop = full[5:8]
    cut = "".join(engine.chat(messages, s, stop=[stop]))
    assert cut == full[: full.index(stop)]
    assert "".join(engine.chat(messages, s, stop=["\u2603never"])) == full


needs_onednn = pytest.mark.skipif(not torch.backends.mkldnn.is_available(), reason="torch built without oneDNN: no packed bf16 linears")


@needs_onednn
def test_packed_linears_compute_what_the_bf16_model_computes():
    m = model().to(torch.bfloat16).eval()
    plain = copy.deepcopy(m)
    assert can_pack(m) and not can_pack(model())  # bf16 only
    assert pack_linears(m) == 2 * 7 + 1  # q, k, v, o, gate, up, down per block, and the head
    assert all(type(x) is not torch.nn.Linear for x in m.modules())
    assert list(m.state_dict()) == list(plain.state_dict())  # same names: still saves and loads
    ids = torch.randint(0, 512, (2, 30), generator=torch.Generator().manual_seed(1))
    with torch.inference_mode():
        for x in (ids, ids[:, :1], ids[:1, -2:]):  # a prefill, one decode step, two positions
            assert torch.allclose(m(x).float(), plain(x).float(), atol=1e-2, rtol=0)
    assert pack_linears(m) == 0  # packing twice changes nothing


@needs_onednn
def test_a_bf16_engine_follows_the_model_it_packs(tok):
    """The bf16 engine's logprobs are the unpacked bf16 model's, recomputed over the whole
    sequence at every step (bf16 rounding apart), and greedy picks its argmax."""
    m = model().to(torch.bfloat16).eval()
    plain = copy.deepcopy(m)
    engine = Engine(m, tok)
    assert isinstance(m.lm_head, PackedLinear) and engine.dtype == torch.bfloat16
    prompt = prompts_of(tok, 1)[0]
    (seq,) = engine.generate_many([prompt], [Sampling(temperature=0, max_tokens=20, logprobs=2)])
    assert len(seq.tokens) > 5
    ids = list(prompt)
    with torch.inference_mode():
        for t in seq.tokens:
            logp = torch.log_softmax(plain(torch.tensor([ids]))[0, -1, : tok.vocab_size].float(), dim=-1)
            assert t.logprob == pytest.approx(float(logp[t.id]), abs=0.05)
            top2 = logp.topk(2).values
            if top2[0] - top2[1] > 0.1:  # no near tie: bf16 rounding cannot flip it
                assert t.id == int(logp.argmax())
            ids.append(t.id)


def test_generation_dtype_auto_keeps_float32_on_a_cpu():
    """bf16 decodes faster on this CPU from a few million parameters up, but changes greedy
    replies: it is given when asked for, never assumed on a CPU."""
    big = GPT(ModelConfig(vocab_size=4096, n_layer=4, n_embd=256, n_head=4, n_kv_head=4, block_size=64))
    assert big.num_params() > 3_000_000
    for m in (model(), big):
        assert generation_dtype("auto", m) == torch.float32
        assert generation_dtype("float32", m) == torch.float32
        assert generation_dtype("bfloat16", m) == torch.bfloat16
    with pytest.raises(ConfigError, match="dtype: 'half'; expected auto"):
        generation_dtype("half", big)


def test_an_engine_loads_a_model_dir_in_the_dtype_asked(tok: Tokenizer, tmp_path) -> None:
    from chatforge.checkpoint import save_model_dir

    tok.save(tmp_path / "tok")
    m = model()
    save_model_dir(tmp_path / "m", m, tokenizer_dir=tmp_path / "tok")
    prompt = tok.encode("hello there")
    s = Sampling(temperature=0, max_tokens=6)
    auto = Engine.load(tmp_path / "m", max_batch=3)
    assert auto.dtype == torch.float32 and auto.max_batch == 3 and auto.tok.vocab_size == tok.vocab_size
    assert list(auto.generate(prompt, s)) == recompute(m, prompt, s, auto.stop_ids, auto.vocab)
    bf16 = Engine.load(str(tmp_path / "m"), "bfloat16", threads=1)
    assert bf16.dtype == torch.bfloat16 and bf16.threads == 1
    assert len(list(bf16.generate(prompt, s))) > 0
