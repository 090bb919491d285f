"""The GPT: a decoder-only transformer with Llama's architecture, in one file.

    model = GPT(ModelConfig(n_layer=6, n_embd=384, n_head=6, vocab_size=8192))
    logits = model(idx)                          # (B, T) token ids -> (B, T, vocab) logits

Llama-compatible so that our models load in `transformers` (and Llama-family checkpoints
load here): RMSNorm before each block (Zhang & Sennrich 2019), rotary position embeddings
(Su et al. 2021, in Llama's "rotate half" layout), a SwiGLU MLP (Shazeer 2020),
grouped-query attention (Ainslie et al. 2023: `n_kv_head` key/value heads shared by
groups of query heads), no biases, optionally tied input/output embeddings. Module and
parameter names are Hugging Face's (`model.layers.0.self_attn.q_proj.weight`, ...), so
a state dict maps one to one onto `LlamaForCausalLM`.

Regularization: dropout on the attention probabilities and on each block's residual
branches (`dropout`), weight decay in the optimizer (optim.py).

The model knows nothing of sampling: it maps token ids to logits. For generation it can
append to a key/value cache (`KVCache`) so that each new token costs one position.
Packed training rows (several documents in one row) pass `doc_ids`, so attention stays
within a document, and `position_ids`, so each document's positions start at 0.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from chatforge.model_config import ModelConfig

__all__ = [
    "GPT",
    "KVCache",
    "ModelConfig",
    "PackedLinear",
    "SlotKVCache",
    "apply_rope",
    "attention_bias",
    "attention_kernel",
    "bf16_supported",
    "can_pack",
    "pack_linears",
    "rope_tables",
]


class RMSNorm(nn.Module):
    """x / rms(x) * weight, computed in float32 (as Llama does) whatever the input dtype."""

    def __init__(self, dim: int, eps: float) -> None:
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # torch's rms_norm: one kernel (the same values as x * rsqrt(mean(x^2) + eps) * weight
        # in float32). In bf16 it makes no float32 copies of the activations and is as
        # accurate as normalizing in float32 and rounding to bf16 (max error 0.027 vs 0.038
        # on values up to 5.4).
        if torch.is_grad_enabled() and (x.requires_grad or self.weight.requires_grad):
            return _RMSNormGrad.apply(x, self.weight, self.eps)
        return F.rms_norm(x, (x.shape[-1],), self.weight, self.eps)


class _RMSNormGrad(torch.autograd.Function):
    """rms_norm with its backward written out. Autograd's own backward of rms_norm goes op
    by op through its float32 decomposition, ~20 passes over the activations; this one
    takes ~10 (in a CPU training step of the 14M model, where such passes are bound by
    memory bandwidth: +6% tokens/s). The same gradients (tested)."""

    @staticmethod
    def forward(ctx: torch.autograd.function.FunctionCtx, x: torch.Tensor, weight: torch.Tensor, eps: float) -> torch.Tensor:
        ctx.save_for_backward(x, weight)
        ctx.eps = eps  # type: ignore[attr-defined]
        return F.rms_norm(x, (x.shape[-1],), weight, eps)

    @staticmethod
    def backward(ctx: torch.autograd.function.FunctionCtx, g: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None, None]:
        x, weight = ctx.saved_tensors  # type: ignore[attr-defined]
        C = x.shape[-1]
        # y = xhat * w with xhat = x * r, r = rsqrt(mean(x^2) + eps), so
        # dx = r * (w g - xhat * mean(xhat * w g)) and dw = sum over positions of g * xhat.
        xf = x.to(torch.float32, copy=True)  # copies, as below: written in place
        r = torch.rsqrt(torch.linalg.vecdot(xf, xf).unsqueeze(-1).div_(C).add_(ctx.eps))  # type: ignore[attr-defined]  # (..., 1)
        xhat = xf.mul_(r)
        gf = g.to(torch.float32, copy=True)
        dw = (gf * xhat).sum(dim=tuple(range(x.dim() - 1))).to(weight.dtype) if ctx.needs_input_grad[1] else None  # type: ignore[attr-defined]
        wg = gf.mul_(weight)
        mean = torch.linalg.vecdot(xhat, wg).unsqueeze(-1).div_(C)  # (..., 1)
        dx = torch.addcmul(wg, xhat, mean, value=-1).mul_(r)
        return dx.to(x.dtype), dw, None


def rope_tables(head_dim: int, positions: torch.Tensor, theta: float) -> tuple[torch.Tensor, torch.Tensor]:
    """cos, sin of shape (*positions.shape, head_dim), Llama's layout (each half repeated)."""
    inv_freq = 1.0 / (theta ** (torch.arange(0, head_dim, 2, dtype=torch.float32, device=positions.device) / head_dim))
    angles = positions.float()[..., None] * inv_freq  # (..., head_dim/2)
    angles = torch.cat([angles, angles], dim=-1)  # (..., head_dim)
    return angles.cos(), angles.sin()


