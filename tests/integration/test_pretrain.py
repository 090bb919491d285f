"""`chatforge tokenizer train` and `chatforge pretrain` as a user runs them: real subprocesses,
kill -9 and --resume, torchrun with two processes, and the saved model in transformers."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
import yaml
from test_cli import EXE, cf  # same directory: pytest puts it on sys.path

from chatforge.checkpoint import load_model_dir
from chatforge.config import to_dict
from chatforge.engine import Engine, Sampling
from chatforge.quickstart import tiny_model, tiny_train
from chatforge.tokenizer import Tokenizer
from chatforge.tracking import read_metrics

ROOT = Path(__file__).resolve().parents[2]
TINY = ["--model.n-layer", "2", "--model.n-embd", "32", "--model.n-head", "2", "--model.block-size", "32",
        "--train.batch-size", "4", "--train.log-every", "1", "--train.eval-batches", "2", "-q"]


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> Path:
    """A small cleaned support world and a tokenizer trained on it."""
    root = tmp_path_factory.mktemp("corpus")
    cf("data", "synth", "--out", "w", "--conversations", "200", "--test-conversations", "20",
       "--heldout-conversations", "10", "--kb-articles", "40", "--preferences", "10", "-q", cwd=root)
    cf("data", "clean", "w/kb", "--out", "kb", "-q", cwd=root)
    cf("data", "clean", "w/conversations", "--out", "conv", "-q", cwd=root)
    cf("tokenizer", "train", "--data", "kb", "conv", "--vocab-size", "512", "--out", "tok", "-q", cwd=root)
    return root


def pretrain_args(corpus: Path, out: Path, *extra: str) -> list[str]:
    return ["pretrain", "--data", str(corpus / "kb"), str(corpus / "conv"), "--tokenizer", str(corpus / "tok"),
            "--out", str(out), *TINY, *extra]


def losses(run: Path) -> dict[int, float]:
    return {m["step"]: m["loss"] for m in read_metrics(run) if "loss" in m}


def straight_then_killed_and_resumed(make_args, tmp_path: Path, steps: int, kill_at: str) -> tuple[dict, dict, Path]:
    """Losses of a straight run and of one killed (-9) once checkpoint `kill_at` exists, then resumed."""
    cf(*make_args(tmp_path / "straight"))
    straight = losses(tmp_path / "straight")
    assert sorted(straight) == list(range(1, steps + 1))

    run = tmp_path / "killed"
    env = {**os.environ, "COLUMNS": "120"}
    p = subprocess.Popen([EXE, *make_args(run)], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.time() + 120
    while not (run / "checkpoints" / kill_at).is_dir() and p.poll() is None and time.time() < deadline:
        time.sleep(0.02)
    p.send_signal(signal.SIGKILL)
    p.wait()
    assert p.returncode == -signal.SIGKILL, "the run finished before it could be killed"
    assert not (run / "model").exists()

    # without --resume an existing run dir is refused, with a one-line message
    refused = cf(*make_args(run), check=False)
    assert refused.returncode == 2 and "--resume" in refused.stderr and "Traceback" not in refused.stderr

    cf(*make_args(run), "--resume")
    resumed = losses(run)
    assert sorted(resumed) == list(range(1, steps + 1))  # metrics after the checkpoint were rewritten, not duplicated
    return straight, resumed, run


def test_kill_9_then_resume_matches_an_uninterrupted_run(corpus, tmp_path):
    steps = ["--train.steps", "40", "--train.save-every", "10", "--train.eval-every", "20"]
    straight, resumed, run = straight_then_killed_and_resumed(
        lambda out: pretrain_args(corpus, out, *steps), tmp_path, 40, "step_000020"
    )
    assert resumed == pytest.approx(straight, abs=0, rel=0)  # bit-identical continuation
    png = (run / "curves.png").read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 10_000  # the loss curves, drawn
    summary = json.loads((run / "summary.json").read_text())
    assert summary["steps"] == 40 and summary["tokens"] == 40 * 4 * 32 and summary["best_val_bpb"] > 0


def test_saved_model_loads_in_transformers_with_the_same_logits(corpus, tmp_path):
    transformers = pytest.importorskip("transformers")
    cf(*pretrain_args(corpus, tmp_path / "run", "--train.steps", "5", "--train.eval-every", "0"))
    model_dir = tmp_path / "run" / "model"
    hf = transformers.AutoModelForCausalLM.from_pretrained(model_dir, torch_dtype=torch.float32).eval()
    tok = transformers.AutoTokenizer.from_pretrained(model_dir)
    ours = load_model_dir(model_dir).eval()
    ids = torch.tensor([tok("Where is my order? It was due on Monday.")["input_ids"]])
    with torch.no_grad():
        diff = (hf(ids).logits - ours(ids)).abs().max().item()
    assert diff < 1e-4


def test_torchrun_two_processes(corpus, tmp_path):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    run = tmp_path / "ddp"
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node=2", "--master_addr=127.0.0.1",
           f"--master_port={port}", "-m", "chatforge", *pretrain_args(corpus, run, "--train.steps", "8", "--train.eval-every", "4")]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    p = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=300)
    assert p.returncode == 0, p.stderr[-3000:]
    assert sorted(losses(run)) == list(range(1, 9))  # one metrics log, written by rank 0 only
    assert (run / "model" / "model.safetensors").is_file()
    assert json.loads((run / "summary.json").read_text())["steps"] == 8


def test_bad_input_is_one_line_exit_2(corpus, tmp_path):
    p = cf("pretrain", "--data", str(corpus / "kb"), "--tokenizer", str(tmp_path / "nope"), "--out", str(tmp_path / "r"), check=False)
    assert p.returncode == 2 and "nope" in p.stderr and "Traceback" not in p.stderr
    p = cf(*pretrain_args(corpus, tmp_path / "r", "--model.n-head", "3"), check=False)
    assert p.returncode == 2 and "n_head" in p.stderr and len(p.stderr.strip().splitlines()) == 1


def test_cpu_tiny_preset_is_the_quickstart_model():
    preset = yaml.safe_load((ROOT / "configs" / "pretrain-cpu-tiny.yaml").read_text())
    model, train = to_dict(tiny_model()), to_dict(tiny_train())
    assert {k: model[k] for k in preset["model"]} == preset["model"]
    assert {k: train[k] for k in preset["train"] if k != "optim"} == {k: v for k, v in preset["train"].items() if k != "optim"}
    assert {k: train["optim"][k] for k in preset["train"]["optim"]} == preset["train"]["optim"]


@pytest.fixture(scope="module")
def sft_base(corpus, tmp_path_factory) -> Path:
    """A tiny pretrained model with room for whole conversations."""
    out = tmp_path_factory.mktemp("sft-base") / "pre"
    cf(*pretrain_args(corpus, out, "--train.steps", "4", "--train.eval-every", "0", "--model.block-size", "384"))
    return out / "model"


def test_sft_from_the_pretrained_model_as_a_user(corpus, sft_base, tmp_path):
    base, conv, run = sft_base, corpus / "conv", tmp_path / "sft"
    sft = ["sft", "--model", str(base), "--data", f"{conv}:3", f"{conv}:1", "--out", str(run), "-q"]
    shown = cf(*sft[:-1], "--debug-data", "2").stdout
    assert "row 0:" in shown and "row 1:" in shown and "trained" in shown and "<|assistant|>" in shown
    assert not run.exists()  # --debug-data only shows
    tiny = ["--train.steps", "6", "--train.batch-size", "4", "--train.eval-every", "3", "--train.log-every", "1", "--train.eval-batches", "2"]
    cf(*sft, *tiny)
    summary = json.loads((run / "summary.json").read_text())
    rows = json.loads((conv / "manifest.json").read_text())["num_rows"]
    assert summary["steps"] == 6 and summary["data"]["conversations"] == 2 * rows  # each source read once
    assert summary["data"]["too_long"] < 0.1 * 2 * rows
    info = json.loads((run / "model" / "chatforge.json").read_text())
    assert info["stage"] == "sft" and info["base_model"] == str(base) and info["train_on"] == "assistant"
    assert any("val_loss" in m for m in read_metrics(run))
    # chat with it: piped lines, commands, and greedy replies equal to the engine's
    chat = subprocess.run(
        [EXE, "chat", "--model", str(run / "model"), "--temperature", "0", "--max-tokens", "12", "--system", "Be brief."],
        input="hello\n/system Answer in one line.\nwhere is my order?\n/reset\n/exit\nnever read\n",
        capture_output=True, text=True, timeout=120, check=True,
    ).stdout.splitlines()
    engine = Engine(load_model_dir(run / "model"), Tokenizer.load(run / "model"))
    greedy = Sampling(temperature=0, max_tokens=12)
    first = "".join(engine.chat([{"role": "system", "content": "Be brief."}, {"role": "user", "content": "hello"}], greedy))
    second = "".join(engine.chat([{"role": "system", "content": "Answer in one line."}, {"role": "user", "content": "where is my order?"}], greedy))
    assert chat == [
        f"assistant> {first}", "[new conversation; system: Answer in one line.]", f"assistant> {second}", "[new conversation; system: Answer in one line.]"
    ]
    bad = cf("sft", "--model", str(base), "--data", str(corpus / "w" / "preferences"), "--out", str(tmp_path / "x"), "-q", check=False)
    assert bad.returncode != 0 and "holds preferences; sft trains on conversation datasets" in bad.stderr and len(bad.stderr.strip().splitlines()) == 1


def test_sft_kill_9_then_resume_matches_an_uninterrupted_run(corpus, sft_base, tmp_path):
    def args(out: Path) -> list[str]:
        return ["sft", "--model", str(sft_base), "--data", f"{corpus / 'conv'}:2", str(corpus / "conv"),
                "--out", str(out), "--train.steps", "30", "--train.save-every", "10", "--train.eval-every", "15",
                "--train.batch-size", "4", "--train.log-every", "1", "--train.eval-batches", "2", "--train.optim.lr", "1e-3", "-q"]

    straight, resumed, run = straight_then_killed_and_resumed(args, tmp_path, 30, "step_000010")
    assert resumed == pytest.approx(straight, abs=0, rel=0)
    assert straight[30] < straight[1]
    assert json.loads((run / "summary.json").read_text())["steps"] == 30


def test_dpo_as_a_user(corpus, sft_base, tmp_path):
    run = tmp_path / "dpo"
    args = ["dpo", "--model", str(sft_base), "--data", str(corpus / "w" / "preferences"), "--out", str(run), "--val-fraction", "0.3",
            "--train.steps", "4", "--train.batch-size", "2", "--train.eval-every", "2", "--train.log-every", "1", "-q"]
    cf(*args)
    summary = json.loads((run / "summary.json").read_text())
    assert summary["steps"] == 4 and summary["pairs"] == 8 and summary["data"]["pairs"] == 10
    assert 0 < summary["after"]["pairs"] < 10 and summary["best_val_loss"] is not None  # held-out pairs
    assert json.loads((run / "model" / "chatforge.json").read_text())["stage"] == "dpo"
    bad = cf("dpo", "--model", str(sft_base), "--data", str(corpus / "conv"), "--out", str(tmp_path / "x"), "-q", check=False)
    assert bad.returncode != 0 and "holds conversations, not preferences" in bad.stderr
