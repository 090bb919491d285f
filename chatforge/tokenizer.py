"""Byte-level BPE tokenizer with the chat format: training, encoding, the chat template, loss masks.

    chatforge tokenizer train --data data/world/kb data/world/conversations --vocab-size 8192 --out tok

    tok = Tokenizer.load("tok")
    ids = tok.encode("Where is my order?")                 # plain text, never control tokens
    ids, mask = tok.render(messages)                       # a conversation for SFT: mask 1 = train on it
    text = tok.render_text(messages, add_generation_prompt=True)

Training uses Hugging Face `tokenizers` (a regex split, then byte-level BPE), and the
result is saved as a standard `tokenizer.json` + `tokenizer_config.json` with a Jinja
`chat_template`, so `transformers.AutoTokenizer.from_pretrained(dir)` loads it and
renders conversations exactly as `render_text` does. Encoding runs on `tiktoken`, built
from the same ranks: its BPE is several times faster and gives the same ids.

The chat format, shared by every vocabulary size (special tokens take the lowest ids):

    0 <|pad|>  1 <|bos|>  2 <|eos|>  3 <|system|>  4 <|user|>  5 <|assistant|>  6 <|end|>

    <|bos|><|system|>You help.<|end|><|user|>Hi<|end|><|assistant|>Hello!<|end|>

Nothing is added between the pieces (no newlines): a message's content is exactly its
text. Contents are always encoded as plain text, so a user who types `<|assistant|>`
gets ordinary byte-level tokens and cannot forge a turn (a prompt-injection guard).
"""

from __future__ import annotations

import codecs
import functools
import json
import os
import re
import time
from collections.abc import Iterable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from chatforge import __version__
from chatforge.atomic import atomic_write_json, atomic_write_text, staged_dir
from chatforge.config import opt, to_dict
from chatforge.data.dataset import Dataset, open_dataset
from chatforge.errors import ConfigError, UserError
from chatforge.ui import QUIET, UI

if TYPE_CHECKING:
    import tokenizers

# --------------------------------------------------------------------------------------
# The chat format

PAD, BOS, EOS, SYSTEM, USER, ASSISTANT, END = (
    "<|pad|>",
    "<|bos|>",
    "<|eos|>",
    "<|system|>",
    "<|user|>",
    "<|assistant|>",
    "<|end|>",
)
SPECIAL_TOKENS: tuple[str, ...] = (PAD, BOS, EOS, SYSTEM, USER, ASSISTANT, END)
"""The special tokens, in id order: token i has id i."""
ROLES: tuple[str, ...] = ("system", "user", "assistant")
ROLE_TOKENS: dict[str, str] = {"system": SYSTEM, "user": USER, "assistant": ASSISTANT}

# How text is cut into pieces before BPE (merges never cross a piece boundary). In the
# spirit of GPT-4's pattern; it must mean the same in Oniguruma (`tokenizers`) and in
# fancy-regex (`tiktoken`), so it avoids `$` and counted possessive repeats, and every
# character falls in some branch (tiktoken silently drops text no branch matches).
SPLIT_PATTERN = "|".join(
    [
        r"'(?i:[sdmt]|ll|ve|re)",  # English contractions: 's 'd 'm 't 'll 've 're
        r"[^\r\n\p{L}\p{N}]?+\p{L}++",  # a word, with at most one leading space or mark
        r"\p{N}{1,3}",  # digits in groups of up to three, so numbers share tokens
        r" ?[^\s\p{L}\p{N}]++[\r\n]*+",  # a run of punctuation/symbols (and line breaks after it)
        r"\s*[\r\n]",  # line breaks, with the spaces before them
        r"\s+(?!\S)",  # spaces up to the last one before a word (which that word takes)
        r"\s+",  # any other whitespace
    ]
)

TOKENIZER_FILE = "tokenizer.json"
CONFIG_FILE = "tokenizer_config.json"
TRAIN_FILE = "tokenizer_train.json"
_OUR_FILES = {TOKENIZER_FILE, CONFIG_FILE, TRAIN_FILE, "special_tokens_map.json", "chat_template.jinja"}
_TEXTS_PER_TASK = 512  # texts per thread task in `encode_batch`
NO_MAX_LENGTH = int(1e30)  # what Hugging Face writes for "no limit"; a model dir sets its block size


def _chat_template() -> str:
    """The Jinja twin of `Tokenizer.render_text` (the `chat_template` of tokenizer_config.json)."""
    # Every tag trims the whitespace around it, so the template's own layout never leaks
    # into the output; only the messages' content (inserted verbatim) and the tokens do.
    return (
        "{{- '" + BOS + "' -}}\n"
        "{%- for message in messages -%}\n"
        "  {%- if message['role'] not in ['system', 'user', 'assistant'] -%}\n"
        "    {{- raise_exception('message role must be system, user or assistant, got ' + message['role']) -}}\n"
        "  {%- endif -%}\n"
        "  {{- '<|' + message['role'] + '|>' + message['content'] + '" + END + "' -}}\n"
        "{%- endfor -%}\n"
        "{%- if add_generation_prompt -%}\n"
        "  {{- '" + ASSISTANT + "' -}}\n"
        "{%- endif -%}"
    )


CHAT_TEMPLATE = _chat_template()


def _check_messages(messages: Sequence[Mapping[str, Any]]) -> None:
    if isinstance(messages, (str, bytes)) or not isinstance(messages, Sequence):
        raise ValueError(f"messages must be a list of {{role, content}} dicts, got {type(messages).__name__}")
    for i, m in enumerate(messages):
        if not isinstance(m, Mapping):
            raise ValueError(f"message {i}: must be a {{role, content}} dict, got {type(m).__name__}")
        role = m.get("role")
        if not isinstance(role, str) or role not in ROLE_TOKENS:
            raise ValueError(f"message {i}: role {role!r} is not one of system, user, assistant")
        if not isinstance(m.get("content"), str):
            raise ValueError(f"message {i}: content must be a string, got {type(m.get('content')).__name__}")


