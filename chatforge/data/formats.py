"""Ingest and export: chat logs in common formats <-> canonical dataset rows.

    chatforge data ingest logs.jsonl sharegpt.json --out data/raw
    chatforge data ingest export.csv --csv.conversation-col ticket --out data/raw
    chatforge data ingest docs/ --out data/kb            # folder of .txt/.md files
    chatforge data export data/raw --format jsonl --out raw.jsonl

Formats (detected per file from the extension and the first record's fields):

    openai             {"messages": [{"role", "content"}]}; content a string or text parts
    sharegpt           {"conversations": [{"from": "human|gpt|system", "value"}]}
    alpaca             {"instruction", "input", "output"}
    prompt-completion  {"prompt", "completion"}
    preference         {"prompt", "chosen", "rejected"}        -> a preferences dataset
    csv                columns named by --csv.* (one exchange or one message per row)
    text               .txt/.md files or folders of them, or JSON records {"text"}

JSON files may be JSONL, one JSON array, or concatenated JSON values; all are read
as streams, so memory does not grow with the file. Every rejected row is reported with
its file and line: by default the first one stops the command and nothing is written;
with --skip-invalid the valid rows are written and each rejected one is listed with
its reason in OUT/rejected.jsonl (rows in = rows written + rows rejected).
"""

from __future__ import annotations

import codecs
import csv
import functools
import io
import itertools
import json
import math
import os
import re
import sqlite3
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from chatforge.atomic import atomic_open
from chatforge.config import opt, to_dict
from chatforge.data.dataset import DatasetWriter, Kind, canonical_json, open_dataset
from chatforge.errors import ConfigError, DataError, UserError
from chatforge.ui import QUIET, UI

FormatName = Literal["openai", "sharegpt", "alpaca", "prompt-completion", "preference", "csv", "text"]
FORMATS: tuple[FormatName, ...] = ("openai", "sharegpt", "alpaca", "prompt-completion", "preference", "csv", "text")
FORMAT_KIND: dict[str, Kind] = {
    "openai": "conversations",
    "sharegpt": "conversations",
    "alpaca": "conversations",
    "prompt-completion": "conversations",
    "csv": "conversations",
    "preference": "preferences",
    "text": "text",
}
TEXT_SUFFIXES = (".txt", ".md", ".markdown", ".rst", ".text")
JSON_SUFFIXES = (".json", ".jsonl", ".ndjson")
CSV_SUFFIXES = (".csv", ".tsv")
MAX_RECORD_CHARS = 64 * 1024 * 1024  # a single JSON record larger than this is an error
MAX_META_DEPTH = 32  # extra fields nested deeper than this are an error (later stages recurse over meta)


@dataclass
class CsvOptions:
    """How to read CSV files."""

    user_col: str = opt("user", "column with the user's message (one exchange per row)")
    assistant_col: str = opt("assistant", "column with the assistant's reply (one exchange per row)")
    system_col: str = opt("", "optional column with a system prompt (first non-empty value of a conversation)")
    conversation_col: str = opt(
        "", "optional column with a conversation id: rows with the same id form one conversation, in file order"
    )
    role_col: str = opt(
        "", "one message per row instead: column with its role (system/user/assistant); needs --csv.conversation-col"
    )
    content_col: str = opt("content", "with --csv.role-col: column with the message text")
    delimiter: str = opt("", "field delimiter (default: ',' for .csv, tab for .tsv)")


@dataclass
class TextOptions:
    """How to read plain-text and Markdown files."""

    unit: Literal["file", "paragraph"] = opt("file", "one row per file, or one row per paragraph (blank-line separated)")
    max_chars: int = opt(200_000, "split a file's text into rows of about this size, at paragraph breaks", ge=100)


@dataclass
class IngestConfig:
    """`chatforge data ingest`: convert chat logs and text to a dataset."""

    files: list[str] = opt(
        default_factory=list,
        help="input files or folders (folders: their .txt/.md files, recursively)",
        positional=True,
        required=True,
        metavar="FILE",
    )
    out: str = opt("", "output dataset directory", required=True)
    format: Literal["auto", "openai", "sharegpt", "alpaca", "prompt-completion", "preference", "csv", "text"] = opt(
        "auto", "input format; auto detects it per file from the extension and the first record's fields"
    )
    skip_invalid: bool = opt(
        False,
        "keep going past bad rows: write the valid ones, list each rejected one with its reason in OUT/rejected.jsonl "
        "(a syntax error inside a JSON array or pretty-printed JSON file still stops: the reader cannot resync there)",
    )
    overwrite: bool = opt(False, "replace OUT if it already exists (atomically)")
    shard_rows: int = opt(100_000, "rows per Parquet shard", ge=1)
    csv: CsvOptions = opt(default_factory=CsvOptions)
    text: TextOptions = opt(default_factory=TextOptions)

    def validate(self) -> None:
        d = self.csv.delimiter
        if d and d not in ("\\t", "tab") and len(d) != 1:
            raise ConfigError(f"csv.delimiter: must be one character (or 'tab'), got {d!r}")
        if len(set(self.files)) != len(self.files):
            twice = sorted({f for f in self.files if self.files.count(f) > 1})
            raise ConfigError(f"files: {', '.join(twice)} given more than once")


# --------------------------------------------------------------------------------------
# Records: one raw item read from a file, before conversion


