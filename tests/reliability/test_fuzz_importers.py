"""Fuzzing `chatforge import`: Hugging Face dirs (chatforge/interop/hf.py, the model-dir
reader in chatforge/checkpoint.py) and GGUF files (chatforge/interop/gguf.py).

A tiny valid model is exported both ways, then mutated: GGUF headers with flipped bytes,
truncated, or with one count, length, dimension or offset replaced by a value that declares
gigabytes; config.json with sizes negative, zero, huge or of the wrong type, or missing;
safetensors files whose declared header length is huge, whose offsets overrun the file,
whose shapes or dtypes are wrong; tokenizer_config.json and the shard index as junk.

"Clear error" here: a `UserError` (the CLI prints it as one line and exits 2) whose message
names the file or dir. Otherwise the import succeeds and writes a model dir. Memory is
bounded: each import runs under an address-space limit (RLIMIT_AS) of the process's current
size plus LIMIT_HEADROOM, so an importer that allocates what a header declares fails with
MemoryError (a crash) instead of taking the machine down; and `test_peak_memory_...` runs
the hand-made "declares gigabytes" files in a child process and checks its peak RSS grows
by less than RSS_GROWTH_LIMIT (ru_maxrss). The address-space limit is set per call and
lifted after, since torch and transformers reserve far more address space than they use
when they load.
"""

from __future__ import annotations

import contextlib
import json
import random
import resource
import shutil
import struct
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fuzzing import fuzz_settings, json_values, mutate
from hypothesis import given
from hypothesis import strategies as st

from chatforge.checkpoint import is_model_dir
from chatforge.config import load_config
from chatforge.errors import UserError
from chatforge.interop.commands import import_main
from chatforge.interop.config import ImportConfig

gguf = pytest.importorskip("gguf")

LIMIT_HEADROOM = 2 << 30  # bytes of address space an import may add (a tiny model needs ~300 MB)
RSS_GROWTH_LIMIT = 150 << 20  # bytes of peak RSS the hostile files may add, in the child


