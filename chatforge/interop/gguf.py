"""GGUF interop (llama.cpp's file format): import a Llama-architecture .gguf; export ours to GGUF and Ollama.

    chatforge import SmolLM2-135M-Instruct.Q4_1.gguf --out models/smollm2
    chatforge export --model runs/sft/model --format gguf --dtype q8_0 --out my-assistant.gguf
    chatforge export --model runs/sft/model --format ollama --out my-assistant/   # model.gguf + Modelfile

Import builds on `transformers`, which reads Llama-family GGUF files itself: it dequantizes
the tensors (F32/F16/BF16/Q8_0/Q4_0/Q4_1, through the `gguf` package), undoes llama.cpp's
row permutation of the query/key weights, and rebuilds the tokenizer and chat template
from the metadata. What this module adds is the check first (architecture, tensor types:
a clear error instead of a stack trace) and the conversion into our model dir. A GGUF we
wrote ourselves carries the exact tokenizer.json (`tokenizer.huggingface.json`, a
standard GGUF key) and tokenizer_config.json, so a round trip gives the same tokenizer back.

Export writes the GGUF llama.cpp expects for the `llama` architecture: hyperparameters,
the BPE vocabulary (`gpt2` tokenizer model) with merges, special-token ids and the chat
template; the query/key rows permuted into llama.cpp's interleaved rotary layout; norms
in F32 and matrices in F32, F16 or Q8_0 (quantized by the `gguf` package).
"""

from __future__ import annotations

import json
import math
import mmap
import os
import struct
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import torch

from chatforge.atomic import atomic_write_text, fsync_dir, make_parent, staged_dir
from chatforge.checkpoint import load_model_dir
from chatforge.errors import UserError
from chatforge.interop.hf import limit_context, write_imported
from chatforge.model import GPT, ModelConfig
from chatforge.tokenizer import TemplateTokenizer, Tokenizer
from chatforge.ui import QUIET, UI

SUPPORTED_TYPES = ("F32", "F16", "BF16", "Q8_0", "Q4_0", "Q4_1")
TOKENIZER_CONFIG_KEY = "chatforge.tokenizer_config"  # our tokenizer_config.json, verbatim (llama.cpp ignores it)
HF_TOKENIZER_KEY = "tokenizer.huggingface.json"  # the standard GGUF key for a whole tokenizer.json


def _require_gguf() -> Any:
    try:
        import gguf
    except ImportError:
        raise UserError("GGUF files need the `gguf` package, in the `interop` extra: pip install 'chatforge[interop]'") from None
    return gguf


def _field(reader: Any, key: str) -> Any:
    field = reader.fields.get(key)
    return None if field is None else field.contents()


def check_gguf_source(path: Path) -> dict[str, Any]:
    """The metadata we rely on from a .gguf we can import; a UserError naming the problem otherwise."""
    gguf = _require_gguf()
    if not path.is_file():
        raise UserError(f"{path}: no such file")
    check_layout(path)
    try:
        reader = gguf.GGUFReader(str(path))
        arch = _field(reader, "general.architecture")
        meta = {key: _field(reader, name) for key, name in (("pre", "tokenizer.ggml.pre"), ("tokenizer_json", HF_TOKENIZER_KEY), ("tokenizer_config", TOKENIZER_CONFIG_KEY))}
    except Exception as e:  # the reader raises ValueError/struct errors on files that are not GGUF, strings that are not UTF-8
        raise UserError(f"{path}: not a readable GGUF file: {e}") from None
    if arch != "llama":
        raise UserError(f"{path}: architecture {arch!r} is not supported; chatforge imports GGUF files of the `llama` architecture (Llama, SmolLM2, TinyLlama, Mistral)")
    types = sorted({t.tensor_type.name for t in reader.tensors})
    bad = [t for t in types if t not in SUPPORTED_TYPES]
    if bad:
        raise UserError(f"{path}: tensor types {', '.join(bad)} are not supported; supported: {', '.join(SUPPORTED_TYPES)}")
    _check_sizes(path, reader)
    return {"types": types, **meta}


_SCALAR_BYTES = {0: 1, 1: 1, 2: 2, 3: 2, 4: 4, 5: 4, 6: 4, 7: 1, 10: 8, 11: 8, 12: 8}  # GGUF value type -> size
_STRING, _ARRAY = 8, 9


