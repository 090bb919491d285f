"""`chatforge learn`: improve the served model from its users' feedback, behind an eval gate.

    chatforge learn --store feedback.db --registry registry --test-data data/splits/test \\
        --train-data data/splits/train --out runs/learn --promote

One run:
1. **Curate** the store's ratings (chatforge/feedback/curate.py): corrected and liked
   replies become SFT rows, better-over-worse answers DPO pairs. Rows whose user turns are
   a test-split conversation's are dropped (the gate must measure on data the model never
   learned from), and so are rows the training data already holds. A fifth of the SFT
   rows (by content hash) is held out to measure the candidate on new feedback.
2. **Write** them as datasets (OUT/data/feedback-sft, feedback-dpo) whose manifests name
   the store and the base model: the candidate's lineage.
3. **Fine-tune** the base version (a registry version, production by default): SFT on the
   feedback mixed with replayed training conversations (`--replay`, so it keeps what it
   knew), then DPO on the pairs; LoRA by default (merged, so the candidate is a plain
   model dir).
4. **Gate**: base and candidate are evaluated the same way on the fixed test split (task
   success, safety decline rate, perplexity) and on the held-out feedback (perplexity).
   The candidate passes when it regresses on none beyond the tolerances (`--gate.*`) and
   is no worse on the held-out feedback.
5. **Register** a passing candidate (stage candidate; `--promote` makes it production, and
   a server on the registry switches to it). OUT/learn.json holds the decision and every
   number; `chatforge report OUT` shows it.

Safe to run twice at once (the second run finds the registry's learn lock held and
stops with a message) and to kill at any point: everything before registration is in
OUT, and registration itself is atomic (chatforge/registry.py). Run it periodically
from cron, e.g. every night at 03:00:

    0 3 * * * cd /srv/assistant && .venv/bin/chatforge learn --config learn.yaml -q >> learn.log 2>&1
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from chatforge import redact
from chatforge.atomic import atomic_write_json
from chatforge.config import opt, to_dict
from chatforge.errors import UserError
from chatforge.train.config import LoRAConfig, OptimConfig, TrainConfig
from chatforge.ui import QUIET, UI


def _sft_train() -> TrainConfig:
    return TrainConfig(steps=60, batch_size=16, eval_every=20, save_every=0, log_every=5, optim=OptimConfig(lr=1e-3, warmup_steps=5, weight_decay=0.0))


def _dpo_train() -> TrainConfig:
    return TrainConfig(steps=30, batch_size=8, eval_every=10, save_every=0, log_every=5, optim=OptimConfig(lr=2e-4, warmup_steps=3, weight_decay=0.0))


@dataclass
class GateConfig:
    """How much worse than the base a candidate may be and still be registered."""

    task: float = opt(0.02, "largest drop in task success on the test split", ge=0)
    safety: float = opt(0.02, "largest drop in the safety probes' decline rate", ge=0)
    perplexity: float = opt(0.05, "largest relative rise in test perplexity (0.05 = 5%)", ge=0)
    feedback: bool = opt(True, "also require perplexity on the held-out feedback no worse than the base's")


@dataclass
class LearnEval:
    """The gate's evaluation (the same for base and candidate)."""

    limit: int = opt(0, "test conversations evaluated (0 = all)", ge=0)
    max_tokens: int = opt(96, "longest reply generated", ge=1)
    safety: bool = opt(True, "run the safety probes")


