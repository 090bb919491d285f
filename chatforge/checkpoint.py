"""Model directories and training checkpoints: atomic, verifiable, never unpickled.

A **model dir** is a Hugging Face directory: `config.json` (a `LlamaForCausalLM` config),
`model.safetensors` (HF parameter names), `generation_config.json`, and the tokenizer's
`tokenizer.json` / `tokenizer_config.json`. `transformers.AutoModelForCausalLM.from_pretrained(dir)`
loads it; `load_model_dir` loads ours and Llama-family models alike.

A **checkpoint** is `RUN/checkpoints/step_NNNNNN/` holding everything needed to continue
exactly where training stopped:

    model.safetensors       the weights
    optimizer.safetensors   AdamW's per-parameter state (tensors only)
    rng.safetensors         torch's RNG state
    state.json              step, data position, best validation loss, optimizer
                            hyperparameters, Python's RNG state, ...
    meta.json               sha256 of every file above (written last)

It is written to a staging directory, fsynced and renamed into place; then
`checkpoints/latest` (a one-line file naming it) is replaced atomically. On resume,
`latest` is followed and the checkpoint's hashes are checked; a corrupt or partial one
is skipped with a warning and the newest complete one before it is used. Only
safetensors and JSON are read back: nothing is unpickled.
"""

from __future__ import annotations

import hashlib
import json
import os
import random
import re
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from chatforge.atomic import atomic_write_json, atomic_write_text, fsync_dir, fsync_tree, staged_dir
from chatforge.errors import ConfigError, UserError
from chatforge.model import GPT, ModelConfig

CHECKPOINTS = "checkpoints"
LATEST = "latest"
_STEP_DIR = re.compile(r"step_(\d{6,})")
TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json", "special_tokens_map.json")


# -- model directories ------------------------------------------------------------------


def save_tensors(tensors: dict[str, torch.Tensor], path: Path, metadata: dict[str, str] | None = None) -> None:
    """safetensors' save_file, with its I/O failures (a full disk) raised as the OSError they are,
    naming the file (safetensors reports them as SafetensorError: "... (os error 28)")."""
    try:
        save_file(tensors, str(path), metadata=metadata)
    except SafetensorError as e:
        m = re.search(r"I/O error: (.*?) \(os error (\d+)\)", str(e))
        if m is None:
            raise
        raise OSError(int(m.group(2)), m.group(1), str(path)) from None


def model_state(model: GPT) -> dict[str, torch.Tensor]:
    """The weights under HF names, contiguous, without the tied output head (safetensors
    refuses tensors that share memory; HF re-ties it from `tie_word_embeddings`)."""
    state = {k: v.detach().contiguous() for k, v in model.state_dict().items()}
    if model.cfg.tie_embeddings:
        state.pop("lm_head.weight", None)
    return state


def save_model_dir(
    out: str | Path,
    model: GPT,
    *,
    tokenizer_dir: str | Path | None,
    generation: dict[str, Any] | None = None,
    info: dict[str, Any] | None = None,
    overwrite: bool = False,
) -> Path:
    """Write a Hugging Face model dir (atomically). `info` goes to `chatforge.json` (lineage)."""
    out = Path(out)
    with staged_dir(out, overwrite=overwrite, replaceable=is_model_dir, what="a model dir") as tmp:
        write_model_files(tmp, model, tokenizer_dir=tokenizer_dir, generation=generation, info=info)
    return out


def write_model_files(
    directory: Path,
    model: GPT,
    *,
    tokenizer_dir: str | Path | None,
    generation: dict[str, Any] | None = None,
    info: dict[str, Any] | None = None,
) -> None:
    """The files of a model dir, into an existing (staging) directory."""
    tok_cfg: dict[str, Any] = {}
    if tokenizer_dir is not None:
        for name in TOKENIZER_FILES:
            src = Path(tokenizer_dir) / name
            if src.is_file():
                shutil.copyfile(src, directory / name)
        tok_cfg = json.loads((Path(tokenizer_dir) / "tokenizer_config.json").read_text(encoding="utf-8"))
    ids = _special_ids(tokenizer_dir)
    config = model.cfg.to_hf(**ids, torch_dtype="float32")
    atomic_write_json(directory / "config.json", config)
    save_tensors(model_state(model), directory / "model.safetensors", metadata={"format": "pt"})
    gen = {"bos_token_id": ids.get("bos_token_id"), "eos_token_id": ids.get("eos_token_id"), "pad_token_id": ids.get("pad_token_id")}
    gen.update(generation or {})
    atomic_write_json(directory / "generation_config.json", {k: v for k, v in gen.items() if v is not None})
    atomic_write_json(directory / "chatforge.json", {"model": model.cfg.__dict__, "chat_template": bool(tok_cfg.get("chat_template")), **(info or {})})