@pytest.fixture(scope="module")
def sources(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """A tiny model exported as a HF dir and as a GGUF file, and where the GGUF's integer fields are."""
    sys.path.insert(0, str(Path(__file__).parents[1]))
    from serve_helpers import tiny_model_dir

    from chatforge.interop.gguf import write_gguf
    from chatforge.interop.hf import export_hf

    root = tmp_path_factory.mktemp("importers")
    model = tiny_model_dir(root)
    export_hf(model, root / "hf")
    write_gguf(model, root / "tiny.gguf", dtype="f16")
    import_main(config(root / "tiny.gguf", root / "warm"))  # transformers' GGUF modules loaded once, outside any limit
    return {"root": root, "hf": root / "hf", "gguf": (root / "tiny.gguf").read_bytes(), "slots": gguf_int_slots(root / "tiny.gguf")}


def config(src: Path, out: Path) -> ImportConfig:
    return load_config(ImportConfig, overrides={"src": str(src), "out": str(out), "overwrite": True})


def _vm_size() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmSize:"):
            return int(line.split()[1]) * 1024
    raise RuntimeError("no VmSize in /proc/self/status")


@contextlib.contextmanager
def bounded_memory(headroom: int = LIMIT_HEADROOM) -> Iterator[None]:
    """Limit this process's address space to its current size + `headroom` (lifted after)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_AS)
    limit = _vm_size() + headroom
    resource.setrlimit(resource.RLIMIT_AS, (limit if hard == resource.RLIM_INFINITY else min(limit, hard), hard))
    try:
        yield
    finally:
        resource.setrlimit(resource.RLIMIT_AS, (soft, hard))


def check_import(src: Path, out: Path) -> str:
    """Import `src` under the memory bound; 'ok' (a model dir was written) or the UserError's message."""
    shutil.rmtree(out, ignore_errors=True)
    try:
        with bounded_memory():
            import_main(config(src, out))
    except UserError as e:
        assert str(src) in str(e), f"the error does not name the input: {e}"
        return str(e)
    assert is_model_dir(out)
    return "ok"


# -- GGUF -----------------------------------------------------------------------------------------


def gguf_int_slots(path: Path) -> list[tuple[int, int]]:
    """(byte offset, size) of every integer a GGUF header declares: counts, key and string
    lengths, value types, array types and lengths, tensor dimension counts, dimensions,
    types and offsets (and the scalar values, such as llama.block_count)."""
    reader = gguf.GGUFReader(str(path))
    slots = []
    fields = [*reader.fields.values(), *(t.field for t in reader.tensors)]
    for f in fields:
        at = f.offset
        for part in f.parts[:6]:  # an array's first item at most: its other items are more of the same
            if part.dtype.kind in "ui" and part.dtype.itemsize in (4, 8) and part.size <= 4:
                slots += [(at + i * part.dtype.itemsize, part.dtype.itemsize) for i in range(part.size)]
            at += part.nbytes
    return slots


INTERESTING = [0, 1, 2, 3, 7, 8, 31, 255, 2**16, 2**31 - 1, 2**31, 2**32 - 1, 2**40, 2**62, 2**63, 2**64 - 1]


@fuzz_settings(40)
@given(st.data())
def test_gguf_with_a_declared_size_replaced_imports_or_is_a_clear_error(sources: dict[str, Any], data: st.DataObject) -> None:
    blob = bytearray(sources["gguf"])
    for _ in range(data.draw(st.integers(1, 3), "edits")):
        at, size = data.draw(st.sampled_from(sources["slots"]), "slot")
        old = int.from_bytes(blob[at : at + size], "little")
        value = data.draw(st.sampled_from([*INTERESTING, old + 1, max(old - 1, 0), old * 2]), "value") % (1 << (8 * size))
        blob[at : at + size] = value.to_bytes(size, "little")
    with tempfile.TemporaryDirectory() as d:
        src = Path(d) / "m.gguf"
        src.write_bytes(bytes(blob))
        check_import(src, Path(d) / "out")


@fuzz_settings(40)
@given(seed=st.integers(0, 2**32 - 1), steps=st.integers(1, 6), where=st.sampled_from(["header", "anywhere", "truncate"]))
def test_gguf_with_mutated_bytes_imports_or_is_a_clear_error(sources: dict[str, Any], seed: int, steps: int, where: str) -> None:
    blob = sources["gguf"]
    rng = random.Random(seed)
    header_end = max(off + size for off, size in sources["slots"])
    if where == "header":  # most of the file is weights, where a flipped byte is still a valid file
        blob = mutate(blob[:header_end], rng, steps) + blob[header_end:]
    elif where == "anywhere":
        blob = mutate(blob, rng, steps)
    else:
        blob = blob[: rng.randrange(len(blob))]
    with tempfile.TemporaryDirectory() as d:
        src = Path(d) / "m.gguf"
        src.write_bytes(blob)
        check_import(src, Path(d) / "out")


# -- Hugging Face dirs ----------------------------------------------------------------------------

CONFIG_KEYS = [
    "hidden_size", "num_attention_heads", "num_key_value_heads", "num_hidden_layers", "intermediate_size", "vocab_size",
    "max_position_embeddings", "rope_theta", "rms_norm_eps", "head_dim", "tie_word_embeddings", "architectures",
    "model_type", "rope_scaling", "hidden_act", "attention_bias", "sliding_window", "rope_parameters",
]  # fmt: skip
sizes = st.one_of(st.sampled_from([0, -1, -48, 1, 2**31, 2**40, 2**63, 10**30, 10**400, 1.5, 48.0, 1e308, "48", None, True, [], {}]), json_values)


def read_safetensors(path: Path) -> tuple[dict[str, Any], bytes]:
    raw = path.read_bytes()
    (n,) = struct.unpack("<Q", raw[:8])
    return json.loads(raw[8 : 8 + n]), raw[8 + n :]


def write_safetensors(path: Path, header: Any, body: bytes, *, declared: int | None = None) -> None:
    h = json.dumps(header).encode()
    h += b" " * (-len(h) % 8)
    path.write_bytes(struct.pack("<Q", len(h) if declared is None else declared) + h + body)


hf_edit = st.one_of(
    st.tuples(st.just("config"), st.sampled_from(CONFIG_KEYS), st.one_of(sizes, st.just("<delete>"))),
    st.tuples(st.just("config-file"), st.just(""), st.one_of(json_values.map(lambda v: json.dumps(v).encode()), st.sampled_from([b"{", b"\xff\xfe", b""]))),
    st.tuples(st.just("tokenizer-config"), st.sampled_from(["", "chat_template", "eos_token", "auto_map"]), json_values),
    st.tuples(st.just("tensor"), st.sampled_from(["shape", "dtype", "data_offsets"]), st.one_of(json_values, st.lists(st.sampled_from(INTERESTING), max_size=3))),
    st.tuples(st.just("header-length"), st.just(""), st.sampled_from(INTERESTING)),
    st.tuples(st.just("safetensors-bytes"), st.just(""), st.integers(0, 2**32 - 1)),
    st.tuples(st.just("index"), st.just(""), st.one_of(json_values, st.sampled_from([{"weight_map": {"a": "../hf/model.safetensors"}}, {"weight_map": {"a": "model.safetensors.index.json"}}, {"weight_map": {"a": "/etc/passwd"}}]))),
)


def apply_hf_edit(d: Path, edit: tuple[str, str, Any], rng: random.Random) -> None:
    kind, key, value = edit
    if kind == "config":
        cfg = json.loads((d / "config.json").read_text())
        if value == "<delete>":
            cfg.pop(key, None)
        else:
            cfg[key] = value
        (d / "config.json").write_text(json.dumps(cfg))
    elif kind == "config-file":
        (d / "config.json").write_bytes(value)
    elif kind == "tokenizer-config":
        tc = json.loads((d / "tokenizer_config.json").read_text())
        (d / "tokenizer_config.json").write_text(json.dumps(value if not key else {**tc, key: value}))
    elif kind in ("tensor", "header-length"):
        header, body = read_safetensors(d / "model.safetensors")
        if kind == "tensor":
            name = rng.choice(sorted(k for k in header if k != "__metadata__"))
            header[name][key] = value
        write_safetensors(d / "model.safetensors", header, body, declared=value if kind == "header-length" else None)
    elif kind == "safetensors-bytes":
        raw = (d / "model.safetensors").read_bytes()
        n = struct.unpack("<Q", raw[:8])[0]
        r = random.Random(value)
        (d / "model.safetensors").write_bytes(mutate(raw[: 8 + n], r, r.randrange(1, 5)) + raw[8 + n :])
    elif kind == "index":
        (d / "model.safetensors").unlink()
        (d / "model.safetensors.index.json").write_text(json.dumps(value))


@fuzz_settings(60)
@given(edits=st.lists(hf_edit, min_size=1, max_size=3), seed=st.integers(0, 2**16))
def test_hf_dir_with_mutated_files_imports_or_is_a_clear_error(sources: dict[str, Any], edits: list[tuple[str, str, Any]], seed: int) -> None:
    rng = random.Random(seed)
    with tempfile.TemporaryDirectory() as tmp:
        d = Path(tmp) / "src"
        shutil.copytree(sources["hf"], d)
        for edit in edits:
            # An edit that needs a file an earlier edit broke or removed is skipped.
            with contextlib.suppress(OSError, ValueError, TypeError, AttributeError, KeyError, IndexError, struct.error):
                apply_hf_edit(d, edit, rng)
        check_import(d, Path(tmp) / "out")


# -- the inputs that crashed, and peak memory -------------------------------------------------------


def hostile_files(sources: dict[str, Any], root: Path) -> dict[str, Path]:
    """Hand-made files and dirs that declare gigabytes (or loops) over a few hundred KB."""
    blob = sources["gguf"]
    reader = gguf.GGUFReader(str(sources["root"] / "tiny.gguf"))
    out: dict[str, Path] = {}

    def at_value(key: str) -> int:
        f = reader.fields[key]
        return f.offset + 8 + len(bytes(f.parts[1])) + 4  # after the key and the value type

    def patched(name: str, edits: list[tuple[int, str, int]], cut: int | None = None) -> None:
        b = bytearray(blob)
        for at, fmt, v in edits:
            struct.pack_into(fmt, b, at, v)
        out[name] = root / f"{name}.gguf"
        out[name].write_bytes(bytes(b[:cut]))

    arr = at_value("tokenizer.ggml.token_type") + 4  # the array's length, after its item type
    patched("gguf-array-2^40-items-truncated", [(arr, "<Q", 2**40)], cut=arr + 8 + 400)  # was: a hang, memory growing ~100 MB/s
    patched("gguf-2^40-tensors", [(8, "<Q", 2**40)])
    patched("gguf-2^40-metadata", [(16, "<Q", 2**40)])
    patched("gguf-key-of-2^40-bytes", [(24, "<Q", 2**40)])
    patched("gguf-2^20-blocks", [(at_value("llama.block_count"), "<I", 2**20)])  # was: transformers built 10^6 layers (60 s, 1.7 GB and on)
    patched("gguf-width-2^30", [(at_value("llama.embedding_length"), "<I", 2**30)])
    patched("gguf-0-heads", [(at_value("llama.attention.head_count"), "<I", 0)])  # was: ZeroDivisionError in transformers, wrapped
    t = reader.tensors[0].field
    dims = t.offset + 8 + len(bytes(t.parts[1])) + 4
    patched("gguf-tensor-2^40-columns", [(dims, "<Q", 2**40)])
    patched("gguf-tensor-offset-2^50", [(dims + 8 * len(reader.tensors[0].shape) + 4, "<Q", 2**50)])

    def hf(name: str, **cfg_edits: Any) -> None:
        d = out[name] = root / name
        shutil.copytree(sources["hf"], d)
        cfg = json.loads((d / "config.json").read_text())
        cfg.update(cfg_edits)
        (d / "config.json").write_text(json.dumps(cfg))

    hf("hf-10^6-layers", num_hidden_layers=10**6)  # was: MemoryError after 20 s and 3 GB
    hf("hf-vocab-2^31", vocab_size=2**31)  # was: torch allocating 412 GB
    hf("hf-width-2^16", hidden_size=2**16, head_dim=None, intermediate_size=2**18)
    hf("hf-vocab-10^30", vocab_size=10**30)  # was: TypeError (overflow) from torch
    hf("hf-0-heads", num_attention_heads=0, head_dim=None)  # was: ZeroDivisionError
    hf("hf-no-hidden-size", hidden_size=None)
    d = out["hf-header-2^60"] = root / "hf-header-2^60"
    shutil.copytree(sources["hf"], d)
    header, body = read_safetensors(d / "model.safetensors")
    write_safetensors(d / "model.safetensors", header, body, declared=2**60)
    return out


def test_inputs_that_crashed_or_hung_the_importers_are_clear_errors(sources: dict[str, Any], tmp_path: Path) -> None:
    for name, src in hostile_files(sources, tmp_path).items():
        outcome = check_import(src, tmp_path / "out")
        assert outcome != "ok", f"{name} was imported"


CHILD = """
import json, resource, sys
from pathlib import Path
from chatforge.config import load_config
from chatforge.errors import UserError
from chatforge.interop.commands import import_main
from chatforge.interop.config import ImportConfig
files, warm, out = json.loads(sys.argv[1]), sys.argv[2], Path(sys.argv[3])
def run(src):
    try:
        import_main(load_config(ImportConfig, overrides={"src": src, "out": str(out), "overwrite": True}))
        return "ok"
    except UserError as e:
        return "UserError"
run(warm)  # a valid import first: every module loaded, torch's allocator warm
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
outcomes = {name: run(src) for name, src in files.items()}
after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print(json.dumps({"outcomes": outcomes, "growth_kb": after - before}))
"""


def test_peak_memory_stays_flat_on_files_that_declare_gigabytes(sources: dict[str, Any], tmp_path: Path) -> None:
    files = {name: str(p) for name, p in hostile_files(sources, tmp_path).items()}
    proc = subprocess.run(
        [sys.executable, "-c", CHILD, json.dumps(files), str(sources["root"] / "tiny.gguf"), str(tmp_path / "out")],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    assert set(result["outcomes"].values()) == {"UserError"}, result
    print(f"peak RSS growth over {len(files)} hostile imports: {result['growth_kb'] / 1024:.1f} MB")  # a figure for -s runs
    assert result["growth_kb"] * 1024 < RSS_GROWTH_LIMIT, f"peak RSS grew by {result['growth_kb'] / 1024:.0f} MB"


def test_the_memory_bound_turns_a_huge_allocation_into_an_error() -> None:
    """The bound can fail a test: under it, allocating what a hostile header declares raises
    instead of succeeding (or taking the machine down)."""
    import torch

    with pytest.raises((MemoryError, RuntimeError)), bounded_memory(256 << 20):
        torch.empty(2**31, dtype=torch.float32)


def llama_size_slots(path: Path) -> dict[str, tuple[int, int]]:
    """(byte offset, size) of the value of every integer llama.* metadata field."""
    reader = gguf.GGUFReader(str(path))
    out = {}
    for name, f in reader.fields.items():
        value = f.parts[-1]
        if name.startswith("llama.") and value.dtype.kind in "ui" and value.size == 1:
            out[name] = (f.offset + sum(p.nbytes for p in f.parts[:-1]), value.dtype.itemsize)
    return out


@pytest.mark.parametrize("value", [0, 2**31, 2**32 - 1, 2**63, 2**64 - 1])
def test_gguf_with_a_huge_llama_size_is_a_clear_error(sources: dict[str, Any], value: int) -> None:
    # Found by the full reliability report's fuzzing: llama.block_count = 2^64 - 1 over a
    # 2-block model built a set of 2^64 block names (MemoryError). Every size, each value.
    path = sources["root"] / "tiny.gguf"
    slots = llama_size_slots(path)
    assert "llama.block_count" in slots and "llama.embedding_length" in slots
    for at, size in slots.values():
        blob = bytearray(sources["gguf"])
        blob[at : at + size] = (value % (1 << (8 * size))).to_bytes(size, "little")
        with tempfile.TemporaryDirectory() as d:
            src = Path(d) / "m.gguf"
            src.write_bytes(bytes(blob))
            check_import(src, Path(d) / "out")