def fit_turns(
    messages: Sequence[Mapping[str, Any]],
    contents: Sequence[list[int]],
    limit: int,
    *,
    need_reply: bool,
    overhead: tuple[int, int] = (1, 2),
) -> list[int] | None:
    """Indices of the messages to keep so the rendered conversation has at most `limit` tokens
    (`contents[i]` = message i's ids): all of them if they fit, else the leading system
    messages and the latest turns (dropping the oldest ones whole, so that the kept part
    starts with a user turn). None if nothing is left to learn from (`need_reply`: no
    assistant turn fits) or to answer (no message after the system ones fits).

    `overhead` = (tokens a conversation adds once, tokens each message adds around its
    content): `Tokenizer.turn_overhead`, (1, 2) for our format (<|bos|>; role + <|end|>).

    SFT truncates training conversations with it and the engine long chats."""
    fixed, per_message = overhead
    sizes = [len(c) + per_message for c in contents]
    if fixed + sum(sizes) <= limit:
        return list(range(len(messages)))
    n_sys = 0
    while n_sys < len(messages) and messages[n_sys]["role"] == "system":
        n_sys += 1
    total = fixed + sum(sizes[:n_sys])
    keep: list[int] = []
    # Walk back from the end, adding turns while they fit; then make the kept part start
    # with a user turn.
    for i in range(len(messages) - 1, n_sys - 1, -1):
        if total + sizes[i] > limit:
            break
        total += sizes[i]
        keep.insert(0, i)
    while keep and messages[keep[0]]["role"] != "user":
        keep.pop(0)
    if not keep or (need_reply and not any(messages[i]["role"] == "assistant" for i in keep)):
        return None
    return list(range(n_sys)) + keep


# --------------------------------------------------------------------------------------
# Byte-level symbols


def _byte_symbols() -> list[str]:
    """The printable character that stands for each byte in byte-level BPE vocabularies.

    Bytes that are visible, non-space Latin-1 characters stand for themselves; the other
    68 (controls, space, NBSP, soft hyphen) are shifted to U+0100 and up, in byte order.
    This is the mapping GPT-2 introduced and `tokenizers`' ByteLevel uses: vocab strings
    in tokenizer.json are written in these symbols.
    """
    visible = set(range(ord("!"), ord("~") + 1)) | set(range(0xA1, 0xAC + 1)) | set(range(0xAE, 0xFF + 1))
    symbols = []
    shifted = 0
    for b in range(256):
        if b in visible:
            symbols.append(chr(b))
        else:
            symbols.append(chr(256 + shifted))
            shifted += 1
    return symbols


_SYMBOL_TO_BYTE: dict[str, int] = {s: b for b, s in enumerate(_byte_symbols())}


def _symbols_to_bytes(token: str) -> bytes:
    return bytes(_SYMBOL_TO_BYTE[c] for c in token)


# --------------------------------------------------------------------------------------
# The tokenizer


