"""The GPT: Hugging Face parity, causality, packing masks, KV cache, GQA, config checks."""

from __future__ import annotations

import pytest
import torch
from transformers import LlamaConfig, LlamaForCausalLM

from chatforge.errors import ConfigError
from chatforge.model import GPT, KVCache, ModelConfig

torch.manual_seed(0)


def tiny(**kw) -> ModelConfig:
    base = dict(vocab_size=257, n_layer=2, n_embd=64, n_head=4, block_size=64)
    base.update(kw)
    return ModelConfig(**base)


def hf_twin(model: GPT) -> LlamaForCausalLM:
    cfg = {k: v for k, v in model.cfg.to_hf().items() if k not in ("architectures", "model_type", "torch_dtype")}
    hf = LlamaForCausalLM(LlamaConfig(**cfg)).eval()
    result = hf.load_state_dict(model.state_dict(), strict=True)
    assert not result.missing_keys and not result.unexpected_keys
    return hf


@pytest.mark.parametrize(("kv", "tie", "attention"), [(4, True, "manual"), (2, False, "sdpa"), (1, True, "sdpa"), (2, True, "manual")])
def test_logits_match_transformers_llama(kv, tie, attention):
    model = GPT(tiny(n_kv_head=kv, tie_embeddings=tie, attention=attention)).eval()
    hf = hf_twin(model)
    idx = torch.randint(0, 257, (3, 50))
    with torch.no_grad():
        ours, theirs = model(idx), hf(idx).logits
    assert ours.shape == (3, 50, 257)
    assert (ours - theirs).abs().max() < 1e-4


def test_future_tokens_do_not_change_past_logits():
    model = GPT(tiny()).eval()
    idx = torch.randint(0, 257, (2, 40))
    changed = idx.clone()
    changed[:, 25:] = torch.randint(0, 257, (2, 15))
    with torch.no_grad():
        a, b = model(idx), model(changed)
    assert torch.allclose(a[:, :25], b[:, :25], atol=1e-6)
    assert not torch.allclose(a[:, 25:], b[:, 25:], atol=1e-3)


@pytest.mark.parametrize("attention", ["manual", "sdpa"])
def test_packed_documents_do_not_attend_to_each_other(attention):
    """Two documents packed in one row (positions restarting) give the same logits as each alone."""
    model = GPT(tiny(attention=attention)).eval()
    a, b = torch.randint(0, 257, (1, 17)), torch.randint(0, 257, (1, 23))
    packed = torch.cat([a, b], dim=1)
    doc = torch.tensor([[0] * 17 + [1] * 23])
    pos = torch.tensor([list(range(17)) + list(range(23))])
    with torch.no_grad():
        together = model(packed, position_ids=pos, doc_ids=doc)
        alone_a, alone_b = model(a), model(b)
    assert torch.allclose(together[:, :17], alone_a, atol=1e-5)
    assert torch.allclose(together[:, 17:], alone_b, atol=1e-5)


@pytest.mark.parametrize(("kv", "attention"), [(4, "manual"), (2, "manual"), (2, "sdpa")])
def test_kv_cache_equals_full_recomputation(kv, attention):
    model = GPT(tiny(n_kv_head=kv, attention=attention)).eval()
    idx = torch.randint(0, 257, (2, 30))
    with torch.no_grad():
        full = model(idx)
        cache = KVCache(model.cfg, batch=2, max_len=64, dtype=torch.float32)
        prefill = model(idx[:, :20], cache=cache)
        steps = [model(idx[:, t : t + 1], cache=cache) for t in range(20, 30)]
    assert cache.length == 30
    assert torch.allclose(prefill, full[:, :20], atol=1e-5)
    assert torch.allclose(torch.cat(steps, dim=1), full[:, 20:], atol=1e-5)


