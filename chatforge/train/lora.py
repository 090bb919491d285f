"""LoRA: low-rank adapters beside frozen weights, through peft.

    chatforge sft --model M --data D --out runs/lora --lora.r 16 --lora.alpha 32
    chatforge merge-lora --model M --adapter runs/lora/adapter --out runs/merged

With `--lora.r` > 0, `sft` and `dpo` insert peft's LoRA layers into the chosen linear
layers (`--lora.targets`) and train only them: the base weights stay frozen, so the
optimizer holds a few percent of the parameters. At the end the run dir holds
`adapter/`, a standard peft adapter dir (adapter_config.json and
adapter_model.safetensors, with the module names of Hugging Face's Llama, so
`peft.PeftModel.from_pretrained(LlamaForCausalLM..., "runs/lora/adapter")` loads it;
tested), and `model/`, the base model with the adapters merged in, which every other
command uses like any model dir. `merge-lora` does that merge for any adapter.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from safetensors.torch import load_file
from torch import nn

from chatforge.atomic import staged_dir
from chatforge.checkpoint import load_model_dir, save_model_dir, save_tensors
from chatforge.errors import UserError
from chatforge.model import GPT
from chatforge.train.config import LoRAConfig, MergeLoRAConfig
from chatforge.ui import QUIET, UI

ADAPTER_CONFIG = "adapter_config.json"
ADAPTER_WEIGHTS = "adapter_model.safetensors"
_PREFIX = "base_model.model."  # what peft's PeftModel puts before the base model's module names


def _require_peft() -> None:
    try:
        import peft  # noqa: F401
    except ImportError:
        raise UserError("LoRA needs peft, in the `lora` extra: pip install 'chatforge[lora]'") from None


def _peft_config(cfg: LoRAConfig, base: str = "", layers: list[int] | None = None) -> Any:
    """peft's config for `cfg`; `layers`: the blocks that get adapters (None: every one)."""
    _require_peft()
    from peft import LoraConfig

    where: dict[str, Any] = {} if layers is None else {"layers_to_transform": layers, "layers_pattern": "layers"}
    return LoraConfig(
        r=cfg.r, lora_alpha=cfg.alpha, lora_dropout=cfg.dropout, target_modules=list(cfg.targets),
        task_type="CAUSAL_LM", base_model_name_or_path=base or None, bias="none", **where,
    )  # fmt: skip


def add_lora(model: GPT, cfg: LoRAConfig, first_layer: int = 0) -> GPT:
    """`model` with LoRA layers in its target linear layers (of blocks `first_layer` and up);
    only they stay trainable."""
    from peft import inject_adapter_in_model

    n_layer = model.cfg.n_layer
    if not 0 <= first_layer < n_layer:
        raise UserError(f"freeze_layers: {first_layer} leaves no block of the model's {n_layer} to adapt")
    layers = list(range(first_layer, n_layer)) if first_layer else None
    inject_adapter_in_model(_peft_config(cfg, layers=layers), model)  # in place: the model stays a GPT
    n_train = sum(p.numel() for p in model.parameters() if p.requires_grad)
    if not n_train:
        raise UserError(f"lora.targets: none of {cfg.targets} is a layer of this model")
    return model


def trainable_share(model: nn.Module) -> float:
    total = sum(p.numel() for p in model.parameters())
    return sum(p.numel() for p in model.parameters() if p.requires_grad) / max(total, 1)


def adapted_layers(model: GPT) -> list[int] | None:
    """The blocks of `model` holding LoRA layers (None: every block)."""
    from peft.tuners.lora import LoraLayer

    layers = sorted({i for i, block in enumerate(model.model.layers) if any(isinstance(m, LoraLayer) for m in block.modules())})
    return None if len(layers) == model.cfg.n_layer else layers


