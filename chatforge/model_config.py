"""The GPT's configuration, without torch: what `chatforge.model` builds and what command-line
tools read and validate (so `chatforge --help` and the data commands never import torch)."""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Any, Literal

from chatforge.config import check_range, opt
from chatforge.errors import ConfigError


@dataclass
class ModelConfig:
    """Size and shape of the GPT (Llama architecture)."""

    vocab_size: int = opt(8192, "vocabulary size (set from the tokenizer)", ge=8, le=2**24)
    n_layer: int = opt(6, "transformer blocks", ge=1, le=256)
    n_embd: int = opt(384, "model width (hidden size)", ge=8, le=2**16)
    n_head: int = opt(6, "query heads", ge=1, le=2**12)
    n_kv_head: int = opt(0, "key/value heads (grouped-query attention); 0 = n_head", ge=0, le=2**12)
    intermediate_size: int = opt(0, "MLP hidden size; 0 = about 8/3 x n_embd, a multiple of 64", ge=0, le=2**18)
    block_size: int = opt(256, "longest sequence (context window) in tokens", ge=8, le=2**24)
    rope_theta: float = opt(10000.0, "RoPE base frequency", gt=0)
    norm_eps: float = opt(1e-5, "RMSNorm epsilon", gt=0)
    tie_embeddings: bool = opt(True, "share the input embedding and output projection weights")
    dropout: float = opt(0.0, "dropout on attention probabilities and residual branches", ge=0, lt=1)
    attention: Literal["auto", "sdpa", "manual"] = opt("auto", "attention kernel: auto (manual on CPU, sdpa on GPU), sdpa (torch) or manual (explicit softmax)")

    def __post_init__(self) -> None:
        if self.n_kv_head == 0:
            self.n_kv_head = self.n_head
        if self.intermediate_size == 0:
            self.intermediate_size = 64 * math.ceil(8 * self.n_embd / 3 / 64)

    def validate(self) -> None:
        if self.n_embd % self.n_head:
            raise ConfigError(f"model.n_embd: must be a multiple of model.n_head ({self.n_head}), got {self.n_embd}")
        if self.n_head % self.n_kv_head:
            raise ConfigError(f"model.n_kv_head: must divide model.n_head ({self.n_head}), got {self.n_kv_head}")
        if (self.n_embd // self.n_head) % 2:
            raise ConfigError(f"model.n_embd / model.n_head: the head size must be even for rotary embeddings, got {self.n_embd // self.n_head}")
        if self.attention not in ("auto", "sdpa", "manual"):
            raise ConfigError(f"model.attention: must be one of auto, sdpa, manual; got {self.attention!r}")

    @property
    def head_dim(self) -> int:
        return self.n_embd // self.n_head

    def num_params(self) -> int:
        """Parameter count (tied embeddings counted once)."""
        d, f, v = self.n_embd, self.intermediate_size, self.vocab_size
        kv = self.n_kv_head * self.head_dim
        block = 2 * d * d + 2 * d * kv + 3 * d * f + 2 * d
        return v * d * (1 if self.tie_embeddings else 2) + self.n_layer * block + d

    def to_hf(self, **extra: Any) -> dict[str, Any]:
        """The `config.json` of a Hugging Face `LlamaForCausalLM` with this shape."""
        return {
            "architectures": ["LlamaForCausalLM"],
            "model_type": "llama",
            "vocab_size": self.vocab_size,
            "hidden_size": self.n_embd,
            "intermediate_size": self.intermediate_size,
            "num_hidden_layers": self.n_layer,
            "num_attention_heads": self.n_head,
            "num_key_value_heads": self.n_kv_head,
            "head_dim": self.head_dim,
            "max_position_embeddings": self.block_size,
            "rope_theta": self.rope_theta,
            "rms_norm_eps": self.norm_eps,
            "tie_word_embeddings": self.tie_embeddings,
            "hidden_act": "silu",
            "attention_bias": False,
            "mlp_bias": False,
            "attention_dropout": self.dropout,
            "torch_dtype": "float32",
            **extra,
        }

    @staticmethod
    def from_hf(cfg: dict[str, Any]) -> ModelConfig:
        """A ModelConfig from a Llama-family `config.json` (errors name the unsupported field)."""
        if not isinstance(cfg, dict):
            raise ConfigError(f"config.json: expected a JSON object, got {type(cfg).__name__}")
        if cfg.get("attention_bias") or cfg.get("mlp_bias"):
            raise ConfigError("config.json: attention/MLP biases are not supported (Llama-style models have none)")
        if cfg.get("hidden_act", "silu") != "silu":
            raise ConfigError(f"config.json: hidden_act {cfg.get('hidden_act')!r} is not supported (expected silu)")
        scaling = cfg.get("rope_scaling")
        if scaling not in (None, {}) and (not isinstance(scaling, dict) or scaling.get("rope_type", scaling.get("type")) not in (None, "default")):
            raise ConfigError(f"config.json: rope_scaling {scaling!r} is not supported")
        bounds = {f.name: f.metadata for f in dataclasses.fields(ModelConfig)}

        def num(key: str, field: str, kind: type, default: Any = None) -> Any:
            # A number of the right kind within the field's range: a downloaded config.json
            # is outside input, and a size in it is allocated (0 heads divide by zero).
            v = cfg.get(key)
            if v is None:
                v = default
            if v is None:
                raise ConfigError(f"config.json: {key}: required")
            integral = isinstance(v, int) or (isinstance(v, float) and v.is_integer())
            if isinstance(v, bool) or not isinstance(v, (int, float)) or (kind is int and not integral):
                raise ConfigError(f"config.json: {key}: must be {'an integer' if kind is int else 'a number'}, got {v!r}")
            problem = check_range(v, bounds[field])
            if problem is None and kind is float and abs(v) > 1e308:
                problem = f"too large, got {v}"  # (an int past a float's range)
            if problem:
                raise ConfigError(f"config.json: {key}: {problem}")
            return kind(v)

        n_head = num("num_attention_heads", "n_head", int)
        hidden = num("hidden_size", "n_embd", int)
        if cfg.get("head_dim") not in (None, hidden // n_head):
            raise ConfigError(f"config.json: head_dim {cfg['head_dim']} != hidden_size / num_attention_heads")
        rope = cfg.get("rope_parameters")
        theta = rope.get("rope_theta", 10000.0) if isinstance(rope, dict) else 10000.0
        out = ModelConfig(
            vocab_size=num("vocab_size", "vocab_size", int),
            n_layer=num("num_hidden_layers", "n_layer", int),
            n_embd=hidden,
            n_head=n_head,
            n_kv_head=num("num_key_value_heads", "n_kv_head", int, n_head),
            intermediate_size=num("intermediate_size", "intermediate_size", int),
            block_size=num("max_position_embeddings", "block_size", int, 2048),
            rope_theta=num("rope_theta", "rope_theta", float, theta),
            norm_eps=num("rms_norm_eps", "norm_eps", float, 1e-5),
            tie_embeddings=bool(cfg.get("tie_word_embeddings", False)),
        )
        out.validate()
        return out


# The weights' dtype to generate with (`chat`, `serve`; see engine.generation_dtype).
GENERATION_DTYPES = ("auto", "float32", "bfloat16")
DTYPE_HELP = "weights: auto (bfloat16 on GPUs, float32 on CPUs), float32, bfloat16 (on a CPU with native bf16: faster decoding from ~3M parameters, slightly different replies)"


def check_dtype(dtype: str) -> None:
    if dtype not in GENERATION_DTYPES:
        raise ConfigError(f"dtype: {dtype!r}; expected auto, float32 or bfloat16")