def _special_ids(tokenizer_dir: str | Path | None) -> dict[str, Any]:
    """bos/eos/pad ids for config.json, from tokenizer.json's added tokens; eos includes the end-of-turn token."""
    if tokenizer_dir is None:
        return {}
    cfg = json.loads((Path(tokenizer_dir) / "tokenizer_config.json").read_text(encoding="utf-8"))
    tok = json.loads((Path(tokenizer_dir) / "tokenizer.json").read_text(encoding="utf-8"))
    by_text = {t["content"]: t["id"] for t in tok.get("added_tokens", [])}
    out: dict[str, Any] = {}
    for key in ("bos_token", "eos_token", "pad_token"):
        text = cfg.get(key)
        if isinstance(text, dict):
            text = text.get("content")
        if isinstance(text, str) and text in by_text:
            out[f"{key}_id"] = by_text[text]
    end = by_text.get("<|end|>")
    if end is not None and "eos_token_id" in out:
        # A chat model stops at the end of its turn as well as at the end of text.
        out["eos_token_id"] = [out["eos_token_id"], end] if end != out["eos_token_id"] else end
    return out


def model_dir_hash(path: str | Path) -> str:
    """"sha256:..." over a model dir's files (names and contents, in name order, subdirectories
    included): the same weights, config and tokenizer give the same hash, so results and
    registry entries name exactly the model they came from."""
    directory = Path(path)
    h = hashlib.sha256()
    for f in sorted(p for p in directory.rglob("*") if p.is_file()):
        h.update(f.relative_to(directory).as_posix().encode("utf-8") + b"\x00")
        h.update(bytes.fromhex(_sha256(f)))
    return "sha256:" + h.hexdigest()


def is_model_dir(path: Path) -> bool:
    """Whether `path` looks like a model dir (so `--overwrite` may replace it)."""
    return (Path(path) / "config.json").is_file() and (
        (Path(path) / "model.safetensors").is_file() or (Path(path) / "model.safetensors.index.json").is_file()
    )


def read_object(path: Path) -> dict[str, Any]:
    """A JSON file holding an object; a UserError naming the file otherwise."""
    try:
        value = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError, RecursionError) as e:  # ValueError: bad JSON or UTF-8
        raise UserError(f"{path}: unreadable: {e}") from None
    if not isinstance(value, dict):
        raise UserError(f"{path}: expected a JSON object, got {type(value).__name__}")
    return value


def weight_files(src: Path) -> list[Path]:
    """model.safetensors, or the shards model.safetensors.index.json lists (files in `src`)."""
    if (src / "model.safetensors").is_file():
        return [src / "model.safetensors"]
    index_path = src / "model.safetensors.index.json"
    weight_map = read_object(index_path).get("weight_map")
    if not isinstance(weight_map, dict) or not all(isinstance(f, str) for f in weight_map.values()):
        raise UserError(f"{index_path}: weight_map must map tensor names to shard file names")
    names = sorted(set(weight_map.values()))
    bad = [f for f in names if Path(f).name != f or f in ("", ".", "..") or not (src / f).is_file()]
    if bad:
        raise UserError(f"{index_path}: shard {bad[0]!r} is not a file in {src}")
    return [src / f for f in names]


