"""`chatforge quickstart`: the whole lifecycle that exists, on the built-in data, in one command.

    chatforge quickstart --workdir quickstart

Today that is: generate the support world (`data synth`), clean its raw logs,
knowledge base and preference pairs (`data clean`: PII removed, noise filtered,
duplicates dropped), split the clean conversations (`data split`), look at the
training split (`data stats`), train a tokenizer on the clean knowledge base and
training conversations (`tokenizer train`), pretrain a tiny GPT on them (`pretrain`,
the same model and schedule as configs/pretrain-cpu-tiny.yaml), fine-tune it on the
training conversations (`sft`), teach it to prefer the good answers of the clean
preference pairs over the flawed ones (`dpo`), show it answering a conversation of
the test split it never saw, measure it on the test split (`eval`) and write a report
card of the runs (`report`). Each stage that lands adds its step here, so this command always runs
everything chatforge can do, offline, on a laptop CPU.
"""

from __future__ import annotations

import copy
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from rich.table import Table
from rich.text import Text

from chatforge import tokenizer
from chatforge.atomic import atomic_write_text
from chatforge.config import opt, save_config
from chatforge.data import clean, inspect, split, synth
from chatforge.data.dataset import open_dataset
from chatforge.eval.config import EvalBudget
from chatforge.model_config import ModelConfig
from chatforge.train.config import DPOConfig, OptimConfig, PretrainConfig, SFTConfig, TrainConfig
from chatforge.ui import QUIET, UI


def tiny_model() -> ModelConfig:
    """The quickstart's GPT (1.1M parameters with its 2048-token vocabulary); configs/pretrain-cpu-tiny.yaml is the same."""
    return ModelConfig(n_layer=4, n_embd=128, n_head=4, n_kv_head=4, block_size=256)


def tiny_train() -> TrainConfig:
    """The quickstart's pretraining schedule: about 4 minutes on a 2-core laptop CPU (SFT 2.5).

    Measured on the quickstart (benchmarks/quickstart_quality.py): 300 pretraining and 300
    SFT steps on 3,000 conversations gave 82% / 54% on the test / held-out-vocabulary splits
    in 2.9 minutes; 1,000 + 1,000 steps on the same data 87% / 45.5% (SFT at 14 epochs
    overfits the training phrasings); 800 + 600 on 8,000 conversations 91% / 56%; 900 + 700
    on 12,000 conversations 91% / 61% in 7.1 minutes, the default.
    """
    return TrainConfig(
        steps=900,
        batch_size=16,
        eval_every=100,
        eval_batches=8,
        save_every=100,
        optim=OptimConfig(lr=3e-3, warmup_steps=30, min_lr_ratio=0.1, weight_decay=0.1),
    )


def tiny_sft() -> TrainConfig:
    """The quickstart's fine-tuning schedule (see `tiny_train` for how it was chosen)."""
    return TrainConfig(
        steps=700,
        batch_size=16,
        eval_every=100,
        eval_batches=8,
        save_every=100,
        optim=OptimConfig(lr=1e-3, warmup_steps=20, min_lr_ratio=0.1, weight_decay=0.0),
    )


def tiny_dpo() -> TrainConfig:
    """The quickstart's preference-tuning schedule."""
    return TrainConfig(steps=60, batch_size=8, eval_every=30, eval_batches=8, save_every=60, optim=OptimConfig(lr=5e-5, warmup_steps=5, weight_decay=0.0))


# More conversations than `data synth` makes by default: the variety of phrasings is what
# lets the tiny model answer the held-out vocabulary (see `tiny_train`).
QUICKSTART_CONVERSATIONS = 12_000