@dataclass
class Record:
    """One input record: where it was, its raw text, and its parsed value (or why not)."""

    file: str
    line: int
    raw: str
    value: Any = None
    error: str | None = None
    id_base: str = ""  # default ids are f"{id_base}:{line}" (the file's name, or its path if names clash)
    nth_on_line: int = 0  # records sharing a line (a one-line JSON array) get ids "file:1", "file:1.2", ...


class RowError(Exception):
    """A record that cannot become a row; the message is the reason."""


Progress = Callable[[float], None]


def _decode_line(data: bytes, file: str, line: int) -> tuple[str | None, str | None]:
    try:
        return data.decode("utf-8"), None
    except UnicodeDecodeError as e:
        return None, f"not valid UTF-8 (byte 0x{data[e.start]:02x} at column {e.start + 1})"


def _bad_utf8_line(path: Path) -> tuple[int, str]:
    """The line of a file's first invalid UTF-8 byte, and a description of it.

    Readers that decode large blocks at once (JSON streams, CSV) learn only that a block
    is bad; this finds the line to report.
    """
    utf8 = codecs.getincrementaldecoder("utf-8")()
    lineno = 0
    with open(path, "rb") as f:
        for lineno, raw in enumerate(f, 1):
            try:
                utf8.decode(raw)
            except UnicodeDecodeError as e:
                return lineno, f"not valid UTF-8 (byte 0x{raw[e.start]:02x} at column {e.start + 1})"
    return max(lineno, 1), "not valid UTF-8 (file ends inside a character)"


def _first_json_char(path: Path) -> str:
    with open(path, "rb") as f:
        head = f.read(1 << 16)
    head = head.removeprefix(codecs.BOM_UTF8)
    stripped = head.lstrip()
    return chr(stripped[0]) if stripped else ""


def iter_json_records(path: Path, display: str, progress: Progress = lambda n: None) -> Iterator[Record]:
    """Records of a JSONL file, a JSON array, or concatenated JSON values, streamed."""
    first = _first_json_char(path)
    if first == "":
        return
    if first != "[" and _looks_like_jsonl(path):
        yield from _iter_jsonl(path, display, progress)
    else:
        yield from _iter_json_stream(path, display, progress)


def _looks_like_jsonl(path: Path) -> bool:
    """True if the first non-blank line is a whole JSON value (for .jsonl: the first or second).

    A .jsonl file whose first line is bad is still read line by line, so that line alone
    is rejected; the second line of a pretty-printed object is a `"key": ...` line, not a
    whole value.
    """
    tries = 2 if path.suffix.lower() in (".jsonl", ".ndjson") else 1
    with open(path, "rb") as f:
        for raw in f:
            raw = raw.removeprefix(codecs.BOM_UTF8)
            if raw.strip():
                try:
                    json.loads(raw)
                    return True
                except (ValueError, RecursionError):  # bad JSON or UTF-8, a 5,000-digit number, deep nesting
                    tries -= 1
                    if tries == 0:
                        return False
    return False


def _iter_jsonl(path: Path, display: str, progress: Progress) -> Iterator[Record]:
    # Binary lines split on b"\n" only: str.splitlines() would also split on U+2028 and
    # friends, which may legally appear inside JSON strings.
    with open(path, "rb") as f:
        for lineno, raw in enumerate(f, 1):
            progress(len(raw))
            if lineno == 1:
                raw = raw.removeprefix(codecs.BOM_UTF8)
            text, err = _decode_line(raw, display, lineno)
            if text is None:
                yield Record(display, lineno, raw.decode("utf-8", "replace").rstrip("\r\n"), error=err)
                continue
            if not text.strip():
                continue
            # Without its line end, so an error at the end of the line is reported in this
            # line's columns rather than as "column 1" of the next line.
            text = text.rstrip("\r\n")
            try:
                value = _loads(text)
            except json.JSONDecodeError as e:
                yield Record(display, lineno, text, error=f"invalid JSON: {e.msg} (column {e.colno})")
                continue
            except ValueError as e:
                yield Record(display, lineno, text, error=f"invalid JSON: {e}")
                continue
            except RecursionError:
                yield Record(display, lineno, text, error=_TOO_DEEP)
                continue
            yield Record(display, lineno, text, value)


_WS = re.compile(r"[ \t\r\n]*")


def _no_constants(name: str) -> Any:
    """NaN and Infinity are not JSON (Python's json accepts them; other readers do not)."""
    raise ValueError(f"{name} is not valid JSON")


def _finite_float(text: str) -> float:
    """A JSON number; one beyond a float's range (1e400) would become Infinity, which is not JSON."""
    x = float(text)
    if math.isinf(x):
        raise ValueError(f"number {text[:40]} is too large")
    return x


_loads = json.JSONDecoder(parse_constant=_no_constants, parse_float=_finite_float).decode
_TOO_DEEP = "invalid JSON: nested too deeply"


