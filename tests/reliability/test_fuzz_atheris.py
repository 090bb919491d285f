"""The atheris harness (tests/reliability/fuzz_atheris.py) runs: every target, a few hundred
inputs each in a subprocess (a few dozen for the two importers, whose valid inputs go through
a whole import), exits 0, so the harness cannot rot. Long runs are on demand (see the
harness's docstring)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("atheris")
HARNESS = Path(__file__).with_name("fuzz_atheris.py")
RUNS = {"ingest-jsonl": 300, "ingest-csv": 300, "template": 300, "tokenizer": 300, "api-schema": 300, "gguf": 25, "safetensors": 25}


@pytest.fixture(scope="module")
def cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("atheris") / "cache"  # the tiny model, built by the first target that needs it


@pytest.mark.parametrize("target", list(RUNS))
def test_each_target_runs_clean(target: str, cache: Path, tmp_path: Path) -> None:
    env = {**os.environ, "CHATFORGE_FUZZ_CACHE": str(cache), "CHATFORGE_FUZZ_SCRATCH": str(tmp_path / "scratch")}
    proc = subprocess.run(
        [sys.executable, str(HARNESS), target, f"-runs={RUNS[target]}", "-seed=1", "-print_final_stats=1"],
        capture_output=True, text=True, timeout=600, env=env, cwd=tmp_path,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-4000:]
    assert f"Done {RUNS[target]} runs" in proc.stderr


def test_an_unknown_target_is_refused(tmp_path: Path) -> None:
    proc = subprocess.run([sys.executable, str(HARNESS), "nope"], capture_output=True, text=True, timeout=120, cwd=tmp_path)
    assert proc.returncode != 0 and "TARGET: ingest-jsonl" in proc.stderr