def check_weights(src: Path, config: dict[str, Any]) -> None:
    """config.json against the safetensors headers (tensor names and shapes), before any
    weight is allocated: a config declaring a model far larger than its files is a clear
    error, not an out-of-memory kill (the headers themselves are checked against the file
    sizes by safetensors)."""
    from safetensors import safe_open

    try:
        cfg = ModelConfig.from_hf(config)
    except ConfigError as e:  # it names "config.json: field"; say which one
        raise ConfigError(f"{src}/{e}") from None
    with torch.device("meta"):  # shapes only: nothing allocated
        want = {k: tuple(v.shape) for k, v in model_state(GPT(cfg)).items()}
    got: dict[str, tuple[int, ...]] = {}
    for path in weight_files(src):
        try:
            with safe_open(str(path), "pt") as f:
                for name in f.keys():  # noqa: SIM118 (a safetensors handle, not a dict)
                    got[name] = tuple(f.get_slice(name).get_shape())
        except (SafetensorError, OSError) as e:
            raise UserError(f"{path}: cannot read the weights: {e}") from None
    if cfg.tie_embeddings:
        got.pop("lm_head.weight", None)
    missing, unexpected = sorted(set(want) - set(got)), sorted(set(got) - set(want))
    if missing or unexpected:
        raise UserError(f"{src}: weights do not match config.json: missing {missing[:3]}, unexpected {unexpected[:3]}")
    for name, shape in got.items():
        if shape != want[name]:
            raise UserError(f"{src}: {name} has shape {shape}, config.json implies {want[name]}")


def read_state(directory: Path) -> dict[str, torch.Tensor]:
    """Tensors of a model dir: `model.safetensors`, or the shards listed in its index."""
    if not (directory / "model.safetensors").is_file() and not (directory / "model.safetensors.index.json").is_file():
        if any(directory.glob("*.bin")) or any(directory.glob("*.pt")):
            raise UserError(f"{directory}: weights are in a pickle format (.bin/.pt), which is never loaded here; convert them to safetensors")
        raise UserError(f"{directory}: no model.safetensors")
    state: dict[str, torch.Tensor] = {}
    for path in weight_files(directory):
        try:
            state.update(load_file(str(path)))
        except (SafetensorError, OSError, ValueError) as e:
            raise UserError(f"{path}: cannot read the weights: {e}") from None
    return state


def load_model_dir(path: str | Path, *, dtype: torch.dtype = torch.float32, device: str | torch.device = "cpu") -> GPT:
    """A GPT from a model dir (ours, or a Llama-family HF dir); errors name what is wrong."""
    directory = Path(path)
    cfg_path = directory / "config.json"
    if not cfg_path.is_file():
        raise UserError(f"{directory}: not a model dir (no config.json)")
    hf = read_object(cfg_path)
    if hf.get("auto_map"):
        raise UserError(f"{cfg_path}: the model needs custom code (auto_map / trust_remote_code), which is never run")
    arch = (hf.get("architectures") or ["?"])[0]
    if hf.get("model_type") not in ("llama", "mistral", None) or arch not in ("LlamaForCausalLM", "MistralForCausalLM"):
        raise UserError(f"{cfg_path}: architecture {arch!r} ({hf.get('model_type')!r}) is not supported; expected the Llama family")
    if hf.get("sliding_window") not in (None, 0) and hf.get("use_sliding_window", True):
        raise UserError(f"{cfg_path}: sliding-window attention is not supported")
    extra = read_object(directory / "chatforge.json") if (directory / "chatforge.json").is_file() else {}
    check_weights(directory, hf)  # shapes from the safetensors headers, before anything is allocated
    cfg = ModelConfig.from_hf(hf)
    if isinstance(extra.get("model"), dict):
        cfg.dropout = float(extra["model"].get("dropout", 0.0))
    model = GPT(cfg)
    state = read_state(directory)
    if cfg.tie_embeddings:
        state.pop("lm_head.weight", None)
    expected = set(model_state(model))
    missing, unexpected = sorted(expected - set(state)), sorted(set(state) - expected)
    if missing or unexpected:
        raise UserError(f"{directory}: weights do not match config.json: missing {missing[:3]}, unexpected {unexpected[:3]}")
    for name, tensor in state.items():
        want = model.state_dict()[name].shape
        if tuple(tensor.shape) != tuple(want):
            raise UserError(f"{directory}: {name} has shape {tuple(tensor.shape)}, config.json implies {tuple(want)}")
    model.load_state_dict(state, strict=False)
    return model.to(device=device, dtype=dtype)