def _iter_json_stream(path: Path, display: str, progress: Progress) -> Iterator[Record]:
    """A JSON array or a sequence of JSON values (e.g. pretty-printed), read incrementally."""
    decoder = json.JSONDecoder(parse_constant=_no_constants, parse_float=_finite_float)
    utf8 = codecs.getincrementaldecoder("utf-8")()
    buf, pos, line, eof = "", 0, 1, False
    in_array: bool | None = None
    expect_value = True
    last_line, nth = 0, 0
    closed = False

    with open(path, "rb") as f:

        def more() -> None:
            nonlocal buf, pos, eof
            chunk = f.read(1 << 20)
            progress(len(chunk))
            try:
                text = utf8.decode(chunk, final=not chunk)
            except UnicodeDecodeError:
                bad_line, reason = _bad_utf8_line(path)
                raise DataError(reason, file=display, line=bad_line) from None
            if not chunk:
                eof = True
            if not buf and not pos and text.startswith("\ufeff"):
                text = text[1:]
            buf = buf[pos:] + text
            pos = 0

        more()
        while True:
            while True:  # skip whitespace, refilling the buffer as needed
                m = _WS.match(buf, pos)
                assert m is not None
                line += buf.count("\n", pos, m.end())
                pos = m.end()
                if pos < len(buf) or eof:
                    break
                more()
            if pos >= len(buf):
                break
            ch = buf[pos]
            if closed:
                raise DataError("unexpected data after the end of the JSON array", file=display, line=line)
            if in_array is None:
                in_array = ch == "["
                if in_array:
                    pos += 1
                    continue
            if in_array:
                if ch == "]":
                    closed, pos = True, pos + 1
                    continue
                if ch == ",":
                    if expect_value:
                        raise DataError("invalid JSON: unexpected ','", file=display, line=line)
                    expect_value, pos = True, pos + 1
                    continue
                if not expect_value:
                    raise DataError("invalid JSON: expected ',' or ']' between array items", file=display, line=line)
            try:
                value, end = decoder.raw_decode(buf, pos)
            except json.JSONDecodeError as e:
                # A record cut by the buffer end fails at the end of the buffer (or, for a
                # string, where the string starts): read on and retry. An error anywhere
                # else is a real syntax error.
                cut = e.pos >= len(buf) - 8 or e.msg.startswith("Unterminated string")
                if cut and not eof and len(buf) - pos < MAX_RECORD_CHARS:
                    more()
                    continue
                if cut and not eof:
                    raise DataError(f"a JSON record is larger than {MAX_RECORD_CHARS} characters", file=display, line=line) from None
                at = line + buf.count("\n", pos, e.pos)
                raise DataError(f"invalid JSON: {e.msg}", file=display, line=at) from None
            except ValueError as e:  # NaN / Infinity, 1e400, a 5,000-digit number
                raise DataError(f"invalid JSON: {e}", file=display, line=line) from None
            except RecursionError:
                raise DataError(_TOO_DEEP, file=display, line=line) from None
            if end == len(buf) and not eof:
                more()  # a number cut by the buffer end ("12" of "1234") parses: read on and retry
                continue
            nth = nth + 1 if line == last_line else 0
            last_line = line
            yield Record(display, line, buf[pos:end], value, nth_on_line=nth)
            line += buf.count("\n", pos, end)
            pos = end
            expect_value = False
            if pos > (1 << 20):
                buf, pos = buf[pos:], 0
    if in_array and not closed:
        raise DataError("unexpected end of file: the JSON array is not closed", file=display, line=line)


def _csv_delimiter(path: Path, opts: CsvOptions) -> str:
    if opts.delimiter:
        return "\t" if opts.delimiter in ("\\t", "tab") else opts.delimiter
    return "\t" if path.suffix.lower() == ".tsv" else ","


