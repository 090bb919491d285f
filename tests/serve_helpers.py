"""A tiny random model and a real `chatforge serve` app on 127.0.0.1, for the tests that
talk to a server over HTTP (integration/test_serve.py, e2e/test_web_page.py).

Importable as `serve_helpers` from any test: pytest puts this directory (the one holding
the root conftest.py) on sys.path."""

from __future__ import annotations

import socket
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import torch
import uvicorn

from chatforge.checkpoint import load_model_dir, save_model_dir
from chatforge.data import synth
from chatforge.data.steps import row_texts
from chatforge.engine import Engine
from chatforge.model import GPT, ModelConfig
from chatforge.serve.app import KEEP_ALIVE_S, create_app
from chatforge.serve.config import Limits, ServeConfig
from chatforge.tokenizer import Tokenizer, train_tokenizer


def tiny_model_dir(root: Path, *, seed: int = 0, name: str = "model") -> Path:
    """A model dir `root/name`: a BPE tokenizer trained on the support world (once per `root`) and
    a random 2-layer GPT drawn with `seed` (models of different seeds answer differently)."""
    if not (root / "tok").is_dir():
        w = synth.generate(2, conversations=150, test_conversations=1, heldout_conversations=1, kb_articles=10, preferences=1)
        tok = train_tokenizer([t for r in w.conversations for t in row_texts(r, "conversations")] + ["héllo wörld ✓ 日本語 🙂"] * 5, 500)
        tok.save(root / "tok")
    torch.manual_seed(seed)
    save_model_dir(root / name, GPT(ModelConfig(vocab_size=512, n_layer=2, n_embd=48, n_head=4, n_kv_head=2, block_size=128)), tokenizer_dir=root / "tok")
    return root / name


def make_engine(model_dir: Path, max_batch: int = 4) -> Engine:
    return Engine(load_model_dir(model_dir), Tokenizer.load(model_dir), max_batch=max_batch)


@contextmanager
def serving(model_dir: Path | None, **kw) -> Iterator[tuple[str, object]]:
    """A real uvicorn server on a free loopback port, in a thread; yields (base URL, app).
    `kw` are ServeConfig fields; the feedback store is a temporary SQLite file unless `store`
    says where (ServeConfig's default is ./feedback.db, outside any tmp dir). Without a model
    dir the app loads what `kw` names (`registry=DIR`), as `chatforge serve` does."""
    limits = kw.pop("limits", Limits())
    scratch = tempfile.TemporaryDirectory()
    kw.setdefault("store", str(Path(scratch.name) / "feedback.db"))
    if model_dir is None:
        app = create_app(ServeConfig(limits=limits, **kw))
    else:
        cfg = ServeConfig(model=str(model_dir), limits=limits, **kw)
        app = create_app(cfg, make_engine(model_dir, cfg.max_batch), "tiny")
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, log_level="error", access_log=False, timeout_keep_alive=KEEP_ALIVE_S))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    for _ in range(200):
        if server.started:
            break
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{port}", app
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        sock.close()
        scratch.cleanup()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_until_up(base: str, seconds: float = 60) -> None:
    """Wait for a server's /health to answer 200 (a `chatforge serve` process starting up)."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            if httpx.get(base + "/health", timeout=1).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.1)
    raise TimeoutError(f"{base} did not come up in {seconds:g} s")