def save_adapter(out: Path, model: GPT, cfg: LoRAConfig, base_model: str) -> None:
    """The adapters of `model` as a standard peft adapter dir (written atomically)."""
    from peft import get_peft_model_state_dict

    state = {_PREFIX + k: v.detach().float().contiguous() for k, v in get_peft_model_state_dict(model).items()}
    with staged_dir(out, overwrite=True, replaceable=lambda p: (p / ADAPTER_CONFIG).is_file(), what="an adapter dir") as tmp:
        _peft_config(cfg, base_model, adapted_layers(model)).save_pretrained(str(tmp))
        save_tensors(state, tmp / ADAPTER_WEIGHTS, metadata={"format": "pt"})


def merged(model: GPT) -> GPT:
    """`model` with its LoRA layers folded into the base weights (peft's merge) and removed:
    a plain GPT again, computing the same function."""
    from peft.tuners.lora import LoraLayer

    for name, module in list(model.named_modules()):
        if isinstance(module, LoraLayer):
            module.merge()
            parent_name, _, child = name.rpartition(".")
            setattr(model.get_submodule(parent_name) if parent_name else model, child, module.get_base_layer())
    for p in model.parameters():
        p.requires_grad_(True)
    return model


def load_adapter(model: GPT, adapter_dir: Path) -> GPT:
    """`model` with the adapter of `adapter_dir` inserted and loaded (not merged)."""
    _require_peft()
    from peft import set_peft_model_state_dict

    cfg_path, weights_path = adapter_dir / ADAPTER_CONFIG, adapter_dir / ADAPTER_WEIGHTS
    if not cfg_path.is_file() or not weights_path.is_file():
        raise UserError(f"{adapter_dir}: not a LoRA adapter dir (needs {ADAPTER_CONFIG} and {ADAPTER_WEIGHTS}; pickled .bin adapters are not read)")
    try:
        raw = json.loads(cfg_path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as e:
        raise UserError(f"{cfg_path}: invalid JSON: {e}") from None
    if raw.get("peft_type", "LORA") != "LORA":
        raise UserError(f"{cfg_path}: peft_type {raw.get('peft_type')!r} is not LORA")
    targets = raw.get("target_modules") or []
    cfg = LoRAConfig(r=int(raw.get("r", 8)), alpha=int(raw.get("lora_alpha", 8)), dropout=0.0, targets=sorted(targets) if isinstance(targets, list) else [targets])
    layers = raw.get("layers_to_transform")
    if layers is None:
        first = 0
    elif isinstance(layers, list) and layers and all(isinstance(i, int) for i in layers) and layers == list(range(layers[0], model.cfg.n_layer)):
        first = layers[0]
    else:
        raise UserError(f"{cfg_path}: layers_to_transform {layers!r}: only the blocks from one on to the last are supported")
    model = add_lora(model, cfg, first_layer=first)
    state = {k.removeprefix(_PREFIX): v for k, v in load_file(str(weights_path)).items()}
    result: Any = set_peft_model_state_dict(model, state)
    missing = [k for k in result.missing_keys if "lora_" in k]
    if missing or result.unexpected_keys:
        raise UserError(f"{adapter_dir}: adapter weights do not fit this model (missing {missing[:3]}, unexpected {list(result.unexpected_keys)[:3]})")
    return model


def main(cfg: MergeLoRAConfig, ui: UI = QUIET) -> dict[str, Any]:
    """Run `merge-lora`: base model + adapter -> one model dir."""
    base, adapter, out = Path(cfg.model), Path(cfg.adapter), Path(cfg.out)
    if out.resolve() in (base.resolve(), adapter.resolve()):
        raise UserError(f"{out}: is an input; write the merged model to another --out")
    model = merged(load_adapter(load_model_dir(base), adapter))
    save_model_dir(out, model, tokenizer_dir=base, info={"stage": "merge-lora", "base_model": str(base), "adapter": str(adapter)}, overwrite=cfg.overwrite)
    ui.note(f"merged {adapter} into {base} -> {out}")
    return {"out": str(out)}


def finish_lora(out: Path, model: GPT, cfg: LoRAConfig, base_model: str) -> GPT:
    """After a LoRA run: write OUT/adapter and return the merged model (for OUT/model)."""
    save_adapter(out / "adapter", model, cfg, base_model)
    return merged(model)