def iter_csv_records(path: Path, display: str, opts: CsvOptions, progress: Progress = lambda n: None) -> Iterator[Record]:
    """Conversation records from a CSV file; each record's value is {"messages": [...]}.

    Rows of one conversation (same --csv.conversation-col) may be interleaved with
    other conversations, as in real chat logs sorted by time; they are grouped through
    a temporary SQLite file, so memory stays flat however large the file.
    """
    if opts.role_col and not opts.conversation_col:
        raise UserError("--csv.role-col (one message per row) needs --csv.conversation-col to group messages")
    delimiter = _csv_delimiter(path, opts)
    # The csv module's default limit (128 KiB per field) would reject long messages.
    csv.field_size_limit(max(csv.field_size_limit(), MAX_RECORD_CHARS))
    with open(path, "rb") as raw_file, io.TextIOWrapper(raw_file, encoding="utf-8-sig", newline="") as f:
        # strict: an unclosed quote is an error, not a field that swallows the rest of the file
        reader = csv.reader(f, delimiter=delimiter, strict=True)
        try:
            header = next(reader)
        except StopIteration:
            raise DataError("file is empty (expected a header row naming the columns)", file=display, line=1) from None
        except UnicodeDecodeError:
            bad_line, reason = _bad_utf8_line(path)
            raise DataError(reason, file=display, line=bad_line) from None
        except csv.Error as e:
            raise DataError(f"invalid CSV: {e}", file=display, line=1) from None
        dupes = sorted({name for name in header if header.count(name) > 1})
        if dupes:
            raise DataError(f"duplicate column name(s) in the header: {', '.join(dupes)}", file=display, line=1)
        cols = {name: i for i, name in enumerate(header)}
        wanted = (
            [("--csv.role-col", opts.role_col), ("--csv.content-col", opts.content_col)]
            if opts.role_col
            else [("--csv.user-col", opts.user_col), ("--csv.assistant-col", opts.assistant_col)]
        )
        wanted += [(flag, c) for flag, c in (("--csv.conversation-col", opts.conversation_col), ("--csv.system-col", opts.system_col)) if c]
        for flag, col in wanted:
            if col not in cols:
                raise DataError(f"no column {col!r} (set {flag}); the columns are: {', '.join(header)}", file=display, line=1)

        def rows() -> Iterator[tuple[int, list[str] | None, str, str | None]]:
            start = reader.line_num + 1
            last_pos = 0
            while True:
                try:
                    row = next(reader)
                except StopIteration:
                    return
                except UnicodeDecodeError:
                    bad_line, reason = _bad_utf8_line(path)
                    raise DataError(reason, file=display, line=bad_line) from None
                except csv.Error as e:
                    raise DataError(f"invalid CSV: {e}", file=display, line=start) from None
                pos = raw_file.tell()
                progress(pos - last_pos)
                last_pos = pos
                raw = canonical_json(dict(zip(header, row, strict=False)))
                if not row or (len(row) == 1 and row[0] == ""):
                    start = reader.line_num + 1
                    continue
                if len(row) != len(header):
                    yield start, None, raw, f"has {len(row)} fields but the header has {len(header)}"
                else:
                    yield start, row, raw, None
                start = reader.line_num + 1

        def messages_of(row: list[str]) -> list[dict[str, str]]:
            if opts.role_col:
                return [{"role": row[cols[opts.role_col]], "content": row[cols[opts.content_col]]}]
            return [
                {"role": "user", "content": row[cols[opts.user_col]]},
                {"role": "assistant", "content": row[cols[opts.assistant_col]]},
            ]

        if not opts.conversation_col:
            for line, row, raw, err in rows():
                if row is None:
                    yield Record(display, line, raw, error=err)
                    continue
                msgs = messages_of(row)
                if opts.system_col and row[cols[opts.system_col]].strip():
                    msgs.insert(0, {"role": "system", "content": row[cols[opts.system_col]]})
                yield Record(display, line, raw, {"messages": msgs, "meta": {}})
            return

        with tempfile.TemporaryDirectory(prefix="chatforge-csv-") as tmp:
            db = sqlite3.connect(os.path.join(tmp, "group.db"))
            try:
                db.execute("CREATE TABLE r (seq INTEGER PRIMARY KEY, conv TEXT, line INT, raw TEXT, row TEXT, err TEXT)")
                db.execute("CREATE TABLE first (conv TEXT PRIMARY KEY, seq INT)")
                for seq, (line, row, raw, err) in enumerate(rows()):
                    conv = row[cols[opts.conversation_col]] if row is not None else f"\x00bad-{seq}"
                    db.execute("INSERT INTO r VALUES (?,?,?,?,?,?)", (seq, conv, line, raw, json.dumps(row), err))
                    db.execute("INSERT OR IGNORE INTO first VALUES (?,?)", (conv, seq))
                cur = db.execute("SELECT r.conv, r.line, r.raw, r.row, r.err FROM r JOIN first USING (conv) ORDER BY first.seq, r.seq")
                for conv, group in itertools.groupby(cur, key=lambda t: t[0]):
                    items = list(group)
                    first_line = items[0][1]
                    raw = "\n".join(t[2] for t in items)
                    bad = [t for t in items if t[4]]
                    if bad:
                        yield Record(display, bad[0][1], raw, error=bad[0][4])
                        continue
                    turns: list[dict[str, str]] = []
                    system = ""
                    for t in items:
                        row = json.loads(t[3])
                        if opts.system_col and not system:
                            system = row[cols[opts.system_col]].strip() and row[cols[opts.system_col]]
                        turns.extend(messages_of(row))
                    if system:
                        turns.insert(0, {"role": "system", "content": system})
                    yield Record(display, first_line, raw, {"id": conv, "messages": turns, "meta": {}})
            finally:
                db.close()


def list_text_files(root: Path) -> list[Path]:
    """Text files under a folder (recursively, sorted, hidden ones skipped), or the file itself."""
    if root.is_file():
        return [root]
    out = []
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
        for name in sorted(filenames):
            if not name.startswith(".") and name.lower().endswith(TEXT_SUFFIXES):
                p = Path(dirpath) / name
                if not p.exists():
                    raise UserError(f"{p}: broken symbolic link")
                out.append(p)
    return out


def iter_text_records(
    path: Path, display: str, opts: TextOptions, *, rel: str, progress: Progress = lambda n: None
) -> Iterator[Record]:
    """Text rows from one text file: whole file (split at paragraph breaks when long) or per paragraph.

    Joining a file's rows gives back the file's exact text.
    """
    utf8 = codecs.getincrementaldecoder("utf-8")()
    parts: list[str] = []
    size = 0
    start_line = 1
    chunk_no = 0
    has_text = False  # the pending chunk has a non-blank line
    cut = False  # the pending chunk is long enough: end it before the next non-blank line

    def emit(end_line: int) -> Iterator[Record]:
        nonlocal parts, size, start_line, chunk_no
        text = "".join(parts)
        if opts.unit == "paragraph":
            text = text.strip("\r\n")
        if text.strip():
            rid = rel if chunk_no == 0 and opts.unit == "file" else f"{rel}:{start_line}"
            yield Record(display, start_line, text, {"id": rid, "text": text, "meta": {"file": rel, "line": start_line}})
            chunk_no += 1
        parts, size, start_line = [], 0, end_line + 1

    with open(path, "rb") as f:
        lineno = 0
        for lineno, raw in enumerate(f, 1):
            progress(len(raw))
            try:
                text = utf8.decode(raw)
            except UnicodeDecodeError as e:
                yield Record(display, lineno, "", error=f"not valid UTF-8 (byte 0x{raw[e.start]:02x} at column {e.start + 1})")
                return
            if lineno == 1:
                text = text.removeprefix("\ufeff")
            blank = not text.strip()
            if opts.unit == "paragraph":
                if blank:
                    yield from emit(lineno)
                    continue
                parts.append(text)
                continue
            # Long files become several rows, cut after a blank line (a paragraph break),
            # or at any line break if no paragraph break comes in time. The cut is made
            # when the next non-blank line starts, so that blank lines stay with the text
            # before them: a chunk of only whitespace would be no row, and lost.
            if cut and not blank:
                yield from emit(lineno - 1)
                cut = has_text = False
            parts.append(text)
            size += len(text)
            has_text = has_text or not blank
            if has_text and ((size >= opts.max_chars and blank) or size >= 2 * opts.max_chars):
                cut = True
        try:
            utf8.decode(b"", final=True)
        except UnicodeDecodeError:
            yield Record(display, lineno, "", error="not valid UTF-8 (file ends inside a character)")
            return
        yield from emit(lineno)
    if chunk_no == 0:
        yield Record(display, 1, "", error="file has no text")