class Tokenizer:
    """A trained byte-level BPE tokenizer with the chat format (see the module docstring)."""

    def __init__(self, hf: tokenizers.Tokenizer, *, model_max_length: int = NO_MAX_LENGTH, where: str = "tokenizer") -> None:
        spec = json.loads(hf.to_str())
        pattern = _check_spec(spec, where)
        self.hf = hf
        """The Hugging Face `tokenizers` object: the reference implementation (and what is saved)."""
        self.model_max_length = model_max_length
        """Written to tokenizer_config.json; a model dir sets it to the model's context length."""
        self.special_tokens: dict[str, int] = {tok: i for i, tok in enumerate(SPECIAL_TOKENS)}
        ranks: dict[bytes, int] = {}
        for symbols, rank in spec["model"]["vocab"].items():
            if rank < len(SPECIAL_TOKENS):
                continue
            try:
                raw = _symbols_to_bytes(symbols)
            except KeyError:
                raise UserError(f"{where}: vocab entry {symbols!r} is not written in byte-level symbols") from None
            if raw in ranks:
                raise UserError(f"{where}: vocab entries {ranks[raw]} and {rank} are the same bytes {raw!r}")
            ranks[raw] = rank
        if len(ranks) + len(SPECIAL_TOKENS) != hf.get_vocab_size(with_added_tokens=True):
            raise UserError(f"{where}: vocab ids are not contiguous")
        _check_merge_order(spec["model"], where)
        import tiktoken  # here, not at the top: commands that never tokenize start faster

        self.tiktoken = tiktoken.Encoding(
            name="chatforge",
            pat_str=pattern,
            mergeable_ranks=ranks,
            special_tokens=dict(self.special_tokens),
        )
        """The tiktoken encoding (same ids, faster) that does the encoding."""

    # -- ids ------------------------------------------------------------------------------
    @property
    def vocab_size(self) -> int:
        """Number of token ids (ids are 0 .. vocab_size - 1)."""
        return int(self.tiktoken.n_vocab)

    @property
    def pad_id(self) -> int:
        return self.special_tokens[PAD]

    @property
    def bos_id(self) -> int:
        return self.special_tokens[BOS]

    @property
    def eos_id(self) -> int:
        """End of text (documents in pretraining end with it)."""
        return self.special_tokens[EOS]

    @property
    def end_id(self) -> int:
        """End of turn: the token a chat model stops on."""
        return self.special_tokens[END]

    @property
    def turn_overhead(self) -> tuple[int, int]:
        """(tokens a rendered conversation adds once, tokens each message adds): for `fit_turns`."""
        return (1, 2)  # <|bos|>; a role token and <|end|> per message

    @property
    def role_ids(self) -> dict[str, int]:
        """The id of each role's turn-start token, e.g. {"user": 4, ...}."""
        return {role: self.special_tokens[tok] for role, tok in ROLE_TOKENS.items()}

    # -- encoding -------------------------------------------------------------------------
    def encode(self, text: str) -> list[int]:
        """Token ids of `text`, read as plain text: special-token spellings stay plain text."""
        return self.tiktoken.encode_ordinary(text)

    def encode_batch(self, texts: Sequence[str], *, num_threads: int | None = None) -> list[list[int]]:
        """`encode` of many texts, on up to `num_threads` threads (default: one per CPU)."""
        texts = list(texts)
        threads = max(1, min(num_threads or os.cpu_count() or 1, len(texts) // _TEXTS_PER_TASK))
        if threads == 1:
            return [self.tiktoken.encode_ordinary(t) for t in texts]
        # tiktoken releases the GIL while it encodes, so threads run in parallel. Its own
        # `encode_ordinary_batch` makes one task per text, which costs more than encoding
        # a short text does; contiguous chunks keep the per-task cost negligible.
        chunks = [texts[i : i + _TEXTS_PER_TASK] for i in range(0, len(texts), _TEXTS_PER_TASK)]
        with ThreadPoolExecutor(threads) as pool:
            return [ids for chunk in pool.map(self._encode_chunk, chunks) for ids in chunk]

    def _encode_chunk(self, texts: list[str]) -> list[list[int]]:
        return [self.tiktoken.encode_ordinary(t) for t in texts]

    def decode_bytes(self, ids: Iterable[int], *, skip_special: bool = False) -> bytes:
        """The bytes `ids` stand for (special tokens as their text unless `skip_special`)."""
        ids = list(ids)
        if skip_special:  # (an id below 0 is not special: it stays, to be refused below)
            ids = [i for i in ids if not (isinstance(i, int) and 0 <= i < len(SPECIAL_TOKENS))]
        try:
            return bytes(self.tiktoken.decode_bytes(ids))
        except (KeyError, OverflowError, TypeError):
            bad = next((i for i in ids if not isinstance(i, int) or not 0 <= i < self.vocab_size), None)
            raise ValueError(f"token id {bad!r} is not in the vocabulary (0..{self.vocab_size - 1})") from None

    def decode(self, ids: Iterable[int], *, skip_special: bool = False) -> str:
        """The text `ids` stand for; bytes that are not valid UTF-8 become U+FFFD."""
        return self.decode_bytes(ids, skip_special=skip_special).decode("utf-8", errors="replace")

    def stream_decoder(self, *, skip_special: bool = False) -> StreamDecoder:
        """An incremental decoder for generated ids (see `StreamDecoder`)."""
        return StreamDecoder(self, skip_special=skip_special)

    # -- chat format ----------------------------------------------------------------------
    def render(
        self, messages: Sequence[Mapping[str, Any]], *, add_generation_prompt: bool = False
    ) -> tuple[list[int], list[int]]:
        """Token ids of a conversation and its loss mask (1 = train on this token).

        The mask selects each assistant message's content and its `<|end|>`: a model must
        learn to stop, so it trains on its stop token too. Nothing else is trained on:
        not `<|bos|>`, not role tokens, not system or user text.
        """
        _check_messages(messages)
        return self.render_encoded([self.encode(m["content"]) for m in messages], messages, add_generation_prompt)

    def render_batch(
        self, conversations: Sequence[Sequence[Mapping[str, Any]]], *, add_generation_prompt: bool = False
    ) -> list[tuple[list[int], list[int]]]:
        """`render` of many conversations, with all contents encoded in one threaded batch."""
        for c in conversations:
            _check_messages(c)
        encoded = iter(self.encode_batch([m["content"] for c in conversations for m in c]))
        return [self.render_encoded([next(encoded) for _ in c], c, add_generation_prompt) for c in conversations]

    def render_encoded(
        self, contents: Sequence[list[int]], messages: Sequence[Mapping[str, Any]], add_generation_prompt: bool = False
    ) -> tuple[list[int], list[int]]:
        """`render` of messages whose contents are already encoded (`contents[i]` = message i's ids)."""
        ids = [self.bos_id]
        mask = [0]
        for m, content in zip(messages, contents, strict=True):
            train = 1 if m["role"] == "assistant" else 0
            ids.append(self.special_tokens[ROLE_TOKENS[m["role"]]])
            mask.append(0)
            ids.extend(content)
            mask.extend([train] * len(content))
            ids.append(self.end_id)
            mask.append(train)
        if add_generation_prompt:
            ids.append(self.special_tokens[ASSISTANT])
            mask.append(0)
        return ids, mask

    def render_text(self, messages: Sequence[Mapping[str, Any]], add_generation_prompt: bool = False) -> str:
        """The conversation as text, exactly as the Jinja `chat_template` renders it."""
        return render_text(messages, add_generation_prompt)

    # -- files ----------------------------------------------------------------------------
    def tokenizer_config(self) -> dict[str, Any]:
        """The contents of tokenizer_config.json (what `transformers` reads)."""
        return {
            "tokenizer_class": "PreTrainedTokenizerFast",
            "bos_token": BOS,
            "eos_token": EOS,
            "pad_token": PAD,
            "unk_token": None,
            "add_bos_token": False,
            "add_eos_token": False,
            "clean_up_tokenization_spaces": False,
            "model_max_length": self.model_max_length,
            "added_tokens_decoder": {
                str(i): {
                    "content": tok,
                    "lstrip": False,
                    "normalized": False,
                    "rstrip": False,
                    "single_word": False,
                    "special": True,
                }
                for i, tok in enumerate(SPECIAL_TOKENS)
            },
            "additional_special_tokens": [SYSTEM, USER, ASSISTANT, END],
            "chat_template": CHAT_TEMPLATE,
        }

    def save(self, directory: str | Path) -> None:
        """Write tokenizer.json and tokenizer_config.json into `directory` (each atomically)."""
        d = Path(directory)
        d.mkdir(parents=True, exist_ok=True)
        atomic_write_text(d / TOKENIZER_FILE, self.hf.to_str(pretty=True))
        atomic_write_json(d / CONFIG_FILE, self.tokenizer_config())

    @classmethod
    def load(cls, directory: str | Path) -> Tokenizer:
        """Read a tokenizer saved by `save` (a tokenizer dir or a model dir)."""
        d = Path(directory)
        path = d / TOKENIZER_FILE
        if not path.is_file():
            what = "no such directory" if not d.exists() else f"no {TOKENIZER_FILE}"
            raise UserError(f"{d}: not a tokenizer ({what}); train one with `chatforge tokenizer train`")
        import tokenizers

        try:
            hf = tokenizers.Tokenizer.from_str(path.read_text(encoding="utf-8"))
        except Exception as e:  # tokenizers raises plain Exception on bad JSON
            raise UserError(f"{path}: unreadable tokenizer: {e}") from None
        max_length = NO_MAX_LENGTH
        cfg_path = d / CONFIG_FILE
        cfg: Any = {}
        if cfg_path.is_file():
            try:
                cfg = json.loads(cfg_path.read_text(encoding="utf-8"))
            except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
                raise UserError(f"{cfg_path}: unreadable: {e}") from None
            value = cfg.get("model_max_length") if isinstance(cfg, dict) else None
            if isinstance(value, int) and not isinstance(value, bool) and value > 0:
                max_length = value
        if not _has_our_special_tokens(json.loads(hf.to_str())):
            # Another model family's tokenizer (an imported model): its own tokens and template.
            return TemplateTokenizer.from_files(hf, cfg if isinstance(cfg, dict) else {}, d, model_max_length=max_length)
        return cls(hf, model_max_length=max_length, where=str(path))


def render_text(messages: Sequence[Mapping[str, Any]], add_generation_prompt: bool = False) -> str:
    """A conversation in the chat format, as text (the Python twin of `CHAT_TEMPLATE`)."""
    _check_messages(messages)
    parts = [BOS]
    for m in messages:
        parts += [ROLE_TOKENS[m["role"]], m["content"], END]
    if add_generation_prompt:
        parts.append(ASSISTANT)
    return "".join(parts)


def _has_our_special_tokens(spec: dict[str, Any]) -> bool:
    """Whether a tokenizer.json has our special tokens (else it is another family's)."""
    added = {t.get("id"): t.get("content") for t in spec.get("added_tokens") or []}
    return added == dict(enumerate(SPECIAL_TOKENS))


def _check_spec(spec: dict[str, Any], where: str) -> str:
    """Check a tokenizer.json is one of ours (special tokens, BPE, split + byte level); returns its split pattern."""

    def fail(why: str) -> UserError:
        return UserError(f"{where}: not a chatforge tokenizer: {why}")

    added = {t.get("id"): t.get("content") for t in spec.get("added_tokens") or []}
    if added != dict(enumerate(SPECIAL_TOKENS)):
        raise fail(f"special tokens must be {', '.join(SPECIAL_TOKENS)} with ids 0..{len(SPECIAL_TOKENS) - 1}")
    model = spec.get("model") or {}
    if model.get("type") != "BPE" or not isinstance(model.get("vocab"), dict):
        raise fail("model must be BPE")
    pre = spec.get("pre_tokenizer") or {}
    steps = pre.get("pretokenizers") if pre.get("type") == "Sequence" else None
    if not (
        isinstance(steps, list)
        and len(steps) == 2
        and steps[0].get("type") == "Split"
        and isinstance((steps[0].get("pattern") or {}).get("Regex"), str)
        and steps[0].get("behavior") == "Isolated"
        and not steps[0].get("invert")
        and steps[1].get("type") == "ByteLevel"
        and not steps[1].get("use_regex")
        and not steps[1].get("add_prefix_space")
    ):
        raise fail("pre-tokenizer must be a regex Split followed by ByteLevel(use_regex=False)")
    if spec.get("normalizer") is not None:
        raise fail("it has a normalizer (encoding must see the text unchanged)")
    if (spec.get("decoder") or {}).get("type") != "ByteLevel":
        raise fail("decoder must be ByteLevel")
    return str(steps[0]["pattern"]["Regex"])


def _check_merge_order(model: dict[str, Any], where: str) -> None:
    """Check that merge i makes token `first + i`, so ids are merge priorities.

    tiktoken merges the adjacent pair whose joined bytes have the lowest rank (= id);
    `tokenizers` applies the merge listed first. The two agree when every token is made
    by exactly one merge, in id order, which is how `tokenizers`' trainer assigns ids.
    """
    vocab = model["vocab"]
    merges = model.get("merges") or []
    first = len(vocab) - len(merges)
    for i, merge in enumerate(merges):
        a, b = merge if isinstance(merge, list) else merge.split(" ", 1)
        if vocab.get(a + b) != first + i:
            raise UserError(f"{where}: merge {i} ({a!r} + {b!r}) does not make token {first + i}; ids must follow merge order")


class StreamDecoder:
    """Turns generated ids into text as they come, never splitting a UTF-8 character.

        dec = tok.stream_decoder()
        for token_id in generate(...):
            print(dec.push(token_id), end="")
        print(dec.flush())

    A token may end in the middle of a multi-byte character (emoji, CJK): its bytes are
    held until the character is complete. The pieces joined equal `decode(all ids)`.
    """

    def __init__(self, tokenizer: Tokenizer, *, skip_special: bool = False) -> None:
        self._tok = tokenizer
        self._skip_special = skip_special
        self._utf8 = codecs.getincrementaldecoder("utf-8")(errors="replace")

    def push(self, token_id: int) -> str:
        """The text that is complete after `token_id` (possibly "")."""
        return self._utf8.decode(self._tok.decode_bytes([token_id], skip_special=self._skip_special))

    def flush(self) -> str:
        """The rest at the end of the stream (U+FFFD for an unfinished character)."""
        return self._utf8.decode(b"", final=True)


# --------------------------------------------------------------------------------------
# Another model family's tokenizer and chat template (imported models)

_SLOT = re.compile("\ue000(\\d+)\ue001")  # where message i's content goes in a rendered template


TEMPLATE_MAX_ITEMS = 1_000_000  # the longest string or list a chat template may build with * (a rendered chat is far less)


@functools.cache
def _template_sandbox() -> type:
    """The environment class chat templates render in (built on first use: jinja2 is imported lazily)."""
    import jinja2.sandbox

    class Sandbox(jinja2.sandbox.ImmutableSandboxedEnvironment):
        """jinja2's immutable sandbox, with `*` and `**` bounded: a template that comes with a
        model must not be able to ask for 'a' * 10**10 (the sandbox itself only bounds range())."""

        intercepted_binops = frozenset({"*", "**"})

        def call_binop(self, context: Any, operator: str, left: Any, right: Any) -> Any:
            if operator == "*":
                for seq, times in ((left, right), (right, left)):
                    if isinstance(seq, (str, list, tuple)) and isinstance(times, int) and len(seq) * times > TEMPLATE_MAX_ITEMS:
                        raise jinja2.sandbox.SecurityError(f"a string or list of {len(seq)} x {times} items is over the limit of {TEMPLATE_MAX_ITEMS}")
            if operator == "**" and isinstance(right, int) and isinstance(left, int) and abs(right) > 1000 and abs(left) > 1:
                raise jinja2.sandbox.SecurityError(f"the power {left} ** {right} is over the limit")
            return super().call_binop(context, operator, left, right)

    return Sandbox


class TemplateTokenizer(Tokenizer):
    """A Hugging Face tokenizer of another model family, with its own Jinja chat template.

    Imported models (`chatforge import`: SmolLM2's ChatML, Llama's, ...) keep the tokenizer
    they were trained with, so they are rendered here exactly as in their own ecosystem,
    and every command (sft masks, chat, serve, eval) works with them unchanged: this class
    offers the `Tokenizer` interface with other special tokens and another template.

    Rendering runs the template with a placeholder in place of each message's content,
    then encodes the template's own text with its special tokens recognised and the
    contents as plain text (so a user who types `<|im_start|>` cannot forge a turn, as
    with our format). The loss mask covers each assistant content and the template text
    after it up to and including the end-of-turn token (the first special token there).
    One difference from `apply_chat_template`: filters the template applies to a content
    (e.g. `| trim`) do not apply; the content is inserted as it is.
    """

    def __init__(
        self,
        hf: tokenizers.Tokenizer,
        config: dict[str, Any],
        chat_template: str,
        *,
        model_max_length: int = NO_MAX_LENGTH,
        where: str = "tokenizer",
    ) -> None:
        # Not Tokenizer.__init__: no tiktoken twin (ids here need not follow merge order).
        import jinja2.sandbox
        import tokenizers

        self.hf = hf
        self.config = config
        """tokenizer_config.json as read (saved back with the template and context length)."""
        self.model_max_length = model_max_length
        self.chat_template = chat_template
        spec = json.loads(hf.to_str())
        added = spec.get("added_tokens") or []
        self.special_tokens = {t["content"]: int(t["id"]) for t in added if t.get("special")}
        self._special = frozenset(self.special_tokens.values())
        self._plain = tokenizers.Tokenizer.from_str(hf.to_str())
        self._plain.encode_special_tokens = True  # contents: special-token spellings stay text
        self._bytes = _token_bytes(hf, spec)
        self._pieces: dict[str, list[int]] = {}

        def token(key: str) -> str | None:
            value = config.get(key)
            return value.get("content") if isinstance(value, dict) else value

        self._names = {key: token(key) for key in ("bos_token", "eos_token", "pad_token", "unk_token")}
        ids = {key: (hf.token_to_id(v) if isinstance(v, str) else None) for key, v in self._names.items()}
        if ids["eos_token"] is None:
            raise UserError(f"{where}: tokenizer_config.json names no eos_token that is in the vocabulary")
        self._eos: int = ids["eos_token"]
        self._bos: int = ids["bos_token"] if ids["bos_token"] is not None else self._eos
        self._pad: int = ids["pad_token"] if ids["pad_token"] is not None else self._eos

        self._where = where

        def raise_exception(message: str) -> None:
            raise UserError(f"{where}: chat template: {message}")

        env = _template_sandbox()(trim_blocks=True, lstrip_blocks=True)
        env.globals["raise_exception"] = raise_exception
        env.globals["strftime_now"] = lambda fmt: time.strftime(fmt)
        try:
            self._template = env.from_string(chat_template)
        except jinja2.TemplateError as e:
            raise UserError(f"{where}: chat template: {e}") from None
        self._end = self._find_end()
        self._overhead = self._measure_overhead()

    @classmethod
    def from_files(cls, hf: tokenizers.Tokenizer, config: dict[str, Any], directory: Path, *, model_max_length: int) -> TemplateTokenizer:
        """From a dir's tokenizer.json (read) and tokenizer_config.json; the template may be in chat_template.jinja."""
        template = config.get("chat_template")
        jinja_file = directory / "chat_template.jinja"
        if not template and jinja_file.is_file():
            template = jinja_file.read_text(encoding="utf-8")
        if isinstance(template, list):  # [{"name": "default", "template": ...}, ...]
            template = next((t.get("template") for t in template if t.get("name") == "default"), None)
        if not isinstance(template, str) or not template:
            raise UserError(f"{directory}: the tokenizer is not chatforge's and has no chat template (tokenizer_config.json chat_template)")
        return cls(hf, config, template, model_max_length=model_max_length, where=str(directory / TOKENIZER_FILE))

    # -- ids --------------------------------------------------------------------------------
    @property
    def vocab_size(self) -> int:
        return len(self._bytes)

    @property
    def pad_id(self) -> int:
        return self._pad

    @property
    def bos_id(self) -> int:
        return self._bos

    @property
    def eos_id(self) -> int:
        return self._eos

    @property
    def end_id(self) -> int:
        """End of turn: the first special token the template puts after an assistant's content."""
        return self._end

    @property
    def role_ids(self) -> dict[str, int]:
        return {}  # roles are spelled out in text by most templates, not single tokens

    @property
    def turn_overhead(self) -> tuple[int, int]:
        return self._overhead

    # -- encoding ---------------------------------------------------------------------------
    def encode(self, text: str) -> list[int]:
        return list(self._plain.encode(text, add_special_tokens=False).ids)

    def encode_batch(self, texts: Sequence[str], *, num_threads: int | None = None) -> list[list[int]]:
        return [list(e.ids) for e in self._plain.encode_batch(list(texts), add_special_tokens=False)]

    def decode_bytes(self, ids: Iterable[int], *, skip_special: bool = False) -> bytes:
        out = []
        for i in ids:
            if not isinstance(i, int) or not 0 <= i < len(self._bytes):
                raise ValueError(f"token id {i!r} is not in the vocabulary (0..{len(self._bytes) - 1})")
            if not (skip_special and i in self._special):
                out.append(self._bytes[i])
        return b"".join(out)

    # -- chat format ------------------------------------------------------------------------
    def _render(self, messages: Sequence[Mapping[str, Any]], add_generation_prompt: bool) -> str:
        names = {k: v or "" for k, v in self._names.items()}
        try:
            return self._template.render(messages=list(messages), add_generation_prompt=add_generation_prompt, **names)
        except UserError:  # the template's own raise_exception()
            raise
        except Exception as e:  # jinja2's errors (the sandbox's SecurityError too) and the template's own TypeErrors etc.
            raise UserError(f"{self._where}: chat template: {type(e).__name__}: {e}") from None

    def _piece(self, text: str) -> list[int]:
        """The template's own text as ids, special tokens recognised (cached: it repeats)."""
        ids = self._pieces.get(text)
        if ids is None:
            ids = list(self.hf.encode(text, add_special_tokens=False).ids)
            if len(self._pieces) < 4096:
                self._pieces[text] = ids
        return ids

    def render_encoded(
        self, contents: Sequence[list[int]], messages: Sequence[Mapping[str, Any]], add_generation_prompt: bool = False
    ) -> tuple[list[int], list[int]]:
        _check_messages(messages)
        slots = [{**m, "content": f"\ue000{i}\ue001"} for i, m in enumerate(messages)]
        parts = _SLOT.split(self._render(slots, add_generation_prompt))  # text, index, text, index, ..., text
        ids = self._piece(parts[0])
        mask = [0] * len(ids)
        for k in range(1, len(parts), 2):
            i = int(parts[k])
            train = messages[i]["role"] == "assistant"
            ids = ids + list(contents[i])
            mask += [int(train)] * len(contents[i])
            after = self._piece(parts[k + 1])
            ids = ids + after
            end = after.index(self._end) + 1 if train and self._end in after else 0
            mask += [1] * end + [0] * (len(after) - end)
        return ids, mask

    def render_text(self, messages: Sequence[Mapping[str, Any]], add_generation_prompt: bool = False) -> str:
        _check_messages(messages)
        return self._render(messages, add_generation_prompt)

    def _find_end(self) -> int:
        probe = [{"role": "user", "content": "\ue000" + "0\ue001"}, {"role": "assistant", "content": "\ue000" + "1\ue001"}]
        after = _SLOT.split(self._render(probe, False))[-1]
        return next((t for t in self._piece(after) if t in self._special), self._eos)

    def _measure_overhead(self) -> tuple[int, int]:
        """(fixed, per message) token counts of the template around contents, measured on
        empty messages; over-estimates (e.g. counts a default system prompt) are safe."""

        def size(roles: list[str]) -> int:
            msgs = [{"role": r, "content": ""} for r in roles]
            return len(self.render_encoded([[] for _ in roles], msgs, add_generation_prompt=True)[0])

        u, ua, uau = size(["user"]), size(["user", "assistant"]), size(["user", "assistant", "user"])
        try:
            su = size(["system", "user"])
        except UserError:  # templates without a system role
            su = u
        per = max(ua - u, uau - ua, su - u, 1)
        return max(1, u - min(ua - u, uau - ua)), per

    # -- files ------------------------------------------------------------------------------
    def tokenizer_config(self) -> dict[str, Any]:
        drop = {"chat_template", "model_max_length", "backend", "is_local", "local_files_only", "tokenizer_file", "name_or_path"}
        cfg = {k: v for k, v in self.config.items() if k not in drop}
        if cfg.get("tokenizer_class") in (None, "TokenizersBackend"):
            cfg["tokenizer_class"] = "PreTrainedTokenizerFast"  # loads in transformers 4.x and 5.x
        return {**cfg, "model_max_length": self.model_max_length, "chat_template": self.chat_template}


def _token_bytes(hf: tokenizers.Tokenizer, spec: dict[str, Any]) -> list[bytes]:
    """The bytes each id stands for: byte-level symbols (GPT-2 style), or SentencePiece
    pieces (`▁` = space, `<0xAB>` = a byte fallback); added tokens as their text."""
    decoder = spec.get("decoder") or {}
    steps = decoder.get("decoders") or [decoder]
    byte_level = any(d.get("type") == "ByteLevel" for d in steps)
    added = {int(t["id"]): str(t["content"]) for t in spec.get("added_tokens") or []}
    out = []
    for i in range(hf.get_vocab_size(with_added_tokens=True)):
        token = hf.id_to_token(i) or ""
        if i in added:
            out.append(added[i].encode("utf-8"))
        elif byte_level:
            try:
                out.append(_symbols_to_bytes(token))
            except KeyError:
                out.append(token.encode("utf-8"))
        elif len(token) == 6 and token.startswith("<0x") and token.endswith(">"):
            out.append(bytes([int(token[3:5], 16)]))
        else:
            out.append(token.replace("\u2581", " ").encode("utf-8"))
    return out


# --------------------------------------------------------------------------------------
# Training


def train_tokenizer(
    texts: Iterable[str] | Iterable[list[str]],
    vocab_size: int,
    *,
    show_progress: bool = False,
    min_frequency: int = 2,
) -> Tokenizer:
    """Train byte-level BPE on `texts` (strings, or lists of strings as batches).

    Texts are handed to `tokenizers` in lists of a few hundred: one string at a time makes
    the Python-to-Rust handoff the bottleneck, and very long lists leave its worker
    threads waiting for work. `show_progress` shows
    `tokenizers`' own progress bars (`chatforge tokenizer train` shows its own instead).
    The vocabulary may come out smaller than `vocab_size` if the text has fewer pairs.
    """
    if vocab_size < len(SPECIAL_TOKENS) + 256:
        raise ValueError(f"vocab_size must be at least {len(SPECIAL_TOKENS) + 256} (special tokens + 256 bytes), got {vocab_size}")
    import tokenizers
    from tokenizers import Regex, decoders, models, pre_tokenizers, trainers

    hf = tokenizers.Tokenizer(models.BPE())
    hf.pre_tokenizer = pre_tokenizers.Sequence(
        [
            pre_tokenizers.Split(Regex(SPLIT_PATTERN), behavior="isolated", invert=False),
            # The split above already did what ByteLevel's own (GPT-2) regex would do.
            pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False),
        ]
    )
    hf.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        min_frequency=min_frequency,
        special_tokens=list(SPECIAL_TOKENS),
        # All 256 bytes, seen or not, so any text can be encoded.
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=show_progress,
    )
    hf.train_from_iterator(_batches(texts), trainer=trainer)
    return Tokenizer(hf)


