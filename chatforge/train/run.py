"""What every training stage does around `fit`: prepare the run dir, and finish the run
(the model dir, summary.json and curves.png). Shared by pretrain and sft."""

from __future__ import annotations

import math
import shutil
from pathlib import Path
from typing import Any

import torch

from chatforge import tracking
from chatforge.atomic import atomic_write_json
from chatforge.checkpoint import checkpoint_weights, find_checkpoint, save_model_dir
from chatforge.errors import UserError
from chatforge.model import GPT
from chatforge.plots import plot_training
from chatforge.train.config import LoRAConfig
from chatforge.train.loop import Dist, FitResult
from chatforge.ui import UI

_RUN_FILES = ("checkpoints", "model", "metrics.jsonl", "summary.json", "curves.png")


def prepare_run_dir(out: Path, *, resume: bool, overwrite: bool) -> None:
    """An existing run dir is continued only with --resume and started over only with --overwrite."""
    if out.exists() and any(out.iterdir()) and not (resume or overwrite):
        raise UserError(f"{out}: run dir exists; pass --resume to continue it or --overwrite to start over")
    if overwrite and out.exists():
        if not (out / "config.json").is_file():
            raise UserError(f"{out}: exists and is not a run dir; refusing to delete it (choose another --out)")
        for sub in _RUN_FILES:
            p = out / sub
            shutil.rmtree(p) if p.is_dir() else p.unlink(missing_ok=True)
    out.mkdir(parents=True, exist_ok=True)


def checkpoint_step(out: Path) -> int | None:
    """The step of the checkpoint a resumed run starts from (where its metrics continue): the
    one `find_checkpoint` picks, so a run killed after writing a checkpoint but before
    updating `latest` keeps its metrics up to that checkpoint."""
    ck = find_checkpoint(out, lambda _: None)  # the loop warns about skipped ones when it loads
    if ck is None:
        return None
    return int(ck.name.split("_")[1])


def run_summary(model: GPT, result: FitResult, bytes_per_token: float | None = None, *, unit: str = "tokens") -> dict[str, Any]:
    """The figures of a finished run. `unit`: what the loop counted (trained tokens, or DPO's pairs)."""
    return {
        "params": model.num_params(),
        "steps": result.steps,
        unit: result.tokens,
        "final_loss": result.final_loss,
        "best_val_loss": result.best_val,
        "best_val_bpb": (result.best_val / math.log(2) / bytes_per_token) if (result.best_val and bytes_per_token) else None,
        "stopped": result.stopped,
        "seconds": round(result.seconds, 1),
        f"{unit}_per_s": result.session_tokens / max(result.seconds, 1e-9),
    }


def restore_best(out: Path, model: GPT, result: FitResult) -> None:
    """After early stopping the model takes the best checkpoint's weights, not the last step's."""
    if result.stopped == "early_stopping" and result.best_checkpoint:
        model.load_state_dict(checkpoint_weights(out / "checkpoints" / result.best_checkpoint), strict=False)


def finish_run(
    out: Path,
    model: GPT,
    result: FitResult,
    summary: dict[str, Any],
    *,
    stage: str,
    tokenizer_dir: str | Path,
    info: dict[str, Any],
    dist: Dist,
    ui: UI,
    unit: str = "tokens",
    restored: bool = False,
) -> None:
    """Write OUT/model (the best checkpoint's weights after early stopping, else the last
    step's; `restored`: the caller has seen to that), OUT/summary.json and OUT/curves.png;
    nothing after a stop by signal (the checkpoint holds the state to resume from)."""
    if dist.main and result.stopped != "signal":
        if not restored:
            restore_best(out, model, result)
        save_model_dir(out / "model", model, tokenizer_dir=tokenizer_dir, info={"stage": stage, **info, "summary": summary}, overwrite=True)
        atomic_write_json(out / "summary.json", summary)
        plot_training(out, title=f"{stage}: {model.num_params() / 1e6:.2f}M parameters")
        tracking.finish(out, summary)
        val = ""
        if summary["best_val_loss"] is not None:
            val = f", val {summary['best_val_loss']:.3f}" + (f" ({summary['best_val_bpb']:.3f} bpb)" if summary["best_val_bpb"] else "")
        ui.note(
            f"{stage} done: {result.steps} steps, {result.tokens:,} {unit} "
            f"({result.session_tokens:,} in {summary['seconds']}s, {summary[f'{unit}_per_s']:,.0f}/s), "
            f"loss {result.final_loss:.3f}{val} -> {out / 'model'}"
        )
    if dist.world > 1:
        torch.distributed.barrier()


def finish_adapters(out: Path, model: GPT, result: FitResult, lora: LoRAConfig, base_model: str, dist: Dist) -> GPT:
    """For a LoRA run: the best weights restored, OUT/adapter written, and the model merged
    (what OUT/model holds). Without LoRA, the model as it is."""
    if not lora.r or not dist.main or result.stopped == "signal":
        return model
    from chatforge.train.lora import finish_lora

    restore_best(out, model, result)
    return finish_lora(out, model, lora, base_model)