# --------------------------------------------------------------------------------------
# Converting records to canonical rows

_OPENAI_ROLES = {"system": "system", "developer": "system", "user": "user", "assistant": "assistant"}
_SHAREGPT_ROLES = {
    "system": "system",
    "human": "user",
    "user": "user",
    "gpt": "assistant",
    "assistant": "assistant",
    "chatgpt": "assistant",
    "model": "assistant",
}


def validate_messages(messages: list[dict[str, str]], *, final: Literal["assistant", "user"] = "assistant") -> None:
    """Check conversation structure; raise RowError naming the message (1-based).

    Structure: an optional system message first, then user and assistant turns
    alternating, starting with user and ending with `final`; no empty messages.
    """
    if not messages:
        raise RowError("empty conversation")
    turns = messages[1:] if messages[0]["role"] == "system" else messages
    offset = len(messages) - len(turns)
    if not turns:
        raise RowError("conversation has only a system message and no user/assistant turns")
    for i, m in enumerate(messages, 1):
        if not m["content"].strip():
            raise RowError(f"message {i} ({m['role']}) is empty")
    for i, m in enumerate(turns):
        n = i + offset + 1
        want = "user" if i % 2 == 0 else "assistant"
        if m["role"] == "system":
            raise RowError(f"message {n} is a system message; a system message may only come first")
        if m["role"] != want:
            raise RowError(f'message {n} has role "{m["role"]}" where a "{want}" turn was expected (turns must alternate user/assistant)')
    if turns[-1]["role"] != final:
        if final == "assistant":
            raise RowError("conversation ends with a user turn; it needs a final assistant turn")
        raise RowError("prompt ends with an assistant turn; it must end with a user turn")


def _text_of(content: Any, where: str) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        texts = []
        for part in content:
            if isinstance(part, str):
                texts.append(part)
            elif isinstance(part, dict) and part.get("type") == "text" and isinstance(part.get("text"), str):
                texts.append(part["text"])
            elif isinstance(part, dict):
                raise RowError(f'{where} has a content part of type "{part.get("type")}"; only text parts are supported')
            else:
                raise RowError(f"{where} has a content part that is not an object")
        return "\n".join(texts)
    if content is None:
        raise RowError(f"{where} has no text content")
    raise RowError(f"{where} content must be a string or a list of text parts, got {type(content).__name__}")


def _openai_messages(value: Any, key: str) -> list[dict[str, str]]:
    if not isinstance(value, list):
        raise RowError(f'"{key}" must be a list of messages, got {type(value).__name__}')
    out = []
    for i, m in enumerate(value, 1):
        if not isinstance(m, dict):
            raise RowError(f"message {i} must be an object with role and content")
        if "role" not in m:
            raise RowError(f'message {i} has no "role"')
        role = _OPENAI_ROLES.get(m["role"]) if isinstance(m["role"], str) else None
        if role is None:
            raise RowError(f'message {i} has role {json.dumps(m["role"])}; expected system, user or assistant')
        if "content" not in m:
            raise RowError(f'message {i} has no "content"')
        out.append({"role": role, "content": _text_of(m["content"], f"message {i}")})
    return out


def _require(obj: Any, *keys: str) -> dict[str, Any]:
    if not isinstance(obj, dict):
        raise RowError(f"expected a JSON object, got {type(obj).__name__}")
    for key in keys:
        if key not in obj:
            raise RowError(f'missing field "{key}"')
    return obj


def _str_field(obj: dict[str, Any], key: str) -> str:
    v = obj[key]
    if not isinstance(v, str):
        raise RowError(f'field "{key}" must be a string, got {type(v).__name__}')
    return v


@functools.lru_cache(maxsize=256)
def _basename(path: str) -> str:
    """A file's name, the default `source` of its rows (cached: called once per row)."""
    return os.path.basename(path)


def _identity(obj: dict[str, Any], rec: Record, known: tuple[str, ...]) -> tuple[str, str, dict[str, Any]]:
    """id, source and meta of a record: given ones kept, missing ones derived from the file and line."""
    rid = obj.get("id")
    if isinstance(rid, (int, float)) and not isinstance(rid, bool):
        rid = str(rid)
    if rid is not None and not isinstance(rid, str):
        raise RowError(f'field "id" must be a string or a number, got {type(rid).__name__}')
    if not rid:
        rid = f"{rec.id_base or _basename(rec.file)}:{rec.line}"
        if rec.nth_on_line:
            rid += f".{rec.nth_on_line + 1}"
    source = obj.get("source")
    if source is not None and not isinstance(source, str):
        raise RowError(f'field "source" must be a string, got {type(source).__name__}')
    if not source:
        source = _basename(rec.file)
    meta = obj.get("meta", {})
    if not isinstance(meta, dict):
        raise RowError(f'field "meta" must be an object, got {type(meta).__name__}')
    meta = dict(meta)
    for key, v in obj.items():
        if key not in known and key not in ("id", "source", "meta"):
            meta.setdefault(key, v)
    if _depth(meta) > MAX_META_DEPTH:
        raise RowError(f"extra fields (meta) are nested more than {MAX_META_DEPTH} levels deep")
    return rid, source, meta