def _batches(texts: Iterable[str] | Iterable[list[str]], size: int = 256) -> Iterator[list[str]]:
    batch: list[str] = []
    for item in texts:
        if isinstance(item, str):
            batch.append(item)
            if len(batch) >= size:
                yield batch
                batch = []
        else:
            if batch:
                yield batch
                batch = []
            for i in range(0, len(item), size):
                yield item[i : i + size]
    if batch:
        yield batch


# --------------------------------------------------------------------------------------
# `chatforge tokenizer train`


@dataclass
class TokenizerTrainConfig:
    """`chatforge tokenizer train`: train a byte-level BPE tokenizer with the chat format."""

    data: list[str] = opt(
        default_factory=list,
        help="dataset directories to read (any kind: every text of every row is used)",
        required=True,
        metavar="DIR",
    )
    out: str = opt(
        "", "output directory for tokenizer.json and tokenizer_config.json", required=True, metavar="DIR"
    )
    vocab_size: int = opt(
        8192,
        "vocabulary size, including the 7 special tokens and 256 bytes (a multiple of 64 keeps the model's matmuls fast)",
        ge=512,
        le=1_048_576,
    )
    max_mb: float | None = opt(None, "read at most this many MB of text (UTF-8), taking the datasets in order", gt=0)
    min_frequency: int = opt(2, "learn a merge only if its pair occurs at least this often", ge=1)
    overwrite: bool = opt(False, "replace OUT if it is a tokenizer directory already (atomically)")

    def validate(self) -> None:
        if len(set(self.data)) != len(self.data):
            twice = sorted({d for d in self.data if self.data.count(d) > 1})
            raise ConfigError(f"data: {', '.join(twice)} given more than once")


