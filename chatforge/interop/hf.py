"""Hugging Face interop: import a Llama-family model dir; export a model dir for `transformers`.

    chatforge import path/to/SmolLM2-135M-Instruct --out models/smollm2
    chatforge export --model runs/sft/model --format hf --out exports/my-assistant

Our model dir is already a Hugging Face dir (a `LlamaForCausalLM` config.json, safetensors
under HF's parameter names, tokenizer.json + tokenizer_config.json with the chat template),
so both directions are mostly checks: import refuses what we cannot run faithfully (custom
code, pickles, biases, sliding windows, rope scaling) with a message that says what is
supported, and keeps the model's own tokenizer and chat template; export writes the files
`transformers` reads, without chatforge's own lineage file, in float32 or bfloat16.
"""

from __future__ import annotations

import json
import shutil
import tempfile
from pathlib import Path
from typing import Any

import torch

from chatforge.atomic import atomic_write_json, staged_dir
from chatforge.checkpoint import (
    check_weights,
    is_model_dir,
    load_model_dir,
    model_state,
    read_object,
    save_model_dir,
    save_tensors,
)
from chatforge.errors import UserError
from chatforge.model import GPT
from chatforge.tokenizer import Tokenizer
from chatforge.ui import QUIET, UI

SUPPORTED = (
    "supported: LlamaForCausalLM (Llama, SmolLM/SmolLM2, TinyLlama, ...) and MistralForCausalLM without "
    "sliding-window attention, in safetensors; not Qwen2 (attention biases) or other architectures"
)
ARCHITECTURES = {"LlamaForCausalLM": "llama", "MistralForCausalLM": "mistral"}
PICKLES = ("*.bin", "*.pt", "*.pth", "*.ckpt", "*.pkl")
HF_FILES = ("config.json", "generation_config.json", "tokenizer.json", "tokenizer_config.json", "special_tokens_map.json")


def check_hf_source(src: Path) -> dict[str, Any]:
    """The config.json of a HF model dir we can import; a UserError naming the problem otherwise."""
    cfg_path = src / "config.json"
    if not src.is_dir():
        raise UserError(f"{src}: no such directory (give a Hugging Face model dir or a .gguf file)")
    if not cfg_path.is_file():
        raise UserError(f"{src}: not a Hugging Face model dir (no config.json)")
    cfg = read_object(cfg_path)
    tok_cfg_path = src / "tokenizer_config.json"
    tok_cfg = read_object(tok_cfg_path) if tok_cfg_path.is_file() else {}
    for path, c in ((cfg_path, cfg), (tok_cfg_path, tok_cfg)):
        if c.get("auto_map") or c.get("trust_remote_code"):
            raise UserError(f"{path}: the model needs its own Python code (auto_map / trust_remote_code), which chatforge never runs; {SUPPORTED}")
    archs = cfg.get("architectures")
    arch = archs[0] if isinstance(archs, list) and archs and isinstance(archs[0], str) else None
    if arch not in ARCHITECTURES or cfg.get("model_type") not in (ARCHITECTURES.get(arch), None):
        raise UserError(f"{cfg_path}: architecture {arch!r} (model_type {cfg.get('model_type')!r}) is not supported; {SUPPORTED}")
    if cfg.get("attention_bias") or cfg.get("mlp_bias"):
        raise UserError(f"{cfg_path}: attention/MLP biases are not supported; {SUPPORTED}")
    has_safetensors = (src / "model.safetensors").is_file() or (src / "model.safetensors.index.json").is_file()
    if not has_safetensors:
        pickled = sorted(p.name for pattern in PICKLES for p in src.glob(pattern))
        if pickled:
            raise UserError(
                f"{src}: the weights are pickled ({', '.join(pickled[:3])}); unpickling can run arbitrary code, so chatforge "
                "never loads them: convert them to safetensors with a tool you trust, or use the model's safetensors release"
            )
        raise UserError(f"{src}: no model.safetensors (or model.safetensors.index.json for sharded weights)")
    if not (src / "tokenizer.json").is_file():
        what = " (only a SentencePiece tokenizer.model)" if (src / "tokenizer.model").is_file() else ""
        raise UserError(f"{src}: no tokenizer.json{what}; save the tokenizer with transformers' fast tokenizer first")
    return dict(cfg)


def write_imported(out: Path, model: GPT, tok: Tokenizer, info: dict[str, Any], *, overwrite: bool) -> Path:
    """Save an imported model and its tokenizer as a model dir (atomically)."""
    tok.model_max_length = model.cfg.block_size
    with tempfile.TemporaryDirectory() as tmp:
        tok.save(tmp)
        return save_model_dir(out, model, tokenizer_dir=tmp, info=info, overwrite=overwrite)


def limit_context(model: GPT, block_size: int) -> None:
    """Keep a shorter context than the model's own (RoPE needs no change: positions are just fewer)."""
    if block_size:
        if block_size > model.cfg.block_size:
            raise UserError(f"block_size: {block_size} is longer than the model's context ({model.cfg.block_size})")
        model.cfg.block_size = block_size
        model._rope.clear()


def import_hf(src: Path, out: Path, *, block_size: int = 0, overwrite: bool = False, ui: UI = QUIET) -> Path:
    """Import a Llama-family HF dir as a model dir; returns `out`."""
    check_weights(src, check_hf_source(src))
    model = load_model_dir(src)
    tok = Tokenizer.load(src)
    if tok.vocab_size > model.cfg.vocab_size:
        raise UserError(f"{src}: the tokenizer has {tok.vocab_size} tokens but the model only {model.cfg.vocab_size} embeddings")
    limit_context(model, block_size)
    write_imported(out, model, tok, {"imported_from": str(src), "source_format": "hf"}, overwrite=overwrite)
    ui.note(f"import: {model.num_params() / 1e6:.1f}M parameters, {tok.vocab_size:,} tokens, context {model.cfg.block_size} -> {out}")
    return out


def export_hf(model_dir: Path, out: Path, *, dtype: str = "f32", overwrite: bool = False, ui: UI = QUIET) -> Path:
    """Write `model_dir` as a plain HF dir (`transformers` loads it; its chat template renders ours)."""
    model = load_model_dir(model_dir)
    Tokenizer.load(model_dir)  # a clear error now if the tokenizer is unusable
    torch_dtype = {"f32": torch.float32, "bf16": torch.bfloat16}[dtype or "f32"]
    with staged_dir(out, overwrite=overwrite, replaceable=is_model_dir, what="a model dir") as tmp:
        for name in HF_FILES:
            if (model_dir / name).is_file():
                shutil.copyfile(model_dir / name, tmp / name)
        config = json.loads((tmp / "config.json").read_text(encoding="utf-8"))
        config["torch_dtype"] = str(torch_dtype).removeprefix("torch.")
        atomic_write_json(tmp / "config.json", config)
        state = {k: v.to(torch_dtype) for k, v in model_state(model).items()}
        save_tensors(state, tmp / "model.safetensors", metadata={"format": "pt"})
    ui.note(f"export: {model.num_params() / 1e6:.1f}M parameters ({dtype or 'f32'}) -> {out} (a transformers model dir)")
    return out