def _depth(value: Any) -> int:
    """How deeply lists and objects nest in `value` (iteratively: the value may nest ~1000 deep)."""
    deepest, stack = 0, [(value, 0)]
    while stack:
        v, d = stack.pop()
        if isinstance(v, dict):
            v = list(v.values())
        if isinstance(v, list):
            deepest = max(deepest, d + 1)
            stack.extend((x, d + 1) for x in v)
    return deepest


def _conversation(rec: Record, obj: dict[str, Any], messages: list[dict[str, str]], known: tuple[str, ...]) -> dict[str, Any]:
    validate_messages(messages)
    rid, source, meta = _identity(obj, rec, known)
    return {"id": rid, "messages": messages, "source": source, "meta": meta}


def convert_openai(rec: Record) -> dict[str, Any]:
    obj = _require(rec.value, "messages")
    return _conversation(rec, obj, _openai_messages(obj["messages"], "messages"), ("messages",))


def convert_sharegpt(rec: Record) -> dict[str, Any]:
    obj = _require(rec.value, "conversations")
    turns = obj["conversations"]
    if not isinstance(turns, list):
        raise RowError('"conversations" must be a list of {"from", "value"} turns')
    msgs: list[dict[str, str]] = []
    if isinstance(obj.get("system"), str) and obj["system"].strip():
        msgs.append({"role": "system", "content": obj["system"]})
    for i, t in enumerate(turns, 1):
        if not isinstance(t, dict) or "from" not in t or "value" not in t:
            raise RowError(f'turn {i} must be an object with "from" and "value"')
        role = _SHAREGPT_ROLES.get(t["from"]) if isinstance(t["from"], str) else None
        if role is None:
            raise RowError(f'turn {i} has "from": {json.dumps(t["from"])}; expected human, gpt or system')
        if not isinstance(t["value"], str):
            raise RowError(f'turn {i} "value" must be a string')
        msgs.append({"role": role, "content": t["value"]})
    return _conversation(rec, obj, msgs, ("conversations", "system"))


def convert_alpaca(rec: Record) -> dict[str, Any]:
    obj = _require(rec.value, "instruction", "output")
    instruction, output = _str_field(obj, "instruction"), _str_field(obj, "output")
    extra = obj.get("input", "")
    if not isinstance(extra, str):
        raise RowError('field "input" must be a string')
    user = f"{instruction}\n\n{extra}" if extra.strip() else instruction
    msgs = [{"role": "user", "content": user}, {"role": "assistant", "content": output}]
    if isinstance(obj.get("system"), str) and obj["system"].strip():
        msgs.insert(0, {"role": "system", "content": obj["system"]})
    return _conversation(rec, obj, msgs, ("instruction", "input", "output", "system"))


def _prompt_messages(value: Any) -> list[dict[str, str]]:
    if isinstance(value, str):
        return [{"role": "user", "content": value}]
    return _openai_messages(value, "prompt")


def _answer(value: Any, key: str) -> str:
    """An answer given as a string or as a one-message assistant list."""
    if isinstance(value, str):
        return value
    msgs = _openai_messages(value, key)
    if len(msgs) != 1 or msgs[0]["role"] != "assistant":
        raise RowError(f'"{key}" must be a string or a list holding one assistant message')
    return msgs[0]["content"]


def convert_prompt_completion(rec: Record) -> dict[str, Any]:
    obj = _require(rec.value, "prompt", "completion")
    msgs = [*_prompt_messages(obj["prompt"]), {"role": "assistant", "content": _answer(obj["completion"], "completion")}]
    return _conversation(rec, obj, msgs, ("prompt", "completion"))


def convert_preference(rec: Record) -> dict[str, Any]:
    obj = _require(rec.value, "chosen", "rejected")
    if "prompt" in obj:
        prompt = _prompt_messages(obj["prompt"])
        chosen, rejected = _answer(obj["chosen"], "chosen"), _answer(obj["rejected"], "rejected")
    else:
        # Implicit prompt (whole conversations in chosen/rejected): they must share
        # every message but the final assistant one.
        full_c, full_r = _openai_messages(obj["chosen"], "chosen"), _openai_messages(obj["rejected"], "rejected")
        if len(full_c) < 2 or full_c[:-1] != full_r[:-1] or full_c[-1]["role"] != "assistant" or full_r[-1]["role"] != "assistant":
            raise RowError('without "prompt", "chosen" and "rejected" must be conversations that differ only in the final assistant message')
        prompt, chosen, rejected = full_c[:-1], full_c[-1]["content"], full_r[-1]["content"]
    validate_messages(prompt, final="user")
    if not chosen.strip() or not rejected.strip():
        raise RowError("chosen and rejected answers must not be empty")
    if chosen == rejected:
        raise RowError("chosen and rejected answers are identical")
    rid, source, meta = _identity(obj, rec, ("prompt", "chosen", "rejected"))
    return {"id": rid, "prompt": prompt, "chosen": chosen, "rejected": rejected, "source": source, "meta": meta}


