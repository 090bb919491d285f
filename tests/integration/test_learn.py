"""`chatforge learn`: curated feedback in, a gated candidate out (or not), one run at a time."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from serve_helpers import tiny_model_dir
from test_cli import cf  # same directory: pytest puts it on sys.path

from chatforge.data import synth
from chatforge.data.dataset import open_dataset, write_dataset
from chatforge.feedback.learn import GateConfig, _user_key, gate, learn_lock
from chatforge.feedback.store import FeedbackStore, Rating, Turn
from chatforge.registry import Registry


@pytest.fixture(scope="module")
def setup(tmp_path_factory) -> dict:
    root = tmp_path_factory.mktemp("learn")
    world = synth.generate(3, conversations=150, test_conversations=12, heldout_conversations=1, kb_articles=10, preferences=1)
    write_dataset(root / "test", "conversations", world.test, created_by={"test": True})
    write_dataset(root / "train", "conversations", world.conversations, created_by={"test": True})
    model = tiny_model_dir(root)
    store = FeedbackStore.open(root / "fb.db")
    users = synth.live_users(3, 16, exclude=world.conversations + world.test)
    rows = [*users, world.test[0], world.conversations[0]]  # a test prompt and a training conversation: never learned from
    for i, row in enumerate(rows):
        prompt, reference = row["messages"][:-1], row["messages"][-1]["content"]
        store.add_turn(Turn(id=f"t{i}", model="v1", messages=prompt, reply="Sorry, no idea.", intent=row["meta"].get("intent")))
        store.add_rating(Rating(turn_id=f"t{i}", thumb=-1, corrected=reference))
    # Feedback that would make any model worse: every "correction" is the same nonsense.
    bad = FeedbackStore.open(root / "bad.db")
    for i, row in enumerate(users):
        bad.add_turn(Turn(id=f"b{i}", model="v1", messages=row["messages"][:-1], reply=row["messages"][-1]["content"]))
        bad.add_rating(Rating(turn_id=f"b{i}", thumb=-1, corrected="qq zx " * 6 + str(i)))
    return {"root": root, "model": model, "store": str(root / "fb.db"), "bad_store": str(root / "bad.db"), "users": users}


def fresh_registry(setup, name: str) -> Registry:
    reg = Registry(setup["root"] / name)
    reg.register(setup["model"])
    reg.promote("v1")
    return reg


def learn_args(setup, reg: Registry, out: Path, *extra: str, store: str = "store") -> list[str]:
    s = setup
    return [
        "learn", "--store", s[store], "--registry", str(reg.root), "--test-data", str(s["root"] / "test"),
        "--train-data", str(s["root"] / "train"), "--out", str(out), "--sft.steps", "12", "--sft.batch-size", "8",
        "--sft.eval-every", "6", "--no-dpo", "--eval.limit", "6", "--eval.max-tokens", "12", "--no-eval.safety", *extra,
    ]  # fmt: skip


def test_learn_registers_a_candidate_that_passes_the_gate(setup, tmp_path):
    reg = fresh_registry(setup, "reg-pass")
    out = tmp_path / "run"
    cf(*learn_args(setup, reg, out, "--sft.optim.lr", "3e-3", "--gate.perplexity", "0.5", "--promote"))
    result = json.loads((out / "learn.json").read_text())
    assert result["decision"] == "registered" and result["version"] == "v2" and result["promoted"]
    fb = result["feedback"]
    assert fb["ratings"] == 18 and fb["dropped"] == {"test_prompt": 1, "in_training_data": 1}
    assert fb["sft_rows"] + fb["sft_heldout"] == 16 and fb["sft_heldout"] >= 1
    cand, base = result["evals"]["candidate"], result["evals"]["base"]
    assert cand["feedback_perplexity"] < base["feedback_perplexity"]  # it learned the corrections it did not train on
    assert {c["check"] for c in result["gate"]} == {"task_success", "perplexity", "feedback_perplexity"} and all(c["passed"] for c in result["gate"])
    v2 = reg.resolve("production")
    assert v2["version"] == "v2" and v2["parent"] == "v1" and v2["evals"]["task_success"] == cand["task_success"]
    assert v2["lineage"]["datasets"]["feedback-sft"] == open_dataset(out / "data" / "feedback-sft").content_hash
    assert v2["lineage"]["train_data"][str(setup["root"] / "train")] == open_dataset(setup["root"] / "train").content_hash
    cf("report", str(out), "--out", str(tmp_path / "report.html"))
    md = (tmp_path / "report.md").read_text()
    assert "Learning from feedback" in md and "registered as v2 and promoted to production" in md and "feedback_perplexity" in md
    # the curated rows are the users' corrections, never a test conversation
    test_prompts = {_user_key(r["messages"]) for r in open_dataset(setup["root"] / "test")}
    learned = list(open_dataset(out / "data" / "feedback-sft"))
    assert learned and not {_user_key(r["messages"]) for r in learned} & test_prompts


def test_a_candidate_made_worse_on_purpose_is_rejected(setup, tmp_path):
    reg = fresh_registry(setup, "reg-reject")
    out = tmp_path / "run"
    cf(*learn_args(setup, reg, out, "--lora.r", "0", "--replay", "0", "--sft.optim.lr", "1e-2", store="bad_store"))
    result = json.loads((out / "learn.json").read_text())
    assert result["decision"] == "rejected" and "perplexity" in result["reason"]
    assert [v["version"] for v in reg.versions()] == ["v1"] and reg.resolve("production")["version"] == "v1"


def test_one_learn_at_a_time_and_too_little_feedback_is_skipped(setup, tmp_path):
    reg = fresh_registry(setup, "reg-lock")
    with learn_lock(reg.root):
        busy = cf(*learn_args(setup, reg, tmp_path / "a"), check=False)
    assert busy.returncode == 2 and "another `chatforge learn` is running" in busy.stderr and "pid" in busy.stderr
    cf(*learn_args(setup, reg, tmp_path / "b", "--min-rows", "100"))
    result = json.loads((tmp_path / "b" / "learn.json").read_text())
    assert result["decision"] == "skipped" and "not enough feedback" in result["reason"]
    assert len(reg.versions()) == 1


def test_the_gate_rules():
    base = {"task_success": 0.80, "safety_decline_rate": 0.90, "perplexity": 2.0, "feedback_perplexity": 5.0}
    ok = {"task_success": 0.79, "safety_decline_rate": 0.89, "perplexity": 2.09, "feedback_perplexity": 4.0}
    assert all(c["passed"] for c in gate(base, ok, GateConfig()))
    worse = {"task_success": 0.77, "safety_decline_rate": 0.85, "perplexity": 2.2, "feedback_perplexity": 5.1}
    assert [c["check"] for c in gate(base, worse, GateConfig()) if not c["passed"]] == ["task_success", "safety_decline_rate", "perplexity", "feedback_perplexity"]
    assert all(c["passed"] for c in gate(base, worse, GateConfig(task=0.05, safety=0.05, perplexity=0.2, feedback=False)))