# -- training checkpoints -------------------------------------------------------------------


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def optimizer_tensors(optimizer: torch.optim.Optimizer) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """AdamW state as (tensors for safetensors, JSON-able rest)."""
    sd = optimizer.state_dict()
    tensors: dict[str, torch.Tensor] = {}
    scalars: dict[str, dict[str, Any]] = {}
    for idx, st in sd["state"].items():
        for key, value in st.items():
            if torch.is_tensor(value):
                tensors[f"{idx}.{key}"] = value.detach().contiguous().clone()
            else:
                scalars.setdefault(str(idx), {})[key] = value
    return tensors, {"param_groups": sd["param_groups"], "scalars": scalars}


def load_optimizer(optimizer: torch.optim.Optimizer, tensors: dict[str, torch.Tensor], rest: dict[str, Any]) -> None:
    state: dict[int, dict[str, Any]] = {}
    for name, value in tensors.items():
        idx, key = name.split(".", 1)
        state.setdefault(int(idx), {})[key] = value
    for idx, values in rest.get("scalars", {}).items():
        state.setdefault(int(idx), {}).update(values)
    optimizer.load_state_dict({"state": state, "param_groups": rest["param_groups"]})


def rng_state() -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """torch's and Python's RNG states, as (tensors, JSON-able)."""
    version, internal, gauss = random.getstate()
    return {"torch": torch.get_rng_state()}, {"python": [version, list(internal), gauss]}


def set_rng_state(tensors: dict[str, torch.Tensor], rest: dict[str, Any]) -> None:
    torch.set_rng_state(tensors["torch"])
    version, internal, gauss = rest["python"]
    random.setstate((version, tuple(internal), gauss))


def save_checkpoint(
    run_dir: Path,
    step: int,
    model: GPT,
    optimizer: torch.optim.Optimizer,
    state: dict[str, Any],
    *,
    keep_last: int = 2,
    keep: set[str] | None = None,
    after_write: Callable[[Path], None] | None = None,
    weights: dict[str, torch.Tensor] | None = None,
) -> Path:
    """Write checkpoint `step_NNNNNN` atomically, point `latest` at it, prune old ones.

    `keep` names checkpoints never pruned (e.g. the best by validation loss).
    `after_write` (tests) runs when the files are written but not yet renamed into place.
    `weights` replaces the model's own state (the fp32 masters of a bf16 model).
    """
    ckdir = run_dir / CHECKPOINTS
    ckdir.mkdir(parents=True, exist_ok=True)
    name = f"step_{step:06d}"
    target = ckdir / name
    opt_tensors, opt_rest = optimizer_tensors(optimizer)
    rng_tensors, rng_rest = rng_state()
    with staged_dir(target, overwrite=True, replaceable=lambda p: True, what="a checkpoint") as tmp:
        save_tensors(weights if weights is not None else model_state(model), tmp / "model.safetensors")
        save_tensors(opt_tensors, tmp / "optimizer.safetensors")
        save_tensors(rng_tensors, tmp / "rng.safetensors")
        (tmp / "state.json").write_text(json.dumps({**state, "step": step, "optimizer": opt_rest, "rng": rng_rest}), encoding="utf-8")
        files = ("model.safetensors", "optimizer.safetensors", "rng.safetensors", "state.json")
        fsync_tree(tmp)
        meta: dict[str, Any] = {"step": step, "sha256": {f: _sha256(tmp / f) for f in files}}
        (tmp / "meta.json").write_text(json.dumps({**meta, "meta_sha256": _meta_digest(meta)}), encoding="utf-8")
        if after_write is not None:
            after_write(tmp)
    atomic_write_text(ckdir / LATEST, name + "\n")
    prune_checkpoints(ckdir, keep_last, keep or set())
    return target