def apply_rope(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    """Rotate pairs (i, i + head_dim/2) of x: (B, H, T, D) by the angles in cos/sin: (B, 1, T, D)."""
    return _Rope.apply(x, cos, sin)


def _rotate(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor, sign: float) -> torch.Tensor:
    """x * cos + rotate_half(x) * sin (sign 1), with rotate_half(x) = (-x2, x1) for the halves
    x1, x2 of the last dim; sign -1 applies the transposed rotation (the backward). Three
    passes over x and no rotated copy of it."""
    h = x.shape[-1] // 2
    out = x * cos
    out[..., :h].addcmul_(x[..., h:], sin[..., :h], value=-sign)
    out[..., h:].addcmul_(x[..., :h], sin[..., h:], value=sign)
    return out


class _Rope(torch.autograd.Function):
    """RoPE with its backward written out: the backward is the transposed rotation of the
    gradient (autograd's would go through the concatenation and sum two gradients; a CPU
    training step of the 14M model: +4% tokens/s). The same values and gradients (tested)."""

    @staticmethod
    def forward(ctx: torch.autograd.function.FunctionCtx, x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
        ctx.save_for_backward(cos, sin)
        return _rotate(x, cos, sin, 1.0)

    @staticmethod
    def backward(ctx: torch.autograd.function.FunctionCtx, g: torch.Tensor) -> tuple[torch.Tensor, None, None]:
        cos, sin = ctx.saved_tensors  # type: ignore[attr-defined]
        return _rotate(g, cos, sin, -1.0), None, None


class KVCache:
    """Keys and values of past positions, preallocated for `max_len` positions per layer.

    Shape per layer: (batch, n_kv_head, max_len, head_dim). `length` positions are filled;
    a forward pass with a cache writes its new keys/values after them and advances it.
    """

    def __init__(self, cfg: ModelConfig, batch: int, max_len: int, dtype: torch.dtype, device: torch.device | str = "cpu"):
        shape = (cfg.n_layer, batch, cfg.n_kv_head, max_len, cfg.head_dim)
        self.k = torch.zeros(shape, dtype=dtype, device=device)
        self.v = torch.zeros(shape, dtype=dtype, device=device)
        self.length = 0
        self.max_len = max_len

    def update(self, layer: int, k: torch.Tensor, v: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Store this step's k, v (B, H, T, D) for `layer`; return all keys/values so far."""
        t = k.shape[2]
        end = self.length + t
        if end > self.max_len:
            raise ValueError(f"KV cache full: {end} positions > {self.max_len}")
        self.k[layer, :, :, self.length : end] = k
        self.v[layer, :, :, self.length : end] = v
        return self.k[layer, :, :, :end], self.v[layer, :, :, :end]

    def positions(self, B: int, T: int, device: torch.device) -> torch.Tensor:
        """RoPE positions (B, T) of T new tokens: they follow the cached ones."""
        return torch.arange(self.length, self.length + T, device=device)[None, :].expand(B, T)

    def advance(self, T: int) -> None:
        self.length += T


class SlotKVCache:
    """A KV cache for sequences of different lengths that come and go: continuous batching.

    Each sequence owns a slot (a row of the preallocated tensors, (n_layer, slots,
    n_kv_head, max_len, head_dim)) and its own length. A forward pass runs on the slots
    `select`ed, a contiguous range: every active sequence for a decode step (`select(0,
    n)`, one new token each), or one joining sequence's prompt (`select(n, n + 1)`). Each
    row writes its new keys/values after its own cached ones and attends to those only
    (the mask hides the rest of the row), with RoPE positions counted from its own start.
    The engine keeps the active sequences in the first slots (`move` fills the hole a
    finished sequence leaves), so a decode step reads plain slices, no gathers.
    """

    def __init__(self, cfg: ModelConfig, slots: int, max_len: int, dtype: torch.dtype, device: torch.device | str = "cpu"):
        shape = (cfg.n_layer, slots, cfg.n_kv_head, max_len, cfg.head_dim)
        self.k = torch.zeros(shape, dtype=dtype, device=device)
        self.v = torch.zeros(shape, dtype=dtype, device=device)
        self.lengths = torch.zeros(slots, dtype=torch.long, device=device)
        self.max_len = max_len
        self.lo, self.hi = 0, 0

    def select(self, lo: int, hi: int) -> None:
        """The slots the next forward pass runs on (its batch rows, in order)."""
        self.lo, self.hi = lo, hi

    def reset(self, slot: int) -> None:
        """Free a slot for a new sequence."""
        self.lengths[slot] = 0

    def move(self, src: int, dst: int) -> None:
        """Copy sequence `src` (its cache and length) into slot `dst`."""
        n = int(self.lengths[src])
        self.k[:, dst, :, :n] = self.k[:, src, :, :n]
        self.v[:, dst, :, :n] = self.v[:, src, :, :n]
        self.lengths[dst] = n

    def begin(self, T: int, device: torch.device) -> None:
        """Prepare a forward pass of T new tokens per selected row (once, not per layer)."""
        lengths = self.lengths[self.lo : self.hi]
        self._first = int(lengths[0]) if self.hi - self.lo == 1 else -1  # one row: plain slices
        self._span = int(lengths.max()) + T
        if self._span > self.max_len:
            raise ValueError(f"KV cache full: {self._span} positions > {self.max_len}")
        self._pos = lengths[:, None] + torch.arange(T, device=device)[None, :]  # (B, T)
        self._rows = torch.arange(self.lo, self.hi, device=device)[:, None].expand_as(self._pos)

    def positions(self, B: int, T: int, device: torch.device) -> torch.Tensor:
        """RoPE positions (B, T): each row's new tokens follow its own cached ones."""
        return self._pos

    def mask(self, T: int, device: torch.device) -> torch.Tensor:
        """(B, 1, T, S) bool: new token t of row b sees that row's positions 0 .. length_b + t."""
        keys = torch.arange(self._span, device=device)[None, None, :]  # (1, 1, S)
        return (keys <= self._pos[:, :, None])[:, None]

    def update(self, layer: int, k: torch.Tensor, v: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Store the new k, v (B, H, T, D) of the selected rows after their cached positions;
        return their keys/values (B, H, S, D), S = the longest selected row."""
        T = k.shape[2]
        if self._first >= 0:
            self.k[layer, self.lo, :, self._first : self._first + T] = k[0]
            self.v[layer, self.lo, :, self._first : self._first + T] = v[0]
        else:
            # Advanced indices around a slice put their dims first: the target is (B, T, H, D).
            self.k[layer][self._rows, :, self._pos] = k.transpose(1, 2)
            self.v[layer][self._rows, :, self._pos] = v.transpose(1, 2)
        return self.k[layer, self.lo : self.hi, :, : self._span], self.v[layer, self.lo : self.hi, :, : self._span]

    def advance(self, T: int) -> None:
        self.lengths[self.lo : self.hi] += T


def attention_kernel(cfg: ModelConfig, device: torch.device) -> str:
    """The attention implementation to use. "auto": the explicit softmax on CPU, where torch's
    SDPA flash kernel is slow in bf16 backward (a training step of the 14M benchmark model
    spent 0.36 s in it vs 0.15 s for all of the explicit attention; benchmarks/train_throughput.py
    prints both modes), and SDPA (flash / memory-efficient kernels) on GPUs."""
    if cfg.attention != "auto":
        return cfg.attention
    return "sdpa" if device.type == "cuda" else "manual"


def attention_bias(mask: torch.Tensor, dtype: torch.dtype, batch: int, heads: int) -> torch.Tensor:
    """A boolean attention mask as the explicit kernel's additive bias: 0 where attention is
    allowed, -inf elsewhere; (T, S) stays (T, S), per-row (B, 1, T, S) becomes (B * H, T, S)."""
    bias = torch.zeros(mask.shape, dtype=dtype, device=mask.device).masked_fill_(~mask, float("-inf"))
    if bias.dim() == 4:
        T, S = mask.shape[-2:]
        bias = bias.expand(batch, heads, T, S).reshape(batch * heads, T, S)
    return bias


ATTN_CHUNK = 64  # query positions per chunk of the explicit kernel's attention (see attention_spans)
Span = tuple[int, int, int, int]  # queries [a, b) see keys [lo, hi) at most


def attention_spans(mask: torch.Tensor, chunk: int = ATTN_CHUNK) -> list[Span]:
    """Split the queries of a boolean mask, (T, S) or (B, 1, T, S), into chunks of `chunk`
    positions, each with the range of keys that any row lets it see. Causal: chunk i sees keys
    up to its end only, so the scores computed shrink to 5/8 of T x S for T = 4 chunks (more
    when packed documents start after a chunk's first key in every row)."""
    T, S = mask.shape[-2:]
    seen = mask.reshape(-1, T, S).any(0)  # (T, S): some row lets query t see key s
    spans: list[Span] = []
    for a in range(0, T, chunk):
        b = min(a + chunk, T)
        keys = torch.nonzero(seen[a:b].any(0)).flatten()
        lo, hi = (int(keys[0]), int(keys[-1]) + 1) if len(keys) else (0, S)
        spans.append((a, b, lo, hi))
    return spans


def causal_spans(T: int, chunk: int = ATTN_CHUNK) -> list[Span]:
    """`attention_spans` of the causal (T, T) mask, without reading a mask: chunk [a, b) sees keys [0, b)."""
    return [(a, min(a + chunk, T), 0, min(a + chunk, T)) for a in range(0, T, chunk)]


class _ChunkedAttention(torch.autograd.Function):
    """softmax(bias + q k^T * scale) v over (B*H, T, D) tensors, computed chunk by chunk of
    queries over only the keys each chunk may see (`attention_spans`), with the backward
    written out to match: the same values as the whole (T, S) computation (masked scores
    add exp(-inf) = 0), in a CPU training step of the 14M model ~40% less attention work."""

    @staticmethod
    def forward(  # type: ignore[override]
        ctx: torch.autograd.function.FunctionCtx, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, bias: torch.Tensor, spans: list[Span], scale: float
    ) -> torch.Tensor:
        y = q.new_empty(q.shape[0], q.shape[1], v.shape[2])
        probs = []
        for a, b, lo, hi in spans:
            att = torch.softmax(torch.baddbmm(bias[..., a:b, lo:hi], q[:, a:b], k[:, lo:hi].transpose(1, 2), alpha=scale), dim=-1)
            y[:, a:b] = torch.bmm(att, v[:, lo:hi])
            probs.append(att)  # (B*H, b - a, hi - lo)
        ctx.save_for_backward(q, k, v, *probs)
        ctx.spans, ctx.scale = spans, scale  # type: ignore[attr-defined]
        return y

    @staticmethod
    def backward(ctx: torch.autograd.function.FunctionCtx, dy: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, None, None, None]:  # type: ignore[override]
        q, k, v, *probs = ctx.saved_tensors  # type: ignore[attr-defined]
        scale = ctx.scale  # type: ignore[attr-defined]
        dq, dk, dv = torch.empty_like(q), torch.zeros_like(k), torch.zeros_like(v)
        for (a, b, lo, hi), att in zip(ctx.spans, probs, strict=True):  # type: ignore[attr-defined]
            g = dy[:, a:b]
            dv[:, lo:hi].baddbmm_(att.transpose(1, 2), g)
            # softmax backward: ds = att * (datt - sum(datt * att)), one kernel
            ds = torch._softmax_backward_data(torch.bmm(g, v[:, lo:hi].transpose(1, 2)), att, -1, att.dtype)
            dq[:, a:b] = torch.bmm(ds, k[:, lo:hi])
            dk[:, lo:hi].baddbmm_(ds.transpose(1, 2), q[:, a:b])
        return dq.mul_(scale), dk.mul_(scale), dv, None, None, None


class Attention(nn.Module):
    def __init__(self, cfg: ModelConfig, layer: int) -> None:
        super().__init__()
        self.cfg, self.layer = cfg, layer
        d, hd = cfg.n_embd, cfg.head_dim
        self.q_proj = nn.Linear(d, cfg.n_head * hd, bias=False)
        self.k_proj = nn.Linear(d, cfg.n_kv_head * hd, bias=False)
        self.v_proj = nn.Linear(d, cfg.n_kv_head * hd, bias=False)
        self.o_proj = nn.Linear(cfg.n_head * hd, d, bias=False)

    def forward(
        self,
        x: torch.Tensor,
        cos: torch.Tensor,
        sin: torch.Tensor,
        mask: torch.Tensor | None,
        cache: KVCache | SlotKVCache | None,
        spans: list[Span] | None = None,
    ) -> torch.Tensor:
        """`mask`: for SDPA, boolean (True = may attend), (T, S) or (B, 1, T, S); for the
        explicit kernel, the additive bias `attention_bias` makes of it. `spans`: the
        explicit kernel computes attention chunk by chunk over these (`attention_spans`)."""
        cfg = self.cfg
        B, T, _ = x.shape
        q = self.q_proj(x).view(B, T, cfg.n_head, cfg.head_dim).transpose(1, 2)  # (B, H, T, D)
        k = self.k_proj(x).view(B, T, cfg.n_kv_head, cfg.head_dim).transpose(1, 2)  # (B, Hkv, T, D)
        v = self.v_proj(x).view(B, T, cfg.n_kv_head, cfg.head_dim).transpose(1, 2)
        q, k = apply_rope(q, cos, sin), apply_rope(k, cos, sin)
        if cache is not None:
            k, v = cache.update(self.layer, k, v)  # (B, Hkv, past + T, D)
        groups = cfg.n_head // cfg.n_kv_head
        if groups > 1:  # each key/value head serves `groups` query heads
            k = k.repeat_interleave(groups, dim=1)
            v = v.repeat_interleave(groups, dim=1)
        p = cfg.dropout if self.training else 0.0
        if attention_kernel(cfg, x.device) == "manual":
            H, S, D = cfg.n_head, k.shape[2], cfg.head_dim
            # scores = mask + q k^T / sqrt(D) in one batched matmul; `mask` is the additive
            # bias GPT.forward built once for all layers (see `attention_bias`).
            assert mask is not None and mask.is_floating_point()
            if spans is not None and p == 0.0:
                qkv = q.reshape(B * H, T, D), k.reshape(B * H, S, D), v.reshape(B * H, S, D)
                y = _ChunkedAttention.apply(*qkv, mask, spans, 1.0 / math.sqrt(D)).view(B, H, T, D)
                return self.o_proj(y.transpose(1, 2).reshape(B, T, cfg.n_head * cfg.head_dim))
            q, k, v = q.reshape(B * H, T, D), k.reshape(B * H, S, D), v.reshape(B * H, S, D)
            if cache is not None and q.dtype == torch.bfloat16:
                # Generating: torch's bf16 batched matmuls over the cache's strided slices are
                # 6-10x slower than float32 ones on the CPU (a 14M model: 1.9 of 5.5 ms a
                # token); the float32 copies of a few cached rows cost little.
                q, k, v, mask = q.float(), k.float(), v.float(), mask.float()
            att = torch.baddbmm(mask, q, k.transpose(1, 2), alpha=1.0 / math.sqrt(D))
            # softmax in the activations' dtype: torch's kernel accumulates in float32 itself
            att = F.dropout(F.softmax(att, dim=-1), p, self.training)
            y = torch.bmm(att, v).view(B, H, T, D).to(x.dtype)
        else:
            y = F.scaled_dot_product_attention(q, k, v, attn_mask=mask, dropout_p=p)
        return self.o_proj(y.transpose(1, 2).reshape(B, T, cfg.n_head * cfg.head_dim))


def bf16_supported(device: torch.device) -> bool:
    """Whether bf16 matmuls run natively (fast) here."""
    if device.type == "cuda":
        return torch.cuda.is_bf16_supported()
    try:  # recent x86 CPUs with AVX512-BF16 / AMX, and ARM with BF16
        return bool(torch.backends.mkldnn.is_available() and torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except (AttributeError, RuntimeError):
        return False


def can_pack(model: nn.Module) -> bool:
    """Whether `pack_linears` applies: bf16 weights on a CPU whose torch has oneDNN."""
    p = next(model.parameters())
    return p.dtype == torch.bfloat16 and p.device.type == "cpu" and torch.backends.mkldnn.is_available() and hasattr(torch.ops.mkldnn, "_linear_pointwise")


class PackedLinear(nn.Module):
    """A bias-free linear layer for inference, its bf16 weight also held in oneDNN's blocked
    layout. torch's plain bf16 matrix-vector product is no faster than float32 on this CPU
    (a 14M model's 43 decode matmuls: 7.0 vs 7.7 ms a token); oneDNN's kernel over the
    prepacked weight reads half the bytes at full speed (3.3 ms), the same values as
    `F.linear` (oneDNN computes both). No gradient flows through it: engines only. `weight`
    stays the original parameter (same name in the state dict, still tied to the embedding
    where it was), so the layer costs its weight's memory twice."""

    def __init__(self, linear: nn.Linear) -> None:
        super().__init__()
        if linear.bias is not None:
            raise ValueError("PackedLinear: the model's linear layers have no bias")
        self.weight = linear.weight
        self.packed: torch.Tensor = torch.ops.mkldnn._reorder_linear_weight(linear.weight.detach(), 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.ops.mkldnn._linear_pointwise(x, self.packed, None, "none", [], "")


def pack_linears(model: nn.Module) -> int:
    """Replace every nn.Linear of a bf16 CPU model (see `can_pack`) with a PackedLinear, for
    generation; returns how many. The model is for inference from then on: its weights
    must not change (the packed copies would not follow)."""
    if not can_pack(model):
        raise ValueError("pack_linears needs a bf16 model on a CPU with oneDNN")
    n = 0
    for parent in list(model.modules()):
        for name, child in list(parent.named_children()):
            if type(child) is nn.Linear:
                setattr(parent, name, PackedLinear(child))
                n += 1
    return n


class MLP(nn.Module):
    """SwiGLU: down(silu(gate(x)) * up(x))."""

    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__()
        self.gate_proj = nn.Linear(cfg.n_embd, cfg.intermediate_size, bias=False)
        self.up_proj = nn.Linear(cfg.n_embd, cfg.intermediate_size, bias=False)
        self.down_proj = nn.Linear(cfg.intermediate_size, cfg.n_embd, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.down_proj(F.silu(self.gate_proj(x)) * self.up_proj(x))


class Block(nn.Module):
    def __init__(self, cfg: ModelConfig, layer: int) -> None:
        super().__init__()
        self.input_layernorm = RMSNorm(cfg.n_embd, cfg.norm_eps)
        self.self_attn = Attention(cfg, layer)
        self.post_attention_layernorm = RMSNorm(cfg.n_embd, cfg.norm_eps)
        self.mlp = MLP(cfg)
        self.dropout = nn.Dropout(cfg.dropout)

    def forward(
        self, x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor, mask: torch.Tensor | None, cache: KVCache | SlotKVCache | None, spans: list[Span] | None = None
    ) -> torch.Tensor:
        x = x + self.dropout(self.self_attn(self.input_layernorm(x), cos, sin, mask, cache, spans))
        return x + self.dropout(self.mlp(self.post_attention_layernorm(x)))


class _Decoder(nn.Module):
    """The part HF calls `model`: embeddings, blocks, final norm (named as in LlamaModel)."""

    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__()
        self.embed_tokens = nn.Embedding(cfg.vocab_size, cfg.n_embd)
        self.layers = nn.ModuleList(Block(cfg, i) for i in range(cfg.n_layer))
        self.norm = RMSNorm(cfg.n_embd, cfg.norm_eps)


class GPT(nn.Module):
    """Token ids (B, T) -> logits (B, T, vocab). Parameter names match `LlamaForCausalLM`."""

    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__()
        cfg.validate()
        self.cfg = cfg
        self.model = _Decoder(cfg)
        self.lm_head = nn.Linear(cfg.n_embd, cfg.vocab_size, bias=False)
        if cfg.tie_embeddings:
            self.lm_head.weight = self.model.embed_tokens.weight
        self._masks: dict[tuple[int, int, int], torch.Tensor] = {}  # causal masks by shape, reused
        self._rope: dict[torch.device, tuple[torch.Tensor, torch.Tensor]] = {}  # RoPE angles per device
        self._head_cache: tuple[tuple[object, ...], torch.Tensor] | None = None  # lm_head weight, transposed
        self.apply(self._init_weights)
        # Scaled init of the projections into the residual stream (GPT-2): keeps the
        # residual's variance from growing with depth.
        for name, p in self.named_parameters():
            if name.endswith(("o_proj.weight", "down_proj.weight")):
                nn.init.normal_(p, mean=0.0, std=0.02 / math.sqrt(2 * cfg.n_layer))

    @staticmethod
    def _init_weights(module: nn.Module) -> None:
        if isinstance(module, (nn.Linear, nn.Embedding)):
            nn.init.normal_(module.weight, mean=0.0, std=0.02)

    def num_params(self) -> int:
        return sum(p.numel() for p in self.parameters())

    def _mask(self, T: int, S: int, past: int, device: torch.device) -> torch.Tensor:
        """Causal mask (T, S) for T new positions after `past` cached ones (cached per shape)."""
        key = (T, S, past)
        if key not in self._masks:
            q = torch.arange(past, past + T, device=device)[:, None]
            k = torch.arange(S, device=device)[None, :]
            self._masks[key] = k <= q
            if len(self._masks) > 64:
                self._masks.pop(next(iter(self._masks)))
        return self._masks[key]

    def forward(
        self,
        idx: torch.Tensor,
        *,
        position_ids: torch.Tensor | None = None,
        doc_ids: torch.Tensor | None = None,
        cache: KVCache | SlotKVCache | None = None,
        select: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Logits (B, T, vocab) for token ids idx (B, T).

        position_ids (B, T): positions for RoPE (default: 0..T-1 after the cache's length).
        doc_ids (B, T): document of each position in a packed row; attention stays within
        a document (block-diagonal causal mask). Not with a cache.
        cache: a KVCache (every row at the same length) or a SlotKVCache (rows of their
        own lengths, for continuous batching); the new tokens' keys/values are appended.
        select (B, T) bool: logits only at these positions, (N, vocab) in row-major order.
        A loss on a few targets (SFT trains on the assistant's tokens, under half of a
        row) then skips the output head, a quarter of the model's matmuls at 14M
        parameters, and the full-vocabulary softmax at every other position.
        """
        B, T = idx.shape
        past = cache.length if isinstance(cache, KVCache) else 0
        if T + past > self.cfg.block_size and position_ids is None:
            raise ValueError(f"sequence of {T + past} tokens is longer than block_size {self.cfg.block_size}")
        if isinstance(cache, SlotKVCache):
            cache.begin(T, idx.device)
        # Default positions are 0..T-1 after the cache's length, within block_size (checked
        # above): known to be in the table without reading them back (a sync, and a graph
        # break under torch.compile).
        in_table = position_ids is None and not isinstance(cache, SlotKVCache)
        if position_ids is None:
            if cache is not None:
                position_ids = cache.positions(B, T, idx.device)
            else:
                position_ids = torch.arange(T, device=idx.device)[None, :].expand(B, T)
        x = self.model.embed_tokens(idx)  # (B, T, C)
        if in_table or int(position_ids.max()) < self.cfg.block_size:  # the usual case: look the angles up
            cos_t, sin_t = self._rope_table(idx.device)
            cos, sin = cos_t[position_ids], sin_t[position_ids]
        else:
            cos, sin = rope_tables(self.cfg.head_dim, position_ids, self.cfg.rope_theta)
        # (B, 1, T, D): broadcast over heads; in the activations' dtype, so no float32 copies
        cos, sin = cos[:, None].to(x.dtype), sin[:, None].to(x.dtype)
        mask: torch.Tensor | None
        if doc_ids is not None:
            if cache is not None:
                raise ValueError("doc_ids (packed rows) cannot be used with a KV cache")
            causal = self._mask(T, T, 0, idx.device)
            mask = (causal[None] & (doc_ids[:, :, None] == doc_ids[:, None, :]))[:, None]  # (B, 1, T, T)
        elif isinstance(cache, SlotKVCache):
            mask = cache.mask(T, idx.device)  # (B, 1, T, S): each row its own length
        else:
            mask = self._mask(T, past + T, past, idx.device)
        spans = None
        if attention_kernel(self.cfg, idx.device) == "manual":  # built once here, not in every layer
            if cache is None and T > ATTN_CHUNK:
                # A plain causal mask's spans are known from T (packed rows' depend on their documents).
                spans = attention_spans(mask) if doc_ids is not None else causal_spans(T)
            mask = attention_bias(mask, x.dtype, B, self.cfg.n_head)
        for block in self.model.layers:
            x = block(x, cos, sin, mask, cache, spans)
        if cache is not None:
            cache.advance(T)
        x = self.model.norm(x)
        if select is not None:
            return self.lm_head(x[select])  # (N, vocab)
        if x.shape[0] * x.shape[1] <= 2 and torch.is_inference_mode_enabled() and type(self.lm_head) is nn.Linear:
            # Decoding one token: the output head is a matrix-vector product over the whole
            # vocabulary, ~3x faster on the CPU with the weight stored input-major (a 384 x
            # 8192 head: 0.6 vs 1.6 ms). The transposed copy is remade when the weight changes.
            return x @ self._head_t()
        return self.lm_head(x)  # (B, T, vocab)

    def _head_t(self) -> torch.Tensor:
        w = self.lm_head.weight
        key = (w.data_ptr(), w._version, w.dtype, w.device)
        if self._head_cache is None or self._head_cache[0] != key:
            self._head_cache = (key, w.detach().t().contiguous())
        return self._head_cache[1]

    def _rope_table(self, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
        """cos, sin (block_size, head_dim) of every position, computed once per device."""
        if device not in self._rope:
            positions = torch.arange(self.cfg.block_size, device=device)
            self._rope[device] = rope_tables(self.cfg.head_dim, positions, self.cfg.rope_theta)
        return self._rope[device]


def cross_entropy(logits: torch.Tensor, targets: torch.Tensor, ignore_index: int = -100) -> torch.Tensor:
    """Mean token cross entropy in float32 (targets == ignore_index are skipped)."""
    return F.cross_entropy(logits.float().view(-1, logits.size(-1)), targets.reshape(-1), ignore_index=ignore_index)