def is_tokenizer_dir(path: Path) -> bool:
    """Whether `path` holds only a tokenizer we wrote (so `--overwrite` may replace it)."""
    p = Path(path)
    return (p / TOKENIZER_FILE).is_file() and all(child.name in _OUR_FILES for child in p.iterdir())


@dataclass
class _Source:
    """What was read from one input dataset (recorded in tokenizer_train.json)."""

    path: str
    kind: str
    content_hash: str
    rows: int = 0
    texts: int = 0
    bytes: int = 0


def _text_columns(batch: pa.RecordBatch, kind: str) -> list[pa.Array]:
    """The text columns of a Parquet batch of `kind` rows: the same texts as `row_texts`,
    read column by column (no per-row Python objects, which would cost more than training)."""
    if kind == "text":
        return [batch.column("text")]
    if kind == "conversations":
        return [pc.struct_field(pc.list_flatten(batch.column("messages")), "content")]
    return [pc.struct_field(pc.list_flatten(batch.column("prompt")), "content"), batch.column("chosen"), batch.column("rejected")]


_COLUMNS = {"text": ["text"], "conversations": ["messages"], "preferences": ["prompt", "chosen", "rejected"]}


class _TextReader:
    """Reads the texts of datasets in order, up to a byte budget, counting what it took."""

    def __init__(self, datasets: list[Dataset], max_bytes: int | None, sample_bytes: int = 2_000_000) -> None:
        self.datasets = datasets
        self.sources = [_Source(str(ds.path), ds.kind, ds.content_hash) for ds in datasets]
        self.left = max_bytes if max_bytes is not None else 1 << 62
        self.sample: list[str] = []  # every 16th text, up to `sample_bytes`: to measure compression
        self._sample_left = sample_bytes

    def batches(self, advance: Any = lambda n: None, batch_rows: int = 2048) -> Iterator[list[str]]:
        """Non-empty texts, a list per Parquet batch and column; `advance(rows)` after each batch."""
        for ds, src in zip(self.datasets, self.sources, strict=True):
            for batch in ds.arrow_batches(batch_rows, columns=_COLUMNS[ds.kind]):
                for col in _text_columns(batch, ds.kind):
                    texts = self._take(col, src)
                    if texts:
                        yield texts
                    if self.left <= 0:
                        return
                src.rows += batch.num_rows
                advance(batch.num_rows)

    def _take(self, col: pa.Array, src: _Source) -> list[str]:
        col = col.filter(pc.greater(pc.binary_length(col), 0))  # drops empty (and null) texts
        sizes = np.asarray(pc.binary_length(col).to_numpy(zero_copy_only=False), dtype=np.int64)
        if int(sizes.sum()) > self.left:
            keep = int(np.searchsorted(np.cumsum(sizes), self.left, side="right"))
            if keep == 0 and self.input_texts == 0:
                keep = 1  # a budget smaller than the first text still trains on that text
            col, sizes = col.slice(0, keep), sizes[:keep]
            self.left = 0
        else:
            self.left -= int(sizes.sum())
        texts: list[str] = col.to_pylist()
        src.texts += len(texts)
        src.bytes += int(sizes.sum())
        if self._sample_left > 0:
            picked = texts[::16]
            self.sample += picked
            self._sample_left -= int(sizes[::16].sum())
        return texts

    @property
    def input_bytes(self) -> int:
        return sum(s.bytes for s in self.sources)

    @property
    def input_texts(self) -> int:
        return sum(s.texts for s in self.sources)


