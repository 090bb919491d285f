"""An atheris (libFuzzer) harness for every parser of outside input, runnable on demand.

    python tests/reliability/fuzz_atheris.py TARGET [atheris/libFuzzer args]

    python tests/reliability/fuzz_atheris.py ingest-jsonl -runs=100000
    python tests/reliability/fuzz_atheris.py gguf -max_total_time=600 corpus/gguf/   # keep a corpus
    python tests/reliability/fuzz_atheris.py api-schema -runs=5000 -jobs=2

TARGET is one of:
    ingest-jsonl  the input as a .jsonl file to `data ingest` (with --skip-invalid when its first byte is odd)
    ingest-csv    the input as a .csv file to `data ingest` (--csv.conversation-col ticket when the first byte is odd)
    template      the input as chat messages rendered by a TemplateTokenizer (ChatML): no special token from a content
    tokenizer     the input as text and messages for our Tokenizer: round trip, no special token from a content, mask
    gguf          `chatforge import` of a tiny valid GGUF with edits the input describes (or the input itself if it starts with GGUF)
    safetensors   `chatforge import` of a tiny HF dir whose model.safetensors header the input edits (or replaces)
    api-schema    the input as a request body to the three POST routes of the real app (a tiny model, in-process)

Each target calls the same entry points as tests/reliability/test_fuzz_*.py and treats the
intended clear error as fine (a UserError; a ValueError naming the message for malformed
message lists; a 4xx in OpenAI's error shape for the API); anything else propagates, and
atheris reports it as a crash with the input that caused it (saved as crash-<sha1>; replay
it with `python tests/reliability/fuzz_atheris.py TARGET crash-<sha1>`). The tiny model the
gguf, safetensors and api-schema targets need is built once into $CHATFORGE_FUZZ_CACHE
(default: a folder in the system temp dir); inputs are written
in $CHATFORGE_FUZZ_SCRATCH (default: a folder in the system temp dir, left behind: libFuzzer exits without
cleaning up). tests/reliability/test_fuzz_atheris.py runs every
target for a few hundred inputs so the harness cannot rot.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import struct
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import atheris

HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(HERE), str(HERE.parent)]  # fuzzing.py, trials.py; serve_helpers.py
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")

with atheris.instrument_imports(include=["chatforge"]):  # coverage feedback from our code only
    from chatforge.config import load_config
    from chatforge.data import formats
    from chatforge.errors import UserError
    from chatforge.interop.commands import import_main
    from chatforge.interop.config import ImportConfig
    from chatforge.tokenizer import Tokenizer, train_tokenizer

CACHE = Path(os.environ.get("CHATFORGE_FUZZ_CACHE") or Path(tempfile.gettempdir()) / "chatforge-fuzz-cache")
SCRATCH = Path(os.environ.get("CHATFORGE_FUZZ_SCRATCH") or Path(tempfile.gettempdir()) / f"chatforge-atheris-{os.getpid()}")  # left behind: libFuzzer exits without cleanup


def tiny_model() -> Path:
    """A tiny model dir, its HF export and its GGUF export, built once into CACHE."""
    if not (CACHE / "tiny.gguf").is_file():
        from serve_helpers import tiny_model_dir

        from chatforge.interop.gguf import write_gguf
        from chatforge.interop.hf import export_hf

        tmp = Path(tempfile.mkdtemp(dir=CACHE.parent, prefix=".fuzz-cache-"))
        model = tiny_model_dir(tmp)
        export_hf(model, tmp / "hf")
        write_gguf(model, tmp / "tiny.gguf", dtype="f16")
        try:
            tmp.rename(CACHE)
        except OSError:  # built meanwhile by another process
            shutil.rmtree(tmp, ignore_errors=True)
    return CACHE


# -- targets: each returns a function of one input ---------------------------------------------------


def ingest_target(suffix: str) -> Callable[[bytes], None]:
    def run(data: bytes) -> None:
        src, out = SCRATCH / f"in{suffix}", SCRATCH / "out"
        shutil.rmtree(out, ignore_errors=True)
        src.write_bytes(data)
        odd = bool(data[:1]) and data[0] % 2 == 1
        extra: dict[str, Any] = {"skip_invalid": odd} if suffix == ".jsonl" else ({"csv.conversation_col": "ticket"} if odd else {})
        try:
            man = formats.main(load_config(formats.IngestConfig, overrides={"files": [str(src)], "out": str(out), **extra}))
        except UserError as e:
            assert str(e).startswith(str(src)), f"the error does not name the file: {e}"
            return
        counts = man["ingest"]
        assert counts["rows_in"] == counts["rows_written"] + counts["rows_rejected"]

    return run


def messages_from(fdp: atheris.FuzzedDataProvider) -> list[dict[str, str]]:
    roles = ["system", "user", "assistant"]
    return [{"role": roles[fdp.ConsumeIntInRange(0, 2)], "content": fdp.ConsumeUnicodeNoSurrogates(fdp.ConsumeIntInRange(0, 40))} for _ in range(fdp.ConsumeIntInRange(0, 5))]


def check_render(tok: Tokenizer, msgs: list[dict[str, str]], specials: set[int]) -> None:
    ids, mask = tok.render(msgs)
    want = [i for i in tok.render([{**m, "content": "x"} for m in msgs])[0] if i in specials]
    assert [i for i in ids if i in specials] == want, "a content added a special token"
    assert tok.decode(ids) == tok.render_text(msgs)
    end = tok.decode([tok.end_id])
    assert tok.decode([i for i, k in zip(ids, mask, strict=True) if k]) == "".join(m["content"] + end for m in msgs if m["role"] == "assistant")


def template_target() -> Callable[[bytes], None]:
    from trials import template_tokenizer

    tok = template_tokenizer()
    specials = set(tok.special_tokens.values())

    def run(data: bytes) -> None:
        fdp = atheris.FuzzedDataProvider(data)
        check_render(tok, messages_from(fdp), specials)

    return run


def tokenizer_target() -> Callable[[bytes], None]:
    tok = train_tokenizer(["Where is my order? It ships in 2 days.", "héllo wörld ✓ 日本語 🙂", "<|user|> is text"] * 20, 512)
    specials = set(range(len(tok.special_tokens)))

    def run(data: bytes) -> None:
        fdp = atheris.FuzzedDataProvider(data)
        text = fdp.ConsumeUnicodeNoSurrogates(64)
        ids = tok.encode(text)
        assert tok.decode(ids) == text and not specials & set(ids)
        check_render(tok, messages_from(fdp), specials)
        raw = [fdp.ConsumeIntInRange(-2, tok.vocab_size + 2) for _ in range(fdp.ConsumeIntInRange(0, 4))]
        try:
            tok.decode(raw, skip_special=fdp.ConsumeBool())
        except ValueError as e:
            assert "is not in the vocabulary" in str(e) and not all(0 <= i < tok.vocab_size for i in raw)

    return run


def import_or_user_error(src: Path) -> None:
    out = SCRATCH / "imported"
    shutil.rmtree(out, ignore_errors=True)
    with contextlib.suppress(UserError):
        import_main(load_config(ImportConfig, overrides={"src": str(src), "out": str(out), "overwrite": True}))


def edited(seed: bytes, data: bytes, limit: int) -> bytes:
    """`seed` with its first `limit` bytes overwritten where the input says: (u32 offset, u8 length, bytes) records."""
    b = bytearray(seed)
    fdp = atheris.FuzzedDataProvider(data)
    while fdp.remaining_bytes() > 5:
        at = fdp.ConsumeIntInRange(0, limit - 1)
        piece = fdp.ConsumeBytes(fdp.ConsumeIntInRange(1, 8))
        b[at : at + len(piece)] = piece
    if data[:1] == b"\xff":
        del b[fdp.ConsumeIntInRange(0, len(b)) :]  # and truncated
    return bytes(b)


def gguf_target() -> Callable[[bytes], None]:
    seed = (tiny_model() / "tiny.gguf").read_bytes()
    import gguf

    header_end = gguf.GGUFReader(str(tiny_model() / "tiny.gguf")).data_offset

    def run(data: bytes) -> None:
        src = SCRATCH / "m.gguf"
        src.write_bytes(data if data.startswith(b"GGUF") else edited(seed, data, header_end))
        import_or_user_error(src)

    return run


def safetensors_target() -> Callable[[bytes], None]:
    hf = tiny_model() / "hf"
    seed = (hf / "model.safetensors").read_bytes()
    header_end = 8 + struct.unpack("<Q", seed[:8])[0]
    src = SCRATCH / "hf"
    shutil.copytree(hf, src)

    def run(data: bytes) -> None:
        (src / "model.safetensors").write_bytes(data if data[:1] == b"\x00" else edited(seed, data, header_end))
        import_or_user_error(src)

    return run


def api_target() -> Callable[[bytes], None]:
    from fastapi.testclient import TestClient
    from serve_helpers import make_engine

    from chatforge.serve.app import create_app
    from chatforge.serve.config import Limits, ServeConfig

    model = tiny_model() / "model"
    cfg = ServeConfig(model=str(model), limits=Limits(max_tokens=8, timeout=30), store=str(SCRATCH / "feedback.db"))
    client = TestClient(create_app(cfg, make_engine(model, cfg.max_batch), "tiny"))
    client.__enter__()  # starts the engine threads; the process ends with the fuzzer
    routes = ["/v1/chat/completions", "/v1/completions", "/v1/feedback"]

    def run(data: bytes) -> None:
        route = routes[data[0] % 3] if data else routes[0]
        r = client.post(route, content=data[1:], headers={"content-type": "application/json"})
        assert r.status_code < 500, f"{r.status_code}: {r.text[:300]}"
        if r.status_code >= 400:
            assert len(r.content) <= 2000, "an error body echoes the input"
            err = r.json()["error"]
            assert set(err) == {"message", "type", "param", "code"}

    return run


TARGETS: dict[str, Callable[[], Callable[[bytes], None]]] = {
    "ingest-jsonl": lambda: ingest_target(".jsonl"),
    "ingest-csv": lambda: ingest_target(".csv"),
    "template": template_target,
    "tokenizer": tokenizer_target,
    "gguf": gguf_target,
    "safetensors": safetensors_target,
    "api-schema": api_target,
}


def main() -> None:
    if len(sys.argv) < 2 or sys.argv[1] not in TARGETS:
        sys.exit(f"usage: {sys.argv[0]} TARGET [atheris/libFuzzer args]; TARGET: {', '.join(TARGETS)}")
    run = TARGETS[sys.argv[1]]()
    SCRATCH.mkdir(parents=True, exist_ok=True)
    atheris.Setup([sys.argv[0], *sys.argv[2:]], run)
    atheris.Fuzz()


if __name__ == "__main__":
    main()