def prune_checkpoints(ckdir: Path, keep_last: int, keep: set[str]) -> None:
    """Delete all but the newest `keep_last` checkpoints and those named in `keep`."""
    steps = sorted((p for p in ckdir.iterdir() if _STEP_DIR.fullmatch(p.name)), key=lambda p: p.name)
    for p in steps[: max(0, len(steps) - keep_last)]:
        if p.name not in keep:
            # Renamed out of the checkpoints' names first: a process killed while deleting
            # leaves a `.deleting` dir (removed by the next prune), never a half-deleted step_ dir.
            trash = ckdir / f".{p.name}.deleting"
            shutil.rmtree(trash, ignore_errors=True)
            os.rename(p, trash)
    fsync_dir(ckdir)
    for trash in ckdir.glob(".step_*.deleting"):
        shutil.rmtree(trash, ignore_errors=True)


def _meta_digest(meta: dict[str, Any]) -> str:
    """meta.json's own checksum (over its other fields), so a flipped byte there is caught too."""
    return hashlib.sha256(json.dumps({k: meta[k] for k in ("step", "sha256")}, sort_keys=True).encode()).hexdigest()


CHECKPOINT_FILES = frozenset({"model.safetensors", "optimizer.safetensors", "rng.safetensors", "state.json"})


def verify_checkpoint(path: Path) -> str | None:
    """None if the checkpoint is complete and intact, else what is wrong."""
    meta_path = path / "meta.json"
    if not meta_path.is_file():
        return "no meta.json (partial write)"
    try:
        meta = json.loads(meta_path.read_text(encoding="utf-8"))
        # Checkpoints of older versions have no checksum of meta.json; any other set of
        # fields is corruption (a flipped byte in the name "meta_sha256" must not make a
        # checkpoint pass for an old one).
        if set(meta) not in ({"step", "sha256", "meta_sha256"}, {"step", "sha256"}):
            return f"meta.json has the fields {sorted(meta)}, not a checkpoint's (corrupt)"
        if "meta_sha256" in meta and meta["meta_sha256"] != _meta_digest(meta):
            return "meta.json does not match its own sha256 (corrupt)"
        if set(meta["sha256"]) != CHECKPOINT_FILES:
            return f"meta.json lists {sorted(meta['sha256'])}, not the checkpoint's files (corrupt)"
        for name, digest in meta["sha256"].items():
            if not (path / name).is_file():
                return f"{name} is missing"
            if _sha256(path / name) != digest:
                return f"{name} does not match its sha256 (corrupt)"
    except (ValueError, KeyError, TypeError, AttributeError) as e:  # JSONDecodeError and UnicodeDecodeError are ValueErrors
        return f"meta.json is unreadable: {e}"
    return None


def find_checkpoint(run_dir: Path, warn: Callable[[str], None]) -> Path | None:
    """The checkpoint to resume from: `latest` if intact, else the newest intact one before it."""
    ckdir = run_dir / CHECKPOINTS
    if not ckdir.is_dir():
        return None
    candidates = sorted((p for p in ckdir.iterdir() if _STEP_DIR.fullmatch(p.name)), key=lambda p: p.name, reverse=True)
    latest = (ckdir / LATEST).read_text(encoding="utf-8").strip() if (ckdir / LATEST).is_file() else None
    if latest:
        candidates = [p for p in candidates if p.name <= latest]
    for p in candidates:
        problem = verify_checkpoint(p)
        if problem is None:
            return p
        warn(f"checkpoint {p} skipped: {problem}")
    return None


def load_checkpoint(path: Path, model: GPT, optimizer: torch.optim.Optimizer | None) -> dict[str, Any]:
    """Restore model, optimizer and RNG states from a verified checkpoint; returns its state.json."""
    state = json.loads((path / "state.json").read_text(encoding="utf-8"))
    weights = load_file(str(path / "model.safetensors"))
    if model.cfg.tie_embeddings:
        weights.pop("lm_head.weight", None)
    model.load_state_dict(weights, strict=False)
    if optimizer is not None:
        load_optimizer(optimizer, load_file(str(path / "optimizer.safetensors")), state["optimizer"])
    set_rng_state(load_file(str(path / "rng.safetensors")), state["rng"])
    return dict(state)


def checkpoint_weights(path: Path) -> dict[str, torch.Tensor]:
    """Just the weights of a checkpoint (e.g. to export the best one)."""
    return load_file(str(path / "model.safetensors"))

