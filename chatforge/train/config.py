"""Training configs, without torch: the optimizer and loop settings every training stage
shares, and each stage's own config (imported by the CLI to build its flags; the stage's
module, which needs torch, is imported only when the stage runs)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from chatforge.config import opt
from chatforge.errors import ConfigError
from chatforge.model_config import ModelConfig


@dataclass
class OptimConfig:
    """AdamW and the learning-rate schedule."""

    lr: float = opt(1e-3, "peak learning rate", gt=0, le=1)
    min_lr_ratio: float = opt(0.1, "final learning rate as a share of the peak", ge=0, le=1)
    schedule: Literal["cosine", "wsd", "constant"] = opt("cosine", "learning-rate schedule after warmup")
    warmup_steps: int = opt(20, "steps of linear warmup from 0 to the peak", ge=0)
    decay_fraction: float = opt(0.2, "wsd: share of the steps spent decaying at the end", gt=0, le=1)
    weight_decay: float = opt(0.1, "AdamW weight decay on linear-layer matrices", ge=0)
    beta1: float = opt(0.9, "AdamW beta1", ge=0, lt=1)
    beta2: float = opt(0.95, "AdamW beta2", ge=0, lt=1)
    eps: float = opt(1e-8, "AdamW epsilon", gt=0)
    grad_clip: float = opt(1.0, "clip the global gradient norm to this (0 = no clipping)", ge=0)


@dataclass
class TrainConfig:
    """The optimization loop (shared by pretrain, sft and dpo)."""

    steps: int = opt(500, "optimizer steps", ge=1)
    batch_size: int = opt(16, "sequences per optimizer step, all processes together", ge=1)
    micro_batch: int = opt(0, "sequences per forward pass and process (0 = the whole share: no accumulation)", ge=0)
    dtype: Literal["auto", "bf16", "fp32"] = opt("auto", "compute dtype: bf16 autocast where the hardware supports it (auto), or fp32")
    compile: bool = opt(False, "torch.compile the model (helps some shapes; measure)")
    eval_every: int = opt(100, "validate every N steps (0 = only at the end)", ge=0)
    eval_batches: int = opt(10, "batches per validation", ge=1)
    save_every: int = opt(100, "checkpoint every N steps (0 = only at the end)", ge=0)
    keep_last: int = opt(2, "checkpoints kept (plus the best by validation loss)", ge=1)
    patience: int = opt(0, "stop after N validations without improvement (0 = never stop early)", ge=0)
    log_every: int = opt(10, "write metrics every N steps", ge=1)
    optim: OptimConfig = opt(default_factory=OptimConfig)


@dataclass
class PretrainConfig:
    """`chatforge pretrain`: train the GPT to predict the next token."""

    data: list[str] = opt(default_factory=list, help="datasets to train on (text, conversations or preferences)", required=True, metavar="DIR")
    tokenizer: str = opt("", "tokenizer dir (from `chatforge tokenizer train`)", required=True)
    out: str = opt("", "run dir: checkpoints, metrics.jsonl, and the final model in OUT/model", required=True)
    val_data: list[str] = opt(default_factory=list, help="validation datasets (default: hold out --val-fraction of the documents)", metavar="DIR")
    val_fraction: float = opt(0.05, "share of documents held out for validation when --val-data is not given", ge=0, lt=1)
    seed: int = opt(0, "random seed (initial weights, data order, dropout)")
    resume: bool = opt(False, "continue from the latest intact checkpoint in OUT")
    overwrite: bool = opt(False, "start over in an existing OUT (its checkpoints are deleted)")
    model: ModelConfig = opt(default_factory=ModelConfig)
    train: TrainConfig = opt(default_factory=TrainConfig)

    def validate(self) -> None:
        if self.resume and self.overwrite:
            raise ConfigError("resume / overwrite: choose one (resume continues OUT; overwrite starts it over)")


def _sft_train() -> TrainConfig:
    return TrainConfig(steps=300, batch_size=16, eval_every=50, save_every=100, optim=OptimConfig(lr=3e-4, warmup_steps=10, weight_decay=0.0))


@dataclass
class SFTConfig:
    """`chatforge sft`: fine-tune a model on conversations (loss on the assistant's turns)."""

    model: str = opt("", "model dir to start from (from `pretrain`, `sft`, or an imported model)", required=True)
    data: list[str] = opt(
        default_factory=list,
        help="conversation datasets, each DIR or DIR:WEIGHT (weights set each one's share of an epoch, as `data mix`); text datasets (e.g. a knowledge base) train on every token, for domain adaptation",
        required=True,
        metavar="DIR[:WEIGHT]",
    )
    out: str = opt("", "run dir: checkpoints, metrics.jsonl, and the fine-tuned model in OUT/model", required=True)
    val_data: list[str] = opt(default_factory=list, help="validation conversations (default: hold out --val-fraction)", metavar="DIR")
    val_fraction: float = opt(0.05, "share of conversations held out for validation when --val-data is not given", ge=0, lt=1)
    train_on: Literal["assistant", "last-assistant", "all"] = opt(
        "assistant",
        "tokens the loss is on: every assistant turn with its end-of-turn token (assistant), only the last one "
        "(last-assistant), or every token after <|bos|> (all)",
    )
    packing: bool = opt(
        True,
        "pack several conversations into each row of block-size tokens, each attending only to itself "
        "(block-diagonal causal mask, positions restart per conversation); off: one conversation per row, padded",
    )
    max_len: int = opt(0, "longest conversation in tokens (0 = the model's block size); longer ones lose their oldest turns", ge=0)
    dropout: float = opt(-1.0, "dropout while fine-tuning (-1 = keep the model's)", ge=-1, lt=1)
    freeze_layers: int = opt(
        0,
        "keep the token embeddings (and a tied output head) and the first N transformer blocks as they are: "
        "no gradient flows below block N, so a step costs less (transfer learning: the lower blocks hold general "
        "features); with LoRA, adapters go into blocks N and up only",
        ge=0,
    )
    debug_data: int = opt(0, "print this many training rows with the trained tokens highlighted, then exit", ge=0)
    seed: int = opt(0, "random seed (data order, dropout)")
    resume: bool = opt(False, "continue from the latest intact checkpoint in OUT")
    overwrite: bool = opt(False, "start over in an existing OUT (its checkpoints are deleted)")
    lora: LoRAConfig = opt(default_factory=lambda: LoRAConfig())
    train: TrainConfig = opt(default_factory=_sft_train)

    def validate(self) -> None:
        if self.resume and self.overwrite:
            raise ConfigError("resume / overwrite: choose one (resume continues OUT; overwrite starts it over)")


def _dpo_train() -> TrainConfig:
    return TrainConfig(steps=200, batch_size=8, eval_every=50, save_every=100, optim=OptimConfig(lr=5e-5, warmup_steps=10, weight_decay=0.0))


@dataclass
class DPOConfig:
    """`chatforge dpo`: prefer the chosen answers over the rejected ones (Direct Preference Optimization)."""

    model: str = opt("", "model dir to start from, usually an SFT model; it is also the frozen reference", required=True)
    data: list[str] = opt(default_factory=list, help="preference datasets (prompt, chosen, rejected)", required=True, metavar="DIR")
    out: str = opt("", "run dir: checkpoints, metrics.jsonl, and the trained model in OUT/model", required=True)
    val_data: list[str] = opt(default_factory=list, help="held-out preference pairs (default: hold out --val-fraction)", metavar="DIR")
    val_fraction: float = opt(0.05, "share of pairs held out when --val-data is not given", ge=0, lt=1)
    beta: float = opt(0.1, "how strongly the model is kept near the reference (higher: closer)", gt=0, le=10)
    max_len: int = opt(0, "longest prompt + answer in tokens (0 = the model's block size); longer prompts lose their oldest turns", ge=0)
    seed: int = opt(0, "random seed (pair order)")
    resume: bool = opt(False, "continue from the latest intact checkpoint in OUT")
    overwrite: bool = opt(False, "start over in an existing OUT (its checkpoints are deleted)")
    lora: LoRAConfig = opt(default_factory=lambda: LoRAConfig())
    train: TrainConfig = opt(default_factory=_dpo_train)

    def validate(self) -> None:
        if self.resume and self.overwrite:
            raise ConfigError("resume / overwrite: choose one (resume continues OUT; overwrite starts it over)")


LORA_TARGETS = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]


