"""Configs of `chatforge import` and `chatforge export`, in a module without torch (so `--help` stays fast)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from chatforge.config import opt
from chatforge.errors import ConfigError

FORMATS = ("hf", "gguf", "ollama")
GGUF_TYPES = ("f32", "f16", "q8_0")


@dataclass
class ImportConfig:
    """`chatforge import`: a Llama-family model (Hugging Face dir or .gguf file) as a chatforge model dir.

    Supported: LlamaForCausalLM (Llama, SmolLM/SmolLM2, TinyLlama, ...) and MistralForCausalLM
    without sliding-window attention, from safetensors (sharded too); GGUF files of the
    `llama` architecture with F32/F16/BF16/Q8_0/Q4_0/Q4_1 tensors. Not supported: models
    that need custom code (trust_remote_code), pickled weights (.bin/.pt), attention biases
    (Qwen2), rope scaling. The model keeps its own tokenizer and chat template."""

    src: str = opt("", "a Hugging Face model dir (config.json + safetensors + tokenizer.json) or a .gguf file", positional=True, required=True, metavar="SRC")
    out: str = opt("", "the model dir to write", required=True, metavar="DIR")
    block_size: int = opt(0, "context length to keep (0 = the model's own); a smaller one saves KV-cache memory", ge=0)
    overwrite: bool = opt(False, "replace OUT if it is a model dir")


@dataclass
class ExportConfig:
    """`chatforge export`: a model dir as a plain Hugging Face dir, a GGUF file (llama.cpp), or a GGUF + Modelfile (Ollama)."""

    model: str = opt("", "the model dir to export", required=True, metavar="DIR")
    format: Literal["hf", "gguf", "ollama"] = opt("hf", "hf (transformers dir), gguf (one file) or ollama (a dir with model.gguf and a Modelfile)")
    out: str = opt("", "output: a dir for hf and ollama, a .gguf file for gguf", required=True, metavar="PATH")
    dtype: str = opt("", "weights: f32 or bf16 for hf (default f32); f32, f16 or q8_0 for gguf/ollama (default f16)")
    overwrite: bool = opt(False, "replace OUT if it is what this command writes")

    def validate(self) -> None:
        if self.format not in FORMATS:
            raise ConfigError(f"format: must be one of {', '.join(FORMATS)}; got {self.format!r}")
        allowed = ("f32", "bf16") if self.format == "hf" else GGUF_TYPES
        if self.dtype and self.dtype not in allowed:
            raise ConfigError(f"dtype: for --format {self.format} must be one of {', '.join(allowed)}; got {self.dtype!r}")