@dataclass
class QuickstartConfig:
    """`chatforge quickstart`: run every stage on the built-in support world."""

    workdir: str = opt("quickstart", "directory for everything quickstart writes (replaced parts are swapped atomically)")
    seed: int = opt(0, "random seed for every stage")
    workers: int = opt(0, "worker processes for data cleaning (0 = one per CPU core)", ge=0, le=256)
    synth: synth.WorldSize = opt(default_factory=lambda: synth.WorldSize(conversations=QUICKSTART_CONVERSATIONS))
    vocab_size: int = opt(2048, "tokenizer vocabulary size", ge=512, le=65536)
    model: ModelConfig = opt(default_factory=tiny_model)
    train: TrainConfig = opt(default_factory=tiny_train)
    sft: TrainConfig = opt(default_factory=tiny_sft)
    dpo: TrainConfig = opt(default_factory=tiny_dpo)
    eval: EvalBudget = opt(default_factory=EvalBudget)
    sweep: int = opt(0, "run a small hyperparameter sweep (this many SFT trials: learning rate, dropout) before the final SFT; 0 = off", ge=0)
    simulate_users: int = opt(0, "close the learning loop: this many simulated users chat with the served model and rate it, then `learn` fine-tunes on their feedback behind the eval gate (0 = off)", ge=0)
    mlflow: bool = opt(True, "record every stage in MLflow, in WORKDIR/mlflow.db (unless MLFLOW_TRACKING_URI says otherwise)")


