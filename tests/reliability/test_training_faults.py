"""Training survives faults: SIGKILL anywhere (between steps and inside checkpoint writes),
SIGTERM, a flipped byte in a checkpoint, NaN in a step.

A few trials of each run by default; `-m slow` runs the counts the reliability report
quotes (`python benchmarks/reliability_report.py` prints the figures).
"""

from __future__ import annotations

import random
import shutil
import signal
import subprocess
import sys

import pytest
import trials

from chatforge.checkpoint import find_checkpoint, save_checkpoint, verify_checkpoint
from chatforge.model import GPT, ModelConfig
from chatforge.optim import OptimConfig, make_optimizer


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    root = tmp_path_factory.mktemp("train-faults")
    return trials.PretrainRun(trials.make_corpus(root / "corpus")).reference(root / "reference")


def check_kill(t: trials.KillTrial, ref: trials.PretrainRun) -> None:
    assert t.published_broken == 0, t  # a published checkpoint is always complete
    assert t.resumed_ok, t
    assert t.identical, t  # resumed from a complete checkpoint: the same losses as never stopping
    if t.died:
        assert t.lost_steps <= ref.save_every, t  # at most the steps since the last checkpoint


def run_kills(reference, tmp_path, n: int, seed: int) -> list[trials.KillTrial]:
    rng = random.Random(seed)
    out = []
    for i in range(n):
        t = trials.kill_trial(reference, tmp_path / f"kill{i}", ["random_step", "in_write"][i % 2], rng)
        check_kill(t, reference)
        out.append(t)
    return out


def test_sigkill_anywhere_then_resume(reference, tmp_path):
    done = run_kills(reference, tmp_path, 4, seed=1)
    assert sum(t.died for t in done) >= 3  # the kills landed while the runs were still going


@pytest.mark.slow
def test_sigkill_many_trials(reference, tmp_path):
    done = run_kills(reference, tmp_path, 50, seed=2)
    in_write = [t for t in done if t.mode == "in_write" and t.died]
    assert len(in_write) >= 20 and sum(t.staging_left > 0 for t in in_write) >= 5  # many kills did land mid-write


def test_sigterm_checkpoints_and_exits_promptly(reference, tmp_path):
    rng = random.Random(3)
    for i in range(2):
        t = trials.term_trial(reference, tmp_path / f"term{i}", rng)
        assert t.exit_code == 0, t  # a stop by signal is a clean exit (the checkpoint says how to resume)
        assert t.checkpoint_step == t.stopped_step, t  # the step it stopped at is saved: nothing lost
        assert t.seconds_to_exit < 30, t  # one step and one checkpoint write, not the rest of the run
        assert t.identical_after_resume, t


def test_a_flipped_byte_is_detected_and_skipped(reference, tmp_path):
    run = tmp_path / "copy"  # the reference run is shared by the module: flip bytes in a copy
    shutil.copytree(reference.dir, run)
    counts = trials.flip_trials(run, 40, random.Random(4))
    assert counts["detected"] == counts["trials"] == 40


@pytest.mark.parametrize("seed", [5, 6, 7])
def test_nan_never_reaches_a_checkpoint(tmp_path, seed):
    t = trials.nan_trial(tmp_path, random.Random(seed))
    assert t.raised and t.non_finite_checkpoints == 0 and t.resumed_ok, t


def test_a_disk_that_fills_during_training(reference, tmp_path):
    t = trials.checkpoint_disk_full_trial(reference, tmp_path)
    if t is None:
        pytest.skip("this machine does not allow mounting a small tmpfs (root is needed)")
    assert t.exit_code == 1 and "No space left on device" in t.message and "checkpoints" in t.message and "Traceback" not in t.message, t
    assert t.checkpoints_before_full >= 1 and t.broken_checkpoints == 0, t
    assert t.identical_after_resume, t


KILL_WHILE_PRUNING = """
import os, shutil, signal, sys, torch
from pathlib import Path
from chatforge.checkpoint import save_checkpoint
from chatforge.model import GPT, ModelConfig
from chatforge.optim import OptimConfig, make_optimizer
torch.manual_seed(0)
model = GPT(ModelConfig(vocab_size=64, n_layer=1, n_embd=16, n_head=2, block_size=16))
opt = make_optimizer(model, OptimConfig())
run = Path(sys.argv[1])
for step in (1, 2):
    save_checkpoint(run, step, model, opt, {"data": {}}, keep_last=2)
real = shutil.rmtree
def dies_halfway(path, *a, **k):  # delete one file of the old checkpoint, then die
    if not Path(path).exists():
        return
    files = sorted(p for p in Path(path).iterdir())
    files[0].unlink()
    os.kill(os.getpid(), signal.SIGKILL)
shutil.rmtree = dies_halfway
save_checkpoint(run, 3, model, opt, {"data": {}}, keep_last=2)
"""


def test_a_kill_while_pruning_old_checkpoints_leaves_no_broken_one(tmp_path):
    p = subprocess.run([sys.executable, "-c", KILL_WHILE_PRUNING, str(tmp_path)], capture_output=True, text=True)
    assert p.returncode == -signal.SIGKILL, p.stderr
    published = sorted(x.name for x in (tmp_path / "checkpoints").glob("step_*"))
    assert published == ["step_000002", "step_000003"]  # step 1 is out of the checkpoints' names
    assert all(verify_checkpoint(tmp_path / "checkpoints" / name) is None for name in published)
    assert find_checkpoint(tmp_path, lambda m: None).name == "step_000003"
    # the next save clears what the killed prune left
    model = GPT(ModelConfig(vocab_size=64, n_layer=1, n_embd=16, n_head=2, block_size=16))
    save_checkpoint(tmp_path, 4, model, make_optimizer(model, OptimConfig()), {"data": {}}, keep_last=2)
    assert sorted(x.name for x in (tmp_path / "checkpoints").iterdir()) == ["latest", "step_000003", "step_000004"]