def check_layout(path: Path) -> None:
    """Every count and length a GGUF header declares, against the bytes left in the file.

    The `gguf` reader trusts them: it loops once per declared array item even past the end
    of the file, so a header declaring 2^40 items hangs it while its memory grows without
    bound. This walk reads the header once (memory-mapped) and allocates nothing.
    """
    gguf = _require_gguf()
    size = path.stat().st_size
    if size < 24:
        raise UserError(f"{path}: not a readable GGUF file: {size} bytes is too short for a GGUF header")
    with open(path, "rb") as f, mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) as m:
        pos = 0

        def need(n: int, what: str) -> None:
            if n > size - pos:
                raise UserError(f"{path}: not a readable GGUF file: {what} at byte {pos} runs past the end of the file ({size:,} bytes)")

        def take(n: int, what: str) -> int:
            nonlocal pos
            need(n, what)
            pos += n
            return pos - n

        if m[:4] != b"GGUF":
            raise UserError(f"{path}: not a readable GGUF file: it does not start with GGUF")
        order = ">" if struct.unpack_from("<I", m, 4)[0] & 0xFFFF == 0 else "<"  # as the reader tells big-endian files
        pos = 8

        def num(fmt: str, what: str) -> int:
            return int(struct.unpack_from(order + fmt, m, take(struct.calcsize(fmt), what))[0])

        def value(vtype: int, depth: int) -> None:
            if vtype in _SCALAR_BYTES:
                take(_SCALAR_BYTES[vtype], "a value")
            elif vtype == _STRING:
                take(num("Q", "a string length"), "a string")
            elif vtype == _ARRAY and depth < 4:
                itype, n = num("I", "an array type"), num("Q", "an array length")
                if itype in _SCALAR_BYTES:
                    take(n * _SCALAR_BYTES[itype], f"an array of {n:,} items")
                    return
                need(8 * n, f"an array of {n:,} items")  # each string or array takes 8 bytes at least
                for _ in range(n):
                    value(itype, depth + 1)
            else:
                raise UserError(f"{path}: not a readable GGUF file: metadata value type {vtype} at byte {pos} is not one GGUF has")

        n_tensors, n_kv = num("Q", "the tensor count"), num("Q", "the metadata count")
        need(13 * n_kv + 24 * n_tensors, f"{n_kv:,} metadata entries and {n_tensors:,} tensors")  # their smallest sizes
        for _ in range(n_kv):
            take(num("Q", "a key length"), "a key")
            value(num("I", "a value type"), 0)
        extents = []
        for _ in range(n_tensors):
            take(num("Q", "a tensor name length"), "a tensor name")
            n_dims = num("I", "a tensor's dimension count")
            if n_dims > 4:
                raise UserError(f"{path}: not a readable GGUF file: a tensor with {n_dims} dimensions (at most 4)")
            dims = [num("Q", "a tensor dimension") for _ in range(n_dims)]
            qtype, offset = num("I", "a tensor type"), num("Q", "a tensor offset")
            block, type_size = gguf.GGML_QUANT_SIZES.get(qtype, (1, 0)) if qtype in iter(gguf.GGMLQuantizationType) else (1, 0)
            extents.append((offset, math.prod(dims) * type_size // block))
        for offset, nbytes in extents:  # the data section starts after the header (aligned)
            need(offset + nbytes, f"a tensor of {nbytes:,} bytes")


def _check_sizes(path: Path, reader: Any) -> None:
    """The llama.* sizes against the tensors' shapes: transformers builds the model from the
    metadata before it reads a tensor, so a header declaring 2^20 blocks, or a width of 2^30,
    over small tensors would loop and allocate without bound."""
    shapes = {t.name: [int(x) for x in t.shape] for t in reader.tensors}  # ggml order: columns first

    def size(key: str, default: Any = None) -> int:
        v = _field(reader, key)
        v = default if v is None else v
        if not isinstance(v, int) or isinstance(v, bool) or v < 1:
            raise UserError(f"{path}: metadata {key} must be a positive integer, got {v!r}")
        return v

    embd = shapes.get("token_embd.weight", [])
    if len(embd) != 2:
        raise UserError(f"{path}: no token_embd.weight matrix, which every Llama model has")
    n_embd, n_layer, ff = size("llama.embedding_length"), size("llama.block_count"), size("llama.feed_forward_length")
    heads = size("llama.attention.head_count")
    kv_heads = size("llama.attention.head_count_kv", heads)
    blocks = {name.split(".")[1] for name in shapes if name.startswith("blk.")}
    if len(blocks) != n_layer or blocks != {str(i) for i in range(n_layer)}:  # the count first: it may be 2^64 - 1
        raise UserError(f"{path}: llama.block_count is {n_layer:,} but the tensors are of {len(blocks):,} blocks")
    if n_embd % heads or heads % kv_heads:
        raise UserError(f"{path}: llama.attention.head_count ({heads}) must divide llama.embedding_length ({n_embd}), and head_count_kv ({kv_heads}) head_count")
    want = {"token_embd.weight": [n_embd, embd[1]], "blk.0.ffn_up.weight": [n_embd, ff], "blk.0.attn_k.weight": [n_embd, n_embd // heads * kv_heads]}
    for name, shape in want.items():
        if shapes.get(name) != shape:
            raise UserError(f"{path}: {name} has shape {shapes.get(name)}, the llama.* metadata implies {shape}")
    vocab = _field(reader, "llama.vocab_size")
    if vocab is not None and vocab != embd[1]:
        raise UserError(f"{path}: llama.vocab_size is {vocab!r} but token_embd.weight has {embd[1]:,} rows")


def _load_tokenizer(path: Path, meta: dict[str, Any], block_size: int) -> Tokenizer:
    """The GGUF's tokenizer: the exact files if we wrote it, else rebuilt by transformers from the metadata."""
    with tempfile.TemporaryDirectory() as tmp:
        if isinstance(meta["tokenizer_json"], str) and isinstance(meta["tokenizer_config"], str):
            Path(tmp, "tokenizer.json").write_text(meta["tokenizer_json"], encoding="utf-8")
            Path(tmp, "tokenizer_config.json").write_text(meta["tokenizer_config"], encoding="utf-8")
        else:
            from transformers import AutoTokenizer

            try:
                AutoTokenizer.from_pretrained(str(path.parent), gguf_file=path.name).save_pretrained(tmp)
            except Exception as e:  # transformers raises many kinds on metadata it cannot convert
                raise UserError(f"{path}: cannot rebuild the tokenizer from the GGUF metadata: {e}") from None
        try:
            tok = Tokenizer.load(tmp)
        except UserError as e:  # it names a file in `tmp`, gone by now: name the GGUF instead
            raise UserError(f"{path}: the tokenizer in its metadata: {str(e).replace(tmp + os.sep, '')}") from None
    tok.model_max_length = block_size
    return tok


def import_gguf(path: Path, out: Path, *, block_size: int = 0, overwrite: bool = False, ui: UI = QUIET) -> Path:
    """Import a Llama-architecture .gguf as a model dir (weights dequantized to float32); returns `out`."""
    meta = check_gguf_source(path)
    from transformers import AutoModelForCausalLM

    ui.note(f"import: reading {path.name} ({', '.join(meta['types'])} tensors) through transformers")
    try:
        hf_model = AutoModelForCausalLM.from_pretrained(str(path.parent), gguf_file=path.name, dtype=torch.float32)
    except Exception as e:  # transformers raises many kinds on files it cannot convert
        raise UserError(f"{path}: transformers could not load it: {e}") from None
    try:
        cfg = ModelConfig.from_hf(hf_model.config.to_dict())
    except UserError as e:
        raise UserError(f"{path}: the metadata, as transformers reads it: {e}") from None
    model = GPT(cfg)
    state = {k: v for k, v in hf_model.state_dict().items() if not (cfg.tie_embeddings and k == "lm_head.weight")}
    missing, unexpected = model.load_state_dict(state, strict=False)
    if [k for k in missing if k != "lm_head.weight"] or unexpected:
        raise UserError(f"{path}: tensors do not match a Llama model: missing {missing[:3]}, unexpected {unexpected[:3]}")
    del hf_model
    tok = _load_tokenizer(path, meta, cfg.block_size)
    if tok.vocab_size > cfg.vocab_size:
        raise UserError(f"{path}: the tokenizer has {tok.vocab_size} tokens but the model only {cfg.vocab_size} embeddings")
    limit_context(model, block_size)
    info = {"imported_from": str(path), "source_format": "gguf", "gguf_tensor_types": meta["types"], "gguf_pre": meta["pre"]}
    write_imported(out, model, tok, info, overwrite=overwrite)
    ui.note(f"import: {model.num_params() / 1e6:.1f}M parameters, {tok.vocab_size:,} tokens, context {model.cfg.block_size} -> {out}")
    return out


# -- export ------------------------------------------------------------------------------------


def permute_rotary(w: np.ndarray, n_heads: int) -> np.ndarray:
    """HF's query/key rows (per head: first halves, then second halves of the rotary pairs)
    into llama.cpp's layout (pairs interleaved): the rotation then acts on adjacent rows."""
    rows = w.shape[0]
    return w.reshape(n_heads, 2, rows // n_heads // 2, *w.shape[1:]).swapaxes(1, 2).reshape(w.shape)


def _tensor_names(cfg: ModelConfig) -> dict[str, str]:
    """Our (HF) parameter names -> GGUF tensor names."""
    names = {"model.embed_tokens.weight": "token_embd.weight", "model.norm.weight": "output_norm.weight"}
    if not cfg.tie_embeddings:
        names["lm_head.weight"] = "output.weight"
    parts = {
        "input_layernorm.weight": "attn_norm.weight",
        "self_attn.q_proj.weight": "attn_q.weight",
        "self_attn.k_proj.weight": "attn_k.weight",
        "self_attn.v_proj.weight": "attn_v.weight",
        "self_attn.o_proj.weight": "attn_output.weight",
        "post_attention_layernorm.weight": "ffn_norm.weight",
        "mlp.gate_proj.weight": "ffn_gate.weight",
        "mlp.up_proj.weight": "ffn_up.weight",
        "mlp.down_proj.weight": "ffn_down.weight",
    }
    for i in range(cfg.n_layer):
        for ours, theirs in parts.items():
            names[f"model.layers.{i}.{ours}"] = f"blk.{i}.{theirs}"
    return names


def _vocabulary(tok: Tokenizer, model_dir: Path) -> tuple[list[str], list[int], list[str]]:
    """Token strings, GGUF token types and merges ("a b") of a byte-level BPE tokenizer."""
    spec = json.loads(tok.hf.to_str())
    model = spec.get("model") or {}
    if model.get("type") != "BPE" or "ByteLevel" not in json.dumps(spec.get("decoder")):
        raise UserError(f"{model_dir}: only byte-level BPE tokenizers (GPT-2 style) can be written to GGUF here; this one is {model.get('type')}")
    special = {int(t["id"]) for t in spec.get("added_tokens") or [] if t.get("special")}
    added = {int(t["id"]) for t in spec.get("added_tokens") or []}
    tokens = [tok.hf.id_to_token(i) or f"[UNUSED_{i}]" for i in range(tok.vocab_size)]
    # llama.cpp's token types: 1 normal, 3 control (special), 4 user-defined (added, not special)
    types = [3 if i in special else 4 if i in added else 1 for i in range(tok.vocab_size)]
    merges = [m if isinstance(m, str) else " ".join(m) for m in model.get("merges") or []]
    return tokens, types, merges


def write_gguf(model_dir: Path, out: Path, *, dtype: str = "f16", ui: UI = QUIET) -> Path:
    """Write `model_dir` as one GGUF file (atomically): F32 norms, matrices in `dtype` (f32, f16, q8_0)."""
    gguf = _require_gguf()
    model = load_model_dir(model_dir)
    tok = Tokenizer.load(model_dir)
    cfg = model.cfg
    info = json.loads((model_dir / "chatforge.json").read_text(encoding="utf-8")) if (model_dir / "chatforge.json").is_file() else {}
    tokens, types, merges = _vocabulary(tok, model_dir)
    qtype = {"f32": gguf.GGMLQuantizationType.F32, "f16": gguf.GGMLQuantizationType.F16, "q8_0": gguf.GGMLQuantizationType.Q8_0}[dtype]
    file_type = {"f32": gguf.LlamaFileType.ALL_F32, "f16": gguf.LlamaFileType.MOSTLY_F16, "q8_0": gguf.LlamaFileType.MOSTLY_Q8_0}[dtype]
    tok_cfg = tok.tokenizer_config()

    make_parent(out)
    tmp = out.with_name(f".{out.name}.tmp-{os.getpid()}")
    writer = gguf.GGUFWriter(str(tmp), "llama")
    try:
        writer.add_name(model_dir.resolve().name)
        writer.add_file_type(int(file_type))
        writer.add_context_length(cfg.block_size)
        writer.add_embedding_length(cfg.n_embd)
        writer.add_block_count(cfg.n_layer)
        writer.add_feed_forward_length(cfg.intermediate_size)
        writer.add_head_count(cfg.n_head)
        writer.add_head_count_kv(cfg.n_kv_head)
        writer.add_rope_dimension_count(cfg.head_dim)
        writer.add_rope_freq_base(cfg.rope_theta)
        writer.add_layer_norm_rms_eps(cfg.norm_eps)
        writer.add_vocab_size(cfg.vocab_size)
        writer.add_tokenizer_model("gpt2")
        # llama.cpp picks its pre-tokenizer regex by name; an imported GGUF's own name is kept,
        # ours has no name there ("default": a GPT-2-like split, close to ours, not identical).
        writer.add_tokenizer_pre(str(info.get("gguf_pre") or "default"))
        writer.add_token_list(tokens)
        writer.add_token_types(types)
        writer.add_token_merges(merges)
        writer.add_bos_token_id(tok.bos_id)
        writer.add_eos_token_id(tok.eos_id)
        writer.add_pad_token_id(tok.pad_id)
        writer.add_eot_token_id(tok.end_id)
        writer.add_add_bos_token(False)  # the chat templates write their own start token
        writer.add_add_eos_token(False)
        writer.add_chat_template(str(tok_cfg["chat_template"]))
        writer.add_string(HF_TOKENIZER_KEY, tok.hf.to_str())
        writer.add_string(TOKENIZER_CONFIG_KEY, json.dumps(tok_cfg))
        state = {k: v.detach().float().numpy() for k, v in model.state_dict().items()}
        for ours, theirs in _tensor_names(cfg).items():
            w = state[ours]
            if ours.endswith("q_proj.weight"):
                w = permute_rotary(w, cfg.n_head)
            elif ours.endswith("k_proj.weight"):
                w = permute_rotary(w, cfg.n_kv_head)
            w = np.ascontiguousarray(w, dtype=np.float32)
            if w.ndim == 1 or qtype == gguf.GGMLQuantizationType.F32:
                writer.add_tensor(theirs, w)
            elif qtype == gguf.GGMLQuantizationType.F16 or w.shape[-1] % 32:
                writer.add_tensor(theirs, w.astype(np.float16))  # Q8_0 needs rows in blocks of 32
            else:
                writer.add_tensor(theirs, gguf.quants.quantize(w, qtype), raw_dtype=qtype)
        writer.write_header_to_file()
        writer.write_kv_data_to_file()
        writer.write_tensors_to_file()
        writer.close()
        with open(tmp, "rb+") as f:
            os.fsync(f.fileno())
        os.replace(tmp, out)
        fsync_dir(out.parent)
    except BaseException:
        writer.close()
        tmp.unlink(missing_ok=True)
        raise
    ui.note(f"export: {model.num_params() / 1e6:.1f}M parameters ({dtype}) -> {out} ({out.stat().st_size / 1e6:.1f} MB GGUF)")
    return out


def modelfile(tok: Tokenizer, block_size: int) -> str:
    """An Ollama Modelfile for `model.gguf` beside it: the chat template in Ollama's Go
    syntax for the formats we know (ours, ChatML); other templates are left to Ollama,
    which reads `tokenizer.chat_template` from the GGUF."""
    lines = ["# Written by `chatforge export --format ollama`. Run: ollama create NAME -f Modelfile", "FROM ./model.gguf"]
    template = tok.tokenizer_config().get("chat_template") or ""
    if not isinstance(tok, TemplateTokenizer):
        lines.append('TEMPLATE """<|bos|>{{- range .Messages }}<|{{ .Role }}|>{{ .Content }}<|end|>{{- end }}<|assistant|>"""')
        stops = ["<|end|>", "<|eos|>"]
    elif "<|im_start|>" in template:
        lines.append('TEMPLATE """{{- range .Messages }}<|im_start|>{{ .Role }}\n{{ .Content }}<|im_end|>\n{{ end }}<|im_start|>assistant\n"""')
        stops = ["<|im_end|>"]
    else:
        lines.append("# TEMPLATE: Ollama uses the chat template stored in the GGUF file")
        stops = [tok.decode([tok.end_id])]
    lines += [f'PARAMETER stop "{s}"' for s in stops]
    lines.append(f"PARAMETER num_ctx {block_size}")
    return "\n".join(lines) + "\n"


def write_ollama(model_dir: Path, out: Path, *, dtype: str = "f16", overwrite: bool = False, ui: UI = QUIET) -> Path:
    """A dir for `ollama create`: model.gguf and a Modelfile."""
    tok = Tokenizer.load(model_dir)
    block_size = int(json.loads((model_dir / "config.json").read_text(encoding="utf-8"))["max_position_embeddings"])

    def ours(p: Path) -> bool:
        return {c.name for c in p.iterdir()} <= {"model.gguf", "Modelfile"}

    with staged_dir(out, overwrite=overwrite, replaceable=ours, what="an Ollama export") as tmp:
        write_gguf(model_dir, tmp / "model.gguf", dtype=dtype, ui=ui)
        atomic_write_text(tmp / "Modelfile", modelfile(tok, block_size))
    ui.note(f"export: `ollama create NAME -f {out / 'Modelfile'}` makes it an Ollama model")
    return out