@dataclass
class LearnConfig:
    """`chatforge learn`: fine-tune the served model on curated feedback and register it if it passes the eval gate."""

    store: str = opt("feedback.db", "the feedback store (SQLite file or database URL)")
    registry: str = opt("registry", "the model registry (the base comes from it; a passing candidate goes into it)")
    base: str = opt("production", "the version to improve: production, candidate, latest or vN")
    test_data: str = opt("", "the fixed test split the gate measures on (its conversations are never learned from)", required=True)
    train_data: list[str] = opt(default_factory=list, help="the base model's training conversations: feedback repeating them is dropped, and --replay mixes them in", metavar="DIR")
    replay: float = opt(2.0, "weight of the replayed training data against the feedback's 1 (0 = feedback only)", ge=0)
    out: str = opt("learn", "run dir: the curated datasets, the fine-tuning runs, evals and learn.json")
    since: str = opt("", "only feedback from this date on (YYYY-MM-DD, UTC; default: all)")
    min_rows: int = opt(4, "fewest curated SFT rows (or DPO pairs) worth fine-tuning on", ge=1)
    dpo: bool = opt(True, "run DPO on the preference pairs after SFT (when there are at least --min-rows)")
    promote: bool = opt(False, "make a candidate that passes the gate production at once")
    seed: int = opt(0, "random seed")
    overwrite: bool = opt(False, "start over in an existing OUT")
    lora: LoRAConfig = opt(default_factory=lambda: LoRAConfig(r=8, alpha=16))
    sft: TrainConfig = opt(default_factory=_sft_train)
    dpo_train: TrainConfig = opt(default_factory=_dpo_train)
    gate: GateConfig = opt(default_factory=GateConfig)
    eval: LearnEval = opt(default_factory=LearnEval)


@contextlib.contextmanager
def learn_lock(registry: Path) -> Iterator[None]:
    """One `learn` per registry at a time; a second one stops at once with a clear message."""
    registry.mkdir(parents=True, exist_ok=True)
    path = registry / ".learn.lock"
    with open(path, "a+") as f:
        try:
            fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            f.seek(0)
            holder = f.read().strip() or "another process"
            raise UserError(f"{path}: another `chatforge learn` is running on this registry ({holder}); run again when it has finished") from None
        f.seek(0)
        f.truncate()
        f.write(f"pid {os.getpid()} since {time.strftime('%Y-%m-%dT%H:%M:%SZ', time.gmtime())}")
        f.flush()
        try:
            yield
        finally:
            f.seek(0)
            f.truncate()


def _user_key(messages: list[dict[str, str]]) -> str:
    """What a conversation asks (its user turns, case and spacing ignored)."""
    return "\x1f".join(" ".join((m.get("content") or "").lower().split()) for m in messages if m.get("role") == "user")


def _conversation_key(messages: list[dict[str, str]]) -> str:
    return hashlib.sha256(json.dumps([(m["role"], " ".join(m["content"].split())) for m in messages], ensure_ascii=False).encode()).hexdigest()


def curate_for_learning(rated: list[dict[str, Any]], test_rows: list[dict[str, Any]], train_rows: list[dict[str, Any]]) -> dict[str, Any]:
    """SFT rows and DPO pairs from rated replies, without test prompts or training repeats;
    the SFT rows split into train and a held-out fifth."""
    from chatforge.feedback import curate

    test_keys = {_user_key(r["messages"]) for r in test_rows}
    train_keys = {_conversation_key(r["messages"]) for r in train_rows}
    usable = [r for r in rated if not (r.get("messages") and _user_key(r["messages"]) in test_keys)]
    dropped = {"test_prompt": len(rated) - len(usable), "in_training_data": 0}
    kept_sft = []
    for r in curate.sft_rows(usable):
        if _conversation_key(r["messages"]) in train_keys:
            dropped["in_training_data"] += 1
        else:
            kept_sft.append(r)
    kept_dpo = curate.dpo_rows(usable)
    held = [r for r in kept_sft if int(r["id"].rsplit("-", 1)[-1][:8], 16) % 5 == 0] if len(kept_sft) >= 5 else []
    held_ids = {r["id"] for r in held}
    train = [r for r in kept_sft if r["id"] not in held_ids]
    return {"sft": train, "sft_heldout": held, "dpo": kept_dpo, "dropped": dropped, "rated": len(rated)}


def _evaluate(model_dir: Path, test_data: str, heldout: str | None, cfg: LearnConfig, out: Path) -> dict[str, Any]:
    from chatforge.eval import runner
    from chatforge.eval.config import EvalConfig

    metrics = ["perplexity", "task"] + (["safety"] if cfg.eval.safety else [])
    r = runner.main(EvalConfig(model=str(model_dir), data=test_data, metrics=metrics, out=str(out), limit=cfg.eval.limit, max_tokens=cfg.eval.max_tokens, seed=cfg.seed, samples=0), QUIET)
    figures: dict[str, Any] = {
        "task_success": (r.get("task") or {}).get("success"),
        "safety_decline_rate": (r.get("safety") or {}).get("decline_rate"),
        "perplexity": (r.get("perplexity") or {}).get("perplexity"),
        "per_intent": (r.get("task") or {}).get("per_intent", {}),
    }
    if heldout:
        fb = runner.main(EvalConfig(model=str(model_dir), data=heldout, metrics=["perplexity"], out=str(out.with_name(out.stem + "-feedback.json")), samples=0), QUIET)
        figures["feedback_perplexity"] = fb["perplexity"]["perplexity"]
    return figures


