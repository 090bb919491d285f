"""Dataset storage: a directory of Parquet shards plus `manifest.json`.

    DIR/
      manifest.json          kind, row count, content hash, parents, producing command
      data/part-00000.parquet ...
      (side files a stage adds, e.g. rejected.jsonl from `data ingest --skip-invalid`)

Three kinds of rows (DESIGN.md):

    conversations  {"id", "messages": [{"role", "content"}], "source", "meta"}
    text           {"id", "text", "source", "meta"}
    preferences    {"id", "prompt": [{"role", "content"}], "chosen", "rejected", "source", "meta"}

`meta` is a free-form dict; in Parquet it is a JSON string column so the schema stays
fixed. The shards are plain Parquet (`pandas.read_parquet(DIR + "/data")`,
`datasets.load_dataset("parquet", data_files=DIR + "/data/*.parquet")`).

The content hash is a sha256 over the rows in order, each in a canonical JSON form: it
does not depend on how rows are split into shards or row groups, and any changed byte
of any row changes it. Writing is atomic (see `chatforge.atomic.staged_dir`): an
interrupted write leaves the previous dataset (or nothing) in place, never a part.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import re
import struct
import sys
import time
from array import array
from collections.abc import Iterable, Iterator, Sequence
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import orjson
import pyarrow as pa
import pyarrow.parquet as pq

from chatforge import __version__
from chatforge.atomic import atomic_write_json, recover_interrupted, staged_dir
from chatforge.errors import UserError

Kind = Literal["conversations", "text", "preferences"]
KINDS: tuple[Kind, ...] = ("conversations", "text", "preferences")
MANIFEST = "manifest.json"
DATA_DIR = "data"
FORMAT = "chatforge.dataset/1"
ROLES = ("system", "user", "assistant")

_MESSAGE = pa.struct([("role", pa.string()), ("content", pa.string())])
SCHEMAS: dict[str, pa.Schema] = {
    "conversations": pa.schema(
        [("id", pa.string()), ("messages", pa.list_(_MESSAGE)), ("source", pa.string()), ("meta", pa.string())]
    ),
    "text": pa.schema([("id", pa.string()), ("text", pa.string()), ("source", pa.string()), ("meta", pa.string())]),
    "preferences": pa.schema(
        [
            ("id", pa.string()),
            ("prompt", pa.list_(_MESSAGE)),
            ("chosen", pa.string()),
            ("rejected", pa.string()),
            ("source", pa.string()),
            ("meta", pa.string()),
        ]
    ),
}
FIELDS: dict[str, tuple[str, ...]] = {k: tuple(s.names) for k, s in SCHEMAS.items()}


def canonical_json(obj: Any) -> str:
    """JSON with sorted keys and no spaces: the same data always gives the same text.

    The text is `json.dumps(obj, sort_keys=True, ensure_ascii=False, separators=(",", ":"))`,
    which content hashes are defined by. orjson writes the very same text ~10x faster for
    what rows hold (strings, ints, bools, None, lists, dicts with string keys; tested over
    every code point), so it does the work unless `obj` holds a float (the two format
    some floats differently: 1e-05 vs 0.00001) or something orjson refuses (an int over
    64 bits, a lone surrogate, a non-string key).
    """
    return _canonical(obj, _floatless(obj))


def _canonical(obj: Any, floatless: bool) -> str:
    """`canonical_json(obj)` when whether `obj` holds a float is already known."""
    if floatless:
        try:
            return orjson.dumps(obj, option=orjson.OPT_SORT_KEYS).decode("utf-8")
        except (orjson.JSONEncodeError, TypeError):
            pass
    return json.dumps(obj, sort_keys=True, ensure_ascii=False, separators=(",", ":"))


def _canonical_utf8(obj: Any, floatless: bool) -> bytes:
    """`_canonical(obj, floatless)` in UTF-8: what orjson writes, without a decode and an encode."""
    if floatless:
        try:
            return orjson.dumps(obj, option=orjson.OPT_SORT_KEYS)
        except (orjson.JSONEncodeError, TypeError):
            pass
    return json.dumps(obj, sort_keys=True, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


def _floatless(obj: Any) -> bool:
    if isinstance(obj, str):
        return True
    if isinstance(obj, dict):
        return all(map(_floatless, obj.values()))
    if isinstance(obj, list):
        return all(map(_floatless, obj))
    return not isinstance(obj, float)


class ContentHasher:
    """sha256 over rows in order, independent of sharding (each row length-prefixed)."""

    def __init__(self) -> None:
        self._h = hashlib.sha256()
        self.rows = 0

    def update(self, row: dict[str, Any] | None, canonical: str | bytes | None = None) -> None:
        """Add `row`; `canonical` is its `canonical_json` (or that text in UTF-8) when already
        computed elsewhere (then `row` may be None)."""
        if canonical is None:
            assert row is not None
            canonical = canonical_json(row)
        data = canonical if isinstance(canonical, bytes) else canonical.encode("utf-8")
        self._h.update(struct.pack("<Q", len(data)))
        self._h.update(data)
        self.rows += 1

    def hexdigest(self) -> str:
        return "sha256:" + self._h.hexdigest()


def content_hash(rows: Iterable[dict[str, Any]]) -> str:
    """The content hash of a sequence of rows."""
    h = ContentHasher()
    for row in rows:
        h.update(row)
    return h.hexdigest()


_FIELD_SETS = {k: frozenset(v) for k, v in FIELDS.items()}
_MESSAGE_KEYS = frozenset(("role", "content"))


def check_row(row: dict[str, Any], kind: str) -> None:
    """Raise ValueError if `row` does not have the shape of its kind (a programming error)."""
    want = FIELDS[kind]
    if row.keys() != _FIELD_SETS[kind]:
        raise ValueError(f"{kind} row must have fields {want}, got {tuple(row)}")
    for key in want:
        v = row[key]
        if key == "meta":
            if not isinstance(v, dict):
                raise ValueError(f"meta must be a dict, got {type(v).__name__}")
        elif key in ("messages", "prompt"):
            if not isinstance(v, list):
                raise ValueError(f"{key} must be a list of {{role, content}} messages")
            # A plain loop: this runs for every message of every row written.
            for m in v:
                if not (isinstance(m, dict) and m.keys() == _MESSAGE_KEYS and m["role"] in ROLES and isinstance(m["content"], str)):
                    raise ValueError(f"{key} must be a list of {{role, content}} messages")
        elif not isinstance(v, str):
            raise ValueError(f"{key} must be a string, got {type(v).__name__}")


def encode_rows(rows: Sequence[dict[str, Any]], kind: str) -> tuple[pa.RecordBatch, list[bytes]]:
    """Rows made ready for `DatasetWriter.write_encoded`, in any process: checked, as an
    Arrow batch in the kind's schema (meta as JSON text), and each row's canonical JSON in
    UTF-8 (what the content hash reads; bytes cross a process boundary without a copy
    into a new str)."""
    metas: list[str] = []
    row_json: list[bytes] = []
    for row in rows:
        check_row(row, kind)
        # A checked row holds only strings outside its meta: whether it holds a float
        # is whether its meta does.
        floatless = _floatless(row["meta"])
        metas.append(_canonical(row["meta"], floatless))
        row_json.append(_canonical_utf8(row, floatless))
    schema = SCHEMAS[kind]
    columns = [
        _string_array(metas) if name == "meta"
        else _message_array([row[name] for row in rows]) if name in ("messages", "prompt")
        else _string_array([row[name] for row in rows])
        for name in schema.names
    ]  # fmt: skip
    return pa.RecordBatch.from_arrays(columns, schema=schema), row_json


# Arrow arrays of checked rows, built from their buffers rather than with `pa.array`: the
# first `pa.array` call of a process imports pandas (~0.3 s and ~40 MB in each worker of
# `data clean`), to see whether the values are a pandas object.


def _offsets(lengths: Iterable[int]) -> pa.Array:
    """int32 offsets 0, l0, l0+l1, ... as an Arrow array."""
    offsets = array("i", itertools.accumulate(lengths, initial=0))
    if offsets[-1] < 0:  # accumulate wrapped at 2^31 (array("i") raises first on most platforms)
        raise ValueError("more than 2 GiB of text in one batch")
    return pa.Array.from_buffers(pa.int32(), len(offsets), [None, pa.py_buffer(offsets)])


def _string_array(values: Sequence[str]) -> pa.Array:
    """`pa.array(values, pa.string())` for a list of str."""
    text = "".join(values)
    data = text.encode("utf-8")
    if len(data) == len(text):  # all ASCII: a character is a byte
        offsets = _offsets(map(len, values))
    else:
        # str.isascii() is O(1) (CPython marks ASCII strings): only the others are encoded
        offsets = _offsets(len(v) if v.isascii() else len(v.encode("utf-8")) for v in values)
    return pa.Array.from_buffers(pa.string(), len(values), [None, offsets.buffers()[1], pa.py_buffer(data)])


def _message_array(lists: Sequence[list[dict[str, str]]]) -> pa.Array:
    """`pa.array(lists, pa.list_(_MESSAGE))` for lists of checked {role, content} messages."""
    roles = _string_array([m["role"] for msgs in lists for m in msgs])
    contents = _string_array([m["content"] for msgs in lists for m in msgs])
    messages = pa.StructArray.from_arrays([roles, contents], fields=list(_MESSAGE))
    return pa.ListArray.from_arrays(_offsets(map(len, lists)), messages, type=pa.list_(_MESSAGE))


def decode_rows(batch: pa.RecordBatch | pa.Table) -> list[dict[str, Any]]:
    """A batch of stored rows as Python dicts, `meta` decoded back to a dict."""
    rows = batch.to_pylist()
    for r in rows:
        r["meta"] = _load_meta(r["meta"]) if r["meta"] else {}
    return rows


_LONG_NUMBER = re.compile(r"\d{19}")


def _load_meta(text: str) -> Any:
    """`json.loads(text)`, by orjson (~10x faster) where it reads the same: not where a run
    of 19 digits could be an integer beyond 64 bits (orjson makes it a float), nor where
    it refuses the text (NaN, lone surrogates)."""
    if _LONG_NUMBER.search(text) is None:
        try:
            return orjson.loads(text)
        except orjson.JSONDecodeError:
            pass
    return json.loads(text)


class DatasetWriter:
    """Write rows to a new dataset directory; it appears only when the `with` block succeeds.

        with DatasetWriter(out, "conversations", created_by={...}) as w:
            for row in rows:
                w.write(row)
            w.manifest_extra["ingest"] = {...}

    Rows are buffered in batches and written as Parquet row groups, rolling over to a
    new shard every `shard_rows` rows, so memory stays flat whatever the input size.
    """

    def __init__(
        self,
        out_dir: str | Path,
        kind: Kind,
        *,
        created_by: dict[str, Any],
        parents: Iterable[str] = (),
        overwrite: bool = False,
        shard_rows: int = 100_000,
        batch_rows: int = 2_000,
    ) -> None:
        if kind not in KINDS:
            raise ValueError(f"unknown dataset kind {kind!r}")
        self.out_dir = Path(out_dir)
        self.kind = kind
        self.created_by = created_by
        self.parents = list(parents)
        self.overwrite = overwrite
        self.shard_rows = shard_rows
        self.batch_rows = batch_rows
        self.manifest_extra: dict[str, Any] = {}
        self.manifest: dict[str, Any] | None = None
        self._stack = ExitStack()
        self._hasher = ContentHasher()
        self._rows: list[dict[str, Any]] = []  # rows written one at a time, not yet encoded
        self._pending: list[pa.RecordBatch] = []  # encoded rows waiting for the next row group
        self._pending_rows = 0
        self._writer: pq.ParquetWriter | None = None
        self._shard_rows_written = 0
        self._shards: list[dict[str, Any]] = []
        self.staging: Path | None = None

    # -- context manager -------------------------------------------------------------
    def __enter__(self) -> DatasetWriter:
        self.staging = self._stack.enter_context(
            staged_dir(self.out_dir, overwrite=self.overwrite, replaceable=self._replaceable, what=f"a {self.kind} dataset")
        )
        (self.staging / DATA_DIR).mkdir()
        return self

    def __exit__(self, exc_type: Any, exc: Any, tb: Any) -> bool:
        if exc_type is None:
            try:
                self._finish()
            except BaseException:
                # Hand the error to the staging context: it deletes the partial dir.
                self._close_writer()
                self._stack.__exit__(*sys.exc_info())
                raise
        self._close_writer()
        return bool(self._stack.__exit__(exc_type, exc, tb))

    def _replaceable(self, path: Path) -> bool:
        """--overwrite replaces only a dataset of the same kind (never other files, never a
        dataset of another kind written there by mistake)."""
        if not is_dataset_dir(path):
            return False
        try:
            return bool(json.loads((path / MANIFEST).read_text(encoding="utf-8")).get("kind") == self.kind)
        except (OSError, json.JSONDecodeError, AttributeError):
            return False

    # -- writing ---------------------------------------------------------------------
    @property
    def rows_written(self) -> int:
        return self._hasher.rows

    def side_file(self, name: str) -> Path:
        """A path inside the dataset dir for an extra file (committed with the dataset)."""
        assert self.staging is not None, "use DatasetWriter in a with block"
        return self.staging / name

    def write(self, row: dict[str, Any]) -> None:
        """Add one row (checked against the kind's schema)."""
        check_row(row, self.kind)
        self._hasher.update(row)
        self._rows.append(row)
        if len(self._rows) >= self.batch_rows:
            self._flush()

    def write_all(self, rows: Iterable[dict[str, Any]]) -> None:
        for row in rows:
            self.write(row)

    def write_encoded(self, batch: pa.RecordBatch, row_json: Sequence[str | bytes]) -> None:
        """Add rows that `encode_rows` prepared, possibly in another process (`data clean`'s
        workers encode, so the process that writes only writes); they follow any rows
        written before."""
        if batch.num_rows != len(row_json):
            raise ValueError(f"{batch.num_rows} rows but {len(row_json)} canonical JSON texts")
        if not batch.schema.equals(SCHEMAS[self.kind]):
            raise ValueError(f"batch schema is not the {self.kind} schema: {batch.schema}")
        self._encode_rows()
        for text in row_json:
            self._hasher.update(None, text)
        self._pending.append(batch)
        self._pending_rows += batch.num_rows
        if self._pending_rows >= self.batch_rows:
            self._flush()

    def _encode_rows(self) -> None:
        if self._rows:
            records = [{**r, "meta": canonical_json(r["meta"])} for r in self._rows]
            self._pending.append(pa.RecordBatch.from_pylist(records, schema=SCHEMAS[self.kind]))
            self._pending_rows += len(self._rows)
            self._rows = []

    def _flush(self) -> None:
        self._encode_rows()
        if not self._pending:
            return
        table = pa.Table.from_batches(self._pending, schema=SCHEMAS[self.kind])
        self._pending, self._pending_rows = [], 0
        at = 0
        while at < table.num_rows:
            if self._writer is None:
                self._open_shard()
            assert self._writer is not None
            chunk = table.slice(at, self.shard_rows - self._shard_rows_written)
            self._writer.write_table(chunk)
            at += chunk.num_rows
            self._shard_rows_written += chunk.num_rows
            self._shards[-1]["num_rows"] += chunk.num_rows
            if self._shard_rows_written >= self.shard_rows:
                self._close_writer()

    def _open_shard(self) -> None:
        assert self.staging is not None
        name = f"{DATA_DIR}/part-{len(self._shards):05d}.parquet"
        self._writer = pq.ParquetWriter(self.staging / name, SCHEMAS[self.kind], compression="zstd")
        self._shards.append({"file": name, "num_rows": 0})
        self._shard_rows_written = 0

    def _close_writer(self) -> None:
        if self._writer is not None:
            self._writer.close()
            self._writer = None

    def _finish(self) -> None:
        self._flush()
        self._close_writer()
        assert self.staging is not None
        manifest = {
            "format": FORMAT,
            "kind": self.kind,
            "num_rows": self._hasher.rows,
            "content_hash": self._hasher.hexdigest(),
            "parents": self.parents,
            "shards": self._shards,
            "created_by": {**self.created_by, "chatforge_version": __version__},
            "created_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            **self.manifest_extra,
        }
        atomic_write_json(self.staging / MANIFEST, manifest)
        self.manifest = manifest


def write_dataset(
    out_dir: str | Path,
    kind: Kind,
    rows: Iterable[dict[str, Any]],
    *,
    created_by: dict[str, Any],
    parents: Iterable[str] = (),
    overwrite: bool = False,
    manifest_extra: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Write `rows` as a new dataset and return its manifest."""
    with DatasetWriter(out_dir, kind, created_by=created_by, parents=parents, overwrite=overwrite) as w:
        w.write_all(rows)
        w.manifest_extra.update(manifest_extra or {})
    assert w.manifest is not None
    return w.manifest


@dataclass
class Dataset:
    """A dataset directory opened for reading."""

    path: Path
    manifest: dict[str, Any]

    @property
    def kind(self) -> Kind:
        return self.manifest["kind"]  # type: ignore[no-any-return]

    @property
    def num_rows(self) -> int:
        return int(self.manifest["num_rows"])

    @property
    def content_hash(self) -> str:
        return str(self.manifest["content_hash"])

    def shard_paths(self) -> list[Path]:
        return [self.path / s["file"] for s in self.manifest["shards"]]

    def arrow_batches(self, batch_size: int = 2_000, columns: list[str] | None = None) -> Iterator[pa.RecordBatch]:
        """The shards' rows in order as Arrow record batches (only `columns`, if given)."""
        for shard in self.shard_paths():
            try:
                pf = pq.ParquetFile(shard)
            except (OSError, pa.ArrowInvalid) as e:
                raise UserError(f"{shard}: unreadable Parquet shard: {e}") from None
            with pf:
                yield from pf.iter_batches(batch_size=batch_size, columns=columns)

    def iter_batches(self, batch_size: int = 2_000) -> Iterator[list[dict[str, Any]]]:
        """Rows in order, a list at a time; `meta` decoded back to a dict."""
        for batch in self.arrow_batches(batch_size):
            yield decode_rows(batch)

    def __iter__(self) -> Iterator[dict[str, Any]]:
        for rows in self.iter_batches():
            yield from rows

    def verify(self) -> str:
        """Recompute the content hash from the shards; raise UserError on mismatch."""
        got = content_hash(self)
        if got != self.content_hash:
            raise UserError(f"{self.path}: content hash mismatch: manifest says {self.content_hash}, rows give {got}")
        return got


def is_dataset_dir(path: Path) -> bool:
    """Whether `path` holds a chatforge dataset (so `--overwrite` may replace it)."""
    return (Path(path) / MANIFEST).is_file()


def open_dataset(path: str | Path, *, kind: Kind | None = None) -> Dataset:
    """Open a dataset directory, with a clear error if it is not one."""
    p = Path(path)
    if not p.exists():
        recover_interrupted(p)  # a writer killed mid-swap may have left it aside
    if not p.exists():
        raise UserError(f"{p}: no such dataset directory")
    mpath = p / MANIFEST
    if not mpath.is_file():
        raise UserError(f"{p}: not a chatforge dataset (no {MANIFEST}); create one with `chatforge data ingest` or `data synth`")
    try:
        manifest = json.loads(mpath.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise UserError(f"{mpath}: corrupt manifest: {e}") from None
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        raise UserError(f"{mpath}: unsupported dataset format {manifest.get('format') if isinstance(manifest, dict) else None!r}")
    if manifest.get("kind") not in KINDS:
        raise UserError(f"{mpath}: unknown dataset kind {manifest.get('kind')!r}")
    shards = manifest.get("shards")
    if not isinstance(shards, list) or not all(
        isinstance(x, dict) and isinstance(x.get("file"), str) and isinstance(x.get("num_rows"), int) for x in shards
    ):
        raise UserError(f"{mpath}: corrupt manifest: 'shards' must be a list of {{file, num_rows}}")
    if not isinstance(manifest.get("num_rows"), int) or not isinstance(manifest.get("content_hash"), str):
        raise UserError(f"{mpath}: corrupt manifest: missing num_rows or content_hash")
    for shard in shards:
        if not (p / shard["file"]).is_file():
            raise UserError(f"{p}: shard {shard['file']} listed in the manifest is missing")
    if kind is not None and manifest["kind"] != kind:
        raise UserError(f"{p}: is a {manifest['kind']} dataset; this command needs {kind}")
    return Dataset(p, manifest)