def convert_csv(rec: Record) -> dict[str, Any]:
    obj = rec.value
    msgs = []
    for i, m in enumerate(obj["messages"], 1):
        role = _SHAREGPT_ROLES.get(m["role"].strip().lower())
        if role is None:
            raise RowError(f'message {i} has role {json.dumps(m["role"])}; expected system, user or assistant')
        msgs.append({"role": role, "content": m["content"]})
    return _conversation(rec, obj, msgs, ("messages",))


def convert_text(rec: Record) -> dict[str, Any]:
    obj = _require(rec.value, "text")
    text = _str_field(obj, "text")
    if not text.strip():
        raise RowError("text is empty")
    rid, source, meta = _identity(obj, rec, ("text",))
    return {"id": rid, "text": text, "source": source, "meta": meta}


CONVERTERS: dict[str, Callable[[Record], dict[str, Any]]] = {
    "openai": convert_openai,
    "sharegpt": convert_sharegpt,
    "alpaca": convert_alpaca,
    "prompt-completion": convert_prompt_completion,
    "preference": convert_preference,
    "csv": convert_csv,
    "text": convert_text,
}


def detect_from_keys(value: Any) -> str | None:
    """The format whose fields a parsed JSON record has, or None."""
    if not isinstance(value, dict):
        return None
    keys = set(value)
    if "messages" in keys:
        return "openai"
    if "conversations" in keys:
        return "sharegpt"
    if {"chosen", "rejected"} <= keys:
        return "preference"
    if {"instruction", "output"} <= keys:
        return "alpaca"
    if {"prompt", "completion"} <= keys:
        return "prompt-completion"
    if "text" in keys:
        return "text"
    return None


def detect_format(path: Path, display: str) -> str:
    """The format of one input path, from its extension and its first record."""
    if path.is_dir():
        return "text"
    suffix = path.suffix.lower()
    if suffix in TEXT_SUFFIXES:
        return "text"
    if suffix in CSV_SUFFIXES:
        return "csv"
    if suffix in JSON_SUFFIXES:
        first_error: Record | None = None
        for rec in iter_json_records(path, display):
            if rec.error:
                # A bad record is rejected later (or stops the run); detect from the next one.
                first_error = first_error or rec
                continue
            fmt = detect_from_keys(rec.value)
            if fmt is None:
                keys = ", ".join(sorted(rec.value)) if isinstance(rec.value, dict) else type(rec.value).__name__
                raise DataError(
                    f"cannot detect the format from the fields ({keys}); expected messages, conversations, "
                    "instruction/output, prompt/completion, chosen/rejected or text; pass --format",
                    file=display,
                    line=rec.line,
                )
            return fmt
        if first_error is not None:
            raise DataError(f"cannot detect the format: {first_error.error}", file=first_error.file, line=first_error.line)
        raise DataError("file holds no records", file=display)
    raise UserError(f"{display}: cannot tell the format from the extension {suffix or '(none)'!r}; pass --format")


def iter_records(
    path: Path, display: str, fmt: str, cfg: IngestConfig, progress: Progress, *, folder_prefix: str = ""
) -> Iterator[Record]:
    """Records of one input path in format `fmt`.

    Text rows from a folder are named by their path inside it, after `folder_prefix`
    (used when several inputs are ingested together, so their names cannot clash).
    """
    if fmt == "csv":
        yield from iter_csv_records(path, display, cfg.csv, progress)
    elif fmt == "text" and (path.is_dir() or path.suffix.lower() not in JSON_SUFFIXES):
        for file in list_text_files(path):
            if path.is_dir():
                rel = file.relative_to(path).as_posix()
                rel = f"{folder_prefix}/{rel}" if folder_prefix else rel
            else:
                rel = folder_prefix or file.name
            yield from iter_text_records(file, str(file), cfg.text, rel=rel, progress=progress)
    else:
        yield from iter_json_records(path, display, progress)


def _id_bases(names: list[str]) -> dict[str, str]:
    """What default ids start with, per input: its file name, or the path given if two names clash."""
    base = {n: os.path.basename(os.path.normpath(n)) for n in names}
    values = list(base.values())
    return {n: b if values.count(b) == 1 else os.path.normpath(n) for n, b in base.items()}


def _input_size(path: Path) -> int:
    if path.is_dir():
        return sum(p.stat().st_size for p in list_text_files(path))
    return path.stat().st_size


@dataclass
class FileCounts:
    path: str
    format: str
    rows_in: int = 0
    rows_written: int = 0
    rows_rejected: int = 0
    reasons: dict[str, int] = field(default_factory=dict)


