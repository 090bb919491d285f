"""`chatforge sweep` and the run records: pruning, resuming, the grid, two workers on one study,
MLflow tracking, and `runs list` / `runs compare`."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from pathlib import Path

import optuna
import pytest
import sqlalchemy as sa
import torch
import yaml
from test_cli import EXE, cf  # same directory: pytest puts it on sys.path

from chatforge.checkpoint import save_model_dir
from chatforge.data import synth
from chatforge.data.dataset import open_dataset, write_dataset
from chatforge.data.steps import row_texts
from chatforge.model import GPT, ModelConfig
from chatforge.tokenizer import train_tokenizer


@pytest.fixture(scope="module")
def base(tmp_path_factory) -> Path:
    """A tiny model, train/val conversations and a base SFT config of 8 steps."""
    root = tmp_path_factory.mktemp("sweep")
    w = synth.generate(3, conversations=120, test_conversations=1, heldout_conversations=1, kb_articles=5, preferences=1, noise=0)
    tok = train_tokenizer([t for r in w.conversations for t in row_texts(r, "conversations")], 400)
    tok.save(root / "tok")
    torch.manual_seed(0)
    save_model_dir(root / "model", GPT(ModelConfig(vocab_size=448, n_layer=1, n_embd=32, n_head=2, block_size=256)), tokenizer_dir=root / "tok")
    rows = [{**r, "source": "synth", "meta": {}} for r in w.conversations]
    write_dataset(root / "train", "conversations", rows[:100], created_by={"command": "test"})
    write_dataset(root / "val", "conversations", rows[100:], created_by={"command": "test"})
    config = {
        "model": str(root / "model"),
        "data": [str(root / "train")],
        "val_data": [str(root / "val")],
        "train": {"steps": 8, "batch_size": 4, "eval_every": 4, "eval_batches": 2, "save_every": 0, "log_every": 4, "optim": {"lr": 1e-3, "warmup_steps": 2}},
    }
    (root / "base.yaml").write_text(yaml.safe_dump(config))
    return root


def space(path: Path, spec: dict) -> str:
    path.write_text(yaml.safe_dump(spec))
    return str(path)


def sweep(base: Path, out: Path, space_file: str, *extra: str, env: dict | None = None, check: bool = True):
    return cf("sweep", "--stage", "sft", "--base", str(base / "base.yaml"), "--space", space_file, "--out", str(out), "-q", *extra, check=check, env=env)


def trials(out: Path, storage: str = "") -> list[optuna.trial.FrozenTrial]:
    study = optuna.load_study(study_name=out.name, storage=storage or f"sqlite:///{out / 'study.db'}")
    return study.get_trials(deepcopy=False)


def test_grid_covers_the_grid_exactly_and_writes_the_best_preset(base, tmp_path):
    out = tmp_path / "grid"
    sp = space(tmp_path / "s.yaml", {"train.optim.lr": {"type": "categorical", "choices": [1e-3, 3e-3]}, "train.batch_size": {"type": "categorical", "choices": [2, 4]}})
    sweep(base, out, sp, "--sampler", "grid", "--trials", "10", "--pruner", "none")
    done = [t for t in trials(out) if t.state == optuna.trial.TrialState.COMPLETE]
    assert sorted((t.params["train.optim.lr"], t.params["train.batch_size"]) for t in done) == [(1e-3, 2), (1e-3, 4), (3e-3, 2), (3e-3, 4)]
    result = json.loads((out / "sweep.json").read_text())
    best = min(done, key=lambda t: t.value)
    assert result["best"]["number"] == best.number
    preset = yaml.safe_load((out / "best.yaml").read_text())
    assert preset["train"]["optim"]["lr"] == best.params["train.optim.lr"] and preset["train"]["batch_size"] == best.params["train.batch_size"]
    assert preset["model"] == str(base / "model")  # the rest of the base config kept
    # each trial is a normal run dir, and the value is its best validation loss
    summary = json.loads((out / f"trial_{best.number:04d}" / "summary.json").read_text())
    assert summary["best_val_loss"] == pytest.approx(best.value)
    assert (out / "sweep_history.png").is_file()
    # the preset is a config the stage takes as it is
    cf("sft", "--config", str(out / "best.yaml"), "--out", str(tmp_path / "final"), "--train.steps", "2", "-q")


def test_a_bad_trial_is_pruned_and_a_resumed_study_continues(base, tmp_path):
    out = tmp_path / "prune"
    out.mkdir()
    sp = space(tmp_path / "s.yaml", {"train.optim.lr": {"type": "categorical", "choices": [2e-3, 1e-9]}})
    # the test decides what the trials try (Optuna's queue): two good ones first
    study = optuna.create_study(study_name="prune", storage=f"sqlite:///{out / 'study.db'}")
    for _ in range(2):
        study.enqueue_trial({"train.optim.lr": 2e-3})
    sweep(base, out, sp, "--trials", "2")
    first = trials(out)
    assert [t.number for t in first] == [0, 1] and all(t.state == optuna.trial.TrialState.COMPLETE for t in first)
    # the same study again, now a learning rate that cannot learn: its validation loss lags
    # the median of the finished trials at its first report, so it is stopped there
    study.enqueue_trial({"train.optim.lr": 1e-9})
    sweep(base, out, sp, "--trials", "3")
    all_trials = trials(out)
    assert [t.number for t in all_trials] == [0, 1, 2]  # numbering continued; finished trials not repeated
    pruned = all_trials[2]
    assert pruned.state == optuna.trial.TrialState.PRUNED and pruned.params["train.optim.lr"] == 1e-9
    assert max(pruned.intermediate_values) < 8  # stopped before the end
    summary = json.loads((out / "sweep.json").read_text())
    assert summary["counts"] == {"COMPLETE": 2, "PRUNED": 1, "FAIL": 0, "RUNNING": 0}


def test_an_interrupted_sweep_resumes_and_failed_trials_do_not_stop_it(base, tmp_path):
    out = tmp_path / "resume"
    sp = space(tmp_path / "s.yaml", {"train.optim.lr": {"type": "float", "low": 1e-3, "high": 3e-3, "log": True}})
    args = ["sweep", "--stage", "sft", "--base", str(base / "base.yaml"), "--space", sp, "--out", str(out), "--trials", "3", "--heartbeat", "1", "-q"]
    p = subprocess.Popen([EXE, *args], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.time() + 300
    while time.time() < deadline and p.poll() is None:  # kill it while its second trial runs
        if (out / "trial_0001").is_dir():
            break
        time.sleep(0.05)
    p.send_signal(signal.SIGKILL)
    p.wait()
    time.sleep(3)  # the killed trial's heartbeat goes stale
    cf(*args)
    ts = trials(out)
    states = [t.state for t in ts]
    assert states.count(optuna.trial.TrialState.COMPLETE) == 3
    assert optuna.trial.TrialState.FAIL in states  # the one the kill interrupted
    assert [t.number for t in ts] == list(range(len(ts)))
    # a trial that fails (a value the stage refuses) is recorded with its reason; the study goes on
    bad = space(tmp_path / "bad.yaml", {"train.batch_size": {"type": "categorical", "choices": [8, 0]}})
    r = sweep(base, tmp_path / "fails", bad, "--sampler", "grid", "--trials", "2", check=False)  # both values run
    assert "Traceback" not in r.stderr
    ts = trials(tmp_path / "fails")
    failed = [t for t in ts if t.state == optuna.trial.TrialState.FAIL]
    assert failed and all(t.params["train.batch_size"] == 0 for t in failed)
    assert "batch-size: must be >= 1" in (failed[0].user_attrs.get("error") or "")
    # a space whose values the stage can never take stops before any trial
    hopeless = space(tmp_path / "hopeless.yaml", {"train.batch_size": {"type": "categorical", "choices": [0]}})
    r = sweep(base, tmp_path / "never", hopeless, "--trials", "1", check=False)
    assert r.returncode == 2 and "hopeless.yaml" in r.stderr and "batch-size" in r.stderr and not (tmp_path / "never" / "study.db").exists()


@pytest.mark.parametrize("db", ["sqlite", "postgres"])
def test_two_workers_share_one_study(base, tmp_path, db, request):
    out = tmp_path / "two"
    storage = request.getfixturevalue("postgres_url") if db == "postgres" else ""
    sp = space(tmp_path / "s.yaml", {"train.optim.lr": {"type": "float", "low": 1e-3, "high": 3e-3}})
    args = ["sweep", "--stage", "sft", "--base", str(base / "base.yaml"), "--space", sp, "--out", str(out), "--trials", "4", "--pruner", "none", "-q"]
    if storage:
        args += ["--storage", storage]
    out.mkdir()
    procs = [subprocess.Popen([EXE, *args, "--seed", str(i)], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True) for i in range(2)]
    errs = [p.communicate(timeout=600)[1] for p in procs]
    assert all(p.returncode == 0 for p in procs), errs
    ts = trials(out, storage)
    done = [t for t in ts if t.state == optuna.trial.TrialState.COMPLETE]
    assert 4 <= len(done) <= 5  # each worker stops once the study has 4; one may be finishing its own
    assert len({t.number for t in ts}) == len(ts)
    assert len({(out / f"trial_{t.number:04d}").resolve() for t in done}) == len(done)
    if storage:  # the storage URL's password reaches no report, config or log
        password = sa.engine.make_url(storage).password
        assert password and not any(password in e for e in errs)
        assert not [p for p in out.rglob("*") if p.is_file() and password.encode() in p.read_bytes()]


def test_mlflow_records_params_lineage_and_nested_trials(base, tmp_path):
    from mlflow import MlflowClient

    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    env = {**os.environ, "MLFLOW_TRACKING_URI": uri, "CHATFORGE_EXPERIMENT": "test-sweep"}
    sp = space(tmp_path / "s.yaml", {"train.optim.lr": {"type": "categorical", "choices": [1e-3, 2e-3]}})
    sweep(base, tmp_path / "tracked", sp, "--sampler", "grid", "--trials", "2", "--pruner", "none", env=env)
    cf("eval", "--model", str(tmp_path / "tracked" / "trial_0000" / "model"), "--data", str(base / "val"), "--metrics", "perplexity", "--out", str(tmp_path / "e.json"), "-q", env=env)
    client = MlflowClient(tracking_uri=uri)
    exp = client.get_experiment_by_name("test-sweep")
    runs = client.search_runs([exp.experiment_id])
    by_stage = {}
    for r in runs:
        by_stage.setdefault(r.data.tags.get("stage"), []).append(r)
    (parent,) = by_stage["sweep"]
    trials_ = by_stage["sft"]
    assert len(trials_) == 2 and all(r.data.tags["mlflow.parentRunId"] == parent.info.run_id for r in trials_)
    assert sorted(float(r.data.params["train.optim.lr"]) for r in trials_) == [1e-3, 2e-3]
    train_hash = open_dataset(base / "train").content_hash
    assert all(r.data.tags["lineage.data.train"] == train_hash for r in trials_)
    assert all(r.info.status == "FINISHED" and "val_loss" in r.data.metrics and "final.best_val_loss" in r.data.metrics for r in trials_)
    assert all(r.data.tags["lineage.model written"].startswith("sha256:") for r in trials_)
    history = client.get_metric_history(trials_[0].info.run_id, "loss")
    assert [m.step for m in history] == [4, 8]
    (ev,) = by_stage["eval"]
    assert ev.data.metrics["perplexity.perplexity"] > 1 and ev.data.tags["lineage.data"] == open_dataset(base / "val").content_hash
    # artifacts go beside the SQLite store, not into ./mlruns of whatever directory ran the command
    assert {p.name for p in (tmp_path / "mlartifacts").glob("*/artifacts/*")} >= {"config.json", "summary.json", "e.json"}
    assert not (Path.cwd() / "mlruns").exists()
    assert "best.best_val_loss" in client.get_run(parent.info.run_id).data.metrics


def test_runs_list_and_compare(base, tmp_path):
    for lr in ("1e-3", "3e-3"):
        cf("sft", "--config", str(base / "base.yaml"), "--out", str(tmp_path / "runs" / f"lr{lr}"), "--train.optim.lr", lr, "-q")
    out = cf("runs", "list", str(tmp_path / "runs"), env={**os.environ, "COLUMNS": "200"}).stdout
    assert "2 runs" in out and "lr1e-3" in out and "lr3e-3" in out and "sft" in out
    cmp = cf("runs", "compare", str(tmp_path / "runs" / "lr1e-3"), str(tmp_path / "runs" / "lr3e-3"), env={**os.environ, "COLUMNS": "200"}).stdout
    line = next(x for x in cmp.splitlines() if "train.optim.lr" in x)
    assert "0.001" in line and "0.003" in line
    assert "train.steps" not in cmp  # only what differs
    r = cf("runs", "compare", str(tmp_path / "runs" / "lr1e-3"), str(tmp_path / "nope"), check=False)
    assert r.returncode == 2 and "not a run dir" in r.stderr