@dataclass
class LoRAConfig:
    """LoRA (low-rank adapters, via peft): train small matrices beside frozen weights."""

    r: int = opt(0, "adapter rank (0 = no LoRA: train every weight)", ge=0, le=1024)
    alpha: int = opt(16, "scale of the adapters' output is alpha / r", ge=1)
    dropout: float = opt(0.0, "dropout on the adapters' input", ge=0, lt=1)
    targets: list[str] = opt(default_factory=lambda: list(LORA_TARGETS), help="linear layers that get adapters (by name)", metavar="NAME")

    def validate(self) -> None:
        bad = sorted(set(self.targets) - set(LORA_TARGETS) - {"lm_head"})
        if bad:
            raise ConfigError(f"lora.targets: {bad} are not layers of the model; choose from {', '.join([*LORA_TARGETS, 'lm_head'])}")


@dataclass
class MergeLoRAConfig:
    """`chatforge merge-lora`: fold a LoRA adapter into its base model's weights (a plain model dir)."""

    model: str = opt("", "the base model dir the adapter was trained on", required=True)
    adapter: str = opt("", "the adapter dir (adapter_config.json + adapter_model.safetensors)", required=True)
    out: str = opt("", "the merged model dir to write", required=True)
    overwrite: bool = opt(False, "replace OUT if it is a model dir")