def main(cfg: QuickstartConfig, ui: UI = QUIET) -> dict[str, Any]:
    """Run the quickstart; returns {step: result} and prints where everything went."""
    work = Path(cfg.workdir)
    work.mkdir(parents=True, exist_ok=True)
    if cfg.mlflow and not os.environ.get("MLFLOW_TRACKING_URI"):
        os.environ["MLFLOW_TRACKING_URI"] = f"sqlite:///{(work / 'mlflow.db').resolve()}"
    save_config(cfg, work / "config.yaml")
    world_dir = work / "data" / "world"
    results: dict[str, Any] = {}
    written: list[tuple[str, str]] = [("resolved config", str(work / "config.yaml"))]

    def do_synth() -> Any:
        sc = synth.SynthConfig(out=str(world_dir), seed=cfg.seed, overwrite=True, **vars(cfg.synth))
        out = synth.main(sc, ui)
        for name in synth.DATASETS:
            written.append((f"dataset: {name}", str(world_dir / name)))
        return out

    clean_dir = work / "data" / "clean"
    splits_dir = work / "data" / "splits"

    def do_clean() -> Any:
        out = {}
        for name in ("conversations", "kb", "preferences"):
            cc = clean.CleanConfig(dataset=str(world_dir / name), out=str(clean_dir / name), workers=cfg.workers, overwrite=True)
            out[name] = clean.main(cc, ui if name == "conversations" else QUIET)
            written.append((f"clean dataset: {name} (+ clean_report.md)", str(clean_dir / name)))
        return out

    def do_split() -> Any:
        sc = split.SplitConfig(dataset=str(clean_dir / "conversations"), out=str(splits_dir), overwrite=True)
        out = split.main(sc, ui)
        for name in split.SPLITS:
            written.append((f"split: {name}", str(splits_dir / name)))
        return out

    def do_stats() -> Any:
        ds = open_dataset(splits_dir / "train")
        stats = inspect.compute_stats(ds)
        if not ui.quiet:
            inspect.print_stats(ds, stats, ui)
        return stats

    tok_dir = work / "runs" / "tokenizer"
    pretrain_dir = work / "runs" / "pretrain"
    corpus = [str(clean_dir / "kb"), str(splits_dir / "train")]

    def do_tokenizer() -> Any:
        tc = tokenizer.TokenizerTrainConfig(data=corpus, out=str(tok_dir), vocab_size=cfg.vocab_size, overwrite=True)
        tok = tokenizer.main(tc, ui)
        written.append(("tokenizer (tokenizer.json + chat template)", str(tok_dir)))
        return {"vocab_size": tok.vocab_size}

    def do_pretrain() -> Any:
        from chatforge.train import pretrain  # needs torch: imported when it runs

        pc = PretrainConfig(
            data=corpus,
            val_data=[str(splits_dir / "val")],
            tokenizer=str(tok_dir),
            out=str(pretrain_dir),
            seed=cfg.seed,
            overwrite=True,
            model=cfg.model,
            train=cfg.train,
        )
        out = pretrain.main(pc, ui)
        written.append(("pretraining run (metrics.jsonl, checkpoints)", str(pretrain_dir)))
        written.append(("pretraining curves (loss, learning rate, speed)", str(pretrain_dir / "curves.png")))
        written.append(("pretrained model (Hugging Face format)", str(pretrain_dir / "model")))
        return out

    sft_dir = work / "runs" / "sft"

    def sft_config(out: Path) -> SFTConfig:
        return SFTConfig(
            model=str(pretrain_dir / "model"),
            data=[str(splits_dir / "train")],
            val_data=[str(splits_dir / "val")],
            out=str(out),
            seed=cfg.seed,
            overwrite=True,
            train=copy.deepcopy(cfg.sft),
        )

    best: dict[str, Any] = {}

    def do_sweep() -> Any:
        from chatforge import hpo

        sweep_dir = work / "runs" / "sweep"
        base = sft_config(sweep_dir / "base")
        base.train.steps = max(2, cfg.sft.steps // 3)  # short trials: enough to rank the settings
        base.train.eval_every = max(1, base.train.steps // 3)
        base.train.save_every = 0
        save_config(base, work / "sweep-base.yaml")
        space = {"train.optim.lr": {"type": "float", "low": cfg.sft.optim.lr / 4, "high": cfg.sft.optim.lr * 4, "log": True}, "dropout": {"type": "float", "low": 0.0, "high": 0.1}}
        atomic_write_text(work / "sweep-space.yaml", yaml.safe_dump(space))
        sc = hpo.SweepConfig(stage="sft", base=str(work / "sweep-base.yaml"), space=str(work / "sweep-space.yaml"), trials=cfg.sweep, out=str(sweep_dir), storage=f"sqlite:///{(sweep_dir / 'study.db').resolve()}", seed=cfg.seed)
        out = hpo.main(sc, ui)
        best.update((out.get("best") or {}).get("params", {}))
        written.append(("hyperparameter sweep (sweep.json, best.yaml, plots)", str(sweep_dir)))
        return out

    def do_sft() -> Any:
        from chatforge.train import sft  # needs torch: imported when it runs

        sc = sft_config(sft_dir)
        if best:  # the sweep's best learning rate and dropout
            sc.train.optim.lr = float(best["train.optim.lr"])
            sc.dropout = float(best["dropout"])
        out = sft.main(sc, ui)
        written.append(("fine-tuning run (metrics.jsonl, curves.png)", str(sft_dir)))
        written.append(("fine-tuned model (Hugging Face format)", str(sft_dir / "model")))
        return out

    dpo_dir = work / "runs" / "dpo"

    def do_dpo() -> Any:
        from chatforge.train import dpo  # needs torch: imported when it runs

        dc = DPOConfig(model=str(sft_dir / "model"), data=[str(clean_dir / "preferences")], out=str(dpo_dir), seed=cfg.seed, overwrite=True, train=cfg.dpo)
        out = dpo.main(dc, ui)
        written.append(("preference-tuning run (metrics.jsonl, curves.png)", str(dpo_dir)))
        written.append(("the chat model (Hugging Face format): chatforge chat --model ...", str(dpo_dir / "model")))
        return out

    def do_sample() -> Any:
        return show_sample(dpo_dir / "model", open_dataset(world_dir / "test"), cfg.seed, ui)

    def do_eval() -> Any:
        from chatforge.eval import runner  # needs torch: imported when it runs
        from chatforge.eval.config import EvalConfig

        ec = EvalConfig(model=str(dpo_dir / "model"), data=str(world_dir / "test"), out=str(dpo_dir / "eval.json"), seed=cfg.seed, **vars(cfg.eval))
        out = runner.main(ec, ui)
        written.append(("eval results (metrics, probes, hashes)", str(dpo_dir / "eval.json")))
        return out

    learn_dir = work / "runs" / "learn"

    def do_learn() -> Any:
        from chatforge.feedback.loop import LoopConfig, run_loop

        budget = {"eval.limit": cfg.eval.limit, "eval.max_tokens": cfg.eval.max_tokens, "sft.steps": max(5, cfg.sft.steps // 5), "sft.eval_every": max(1, cfg.sft.steps // 15)}
        lc = LoopConfig(work=str(work), model=str(dpo_dir / "model"), test_data=str(world_dir / "test"), train_data=[str(splits_dir / "train")], users=cfg.simulate_users, seed=cfg.seed, learn_overrides=budget)
        out = run_loop(lc, ui)
        written.append(("feedback store (turns and ratings of the simulated users)", str(work / "feedback.db")))
        written.append(("learning round (learn.json: curated feedback, the gate, the decision)", str(learn_dir)))
        written.append(("model registry (chatforge models list --registry ...)", str(work / "registry")))
        return out

    def do_report() -> Any:
        from chatforge.eval import report

        runs = [str(pretrain_dir), str(sft_dir), str(dpo_dir)] + ([str(learn_dir)] if cfg.simulate_users else [])
        out = report.main(report.ReportConfig(runs=runs, out=str(work / "report.html")), ui)
        written.append(("report card (open in a browser; report.md beside it)", str(out)))
        return str(out)

    steps: list[tuple[str, str, Callable[[], Any]]] = [
        ("synth", "generate the built-in support world", do_synth),
        ("clean", "remove PII, noise and duplicates from the raw data", do_clean),
        ("split", "train/val/test splits of the clean conversations", do_split),
        ("stats", "inspect the training split", do_stats),
        ("tokenizer", "train a byte-level BPE tokenizer with the chat template", do_tokenizer),
        ("pretrain", "pretrain a tiny GPT on the knowledge base and conversations", do_pretrain),
        *([("sweep", f"search the fine-tuning learning rate and dropout ({cfg.sweep} short trials, Optuna)", do_sweep)] if cfg.sweep else []),
        ("sft", "fine-tune it on the training conversations (loss on the assistant's turns)", do_sft),
        ("dpo", "prefer the good answers of the preference pairs over the flawed ones", do_dpo),
        ("sample", "the model answers a test conversation it never saw", do_sample),
        ("eval", "measure it on the test split: BLEU/ROUGE/F1, task success, safety and bias probes", do_eval),
        *([("learn", f"{cfg.simulate_users} simulated users rate the served model; learn from their feedback behind the eval gate", do_learn)] if cfg.simulate_users else []),
        ("report", "a report card of the runs: curves, lineage, eval results", do_report),
    ]
    t0 = time.time()
    for i, (name, what, fn) in enumerate(steps, 1):
        if not ui.quiet:
            ui.out.rule(Text(f"[{i}/{len(steps)}] {name}: {what}"))
        t = time.time()
        results[name] = fn()
        ui.note(f"{name} done in {time.time() - t:.1f}s", style="dim")

    if not ui.quiet:
        ui.out.rule(f"quickstart finished in {time.time() - t0:.1f}s")
        table = Table(title="where everything was written", title_justify="left")
        table.add_column("what")
        table.add_column("path")
        for what, path in written:
            table.add_row(Text(what), Text(path))
        ui.out.print(table)
        if cfg.mlflow:
            ui.out.print(Text.assemble("every stage is in MLflow: ", (f"mlflow ui --backend-store-uri {os.environ['MLFLOW_TRACKING_URI']}", "bold")))
        served = f"--registry {work / 'registry'}" if cfg.simulate_users else f"--model {dpo_dir / 'model'}"
        ui.out.print(Text.assemble("serve it (OpenAI-compatible API and a chat page at http://127.0.0.1:8000/): ", (f"chatforge serve {served}", "bold")))
    return results


def show_sample(model_dir: Path, test: Any, seed: int, ui: UI) -> dict[str, Any]:
    """One conversation of the test split, answered by the model (greedy), beside the reference."""
    from chatforge.checkpoint import load_model_dir
    from chatforge.engine import Engine, Sampling
    from chatforge.tokenizer import Tokenizer

    rows = next(test.iter_batches(64))
    row = rows[seed % len(rows)]
    messages = row["messages"]
    prompt, reference = messages[:-1], messages[-1]["content"]
    engine = Engine(load_model_dir(model_dir), Tokenizer.load(model_dir))
    reply = "".join(engine.chat(prompt, Sampling(temperature=0, max_tokens=120)))
    if not ui.quiet:
        for m in prompt:
            if m["role"] != "system":
                ui.out.print(Text.assemble((f"{m['role']}: ", "bold"), m["content"]))
        ui.out.print(Text.assemble(("model: ", "bold green"), reply))
        ui.out.print(Text.assemble(("reference: ", "dim"), (reference, "dim")))
    return {"id": row["id"], "prompt": prompt, "reply": reply, "reference": reference}