def main(cfg: TokenizerTrainConfig, ui: UI = QUIET) -> Tokenizer:
    """Run `tokenizer train`: read the datasets, train, save into `cfg.out`; returns the tokenizer."""
    datasets = [open_dataset(d) for d in cfg.data]
    out = Path(cfg.out)
    # The checks `staged_dir` makes again at the end, made early so a mistake costs no training.
    if out.exists() and not cfg.overwrite:
        raise UserError(f"{out}: already exists; pass --overwrite to replace it, or choose another --out")
    if out.is_dir() and any(out.iterdir()) and not is_tokenizer_dir(out):
        raise UserError(f"{out}: exists and is not a tokenizer directory; refusing to replace it (choose another --out)")
    if cfg.vocab_size % 64:
        ui.warn(f"--vocab-size {cfg.vocab_size} is not a multiple of 64; the model's embedding matmuls are faster when it is")
    reader = _TextReader(datasets, None if cfg.max_mb is None else int(cfg.max_mb * 1_000_000))

    t0 = time.perf_counter()
    with ui.progress("tokenizer", total=sum(ds.num_rows for ds in datasets), unit="rows") as advance:
        tok = train_tokenizer(reader.batches(advance), cfg.vocab_size, min_frequency=cfg.min_frequency)
    seconds = time.perf_counter() - t0
    if reader.input_texts == 0:
        raise UserError(f"{', '.join(cfg.data)}: no text to train on (every text is empty)")
    if tok.vocab_size < cfg.vocab_size:
        ui.warn(
            f"the text has too few repeated pairs for {cfg.vocab_size:,} tokens; the vocabulary has {tok.vocab_size:,} "
            "(give more text or a smaller --vocab-size)"
        )
    sample_bytes = sum(len(t.encode("utf-8")) for t in reader.sample)
    sample_tokens = sum(len(ids) for ids in tok.encode_batch(reader.sample))
    bytes_per_token = sample_bytes / max(1, sample_tokens)
    mb = reader.input_bytes / 1e6
    record = {
        "command": "tokenizer train",
        "config": to_dict(cfg),
        "vocab_size": tok.vocab_size,
        "special_tokens": tok.special_tokens,
        "split_pattern": SPLIT_PATTERN,
        "inputs": [vars(s) for s in reader.sources],
        "input_bytes": reader.input_bytes,
        "input_texts": reader.input_texts,
        "seconds": round(seconds, 3),
        "bytes_per_token": round(bytes_per_token, 4),
        "chatforge_version": __version__,
        "created_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }
    with staged_dir(out, overwrite=cfg.overwrite, replaceable=is_tokenizer_dir, what="a tokenizer directory") as tmp:
        tok.save(tmp)
        atomic_write_json(tmp / TRAIN_FILE, record)
    ui.note(
        f"tokenizer: {tok.vocab_size:,} tokens from {mb:,.1f} MB of text in {seconds:.1f}s "
        f"({mb / max(seconds, 1e-9):.1f} MB/s); {bytes_per_token:.2f} bytes/token on a sample of it -> {out}"
    )
    return tok
