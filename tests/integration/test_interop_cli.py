"""`chatforge import` and `chatforge export` as a user runs them: real subprocesses."""

from __future__ import annotations

import json
import shutil

import pytest
import torch
from serve_helpers import tiny_model_dir
from test_cli import cf

from chatforge.checkpoint import load_model_dir

pytest.importorskip("gguf")
pytest.importorskip("transformers")


def test_export_and_import_round_trip_through_the_command_line(tmp_path):
    model = tiny_model_dir(tmp_path)
    ids = torch.tensor([[1, 4, 100, 200, 300, 6, 5]])
    with torch.no_grad():
        want = load_model_dir(model)(ids)
    cf("export", "--model", str(model), "--format", "hf", "--out", "hf", "-q", cwd=tmp_path)
    cf("export", "--model", str(model), "--format", "gguf", "--dtype", "f32", "--out", "m.gguf", "-q", cwd=tmp_path)
    cf("export", "--model", str(model), "--format", "ollama", "--out", "ollama", "-q", cwd=tmp_path)
    assert (tmp_path / "ollama" / "Modelfile").is_file() and (tmp_path / "ollama" / "model.gguf").is_file()
    cf("import", "hf", "--out", "from-hf", "-q", cwd=tmp_path)
    cf("import", "m.gguf", "--out", "from-gguf", "-q", cwd=tmp_path)
    for d in ("from-hf", "from-gguf"):
        with torch.no_grad():
            assert torch.equal(load_model_dir(tmp_path / d)(ids), want), d
    reply = cf("chat", "--model", "from-gguf", "--max-tokens", "5", "--seed", "0", cwd=tmp_path, check=False)
    assert reply.returncode == 0, reply.stderr
    # an existing output is not replaced without --overwrite
    again = cf("export", "--model", str(model), "--format", "gguf", "--out", "m.gguf", cwd=tmp_path, check=False)
    assert again.returncode == 2 and "already exists" in again.stderr


def test_refusals_are_one_line_errors(tmp_path):
    model = tiny_model_dir(tmp_path)
    remote = tmp_path / "remote"
    shutil.copytree(model, remote)
    cfg = json.loads((remote / "config.json").read_text())
    (remote / "config.json").write_text(json.dumps({**cfg, "auto_map": {"AutoModelForCausalLM": "x.Y"}}))
    pickled = tmp_path / "pickled"
    shutil.copytree(model, pickled)
    (pickled / "model.safetensors").unlink()
    (pickled / "pytorch_model.bin").write_bytes(b"\x80\x04")
    for src, expected in [("remote", "trust_remote_code"), ("pickled", "pickled"), ("nowhere", "no such directory")]:
        r = cf("import", src, "--out", "out", cwd=tmp_path, check=False)
        assert r.returncode == 2 and expected in r.stderr.strip().splitlines()[-1], r.stderr
        assert "Traceback" not in r.stderr and not (tmp_path / "out").exists()
    r = cf("export", "--model", str(model), "--format", "hf", "--dtype", "q8_0", "--out", "x", cwd=tmp_path, check=False)
    assert r.returncode == 2 and "dtype" in r.stderr
