"""The shared training loop: it learns, accumulation is exact, resume is exact, checkpoints survive kills."""

from __future__ import annotations

import copy
import math
import os
import signal
import socket
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
import torch

from chatforge.checkpoint import find_checkpoint, load_checkpoint, save_checkpoint, verify_checkpoint
from chatforge.model import GPT, ModelConfig
from chatforge.optim import OptimConfig, lr_at, make_optimizer, param_groups
from chatforge.tracking import RunLog, read_metrics
from chatforge.train.data import TokenWindows, val_batches
from chatforge.train.loop import Dist, NonFiniteLoss, TrainConfig, fit, lm_loss, train_step
from chatforge.train.run import checkpoint_step

SEQ = 16


def tiny_model(seed: int = 0, dropout: float = 0.0) -> GPT:
    torch.manual_seed(seed)
    return GPT(ModelConfig(vocab_size=64, n_layer=2, n_embd=32, n_head=4, block_size=SEQ, dropout=dropout))


def token_file(tmp_path: Path, n: int = 4000, seed: int = 0) -> Path:
    # A learnable stream: a repeating pattern with a little noise.
    rng = np.random.default_rng(seed)
    base = np.tile(np.arange(40, dtype=np.uint16), n // 40 + 1)[:n]
    noise = rng.random(n) < 0.05
    base[noise] = rng.integers(40, 64, noise.sum())
    path = tmp_path / f"tokens-{seed}.bin"
    base.tofile(path)
    return path


def train_cfg(**kw) -> TrainConfig:
    base = dict(steps=40, batch_size=8, eval_every=0, save_every=0, log_every=1, dtype="fp32", optim=OptimConfig(lr=3e-3, warmup_steps=5))
    base.update(kw)
    return TrainConfig(**base)


def test_lr_schedules():
    cfg = OptimConfig(lr=1.0, warmup_steps=10, min_lr_ratio=0.1)
    assert lr_at(0, 100, cfg) == pytest.approx(0.1)
    assert lr_at(9, 100, cfg) == pytest.approx(1.0)
    assert lr_at(99, 100, cfg) == pytest.approx(0.1)
    assert lr_at(10, 100, cfg) > lr_at(50, 100, cfg) > lr_at(90, 100, cfg)
    wsd = OptimConfig(lr=1.0, warmup_steps=10, min_lr_ratio=0.0, schedule="wsd", decay_fraction=0.2)
    assert lr_at(50, 100, wsd) == 1.0 and lr_at(79, 100, wsd) == 1.0
    assert lr_at(99, 100, wsd) == pytest.approx(0.0) and 0 < lr_at(90, 100, wsd) < 1
    assert lr_at(70, 100, OptimConfig(lr=0.5, warmup_steps=0, schedule="constant")) == 0.5


def test_no_weight_decay_on_norms_and_embeddings():
    model = tiny_model()
    decay, no_decay = param_groups(model, 0.1)
    names = {id(p): n for n, p in model.named_parameters()}
    assert all(names[id(p)].endswith("proj.weight") for p in decay["params"])
    assert {names[id(p)] for p in no_decay["params"]} >= {"model.embed_tokens.weight", "model.norm.weight"}


def test_loss_goes_down_on_a_learnable_stream(tmp_path):
    model = tiny_model()
    data = TokenWindows(token_file(tmp_path), "uint16", SEQ, seed=0, dist=Dist())
    log = RunLog(tmp_path / "run", stage="t", config={})
    fit(model, data, train_cfg(steps=80), run_dir=tmp_path / "run", log=log)
    log.close()
    losses = [m["loss"] for m in read_metrics(tmp_path / "run") if "loss" in m]
    assert losses[0] > math.log(64) * 0.9
    assert np.mean(losses[-5:]) < 0.5 * losses[0]


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_loss_at_target_positions_only_equals_the_full_vocabulary_loss(dtype):
    """lm_loss computes logits only where there is a target (SFT): same loss and gradients as
    cross entropy over every position's logits with the others ignored."""
    model = tiny_model().to(dtype)
    gen = torch.Generator().manual_seed(1)
    ids = torch.randint(0, 64, (3, SEQ), generator=gen)
    targets = torch.randint(0, 64, (3, SEQ), generator=gen)
    targets[torch.rand(3, SEQ, generator=gen) < 0.6] = -100
    targets[2] = -100  # a row with nothing to train (all prompt)
    batch = {"input_ids": ids, "targets": targets}

    def grads() -> dict[str, torch.Tensor]:
        out = {n: p.grad.float().clone() for n, p in model.named_parameters() if p.grad is not None}
        model.zero_grad(set_to_none=True)
        return out

    loss, n = lm_loss(model, batch)
    loss.backward()
    ours = grads()
    logits = model(ids)
    want = torch.nn.functional.cross_entropy(logits.float().reshape(-1, 64), targets.reshape(-1), ignore_index=-100, reduction="sum")
    want.backward()
    theirs = grads()
    assert n == int((targets != -100).sum()) > 0
    tol = dict(atol=1e-5, rtol=1e-5) if dtype == torch.float32 else dict(atol=2e-2, rtol=2e-2)
    torch.testing.assert_close(loss, want, **tol)
    assert ours.keys() == theirs.keys()
    for k in ours:
        torch.testing.assert_close(ours[k], theirs[k], **tol)
    nothing = {"input_ids": ids, "targets": torch.full_like(targets, -100)}
    empty, zero = lm_loss(model, nothing)
    assert zero == 0 and float(empty.detach()) == 0.0


def _check_cross_entropy(loss_fn, dtype: torch.dtype, rows: int, grad_tol: dict) -> None:
    """`loss_fn(logits, targets)` gives F.cross_entropy's value (float32 over the logits) and
    gradient (in the logits' dtype), also when scaled afterwards as the training step scales it."""
    gen = torch.Generator().manual_seed(rows)
    base = (torch.randn(rows, 50, generator=gen) * 3).to(dtype)
    targets = torch.randint(0, 50, (rows,), generator=gen)
    want_in = base.clone().requires_grad_()
    want = torch.nn.functional.cross_entropy(want_in.float(), targets, reduction="sum")
    (want * 0.37).backward()
    got_in = base.clone().requires_grad_()
    got = loss_fn(got_in, targets)
    (got * 0.37).backward()
    assert got.dtype == torch.float32 and got_in.grad.dtype == dtype
    torch.testing.assert_close(got, want.detach(), atol=1e-4, rtol=1e-6)
    torch.testing.assert_close(got_in.grad, want_in.grad, **grad_tol)


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
@pytest.mark.parametrize("rows", [0, 1, 7, 300])
def test_summed_cross_entropy_equals_torch_cross_entropy(dtype, rows, monkeypatch):
    """The chunked loss, whatever the chunk size."""
    import chatforge.train.loop as loop

    tol = dict(atol=1e-7, rtol=1e-6) if dtype == torch.float32 else dict(atol=0, rtol=2**-7)
    for chunk_bytes in (1 << 19, 50 * 4 * 3, 1):  # one chunk, 3 rows a chunk, a row a chunk
        monkeypatch.setattr(loop, "_CHUNK_ELEMENTS", max(1, chunk_bytes // 4))
        _check_cross_entropy(loop.summed_cross_entropy, dtype, rows, tol)


def test_fused_cross_entropy_equals_torch_cross_entropy():
    """The compiled kernels (`fused=True`, what a compiled model's loss uses), for any
    number of rows one after the other (SFT's batches differ in their number of target
    tokens: the kernels are compiled for a changing size once)."""
    import torch._dynamo

    import chatforge.train.loop as loop

    torch._dynamo.reset()
    loop._fused_kernels.cache_clear()
    for dtype in (torch.bfloat16, torch.float32):
        tol = dict(atol=1e-7, rtol=1e-5) if dtype == torch.float32 else dict(atol=1e-9, rtol=2**-7)
        for rows in (300, 7, 1, 0, 123):
            _check_cross_entropy(lambda x, t: loop.summed_cross_entropy(x, t, fused=True), dtype, rows, tol)


def test_a_compiled_model_trains_as_the_eager_one():
    """`train.compile`: torch.compile'd model and loss kernels take the same optimizer
    steps as the eager ones (bf16 rounding aside)."""
    from chatforge.train.loop import MasterWeights, is_compiled

    gen = torch.Generator().manual_seed(5)
    batches = [{"input_ids": torch.randint(0, 64, (4, SEQ), generator=gen), "targets": torch.randint(0, 64, (4, SEQ), generator=gen)} for _ in range(3)]
    batches[1]["targets"][:, : SEQ // 2] = -100  # an SFT-like batch: targets at some positions only
    losses = {}
    for compiled in (False, True):
        model = tiny_model()
        weights = MasterWeights(model, bf16=True)
        opt = make_optimizer(model, OptimConfig(lr=1e-2), masters=weights.by_id)
        net = torch.compile(model) if compiled else model
        assert is_compiled(net) == compiled
        losses[compiled] = [
            train_step(net, [b], opt, loss_fn=lm_loss, grad_clip=1.0, dtype="bf16", dist=Dist(), weights=weights).loss for b in batches
        ]
    assert losses[True] == pytest.approx(losses[False], rel=2e-2)
    assert losses[True][2] < losses[True][0]  # it learns


def test_accumulation_is_exact(tmp_path):
    """micro-batch 1 x accumulate 8 gives the same gradients as micro-batch 8 x 1.

    Plain SGD with lr 1 and no clipping, so the weight change is exactly -gradient."""
    path = token_file(tmp_path)
    deltas = []
    for micro in (8, 1):
        model = tiny_model()
        before = {k: v.clone() for k, v in model.state_dict().items()}
        opt = torch.optim.SGD(model.parameters(), lr=1.0)
        data = TokenWindows(path, "uint16", SEQ, seed=3, dist=Dist())
        batches = [data.next_batch(micro) for _ in range(8 // micro)]
        train_step(model, batches, opt, loss_fn=lm_loss, grad_clip=0.0, dtype="fp32", dist=Dist())
        deltas.append({k: v - before[k] for k, v in model.state_dict().items()})
    for k in deltas[0]:
        assert deltas[0][k].abs().max() > 0, k
        assert torch.allclose(deltas[0][k], deltas[1][k], atol=1e-7, rtol=1e-4), k


class _SigtermAt:
    """Batches that send this process SIGTERM when step `at`'s batch is drawn (a polite kill)."""

    def __init__(self, inner: TokenWindows, at: int) -> None:
        self.inner, self.at, self.calls = inner, at, 0

    def next_batch(self, n: int):
        self.calls += 1
        if self.calls == self.at:
            signal.raise_signal(signal.SIGTERM)
        return self.inner.next_batch(n)

    def state_dict(self):
        return self.inner.state_dict()

    def load_state_dict(self, state):
        self.inner.load_state_dict(state)


@pytest.mark.parametrize("dtype", ["fp32", "bf16"])
def test_resume_is_exact_after_sigterm(tmp_path, dtype):
    """2N steps straight == N steps, SIGTERM (checkpoint + stop), resume for N more: identical losses."""
    path = token_file(tmp_path)
    cfg = train_cfg(steps=30, eval_every=0, save_every=0, dtype=dtype)

    def run(run_dir: Path, stop_at: int | None, resume: bool) -> list[float]:
        model = tiny_model(dropout=0.1)  # dropout: the RNG state must be restored too
        data = TokenWindows(path, "uint16", SEQ, seed=1, dist=Dist())
        batches = _SigtermAt(data, stop_at) if stop_at else data
        log = RunLog(run_dir, stage="t", config={}, resume_step=15 if resume else None)
        result = fit(model, batches, cfg, run_dir=run_dir, log=log, resume=resume)
        log.close()
        return [m["loss"] for m in read_metrics(run_dir) if "loss" in m], result.stopped

    straight, how = run(tmp_path / "a", None, False)
    assert how == "done" and len(straight) == 30
    first, how = run(tmp_path / "b", 15, False)
    assert how == "signal" and len(first) == 15
    assert (tmp_path / "b" / "checkpoints" / "step_000015").is_dir()
    resumed, how = run(tmp_path / "b", None, True)
    assert how == "done"
    assert resumed == straight  # bit-identical on CPU


def test_checkpoint_corruption_is_detected_and_skipped(tmp_path):
    model = tiny_model()
    opt = make_optimizer(model, OptimConfig())
    for step in (1, 2):
        save_checkpoint(tmp_path, step, model, opt, {"data": {}}, keep_last=3)
    latest = tmp_path / "checkpoints" / "step_000002"
    blob = bytearray((latest / "model.safetensors").read_bytes())
    blob[len(blob) // 2] ^= 0xFF  # one flipped byte
    (latest / "model.safetensors").write_bytes(bytes(blob))
    warnings = []
    found = find_checkpoint(tmp_path, warnings.append)
    assert found is not None and found.name == "step_000001"
    assert "does not match its sha256" in warnings[0]
    assert verify_checkpoint(found) is None
    state = load_checkpoint(found, tiny_model(seed=9), make_optimizer(tiny_model(seed=9), OptimConfig()))
    assert state["step"] == 1


def test_every_single_bit_flip_in_meta_json_is_detected(tmp_path):
    # The reliability report's 500 random flips found two that passed: a flip inside the
    # name "meta_sha256" made the checkpoint look like one of an older version (no
    # checksum of meta.json). Every bit of meta.json, one at a time.
    model = tiny_model()
    save_checkpoint(tmp_path, 1, model, make_optimizer(model, OptimConfig()), {"data": {}})
    ck = tmp_path / "checkpoints" / "step_000001"
    meta = (ck / "meta.json").read_bytes()
    missed = []
    for i in range(len(meta)):
        for bit in range(8):
            (ck / "meta.json").write_bytes(meta[:i] + bytes([meta[i] ^ (1 << bit)]) + meta[i + 1 :])
            if verify_checkpoint(ck) is None:
                missed.append((i, bit, meta[max(0, i - 8) : i + 8]))
    (ck / "meta.json").write_bytes(meta)
    assert verify_checkpoint(ck) is None
    assert missed == []


def test_resume_step_follows_the_checkpoint_the_loop_will_load(tmp_path):
    """Killed after a checkpoint's rename but before `latest` was updated: the resumed run's
    metrics continue from that checkpoint (earlier lines kept), as its weights do."""
    model = tiny_model()
    opt = make_optimizer(model, OptimConfig())
    for step in (5, 10):
        save_checkpoint(tmp_path, step, model, opt, {"data": {}}, keep_last=3)
    (tmp_path / "checkpoints" / "latest").write_text("step_000005")  # the pointer lags one checkpoint
    assert checkpoint_step(tmp_path) == 5 and find_checkpoint(tmp_path, lambda m: None).name == "step_000005"
    (tmp_path / "checkpoints" / "latest").unlink()  # no pointer at all
    assert checkpoint_step(tmp_path) == 10 and find_checkpoint(tmp_path, lambda m: None).name == "step_000010"
    assert checkpoint_step(tmp_path / "nothing") is None


KILL_DURING_WRITE = textwrap.dedent(
    """
    import os, signal, sys, torch
    from pathlib import Path
    from chatforge.checkpoint import save_checkpoint
    from chatforge.model import GPT, ModelConfig
    from chatforge.optim import OptimConfig, make_optimizer
    torch.manual_seed(0)
    model = GPT(ModelConfig(vocab_size=64, n_layer=2, n_embd=32, n_head=4, block_size=16))
    opt = make_optimizer(model, OptimConfig())
    run = Path(sys.argv[1])
    save_checkpoint(run, 1, model, opt, {"data": {}})
    with torch.no_grad():
        for p in model.parameters():
            p.add_(1.0)
    save_checkpoint(run, 2, model, opt, {"data": {}}, after_write=lambda tmp: os.kill(os.getpid(), signal.SIGKILL))
    """
)


def test_kill_9_while_writing_a_checkpoint_leaves_the_previous_one(tmp_path):
    p = subprocess.run([sys.executable, "-c", KILL_DURING_WRITE, str(tmp_path)], capture_output=True)
    assert p.returncode == -signal.SIGKILL
    found = find_checkpoint(tmp_path, lambda m: None)
    assert found is not None and found.name == "step_000001"
    assert not (tmp_path / "checkpoints" / "step_000002").exists()
    model = tiny_model(seed=5)
    load_checkpoint(found, model, None)
    torch.manual_seed(0)
    reference = GPT(model.cfg)
    assert all(torch.equal(a, b) for a, b in zip(model.state_dict().values(), reference.state_dict().values(), strict=True))


def test_non_finite_loss_stops_before_any_weight_changes(tmp_path):
    model = tiny_model()
    before = copy.deepcopy(model.state_dict())
    data = TokenWindows(token_file(tmp_path), "uint16", SEQ, seed=0, dist=Dist())
    calls = {"n": 0}

    def poisoned(m, batch):
        loss, n = lm_loss(m, batch)
        calls["n"] += 1
        return (loss * float("nan") if calls["n"] >= 3 else loss), n

    log = RunLog(tmp_path / "run", stage="t", config={})
    with pytest.raises(NonFiniteLoss, match=r"the loss became nan at step 3.*Lower the learning rate"):
        fit(model, data, train_cfg(steps=10, save_every=1, optim=OptimConfig(lr=1e-2)), run_dir=tmp_path / "run", log=log, loss_fn=poisoned)
    log.close()
    names = sorted(p.name for p in (tmp_path / "run" / "checkpoints").iterdir() if p.name.startswith("step_"))
    assert names == ["step_000001", "step_000002"]  # no checkpoint of the poisoned step
    for ck in names:
        state = load_checkpoint(tmp_path / "run" / "checkpoints" / ck, tiny_model(), None)
        assert state["step"] in (1, 2)
    assert any(not torch.equal(before[k], v) for k, v in model.state_dict().items())  # steps 1-2 did train
    assert all(torch.isfinite(v).all() for v in model.state_dict().values())


def test_early_stopping_and_best_checkpoint(tmp_path):
    model = tiny_model()
    data = TokenWindows(token_file(tmp_path), "uint16", SEQ, seed=0, dist=Dist())
    # validation on a different stream the model cannot learn: it stops improving quickly
    other = token_file(tmp_path, seed=7)
    rng_tokens = np.random.default_rng(3).integers(0, 64, 2000).astype(np.uint16)
    rng_tokens.tofile(other)
    val = lambda: val_batches(other, "uint16", SEQ, 8, Dist())  # noqa: E731
    log = RunLog(tmp_path / "run", stage="t", config={})
    cfg = train_cfg(steps=200, eval_every=5, patience=2, keep_last=1, optim=OptimConfig(lr=1e-2, warmup_steps=0))
    result = fit(model, data, cfg, run_dir=tmp_path / "run", log=log, val=val)
    log.close()
    assert result.stopped == "early_stopping" and result.steps < 200
    vals = [m for m in read_metrics(tmp_path / "run") if "val_loss" in m]
    best = min(vals, key=lambda m: m["val_loss"])
    assert result.best_checkpoint == f"step_{best['step']:06d}"
    assert (tmp_path / "run" / "checkpoints" / result.best_checkpoint).is_dir()  # kept despite keep_last=1


DDP_WORKER = textwrap.dedent(
    """
    import json, os, sys, torch
    from pathlib import Path
    from chatforge.model import GPT, ModelConfig
    from chatforge.optim import OptimConfig
    from chatforge.tracking import RunLog, read_metrics
    from chatforge.train.loop import TrainConfig, fit, init_distributed
    from chatforge.train.data import TokenWindows
    dist = init_distributed()
    torch.manual_seed(0)
    model = GPT(ModelConfig(vocab_size=64, n_layer=2, n_embd=32, n_head=4, block_size=16))
    cfg = TrainConfig(steps=12, batch_size=8, eval_every=0, save_every=0, log_every=1, dtype="fp32", optim=OptimConfig(lr=3e-3, warmup_steps=2))
    data = TokenWindows(Path(sys.argv[1]), "uint16", 16, 0, dist)
    run = Path(sys.argv[2])
    log = RunLog(run, stage="t", config={}, enabled=dist.main)
    fit(model, data, cfg, run_dir=run, log=log, dist=dist)
    log.close()
    flat = torch.cat([p.detach().flatten() for p in model.parameters()])
    torch.save(flat, run / f"params-{dist.rank}.pt")
    """
)


def test_ddp_two_processes_match_one(tmp_path):
    """2 gloo processes: identical parameters on both ranks, and the same loss curve as one process."""
    tokens = token_file(tmp_path)
    worker = tmp_path / "worker.py"
    worker.write_text(DDP_WORKER)
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    single = subprocess.run([sys.executable, str(worker), str(tokens), str(tmp_path / "one")], env=env, capture_output=True, text=True)
    assert single.returncode == 0, single.stderr
    with socket.socket() as sock:  # a free port (torchrun's --master_port=0 hangs)
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    torchrun = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node=2", "--master_addr=127.0.0.1", f"--master_port={port}"]
    multi = subprocess.run([*torchrun, str(worker), str(tokens), str(tmp_path / "two")], env=env, capture_output=True, text=True, timeout=300)
    assert multi.returncode == 0, multi.stderr[-3000:]
    p0 = torch.load(tmp_path / "two" / "params-0.pt", weights_only=True)
    p1 = torch.load(tmp_path / "two" / "params-1.pt", weights_only=True)
    assert torch.equal(p0, p1)
    one = [m["loss"] for m in read_metrics(tmp_path / "one") if "loss" in m]
    two = [m["loss"] for m in read_metrics(tmp_path / "two") if "loss" in m]
    assert len(one) == len(two) == 12
    assert np.allclose(one, two, rtol=1e-4)
    ref = torch.load(tmp_path / "one" / "params-0.pt", weights_only=True)
    assert torch.allclose(ref, p0, atol=1e-5)
