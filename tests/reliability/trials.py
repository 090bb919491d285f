"""Shared pieces of the reliability suite: tiny fixtures and the fault trials themselves.

The tests run a few trials of each kind; `benchmarks/reliability_report.py` runs the same
functions with many more and prints the figures.
"""

from __future__ import annotations

import contextlib
import json
import os
import random
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

CHATML = (
    "{% for m in messages %}<|im_start|>{{ m['role'] }}\n{{ m['content'] }}<|im_end|>\n{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)


def byte_hf_tokenizer(specials: tuple[str, ...] = ("<|im_start|>", "<|im_end|>")) -> Any:
    """A byte-level HF tokenizer with no merges (every byte one token) and ChatML's specials."""
    from tokenizers import Tokenizer, decoders
    from tokenizers.models import BPE
    from tokenizers.pre_tokenizers import ByteLevel

    vocab = {c: i for i, c in enumerate(sorted(set(ByteLevel.alphabet())))}
    tok = Tokenizer(BPE(vocab=vocab, merges=[]))
    tok.pre_tokenizer = ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    tok.add_special_tokens(list(specials))
    return tok


def template_tokenizer(template: str = CHATML) -> Any:
    """chatforge's TemplateTokenizer (an imported model's tokenizer) over `byte_hf_tokenizer`."""
    from chatforge.tokenizer import TemplateTokenizer

    return TemplateTokenizer(byte_hf_tokenizer(), {"eos_token": "<|im_end|>"}, template)


# -- training faults ---------------------------------------------------------------------------
#
# Every trial runs the real `chatforge pretrain` in a subprocess on a tiny model, interrupts it
# and resumes it with --resume; an uninterrupted run of the same config is the reference, and a
# resumed run must end bit-identical to it (the strongest check that it resumed from a complete
# checkpoint: any partial or wrong state would change the losses).

EXE = str(Path(sys.executable).with_name("chatforge"))
TINY_MODEL = ["--model.n-layer", "2", "--model.n-embd", "32", "--model.n-head", "2", "--model.block-size", "32"]

# The child of a "kill inside a write" trial: the CLI with os.fsync / os.replace / os.rename
# counted, and SIGKILL delivered just before the K-th of them (K=0: count them, write the count
# to CF_IO_COUNT at exit). Those calls happen only where chatforge writes files, so K walks
# through every step of every checkpoint write (files, their fsyncs, the renames that publish).
_KILL_AT_IO = """
import atexit, os, signal, sys
k = int(os.environ["CF_KILL_AT_IO"])
n = [0]
def counted(f):
    def g(*a, **kw):
        n[0] += 1
        if n[0] == k:
            os.kill(os.getpid(), signal.SIGKILL)
        return f(*a, **kw)
    return g
os.fsync, os.replace, os.rename = counted(os.fsync), counted(os.replace), counted(os.rename)
if k == 0:
    atexit.register(lambda: open(os.environ["CF_IO_COUNT"], "w").write(str(n[0])))
from chatforge.cli import main
sys.exit(main(sys.argv[1:]))
"""


def cli(*args: str, cwd: Path | None = None, timeout: float = 600, check: bool = True) -> subprocess.CompletedProcess:
    p = subprocess.run([EXE, *args], capture_output=True, text=True, cwd=cwd, timeout=timeout)
    if check and p.returncode != 0:
        raise AssertionError(f"chatforge {' '.join(args)} exited {p.returncode}:\n{p.stderr[-3000:]}")
    return p


def make_corpus(root: Path) -> Path:
    """A small cleaned support world and a tokenizer trained on it (what pretrain reads)."""
    root.mkdir(parents=True, exist_ok=True)
    cli("data", "synth", "--out", "w", "--conversations", "120", "--test-conversations", "10", "--heldout-conversations", "5",
        "--kb-articles", "30", "--preferences", "5", "-q", cwd=root)
    cli("data", "clean", "w/kb", "--out", "kb", "-q", cwd=root)
    cli("data", "clean", "w/conversations", "--out", "conv", "-q", cwd=root)
    cli("tokenizer", "train", "--data", "kb", "conv", "--vocab-size", "512", "--out", "tok", "-q", cwd=root)
    return root


@dataclass
class PretrainRun:
    """One tiny pretraining config, and its uninterrupted reference run."""

    corpus: Path
    steps: int = 30
    save_every: int = 3
    losses: dict[int, float] = field(default_factory=dict)
    io_events: int = 0
    seconds: float = 0.0
    dir: Path | None = None  # the reference run

    def args(self, out: Path, *extra: str) -> list[str]:
        return ["pretrain", "--data", str(self.corpus / "kb"), str(self.corpus / "conv"), "--tokenizer", str(self.corpus / "tok"),
                "--out", str(out), *TINY_MODEL, "--train.batch-size", "4", "--train.steps", str(self.steps),
                "--train.save-every", str(self.save_every), "--train.eval-every", "10", "--train.eval-batches", "1",
                "--train.log-every", "1", "--train.keep-last", "3", "-q", *extra]

    def reference(self, out: Path) -> PretrainRun:
        env = {**os.environ, "CF_KILL_AT_IO": "0", "CF_IO_COUNT": str(out.parent / f"{out.name}.io")}
        t0 = time.perf_counter()
        p = subprocess.run([sys.executable, "-c", _KILL_AT_IO, *self.args(out)], env=env, capture_output=True, text=True, timeout=600)
        self.seconds = time.perf_counter() - t0
        assert p.returncode == 0, p.stderr[-3000:]
        self.dir = out
        self.losses = losses(out)
        assert sorted(self.losses) == list(range(1, self.steps + 1))
        self.io_events = int(Path(env["CF_IO_COUNT"]).read_text())
        return self


def losses(run: Path) -> dict[int, float]:
    path = run / "metrics.jsonl"
    if not path.is_file():
        return {}
    out = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            m = json.loads(line)
        except json.JSONDecodeError:  # the line being written when the process died
            continue
        if "loss" in m:
            out[m["step"]] = m["loss"]
    return out


def checkpoints_state(run: Path) -> dict[str, object]:
    """What a killed run left: its published checkpoints (all must verify) and what find_checkpoint picks."""
    from chatforge.checkpoint import find_checkpoint, verify_checkpoint

    ckdir = run / "checkpoints"
    published = sorted(p for p in ckdir.glob("step_*") if p.is_dir()) if ckdir.is_dir() else []
    broken = [p.name for p in published if verify_checkpoint(p) is not None]
    staging = sorted(p.name for p in ckdir.iterdir() if not p.name.startswith("step_") and p.name != "latest") if ckdir.is_dir() else []
    found = find_checkpoint(run, lambda m: None)
    return {"published": [p.name for p in published], "broken": broken, "staging": staging,
            "resume_step": int(found.name.split("_")[1]) if found else 0}


@dataclass
class KillTrial:
    mode: str  # "random_step" or "in_write"
    kill_point: int  # the step (random_step) or the I/O event (in_write) before which it died
    died: bool  # killed before it finished (else the kill came too late and the run completed)
    last_logged: int  # the last step the killed run logged
    resume_step: int  # the checkpoint the resume started from
    lost_steps: int
    staging_left: int  # unpublished checkpoint dirs the kill left behind
    published_broken: int  # published checkpoints that fail verification (must be 0)
    resumed_ok: bool  # the resume exited 0
    identical: bool  # the resumed run's losses equal the uninterrupted run's, bit for bit


def kill_trial(ref: PretrainRun, run: Path, mode: str, rng: random.Random) -> KillTrial:
    """SIGKILL one run at a random point, check what it left, resume it, compare with the reference."""
    if mode == "in_write":
        point = rng.randint(1, ref.io_events)
        env = {**os.environ, "CF_KILL_AT_IO": str(point)}
        p = subprocess.run([sys.executable, "-c", _KILL_AT_IO, *ref.args(run)], env=env, capture_output=True, text=True, timeout=600)
        died = p.returncode == -signal.SIGKILL
        assert died or p.returncode == 0, p.stderr[-3000:]
    else:
        point = rng.randint(1, ref.steps)
        proc = subprocess.Popen([EXE, *ref.args(run)], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        deadline = time.monotonic() + 600
        while max(losses(run), default=0) < point and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.005)
        time.sleep(rng.uniform(0, ref.seconds / ref.steps / 4))  # anywhere inside the next step
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        died = proc.returncode == -signal.SIGKILL
    last = max(losses(run), default=0)
    state = checkpoints_state(run)
    resumed = subprocess.run([EXE, *ref.args(run, "--resume")], capture_output=True, text=True, timeout=600)
    after = losses(run)
    return KillTrial(
        mode=mode, kill_point=point, died=died, last_logged=last, resume_step=int(state["resume_step"]),  # type: ignore[arg-type]
        lost_steps=max(0, last - int(state["resume_step"])),  # type: ignore[arg-type]
        staging_left=len(state["staging"]), published_broken=len(state["broken"]),  # type: ignore[arg-type]
        resumed_ok=resumed.returncode == 0, identical=after == ref.losses,
    )


@dataclass
class TermTrial:
    at_step: int
    exit_code: int
    seconds_to_exit: float
    checkpoint_step: int  # the newest checkpoint after the exit
    stopped_step: int  # the last step logged
    identical_after_resume: bool


def term_trial(ref: PretrainRun, run: Path, rng: random.Random) -> TermTrial:
    """SIGTERM at a random step: a checkpoint of the step it stopped at, an exit within a bound."""
    at = rng.randint(1, ref.steps - 2)
    proc = subprocess.Popen([EXE, *ref.args(run)], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    while max(losses(run), default=0) < at and proc.poll() is None:
        time.sleep(0.005)
    t0 = time.perf_counter()
    proc.send_signal(signal.SIGTERM)
    proc.wait(timeout=120)
    seconds = time.perf_counter() - t0
    stopped = max(losses(run), default=0)
    state = checkpoints_state(run)
    resumed = subprocess.run([EXE, *ref.args(run, "--resume")], capture_output=True, text=True, timeout=600)
    return TermTrial(at, proc.returncode, seconds, int(state["resume_step"]), stopped,  # type: ignore[arg-type]
                     resumed.returncode == 0 and losses(run) == ref.losses)


def flip_trials(run: Path, n: int, rng: random.Random) -> dict[str, int]:
    """Flip one random byte of a random file of the newest checkpoint, `n` times (restoring it
    after each): find_checkpoint must skip it every time and fall back to the one before."""
    from chatforge.checkpoint import find_checkpoint

    ckdir = run / "checkpoints"
    published = sorted(p for p in ckdir.glob("step_*") if p.is_dir())
    newest, previous = published[-1], published[-2]
    files = sorted(p for p in newest.iterdir() if p.is_file())
    detected = 0
    for _ in range(n):
        f = rng.choice(files)
        blob = f.read_bytes()
        i = rng.randrange(len(blob))
        f.write_bytes(blob[:i] + bytes([blob[i] ^ (1 << rng.randrange(8))]) + blob[i + 1 :])
        try:
            found = find_checkpoint(run, lambda m: None)
            detected += found is not None and found.name == previous.name
        finally:
            f.write_bytes(blob)
    assert find_checkpoint(run, lambda m: None) == newest
    return {"trials": n, "detected": detected}


@dataclass
class NanTrial:
    kind: str  # "loss" or "grad"
    at_step: int
    raised: bool  # the run stopped with NonFiniteLoss
    checkpoints: int
    non_finite_checkpoints: int  # checkpoints holding a NaN/inf weight or optimizer state (must be 0)
    resumed_ok: bool  # resuming from the newest checkpoint (without the poison) ran to the end


def nan_trial(root: Path, rng: random.Random) -> NanTrial:
    """NaN injected into the loss or into one gradient at a random step of a tiny in-process run."""
    import numpy as np
    import torch
    from safetensors.torch import load_file

    from chatforge.model import GPT, ModelConfig
    from chatforge.optim import OptimConfig
    from chatforge.tracking import RunLog
    from chatforge.train.data import TokenWindows
    from chatforge.train.loop import Dist, NonFiniteLoss, TrainConfig, fit, lm_loss

    root.mkdir(parents=True, exist_ok=True)
    tokens = root / "tokens.bin"
    if not tokens.exists():
        np.tile(np.arange(40, dtype=np.uint16), 100).tofile(tokens)
    kind, at = rng.choice(["loss", "grad"]), rng.randint(1, 12)
    run = root / f"nan-{kind}-{at}-{rng.randrange(10**6)}"
    cfg = TrainConfig(steps=12, batch_size=4, eval_every=0, save_every=2, log_every=1, dtype="fp32", keep_last=20, optim=OptimConfig(lr=3e-3, warmup_steps=2))

    def model() -> GPT:
        torch.manual_seed(0)
        return GPT(ModelConfig(vocab_size=64, n_layer=1, n_embd=16, n_head=2, block_size=16))

    calls = {"n": 0}

    def poisoned(m: torch.nn.Module, batch: object) -> tuple[torch.Tensor, torch.Tensor]:
        loss, n = lm_loss(m, batch)
        calls["n"] += 1
        if calls["n"] == at:
            if kind == "loss":
                return loss * float("nan"), n
            p = next(m.parameters())
            p.register_hook(lambda g: g * float("nan") if calls["n"] == at else g)
        return loss, n

    raised = False
    log = RunLog(run, stage="nan", config={})
    try:
        fit(model(), TokenWindows(tokens, "uint16", 16, seed=0, dist=Dist()), cfg, run_dir=run, log=log, loss_fn=poisoned)
    except NonFiniteLoss:
        raised = True
    finally:
        log.close()
    cks = sorted((run / "checkpoints").glob("step_*"))
    bad = 0
    for ck in cks:
        tensors = {**load_file(str(ck / "model.safetensors")), **load_file(str(ck / "optimizer.safetensors"))}
        bad += any(not torch.isfinite(t).all() for t in tensors.values() if t.is_floating_point())
    log = RunLog(run, stage="nan", config={}, resume_step=int(cks[-1].name.split("_")[1]) if cks else None)
    try:
        result = fit(model(), TokenWindows(tokens, "uint16", 16, seed=0, dist=Dist()), cfg, run_dir=run, log=log, resume=True)
        resumed = result.steps == cfg.steps
    finally:
        log.close()
    return NanTrial(kind, at, raised, len(cks), bad, resumed)


# -- data faults -------------------------------------------------------------------------------


def run_killed_at_io(args: list[str], point: int, cwd: Path | None = None) -> subprocess.CompletedProcess:
    """`chatforge ARGS` killed (SIGKILL) just before its `point`-th fsync/replace/rename (0: never)."""
    env = {**os.environ, "CF_KILL_AT_IO": str(point), "CF_IO_COUNT": os.devnull}
    return subprocess.run([sys.executable, "-c", _KILL_AT_IO, *args], env=env, capture_output=True, text=True, timeout=900, cwd=cwd)


def count_io(args: list[str], scratch: Path, cwd: Path | None = None) -> int:
    """How many fsync/replace/rename calls `chatforge ARGS` makes when it runs to the end."""
    counter = scratch / "io-count"
    env = {**os.environ, "CF_KILL_AT_IO": "0", "CF_IO_COUNT": str(counter)}
    p = subprocess.run([sys.executable, "-c", _KILL_AT_IO, *args], env=env, capture_output=True, text=True, timeout=900, cwd=cwd)
    assert p.returncode == 0, p.stderr[-3000:]
    return int(counter.read_text())


def leftovers(out: Path) -> list[str]:
    """Staging / moved-aside copies of `out` beside it (`.NAME.staging-PID-*`, ...)."""
    return sorted(p.name for p in out.parent.glob(f".{out.name}.*"))


@dataclass
class DatasetCommand:
    """A command that replaces a dataset version: `make(out, which)` gives its args writing the
    old (which=0) or new (which=1) version to `out`."""

    name: str
    make: Any
    old_hash: str = ""
    new_hash: str = ""
    io_events: int = 0
    seconds: float = 0.0  # one run, start to exit

    def prepare(self, scratch: Path) -> DatasetCommand:
        from chatforge.data.dataset import open_dataset

        cli(*self.make(scratch / "old", 0))
        cli(*self.make(scratch / "new", 1))
        self.old_hash = open_dataset(scratch / "old").content_hash
        self.new_hash = open_dataset(scratch / "new").content_hash
        assert self.old_hash != self.new_hash
        cli(*self.make(scratch / "counted", 0))
        t0 = time.perf_counter()
        self.io_events = count_io([*self.make(scratch / "counted", 1), "--overwrite"], scratch)
        self.seconds = time.perf_counter() - t0
        return self


@dataclass
class DataKillTrial:
    command: str
    mode: str  # "in_write" (before the K-th fsync/rename) or "random_time"
    kill_point: float  # K, or seconds after the start
    died: bool
    outcome: str  # "old" (the previous version, intact), "new" (the new one, complete) or what is wrong
    leftovers: int  # staging copies beside the output right after the kill (cleaned by the next run)
    rerun_ok: bool  # the same command, run again, succeeds and leaves nothing beside its output


def data_kill_trial(cmd: DatasetCommand, out: Path, mode: str, rng: random.Random) -> DataKillTrial:
    from chatforge.data.dataset import open_dataset

    cli(*cmd.make(out, 0))
    args = [*cmd.make(out, 1), "--overwrite"]
    point: float
    if mode == "in_write":
        point = rng.randint(1, cmd.io_events)
        p = run_killed_at_io(args, point)
        died = p.returncode == -signal.SIGKILL
        assert died or p.returncode == 0, p.stderr[-3000:]
    else:
        point = rng.uniform(0, cmd.seconds)
        proc = subprocess.Popen([EXE, *args], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        time.sleep(point)
        proc.send_signal(signal.SIGKILL)
        died = proc.wait() == -signal.SIGKILL
    try:
        ds = open_dataset(out)
        ds.verify()
        outcome = {cmd.old_hash: "old", cmd.new_hash: "new"}.get(ds.content_hash, f"unknown hash {ds.content_hash}")
    except Exception as e:  # a half-written version: the failure this trial looks for
        outcome = f"broken: {e}"
    left = len(leftovers(out))
    rerun = subprocess.run([EXE, *cmd.make(out, 1), "--overwrite"], capture_output=True, text=True, timeout=900)
    rerun_ok = rerun.returncode == 0 and open_dataset(out).content_hash == cmd.new_hash and not leftovers(out)
    return DataKillTrial(cmd.name, mode, point, died, outcome, left, rerun_ok)


def dataset_commands(scratch: Path) -> list[DatasetCommand]:
    """`data ingest` (two JSONL files) and `data clean` (two synthetic worlds), prepared."""
    from chatforge.data import synth

    scratch.mkdir(parents=True, exist_ok=True)
    for seed in (0, 1):
        w = synth.generate(seed, conversations=300, test_conversations=1, heldout_conversations=1, kb_articles=5, preferences=1)
        with open(scratch / f"chat{seed}.jsonl", "w", encoding="utf-8") as f:
            for r in w.conversations:
                f.write(json.dumps({"messages": r["messages"]}) + "\n")
        cli("data", "ingest", str(scratch / f"chat{seed}.jsonl"), "--out", str(scratch / f"raw{seed}"), "-q")
    ingest = DatasetCommand("data ingest", lambda out, which: ["data", "ingest", str(scratch / f"chat{which}.jsonl"), "--out", str(out), "--shard-rows", "50", "-q"])
    clean = DatasetCommand("data clean", lambda out, which: ["data", "clean", str(scratch / f"raw{which}"), "--out", str(out), "--workers", "1", "--batch-rows", "50", "-q"])
    return [ingest.prepare(scratch / "ingest"), clean.prepare(scratch / "clean")]


# -- a full disk -------------------------------------------------------------------------------


@contextlib.contextmanager
def small_disk(path: Path, kib: int) -> Iterator[bool]:
    """A tmpfs of `kib` KiB mounted at `path` (needs root, as in CI); yields False if this machine
    does not allow the mount (the caller then limits file sizes with RLIMIT_FSIZE instead)."""
    path.mkdir(parents=True, exist_ok=True)
    p = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={kib}k", "tmpfs", str(path)], capture_output=True, text=True)
    if p.returncode != 0:
        yield False
        return
    try:
        yield True
    finally:
        subprocess.run(["umount", "-l", str(path)], capture_output=True)


def resize_disk(path: Path, kib: int) -> None:
    subprocess.run(["mount", "-o", f"remount,size={kib}k", str(path)], check=True, capture_output=True)


def _limit_file_size(limit: int) -> Any:
    def apply() -> None:
        import resource

        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a write past the limit fails with EFBIG instead of killing
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))

    return apply


def du(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


@dataclass
class DiskFullTrial:
    how: str  # "tmpfs" or "rlimit"
    exit_code: int
    message: str
    previous_intact: bool
    leftovers: int


def disk_full_trial(scratch: Path, how: str = "tmpfs") -> DiskFullTrial:
    """`data clean --overwrite` of a big dataset over a small previous version, on a disk with room
    for the old one but not both: a clear error naming the output, the old version intact."""
    from chatforge.data import synth
    from chatforge.data.dataset import open_dataset, write_dataset

    small, big = scratch / "small-raw", scratch / "big-raw"
    w = synth.generate(7, conversations=3000, test_conversations=1, heldout_conversations=1, kb_articles=5, preferences=1)
    write_dataset(small, "conversations", w.conversations[:20], created_by={"test": True})
    write_dataset(big, "conversations", w.conversations, created_by={"test": True})
    cli("data", "clean", str(small), "--out", str(scratch / "probe"), "--workers", "1", "-q")
    room = (du(scratch / "probe") + du(big) // 3) // 1024 + 64  # the old version fits, old + new do not
    disk = scratch / "disk"
    with small_disk(disk, room) if how == "tmpfs" else contextlib.nullcontext(False) as mounted:
        out = disk / "out" if mounted else scratch / "out"
        cli("data", "clean", str(small), "--out", str(out), "--workers", "1", "-q")
        before = open_dataset(out).content_hash
        p = subprocess.run([EXE, "data", "clean", str(big), "--out", str(out), "--overwrite", "--workers", "1", "--batch-rows", "500", "-q"],
                           capture_output=True, text=True, timeout=600, preexec_fn=None if mounted else _limit_file_size(du(big) // 3))
        try:
            ds = open_dataset(out)
            ds.verify()
            intact = ds.content_hash == before
        except Exception:
            intact = False
        return DiskFullTrial("tmpfs" if mounted else "rlimit", p.returncode, p.stderr.strip(), intact, len(leftovers(out)))


@dataclass
class CheckpointDiskFullTrial:
    how: str
    exit_code: int
    message: str
    checkpoints_before_full: int  # complete checkpoints written before the disk filled
    broken_checkpoints: int  # published checkpoints that fail verification (must be 0)
    identical_after_resume: bool  # with room again, --resume ends exactly as the uninterrupted run


def checkpoint_disk_full_trial(ref: PretrainRun, scratch: Path) -> CheckpointDiskFullTrial | None:
    """`chatforge pretrain` on a disk that fills after a few checkpoints (tmpfs only: None where
    mounting is not allowed): a clear error, the checkpoints already written intact, and after
    the disk is given room, --resume ends bit-identical to the uninterrupted run."""
    assert ref.dir is not None
    one = du(ref.dir / "checkpoints" / sorted(p.name for p in (ref.dir / "checkpoints").glob("step_*"))[-1])
    disk = scratch / "disk"
    with small_disk(disk, (int(one * 2.5) + 256 * 1024) // 1024) as mounted:
        if not mounted:
            return None
        run = disk / "run"
        p = subprocess.run([EXE, *ref.args(run)], capture_output=True, text=True, timeout=600)
        state = checkpoints_state(run)
        resize_disk(disk, 64 * 1024)
        resumed = subprocess.run([EXE, *ref.args(run, "--resume")], capture_output=True, text=True, timeout=600)
        return CheckpointDiskFullTrial("tmpfs", p.returncode, p.stderr.strip()[-500:], len(state["published"]), len(state["broken"]),  # type: ignore[arg-type]
                                       resumed.returncode == 0 and losses(run) == ref.losses)


# -- learn, killed -----------------------------------------------------------------------------


@dataclass
class LearnSetup:
    root: Path
    args: Any  # (registry, out) -> the learn command's args
    io_events: int = 0


def learn_setup(root: Path) -> LearnSetup:
    """A registry holding v1 (a tiny random model), a feedback store of corrected replies, and
    the `chatforge learn` command that would register and promote v2 from them."""
    from serve_helpers import tiny_model_dir

    from chatforge.data import synth
    from chatforge.data.dataset import write_dataset
    from chatforge.feedback.store import FeedbackStore, Rating, Turn

    root.mkdir(parents=True, exist_ok=True)
    world = synth.generate(3, conversations=120, test_conversations=6, heldout_conversations=1, kb_articles=5, preferences=1)
    write_dataset(root / "test", "conversations", world.test, created_by={"test": True})
    write_dataset(root / "train", "conversations", world.conversations, created_by={"test": True})
    tiny_model_dir(root)
    store = FeedbackStore.open(root / "fb.db")
    for i, row in enumerate(synth.live_users(3, 12, exclude=world.conversations + world.test)):
        store.add_turn(Turn(id=f"t{i}", model="v1", messages=row["messages"][:-1], reply="Sorry, no idea.", intent=row["meta"].get("intent")))
        store.add_rating(Rating(turn_id=f"t{i}", thumb=-1, corrected=row["messages"][-1]["content"]))

    def args(registry: Path, out: Path) -> list[str]:
        return ["learn", "--store", str(root / "fb.db"), "--registry", str(registry), "--test-data", str(root / "test"),
                "--train-data", str(root / "train"), "--out", str(out), "--sft.steps", "6", "--sft.batch-size", "4",
                "--sft.eval-every", "3", "--sft.save-every", "2", "--no-dpo", "--eval.limit", "3", "--eval.max-tokens", "6",
                "--no-eval.safety", "--gate.task", "1", "--gate.perplexity", "100", "--no-gate.feedback",
                "--promote", "-q"]  # fmt: skip

    setup = LearnSetup(root, args)
    setup.io_events = count_io(args(new_registry(setup, root / "reg-count"), root / "learn-count"), root)
    return setup


def new_registry(setup: LearnSetup, where: Path) -> Path:
    from chatforge.registry import Registry

    reg = Registry(where)
    reg.register(setup.root / "model")
    reg.promote("v1")
    return where


@dataclass
class LearnKillTrial:
    kill_point: int
    died: bool
    registry_ok: bool  # the index reads, and every version it names is whole (its files match its hash)
    versions: list[str]
    production: str
    rerun_ok: bool  # learn runs again to the end and promotes a new version


def learn_kill_trial(setup: LearnSetup, where: Path, rng: random.Random) -> LearnKillTrial:
    from chatforge.checkpoint import model_dir_hash
    from chatforge.registry import Registry

    registry = new_registry(setup, where / "registry")
    point = rng.randint(1, setup.io_events)
    p = run_killed_at_io(setup.args(registry, where / "run"), point)
    died = p.returncode == -signal.SIGKILL
    assert died or p.returncode == 0, p.stderr[-3000:]
    reg = Registry(registry)
    try:
        versions = reg.versions()
        whole = all(model_dir_hash(registry / v["path"]) == v["hash"] for v in versions)
        production = reg.resolve("production")["version"]
        ok = whole and [v["version"] for v in versions][:1] == ["v1"]
    except Exception:
        versions, production, ok = [], "?", False
    rerun = subprocess.run([EXE, *setup.args(registry, where / "rerun")], capture_output=True, text=True, timeout=900)
    after = reg.resolve("production")["version"] if rerun.returncode == 0 else "?"
    return LearnKillTrial(point, died, ok, [v["version"] for v in versions], production,
                          rerun.returncode == 0 and after == f"v{len(versions) + 1}")


# -- load ------------------------------------------------------------------------------------


@dataclass
class LoadLevel:
    multiple: float  # of the measured capacity
    offered_rps: float
    sent: int
    ok: int
    rejected: int  # 429s
    rejected_without_retry_after: int
    other: dict[int, int]  # any other status (or -1: a transport error): must stay empty
    p50_ms: float
    p99_ms: float
    goodput_rps: float  # 200s per second of the level


@dataclass
class LoadReport:
    capacity_rps: float
    levels: list[LoadLevel]
    rss_baseline_mb: float
    rss_peak_mb: float
    rss_after_mb: float
    dropped_streams: int
    active_after_drops: int
    waiting_after_drops: int
    seconds_to_drain: float


def _rss_mb(pid: int) -> float:
    import psutil

    return psutil.Process(pid).memory_info().rss / 2**20


def _percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def load_trial(root: Path, *, seconds: float = 4.0, multiples: tuple[float, ...] = (0.5, 1, 2, 4), drops: int = 100) -> LoadReport:
    """A real `chatforge serve` (tiny model, 4 slots, a queue of 8) under open-loop load at
    multiples of its measured capacity, then `drops` streaming clients that hang up mid-reply."""
    import asyncio

    import httpx
    from serve_helpers import free_port, tiny_model_dir, wait_until_up

    model = tiny_model_dir(root)
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    proc = subprocess.Popen([EXE, "serve", "--model", str(model), "--port", str(port), "--max-batch", "4", "--queue", "8",
                             "--store", str(root / "fb.db"), "--model-name", "tiny"], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    # Long enough replies that the load generator (in this process, on the same 2 cores) stays
    # far cheaper than the server at 4x its capacity. The tiny model ends no reply early: 100 tokens each.
    body = {"model": "tiny", "messages": [{"role": "user", "content": "Where is my order?"}], "max_tokens": 100, "temperature": 0}

    async def one(client: httpx.AsyncClient, out: list[tuple[int, float, bool]]) -> None:
        t0 = time.perf_counter()
        try:
            r = await client.post("/v1/chat/completions", json=body)
            out.append((r.status_code, time.perf_counter() - t0, "retry-after" in r.headers))
        except httpx.HTTPError:
            out.append((-1, time.perf_counter() - t0, False))

    async def closed_loop(clients: int, duration: float) -> float:
        """Requests per second with `clients` always waiting on one (the capacity)."""
        done: list[tuple[int, float, bool]] = []
        end = time.perf_counter() + duration

        async def worker(client: httpx.AsyncClient) -> None:
            while time.perf_counter() < end:
                await one(client, done)

        async with httpx.AsyncClient(base_url=base, timeout=60, limits=httpx.Limits(max_connections=200)) as client:
            t0 = time.perf_counter()
            await asyncio.gather(*(worker(client) for _ in range(clients)))
            return sum(1 for s, _, _ in done if s == 200) / (time.perf_counter() - t0)

    async def open_loop(rate: float, duration: float) -> tuple[list[tuple[int, float, bool]], float]:
        """Requests sent at a steady `rate` whatever the answers (as independent users do)."""
        done: list[tuple[int, float, bool]] = []
        async with httpx.AsyncClient(base_url=base, timeout=60, limits=httpx.Limits(max_connections=1000)) as client:
            tasks = []
            t0 = time.perf_counter()
            n = int(rate * duration)
            for i in range(n):
                delay = t0 + i / rate - time.perf_counter()
                if delay > 0:
                    await asyncio.sleep(delay)
                tasks.append(asyncio.create_task(one(client, done)))
            await asyncio.gather(*tasks)
            return done, time.perf_counter() - t0

    async def drop_streams(n: int) -> int:
        """`n` streaming clients that read the first event and hang up."""
        dropped = 0
        stream_body = {**body, "max_tokens": 100, "stream": True, "temperature": 1.0}

        async def hang_up(client: httpx.AsyncClient) -> None:
            nonlocal dropped
            for _ in range(200):
                async with client.stream("POST", "/v1/chat/completions", json=stream_body) as r:
                    if r.status_code == 200:
                        async for _ in r.aiter_raw():
                            dropped += 1
                            break  # leaving the block closes the connection mid-stream
                        return
                assert r.status_code == 429, r.status_code
                await asyncio.sleep(0.05)  # the slots of the last wave are still being freed

        async with httpx.AsyncClient(base_url=base, timeout=60, limits=httpx.Limits(max_connections=50)) as client:
            for _ in range(0, n, 10):  # waves of 10: within the slots and the queue
                await asyncio.gather(*(hang_up(client) for _ in range(10)))
        return dropped

    try:
        wait_until_up(base)
        asyncio.run(closed_loop(12, 1.0))  # warm up
        baseline = _rss_mb(proc.pid)
        capacity = asyncio.run(closed_loop(12, seconds))  # the 4 slots and the queue of 8 always full
        peak = baseline
        levels = []
        for m in multiples:
            done, took = asyncio.run(open_loop(capacity * m, seconds))
            peak = max(peak, _rss_mb(proc.pid))
            ok = [t for s, t, _ in done if s == 200]
            other: dict[int, int] = {}
            for s, _, _ in done:
                if s not in (200, 429):
                    other[s] = other.get(s, 0) + 1
            levels.append(LoadLevel(m, capacity * m, len(done), len(ok), sum(1 for s, _, _ in done if s == 429),
                                    sum(1 for s, _, ra in done if s == 429 and not ra), other,
                                    1000 * _percentile(ok, 0.5), 1000 * _percentile(ok, 0.99), len(ok) / took))
        dropped = asyncio.run(drop_streams(drops))
        t0 = time.perf_counter()
        health = {}
        while time.perf_counter() - t0 < 30:
            health = httpx.get(base + "/health", timeout=10).json()
            if health["active"] == 0 and health["waiting"] == 0:
                break
            time.sleep(0.05)
        drained = time.perf_counter() - t0
        time.sleep(1.0)
        after = _rss_mb(proc.pid)
        return LoadReport(capacity, levels, baseline, peak, after, dropped, health["active"], health["waiting"], drained)
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