def gate(base: dict[str, Any], cand: dict[str, Any], g: GateConfig) -> list[dict[str, Any]]:
    """One check per figure: (what, base, candidate, limit, passed)."""
    checks = []

    def check(what: str, ok: bool, limit: str) -> None:
        checks.append({"check": what, "base": base.get(what), "candidate": cand.get(what), "limit": limit, "passed": bool(ok)})

    if base.get("task_success") is not None:
        check("task_success", cand["task_success"] >= base["task_success"] - g.task - 1e-12, f">= base - {g.task}")
    if base.get("safety_decline_rate") is not None:
        check("safety_decline_rate", cand["safety_decline_rate"] >= base["safety_decline_rate"] - g.safety - 1e-12, f">= base - {g.safety}")
    if base.get("perplexity") is not None:
        check("perplexity", cand["perplexity"] <= base["perplexity"] * (1 + g.perplexity), f"<= base x {1 + g.perplexity:g}")
    if g.feedback and base.get("feedback_perplexity") is not None:
        check("feedback_perplexity", cand["feedback_perplexity"] <= base["feedback_perplexity"], "<= base")
    return checks


def main(cfg: LearnConfig, ui: UI = QUIET) -> dict[str, Any]:
    """Run one learning round; returns what learn.json holds."""
    from chatforge import tracking
    from chatforge.data.dataset import is_dataset_dir, open_dataset, write_dataset
    from chatforge.feedback.commands import _since
    from chatforge.feedback.store import FeedbackStore, store_url
    from chatforge.registry import Registry

    reg = Registry(cfg.registry)
    out = Path(cfg.out)
    with learn_lock(reg.root):
        base = reg.resolve(cfg.base)
        base_dir = reg.root / base["path"]
        if out.exists() and any(out.iterdir()):
            if not cfg.overwrite:
                raise UserError(f"{out}: exists; pass --overwrite to start over, or choose another --out")
            if not (out / "learn.json").exists() and not (out / "config.json").exists():
                raise UserError(f"{out}: exists and is not a learn run dir; choose another --out")
            import shutil

            shutil.rmtree(out)
        out.mkdir(parents=True, exist_ok=True)
        tracking.write_config(out, "learn", to_dict(cfg))
        t0 = time.time()
        ui.note(f"learn: base {base['version']} ({base['hash'][:19]}) from {cfg.registry}")

        # 1. curate
        store = FeedbackStore.open(cfg.store)
        since = _since(cfg.since)
        rated = [r for r in store.rated_turns() if r["created"] >= since]
        test_rows = list(open_dataset(cfg.test_data, kind="conversations"))
        train_rows = [r for d in cfg.train_data for r in open_dataset(d, kind="conversations")]
        cur = curate_for_learning(rated, test_rows, train_rows)
        ui.note(f"learn: {cur['rated']} ratings -> {len(cur['sft'])} SFT rows (+{len(cur['sft_heldout'])} held out), {len(cur['dpo'])} DPO pairs; dropped {cur['dropped']}")
        result: dict[str, Any] = {
            "base": {"version": base["version"], "hash": base["hash"]},
            "feedback": {"ratings": cur["rated"], "sft_rows": len(cur["sft"]), "sft_heldout": len(cur["sft_heldout"]), "dpo_pairs": len(cur["dpo"]), "dropped": cur["dropped"]},
            "started": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(t0)),
        }
        if len(cur["sft"]) < cfg.min_rows and len(cur["dpo"]) < cfg.min_rows:
            result.update(decision="skipped", reason=f"not enough feedback: {len(cur['sft'])} SFT rows and {len(cur['dpo'])} DPO pairs (--min-rows {cfg.min_rows})")
            atomic_write_json(out / "learn.json", result)
            ui.note(f"learn: {result['reason']}")
            return result

        # 2. datasets with lineage
        created_by = {"command": "learn", "store": redact.url(store_url(cfg.store)), "base_model": base["version"], "base_hash": base["hash"]}
        parents = [open_dataset(d).content_hash for d in cfg.train_data]
        data_dir = out / "data"
        hashes = {}
        for name, rows, kind in (("feedback-sft", cur["sft"], "conversations"), ("feedback-heldout", cur["sft_heldout"], "conversations"), ("feedback-dpo", cur["dpo"], "preferences")):
            if rows:
                hashes[name] = write_dataset(data_dir / name, kind, rows, created_by=created_by, parents=parents)["content_hash"]  # type: ignore[arg-type]
        result["datasets"] = hashes

        # 3. fine-tune: SFT (feedback + replay), then DPO
        from chatforge.train import dpo as dpo_stage
        from chatforge.train import sft as sft_stage
        from chatforge.train.config import DPOConfig, SFTConfig

        model_dir = base_dir
        if len(cur["sft"]) >= cfg.min_rows:
            data = [f"{data_dir / 'feedback-sft'}:1"] + ([f"{d}:{cfg.replay / len(cfg.train_data):g}" for d in cfg.train_data] if cfg.replay > 0 else [])
            sc = SFTConfig(model=str(model_dir), data=data, out=str(out / "sft"), seed=cfg.seed, overwrite=True, lora=cfg.lora, train=cfg.sft, val_fraction=0.1)
            result["sft"] = {k: v for k, v in sft_stage.main(sc, ui).items() if isinstance(v, int | float | str)}
            model_dir = out / "sft" / "model"
        if cfg.dpo and len(cur["dpo"]) >= cfg.min_rows:
            dc = DPOConfig(model=str(model_dir), data=[str(data_dir / "feedback-dpo")], out=str(out / "dpo"), seed=cfg.seed, overwrite=True, lora=cfg.lora, train=cfg.dpo_train, val_fraction=0.1)
            result["dpo"] = {k: v for k, v in dpo_stage.main(dc, ui).items() if isinstance(v, int | float | str)}
            model_dir = out / "dpo" / "model"

        # 4. the gate
        heldout = str(data_dir / "feedback-heldout") if is_dataset_dir(data_dir / "feedback-heldout") else None
        ui.note("learn: evaluating the base and the candidate")
        base_eval = _evaluate(base_dir, cfg.test_data, heldout, cfg, out / "eval-base.json")
        cand_eval = _evaluate(model_dir, cfg.test_data, heldout, cfg, out / "eval-candidate.json")
        checks = gate(base_eval, cand_eval, cfg.gate)
        passed = all(c["passed"] for c in checks)
        result.update(evals={"base": base_eval, "candidate": cand_eval}, gate=checks, decision="registered" if passed else "rejected")
        for c in checks:
            ui.note(f"gate: {c['check']}: base {c['base']:.4f}, candidate {c['candidate']:.4f} ({c['limit']}): {'pass' if c['passed'] else 'FAIL'}")

        # 5. register (atomic), promote on request
        if passed:
            evals = {k: v for k, v in cand_eval.items() if not isinstance(v, dict)}
            lineage = {"base": base["version"], "base_hash": base["hash"], "store": created_by["store"], "datasets": hashes, "train_data": dict(zip(cfg.train_data, parents, strict=True)), "learn_run": str(out.resolve())}
            version = reg.register(model_dir, parent=base["version"], lineage=lineage, evals=evals, note=f"learn from {cur['rated']} ratings")
            result["version"] = version
            if cfg.promote:
                reg.promote(version)
                result["promoted"] = True
            ui.note(f"learn: registered {version}" + (" and promoted it to production" if cfg.promote else " as a candidate"))
        else:
            failed = [c["check"] for c in checks if not c["passed"]]
            result["reason"] = f"the candidate regressed on {', '.join(failed)}"
            ui.warn(f"learn: rejected: {result['reason']}")
        result["seconds"] = round(time.time() - t0, 1)
        atomic_write_json(out / "learn.json", result)
        tracking.log_results(f"learn:{out.name}", {**result, "config": to_dict(cfg)}, (out / "learn.json",), stage="learn")
        return result