def test_attention_kernels_agree_in_bf16_forward_and_backward():
    """The explicit softmax (CPU default) and torch's SDPA compute the same function in bf16."""
    base = GPT(tiny(n_kv_head=2, attention="manual")).to(torch.bfloat16)
    other = GPT(tiny(n_kv_head=2, attention="sdpa")).to(torch.bfloat16)
    other.load_state_dict(base.state_dict())
    idx = torch.randint(0, 257, (2, 40))
    outs = []
    for m in (base, other):
        logits = m(idx)
        logits.float().logsumexp(-1).mean().backward()
        outs.append((logits.float(), m.model.layers[0].self_attn.q_proj.weight.grad.float()))
    (la, ga), (lb, gb) = outs
    assert (la - lb).abs().max() < 0.05 * la.abs().max()
    assert torch.nn.functional.cosine_similarity(ga.flatten(), gb.flatten(), dim=0) > 0.99


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_rms_norm_and_rope_gradients_equal_autograds(dtype):
    """RMSNorm and RoPE write their backward out (for speed): the values and gradients of
    autograd through the plain formulas."""
    from chatforge.model import RMSNorm, apply_rope, rope_tables

    gen = torch.Generator().manual_seed(0)
    tol = dict(atol=1e-5, rtol=1e-5) if dtype == torch.float32 else dict(atol=1.6e-2, rtol=1.6e-2)
    norm = RMSNorm(48, 1e-5).to(dtype)
    with torch.no_grad():
        norm.weight.copy_(1 + 0.1 * torch.randn(48, generator=gen))
    x = (3 * torch.randn(2, 5, 48, generator=gen)).to(dtype).requires_grad_()
    g = torch.randn(2, 5, 48, generator=gen).to(dtype)
    ours = torch.autograd.grad(norm(x), (x, norm.weight), g)
    xf, wf = x.detach().float().requires_grad_(), norm.weight.detach().float().requires_grad_()
    ref = xf * torch.rsqrt(xf.pow(2).mean(-1, keepdim=True) + 1e-5) * wf
    theirs = torch.autograd.grad(ref, (xf, wf), g.float())
    with torch.no_grad():
        torch.testing.assert_close(norm(x).float(), ref, **tol)  # inference: torch's rms_norm
    torch.testing.assert_close(norm(x).float(), ref, **tol)  # training: the same forward
    for a, b in zip(ours, theirs, strict=True):
        torch.testing.assert_close(a.float(), b, **tol, msg=lambda m: f"rms_norm grad: {m}")

    q = torch.randn(2, 7, 4, 16, generator=gen).transpose(1, 2).to(dtype).requires_grad_()  # (B, H, T, D), a view
    cos, sin = rope_tables(16, torch.tensor([[0, 1, 2, 0, 1, 2, 3], [5, 6, 7, 8, 9, 10, 11]]), 10000.0)
    cos, sin = cos[:, None].to(dtype), sin[:, None].to(dtype)
    g = torch.randn(2, 4, 7, 16, generator=gen).to(dtype)
    out = apply_rope(q, cos, sin)
    (dq,) = torch.autograd.grad(out, q, g)
    qf = q.detach().float().requires_grad_()
    ref = qf * cos.float() + torch.cat([-qf[..., 8:], qf[..., :8]], dim=-1) * sin.float()
    (want,) = torch.autograd.grad(ref, qf, g.float())
    torch.testing.assert_close(out.float(), ref, **tol)
    torch.testing.assert_close(dq.float(), want, **tol)


