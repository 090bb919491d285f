"""An independent reference for GGUF files: a Llama forward pass in numpy, straight from the
file's tensors, with llama.cpp's own rotary layout (adjacent pairs rotated, on the permuted
query/key rows). It shares nothing with chatforge or transformers but `gguf`'s reader and
dequantizer, so a model imported through them that agrees with it was converted right."""

from __future__ import annotations

from pathlib import Path

import numpy as np


def read_gguf(path: Path) -> tuple[dict[str, object], dict[str, np.ndarray]]:
    """(metadata, float32 tensors in numpy's (rows, columns) order) of a GGUF file."""
    from gguf import GGUFReader
    from gguf.quants import dequantize

    reader = GGUFReader(str(path))
    meta = {k: f.contents() for k, f in reader.fields.items() if not k.startswith("tokenizer.")}
    tensors = {}
    for t in reader.tensors:
        # ReaderTensor.shape is in ggml's order (columns first): reversed for numpy.
        shape = [int(x) for x in reversed(t.shape)]
        tensors[t.name] = np.asarray(dequantize(t.data, t.tensor_type), dtype=np.float32).reshape(shape)
    return meta, tensors


def _rms_norm(x: np.ndarray, w: np.ndarray, eps: float) -> np.ndarray:
    return x / np.sqrt((x.astype(np.float64) ** 2).mean(-1, keepdims=True) + eps).astype(np.float32) * w


def _rope_adjacent(x: np.ndarray, theta: float) -> np.ndarray:
    """x (T, H, D): rotate each adjacent pair (2i, 2i+1) at position t by t * theta^(-2i/D)."""
    T, _, D = x.shape
    freqs = theta ** (-np.arange(0, D, 2, dtype=np.float64) / D)  # (D/2,)
    ang = np.arange(T, dtype=np.float64)[:, None] * freqs[None, :]  # (T, D/2)
    cos, sin = np.cos(ang)[:, None, :], np.sin(ang)[:, None, :]
    a, b = x[..., 0::2].astype(np.float64), x[..., 1::2].astype(np.float64)
    out = np.empty(x.shape, dtype=np.float64)
    out[..., 0::2] = a * cos - b * sin
    out[..., 1::2] = a * sin + b * cos
    return out.astype(np.float32)


def forward(meta: dict[str, object], w: dict[str, np.ndarray], ids: list[int]) -> np.ndarray:
    """Logits (T, vocab) of token ids under the Llama GGUF in (meta, w)."""
    n_layer = int(meta["llama.block_count"])  # type: ignore[arg-type]
    n_head = int(meta["llama.attention.head_count"])  # type: ignore[arg-type]
    n_kv = int(meta["llama.attention.head_count_kv"])  # type: ignore[arg-type]
    eps = float(meta["llama.attention.layer_norm_rms_epsilon"])  # type: ignore[arg-type]
    theta = float(meta.get("llama.rope.freq_base", 10000.0))  # type: ignore[arg-type]
    x = w["token_embd.weight"][ids]  # (T, C)
    T, C = x.shape
    D = C // n_head
    causal = np.triu(np.full((T, T), -np.inf, dtype=np.float32), 1)
    for i in range(n_layer):
        p = f"blk.{i}."
        h = _rms_norm(x, w[p + "attn_norm.weight"], eps)
        q = _rope_adjacent((h @ w[p + "attn_q.weight"].T).reshape(T, n_head, D), theta)
        k = _rope_adjacent((h @ w[p + "attn_k.weight"].T).reshape(T, n_kv, D), theta)
        v = (h @ w[p + "attn_v.weight"].T).reshape(T, n_kv, D)
        k, v = np.repeat(k, n_head // n_kv, axis=1), np.repeat(v, n_head // n_kv, axis=1)
        att = np.einsum("thd,shd->hts", q, k) / np.sqrt(D) + causal  # (H, T, T)
        att = np.exp(att - att.max(-1, keepdims=True))
        att /= att.sum(-1, keepdims=True)
        y = np.einsum("hts,shd->thd", att, v).reshape(T, C)
        x = x + y @ w[p + "attn_output.weight"].T
        h = _rms_norm(x, w[p + "ffn_norm.weight"], eps)
        gate = h @ w[p + "ffn_gate.weight"].T
        x = x + ((gate / (1 + np.exp(-gate))) * (h @ w[p + "ffn_up.weight"].T)) @ w[p + "ffn_down.weight"].T
    x = _rms_norm(x, w["output_norm.weight"], eps)
    head = w.get("output.weight", w["token_embd.weight"])
    return x @ head.T