def main(cfg: IngestConfig, ui: UI = QUIET) -> dict[str, Any]:
    """Run `data ingest`; returns the new dataset's manifest."""
    plan: list[tuple[Path, str, str]] = []
    for name in cfg.files:
        p = Path(name)
        if not p.exists():
            raise UserError(f"{name}: no such file or directory")
        fmt = cfg.format if cfg.format != "auto" else detect_format(p, name)
        if p.is_dir() and fmt != "text":
            raise UserError(f"{name}: is a folder, which is read as text files (.txt, .md); it cannot be --format {fmt}")
        if p.is_dir() and not list_text_files(p):
            raise UserError(f"{name}: folder holds no text files ({', '.join(TEXT_SUFFIXES)})")
        plan.append((p, name, fmt))
    kinds = {FORMAT_KIND[fmt] for _, _, fmt in plan}
    if len(kinds) > 1:
        listing = "; ".join(f"{name}: {FORMAT_KIND[fmt]} ({fmt})" for _, name, fmt in plan)
        raise UserError(f"the inputs hold different kinds of data ({listing}); ingest each kind into its own dataset")
    kind = kinds.pop()
    total = sum(_input_size(p) for p, _, _ in plan)
    counts = [FileCounts(name, fmt) for _, name, fmt in plan]

    with DatasetWriter(
        cfg.out,
        kind,
        created_by={"command": "data ingest", "config": to_dict(cfg)},
        overwrite=cfg.overwrite,
        shard_rows=cfg.shard_rows,
    ) as writer, ui.progress("ingest", total=total, unit="bytes") as advance:
        rejected_file = None
        seen_ids: set[str] = set()  # ids must be unique within a dataset
        id_bases = _id_bases([name for _, name, _ in plan])
        try:
            for (path, name, fmt), fc in zip(plan, counts, strict=True):
                convert = CONVERTERS[fmt] if not (fmt == "text" and path.suffix.lower() not in JSON_SUFFIXES) else _text_row
                prefix = id_bases[name] if len(plan) > 1 else ""
                for rec in iter_records(path, name, fmt, cfg, advance, folder_prefix=prefix):
                    rec.id_base = id_bases[name]
                    fc.rows_in += 1
                    reason = rec.error
                    if reason is None:
                        try:
                            row = convert(rec)
                            if row["id"] in seen_ids:
                                raise RowError(f'duplicate id "{row["id"]}" (ids must be unique within a dataset)')
                            writer.write(row)
                            seen_ids.add(row["id"])
                            fc.rows_written += 1
                            continue
                        except RowError as e:
                            reason = str(e)
                        except UnicodeEncodeError as e:
                            # A JSON escape like "\ud800" gives an unpaired surrogate, which no
                            # UTF-8 file can hold; the writer raises before storing anything.
                            reason = f"text holds an unpaired surrogate \\u{ord(e.object[e.start]):04x}, which is not valid Unicode"
                    if not cfg.skip_invalid:
                        raise DataError(f"{reason} (pass --skip-invalid to skip bad rows)", file=rec.file, line=rec.line)
                    if rejected_file is None:
                        rejected_file = open(writer.side_file("rejected.jsonl"), "w", encoding="utf-8")  # noqa: SIM115
                    rejected_file.write(
                        canonical_json({"file": rec.file, "line": rec.line, "reason": reason, "raw": rec.raw}) + "\n"
                    )
                    fc.rows_rejected += 1
                    key = reason.split(":")[0] if reason.startswith("invalid JSON") else reason
                    fc.reasons[key] = fc.reasons.get(key, 0) + 1
                if fc.rows_in == 0:
                    raise DataError("holds no records", file=name)
        finally:
            if rejected_file is not None:
                rejected_file.close()
        rows_in = sum(c.rows_in for c in counts)
        rows_written = sum(c.rows_written for c in counts)
        rows_rejected = sum(c.rows_rejected for c in counts)
        assert rows_in == rows_written + rows_rejected  # nothing dropped silently
        summary: dict[str, Any] = {
            "rows_in": rows_in,
            "rows_written": rows_written,
            "rows_rejected": rows_rejected,
            "files": [vars(c) for c in counts],
        }
        writer.manifest_extra["ingest"] = summary
    assert writer.manifest is not None
    ui.note(
        f"ingested {summary['rows_in']} rows from {len(plan)} input(s): {summary['rows_written']} written "
        f"({kind}), {summary['rows_rejected']} rejected -> {cfg.out}"
    )
    if summary["rows_rejected"]:
        ui.note(f"rejected rows and reasons: {Path(cfg.out) / 'rejected.jsonl'}")
    return writer.manifest


def _text_row(rec: Record) -> dict[str, Any]:
    """A text row from a plain-text record (its id and meta were set by the reader)."""
    v = rec.value
    return {"id": v["id"], "text": v["text"], "source": _basename(rec.file), "meta": v["meta"]}


# --------------------------------------------------------------------------------------
# Export


@dataclass
class ExportConfig:
    """`chatforge data export`: write a dataset as JSONL."""

    dataset: str = opt("", "dataset directory", positional=True, required=True, metavar="DIR")
    format: Literal["jsonl", "openai"] = opt(
        "jsonl", "jsonl: canonical rows (re-ingestible, keeps id/source/meta); openai: {messages} only (conversations)"
    )
    out: str = opt("-", "output file; '-' writes to standard output")


def export_rows(rows: Iterator[dict[str, Any]], kind: str, fmt: str) -> Iterator[str]:
    """JSON lines (with newline) of rows in an export format."""
    if fmt == "openai" and kind != "conversations":
        raise UserError(f"--format openai exports conversations only; this is a {kind} dataset (use --format jsonl)")
    for row in rows:
        obj = {"messages": row["messages"]} if fmt == "openai" else row
        yield json.dumps(obj, ensure_ascii=False) + "\n"


def export_main(cfg: ExportConfig, ui: UI = QUIET) -> int:
    """Run `data export`; returns the number of rows written."""
    ds = open_dataset(cfg.dataset)
    lines = export_rows(iter(ds), ds.kind, cfg.format)
    n = 0
    if cfg.out == "-":
        import sys

        for line in lines:
            sys.stdout.write(line)
            n += 1
        sys.stdout.flush()
        return n
    with atomic_open(Path(cfg.out)) as f, ui.progress("export", total=ds.num_rows) as advance:
        for line in lines:
            f.write(line)
            n += 1
            advance(1)
    ui.note(f"exported {n} rows -> {cfg.out}")
    return n