@pytest.mark.parametrize("packed", [False, True])
def test_chunked_attention_equals_whole_attention(monkeypatch, packed):
    """The explicit kernel computes attention in chunks of queries over the keys they may see:
    the same logits and gradients as over the whole (T, T) scores, causal or packed."""
    import chatforge.model as cm

    torch.manual_seed(0)
    model = GPT(tiny(block_size=256, n_kv_head=2, attention="manual"))
    idx = torch.randint(0, 257, (2, 200))
    kw = {}
    if packed:  # documents of 70, 90 and 40 tokens in row 0, 120 and 80 in row 1
        kw["doc_ids"] = torch.tensor([[0] * 70 + [1] * 90 + [2] * 40, [0] * 120 + [1] * 80])
        kw["position_ids"] = torch.tensor([[*range(70), *range(90), *range(40)], [*range(120), *range(80)]])
    mask = cm.GPT._mask(model, 200, 200, 0, idx.device)
    if packed:
        mask = mask[None] & (kw["doc_ids"][:, :, None] == kw["doc_ids"][:, None, :])
    spans = cm.attention_spans(mask)
    assert [(a, b) for a, b, _, _ in spans] == [(0, 64), (64, 128), (128, 192), (192, 200)]
    assert all(hi == b for _, b, _, hi in spans)  # causal: no key after the chunk's last query
    if packed:
        assert [lo for _, _, lo, _ in spans] == [0, 0, 70, 120]  # keys before every row's document start are skipped

    def run() -> tuple[torch.Tensor, list[torch.Tensor]]:
        model.zero_grad()
        logits = model(idx, **kw)
        (logits * torch.linspace(-1, 1, 257)).sum().backward()
        return logits.detach(), [p.grad.clone() for p in model.parameters()]

    chunked = run()
    monkeypatch.setattr(cm, "ATTN_CHUNK", 10**6)  # one chunk: the whole (T, T) computation
    whole = run()
    torch.testing.assert_close(chunked[0], whole[0], atol=1e-5, rtol=1e-5)
    for a, b in zip(chunked[1], whole[1], strict=True):
        torch.testing.assert_close(a, b, atol=5e-5, rtol=1e-4)


def test_causal_spans_equal_the_spans_read_off_a_causal_mask():
    import chatforge.model as cm

    model = GPT(tiny(block_size=512, attention="manual"))
    for T in (1, 63, 64, 65, 200, 256, 511):
        mask = cm.GPT._mask(model, T, T, 0, torch.device("cpu"))
        assert cm.causal_spans(T) == cm.attention_spans(mask), T
        assert cm.causal_spans(T, chunk=50) == cm.attention_spans(mask, chunk=50), T


def test_default_positions_are_not_read_back(monkeypatch):
    """Positions the model makes itself (0..T-1, after a cache's length) are known to be in
    the rotary table: no `.max()` read back (a sync, and a torch.compile graph break)."""
    model = GPT(tiny())
    idx = torch.randint(0, 257, (2, 16))
    calls = []
    real_max = torch.Tensor.max

    def counting_max(self, *a, **kw):  # type: ignore[no-untyped-def]
        calls.append(self.shape)
        return real_max(self, *a, **kw)

    monkeypatch.setattr(torch.Tensor, "max", counting_max)
    model(idx)
    assert calls == []
    model(idx, position_ids=torch.arange(16)[None].expand(2, 16))  # given positions are checked
    assert calls == [(2, 16)]


def test_parameter_count_and_tied_weights():
    cfg = tiny()
    model = GPT(cfg)
    assert model.num_params() == cfg.num_params()
    assert model.lm_head.weight.data_ptr() == model.model.embed_tokens.weight.data_ptr()
    untied = GPT(tiny(tie_embeddings=False))
    assert untied.num_params() == tiny(tie_embeddings=False).num_params() == cfg.num_params() + 257 * 64


def test_dropout_only_in_training():
    model = GPT(tiny(dropout=0.5))
    idx = torch.randint(0, 257, (1, 20))
    model.train()
    assert not torch.allclose(model(idx), model(idx))
    model.eval()
    with torch.no_grad():
        assert torch.allclose(model(idx), model(idx))


@pytest.mark.parametrize(
    ("kw", "message"),
    [
        (dict(n_embd=65, n_head=4), "must be a multiple of model.n_head"),
        (dict(n_head=4, n_kv_head=3), "must divide model.n_head"),
        (dict(n_embd=12, n_head=4), "head size must be even"),
        (dict(attention="flash"), "must be one of auto, sdpa, manual"),
    ],
)
def test_bad_shapes_are_config_errors(kw, message):
    with pytest.raises(ConfigError, match=message):
        GPT(tiny(**kw))


def test_too_long_sequence_is_refused():
    with pytest.raises(ValueError, match="longer than block_size"):
        GPT(tiny(block_size=16))(torch.zeros(1, 17, dtype=torch.long))
