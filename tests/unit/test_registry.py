"""The model registry: stages, promote/rollback/archive, and consistency when a process is
killed in the middle of a change."""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from serve_helpers import tiny_model_dir

from chatforge.checkpoint import model_dir_hash
from chatforge.errors import UserError
from chatforge.registry import Registry


@pytest.fixture(scope="module")
def model(tmp_path_factory) -> Path:
    return tiny_model_dir(tmp_path_factory.mktemp("m"))


def test_register_promote_rollback_archive(model, tmp_path):
    reg = Registry(tmp_path / "reg")
    assert reg.register(model, note="first") == "v1"
    assert reg.register(model, parent="v1", evals={"task_success": 0.8}) == "v2"
    with pytest.raises(UserError, match="no version 'production'"):
        reg.resolve("production")
    reg.promote("v1")
    reg.promote("candidate")  # the newest candidate: v2
    assert reg.resolve("production")["version"] == "v2" and reg.resolve("v1")["stage"] == "candidate"
    v2 = reg.resolve("v2")
    assert v2["parent"] == "v1" and v2["evals"] == {"task_success": 0.8} and v2["hash"] == model_dir_hash(model)
    assert model_dir_hash(reg.model_dir("production")) == model_dir_hash(model)
    assert reg.rollback() == "v1" and reg.resolve("prod")["version"] == "v1"
    assert reg.rollback() == "v2"  # history: v1, v2, v1 -> back to v2
    with pytest.raises(UserError, match="in production"):
        reg.archive("v2")
    reg.archive("v1")
    with pytest.raises(UserError, match="archived"):
        reg.promote("v1")
    with pytest.raises(UserError, match="nothing to roll back to"):
        reg.rollback()  # v1, the only earlier version, is archived
    with pytest.raises(UserError, match="not a model dir"):
        reg.register(tmp_path)


def test_a_failed_copy_leaves_the_registry_as_it_was(model, tmp_path, monkeypatch):
    reg = Registry(tmp_path / "reg")
    reg.register(model)
    before = (reg.root / "registry.json").read_text()
    import shutil

    real = shutil.copy2
    calls = {"n": 0}

    def failing(src, dst, **kw):
        calls["n"] += 1
        if calls["n"] == 2:
            raise OSError(28, "No space left on device")
        return real(src, dst, **kw)

    monkeypatch.setattr(shutil, "copy2", failing)
    with pytest.raises(OSError, match="No space left"):
        reg.register(model)
    assert (reg.root / "registry.json").read_text() == before
    assert sorted(p.name for p in (reg.root / "models").iterdir()) == ["v1"]
    monkeypatch.setattr(shutil, "copy2", real)
    assert reg.register(model) == "v2"


CHURN = """
import random, sys
import chatforge.checkpoint  # torch: imported before "ready", so the kills land in registry work
from chatforge.registry import Registry
reg = Registry(sys.argv[1])
print("ready", flush=True)
rng = random.Random(int(sys.argv[3]))
while True:
    op = rng.random()
    if op < 0.4 or not reg.versions():
        reg.register(sys.argv[2])
    elif op < 0.7:
        reg.promote(rng.choice([v["version"] for v in reg.versions() if v["stage"] != "archived"] or ["v1"]))
    elif op < 0.85:
        try:
            reg.rollback()
        except Exception:
            pass
    else:
        try:
            reg.archive(rng.choice(reg.versions())["version"])
        except Exception:
            pass
"""


def check_consistent(root: Path, model_hash: str) -> dict:
    data = json.loads((root / "registry.json").read_text())
    names = [v["version"] for v in data["versions"]]
    assert len(names) == len(set(names))
    production = [v["version"] for v in data["versions"] if v["stage"] == "production"]
    assert production == ([data["production"]] if data["production"] else [])
    for v in data["versions"]:
        assert v["stage"] in ("candidate", "production", "archived")
        assert model_dir_hash(root / v["path"]) == v["hash"] == model_hash  # named means complete
    assert set(data["history"]) <= set(names)
    return data


def test_kills_at_random_points_leave_a_consistent_registry(model, tmp_path):
    """Two processes change one registry at once and are killed -9 at random moments; after
    each kill the registry reads back whole, every named version is complete, and the
    next change works."""
    root = tmp_path / "reg"
    want = model_dir_hash(model)
    rng = random.Random(0)
    script = tmp_path / "churn.py"
    script.write_text(CHURN)
    seen = 0
    for trial in range(6):
        procs = [subprocess.Popen([sys.executable, str(script), str(root), str(model), str(trial * 2 + i)], stdout=subprocess.PIPE, text=True) for i in range(2)]
        for p in procs:
            assert p.stdout is not None and p.stdout.readline().strip() == "ready"
        time.sleep(0.05 + rng.random() * 0.6)
        for p in procs:
            os.kill(p.pid, signal.SIGKILL)
            p.wait()
        if (root / "registry.json").exists():
            data = check_consistent(root, want)
            seen = max(seen, len(data["versions"]))
    reg = Registry(root)
    name = reg.register(model)
    check_consistent(root, want)
    assert reg.resolve(name)["stage"] == "candidate" and seen >= 2
    # a version dir a killed registration left unnamed is never listed
    named = {v["path"] for v in reg.versions()}
    assert all(f"models/{p.name}" in named for p in (root / "models").iterdir() if not p.name.startswith("."))
