"""The continuous-learning loop end to end, offline: serve, simulated users rate, learn, compare.

    result = run_loop(LoopConfig(...), ui)      # chatforge quickstart --simulate-users N

1. The model is registered (v1) and promoted in WORK/registry, unless it already is.
2. `chatforge serve` runs in this process on 127.0.0.1, storing turns and ratings in
   WORK/feedback.db; N simulated users (chatforge/feedback/simulate.py) bring support
   conversations the model never trained or was tested on, and rate the answers against
   the facts a right answer states, correcting the wrong ones.
3. `chatforge learn` curates that feedback, fine-tunes, gates and (if it passes)
   registers and promotes v2.
4. Both versions answer a fresh set of users' conversations of the same kind (never
   rated, never trained on): the task success per intent shows whether learning from
   feedback helped, beside the gate's figures on the fixed test split.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from chatforge.ui import QUIET, UI


@dataclass
class LoopConfig:
    work: str
    model: str  # the model dir to start from
    test_data: str  # the fixed test split of the gate
    train_data: list[str]  # the model's training conversations (replay, and never repeated as users' prompts)
    users: int = 200
    seed: int = 0
    correct: float = 1.0  # share of wrong answers users correct
    learn_overrides: dict[str, Any] = field(default_factory=dict)


def run_loop(cfg: LoopConfig, ui: UI = QUIET) -> dict[str, Any]:
    from chatforge.config import load_config
    from chatforge.data import synth
    from chatforge.data.dataset import open_dataset, write_dataset
    from chatforge.eval import runner
    from chatforge.eval.config import EvalConfig
    from chatforge.feedback import learn
    from chatforge.feedback.simulate import served, simulate
    from chatforge.registry import Registry

    work = Path(cfg.work)
    reg = Registry(work / "registry")
    if not reg.versions():
        reg.register(cfg.model, note="the model the loop starts from")
        reg.promote("v1")
    base = reg.resolve("production")
    known = list(open_dataset(cfg.test_data)) + [r for d in cfg.train_data for r in open_dataset(d)]
    users = synth.live_users(cfg.seed, cfg.users, exclude=known)
    probe = synth.live_users(cfg.seed, max(50, cfg.users // 2), exclude=known + users, stream="users-probe")
    probe_dir = work / "data" / "users-probe"
    write_dataset(probe_dir, "conversations", probe, created_by={"command": "quickstart --simulate-users", "seed": cfg.seed}, overwrite=True)

    store = work / "feedback.db"
    ui.note(f"{len(users)} simulated users talk to {base['version']} (feedback in {store})")
    with served(str(reg.root / base["path"]), str(store), name=base["version"]) as url, ui.progress("simulated users", len(users), unit="users") as advance:
        rated = simulate(url, users, correct=cfg.correct, seed=cfg.seed, on_done=lambda: advance(1))
    refused = f", {rated['refused']} refused (too long for the context)" if rated.get("refused") else ""
    ui.note(f"users: task success {rated['success']:.3f}; {rated.get('up', 0)} up, {rated.get('down', 0)} down, {rated.get('corrected', 0)} corrected{refused}")

    overrides = {
        "store": str(store),
        "registry": str(reg.root),
        "test_data": cfg.test_data,
        "train_data": cfg.train_data,
        "out": str(work / "runs" / "learn"),
        "promote": True,
        "overwrite": True,
        "seed": cfg.seed,
        **cfg.learn_overrides,
    }
    learned = learn.main(load_config(learn.LearnConfig, overrides=overrides), ui)

    def task(model_dir: Path, name: str) -> dict[str, Any]:
        r = runner.main(EvalConfig(model=str(model_dir), data=str(probe_dir), metrics=["task"], out=str(work / "runs" / "learn" / f"users-{name}.json"), samples=0), QUIET)
        return {"success": r["task"]["success"], "per_intent": r["task"]["per_intent"]}

    result: dict[str, Any] = {"users": rated, "learn": {k: learned.get(k) for k in ("decision", "version", "reason", "feedback", "gate")}}
    if learned.get("version"):
        before = task(reg.root / base["path"], base["version"])
        after = task(reg.model_dir(learned["version"]), learned["version"])
        result["fresh_users"] = {base["version"]: before, learned["version"]: after}
        ui.note(f"fresh users' conversations: task success {base['version']} {before['success']:.3f} -> {learned['version']} {after['success']:.3f}")
    return result
