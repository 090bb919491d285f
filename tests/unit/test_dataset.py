"""Dataset storage: content hash, round trips, other readers, atomic writes."""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import textwrap
import time

import pyarrow.parquet as pq
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from chatforge.data.dataset import (
    DatasetWriter,
    _load_meta,
    canonical_json,
    content_hash,
    encode_rows,
    open_dataset,
    write_dataset,
)
from chatforge.errors import UserError

BY = {"command": "test"}


def conv(i: int, text: str = "hello") -> dict:
    return {
        "id": f"c{i}",
        "messages": [{"role": "user", "content": f"{text} {i}"}, {"role": "assistant", "content": f"reply {i} ✓"}],
        "source": "test",
        "meta": {"n": i, "tags": ["a", "b"]},
    }


def rows(n: int) -> list[dict]:
    return [conv(i) for i in range(n)]


def test_rows_round_trip_with_meta(tmp_path):
    data = rows(25)
    m = write_dataset(tmp_path / "d", "conversations", data, created_by=BY)
    ds = open_dataset(tmp_path / "d")
    assert list(ds) == data
    assert ds.num_rows == m["num_rows"] == 25
    assert ds.content_hash == content_hash(data) == m["content_hash"]


@pytest.mark.parametrize(("shard_rows", "batch_rows"), [(1, 1), (3, 2), (7, 50), (1000, 1000)])
def test_hash_does_not_depend_on_sharding(tmp_path, shard_rows, batch_rows):
    data = rows(20)
    with DatasetWriter(tmp_path / "d", "conversations", created_by=BY, shard_rows=shard_rows, batch_rows=batch_rows) as w:
        w.write_all(data)
    ds = open_dataset(tmp_path / "d")
    assert len(ds.manifest["shards"]) == -(-20 // shard_rows)
    assert sum(s["num_rows"] for s in ds.manifest["shards"]) == 20
    assert ds.content_hash == content_hash(data)
    assert ds.verify() == content_hash(data)


def _reference_json(obj: object) -> str:
    return json.dumps(obj, sort_keys=True, ensure_ascii=False, separators=(",", ":"))


def test_canonical_json_is_the_json_module_text_for_every_code_point():
    # orjson writes it; content hashes are defined by the json module's text
    chars = [chr(c) for c in range(0x110000) if not 0xD800 <= c <= 0xDFFF]
    for i in range(0, len(chars), 4096):
        text = "".join(chars[i : i + 4096])
        assert canonical_json({"t": text, text[:3]: [text[::-1]]}) == _reference_json({"t": text, text[:3]: [text[::-1]]})
    for odd in ({"t": "a\ud800b"}, {"n": 2**64}, {"n": -(2**63) - 1}, [float("nan"), float("inf"), 1e16, 1e-05]):
        assert canonical_json(odd) == _reference_json(odd)


_JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=20,
)


@settings(max_examples=400, deadline=None)
@given(_JSON)
def test_canonical_json_equals_the_json_module_on_any_value(value):
    # floats, ints over 64 bits and lone surrogates take the json module's path
    assert canonical_json(value) == _reference_json(value)


def test_rows_encoded_elsewhere_give_the_same_dataset(tmp_path):
    data = rows(30)
    data[3]["meta"] = {"score": 1e-05, "big": 2**70}  # the json module's number formats
    with DatasetWriter(tmp_path / "a", "conversations", created_by=BY, shard_rows=7, batch_rows=4) as w:
        w.write_all(data)
    with DatasetWriter(tmp_path / "b", "conversations", created_by=BY, shard_rows=7, batch_rows=4) as w:
        w.write(data[0])  # rows written one by one and encoded batches keep their order
        for i in range(1, 30, 6):
            w.write_encoded(*encode_rows(data[i : i + 6], "conversations"))
    a, b = open_dataset(tmp_path / "a"), open_dataset(tmp_path / "b")
    assert list(b) == data
    assert a.content_hash == b.content_hash == content_hash(data)
    assert b.verify() == a.content_hash
    assert [s["num_rows"] for s in b.manifest["shards"]] == [7, 7, 7, 7, 2]
    with pytest.raises(ValueError, match="must have fields"):
        encode_rows([{"id": "x", "text": "t", "source": "s", "meta": {}}], "conversations")


def test_any_change_changes_the_hash():
    base = content_hash(rows(5))
    changed = rows(5)
    changed[3]["messages"][1]["content"] = changed[3]["messages"][1]["content"].replace("✓", "✔")
    assert content_hash(changed) != base
    meta = rows(5)
    meta[0]["meta"]["n"] = 99
    assert content_hash(meta) != base
    swapped = rows(5)
    swapped[0], swapped[1] = swapped[1], swapped[0]
    assert content_hash(swapped) != base  # order is part of a dataset's content
    # ...but key order inside a row is not
    reordered = [dict(reversed(list(r.items()))) for r in rows(5)]
    assert content_hash(reordered) == base


def test_other_readers_load_the_shards(tmp_path):
    data = rows(10)
    write_dataset(tmp_path / "d", "conversations", data, created_by=BY)
    table = pq.read_table(tmp_path / "d" / "data")
    assert table.num_rows == 10 and table.column_names == ["id", "messages", "source", "meta"]
    import pandas as pd

    df = pd.read_parquet(tmp_path / "d" / "data")
    assert list(df["id"]) == [r["id"] for r in data]
    import datasets

    hf = datasets.load_dataset("parquet", data_files=str(tmp_path / "d" / "data" / "*.parquet"), split="train")
    assert hf[3]["messages"] == data[3]["messages"]
    assert json.loads(hf[3]["meta"]) == data[3]["meta"]


def test_text_and_preference_kinds(tmp_path):
    text = [{"id": "t1", "text": "some text\n", "source": "s", "meta": {}}]
    write_dataset(tmp_path / "t", "text", text, created_by=BY)
    assert list(open_dataset(tmp_path / "t", kind="text")) == text
    pref = [
        {"id": "p1", "prompt": [{"role": "user", "content": "q"}], "chosen": "good", "rejected": "bad", "source": "s", "meta": {}}
    ]
    write_dataset(tmp_path / "p", "preferences", pref, created_by=BY)
    assert list(open_dataset(tmp_path / "p")) == pref
    with pytest.raises(UserError, match="is a preferences dataset; this command needs conversations"):
        open_dataset(tmp_path / "p", kind="conversations")


@pytest.mark.parametrize(
    "bad",
    [
        {"id": "x", "text": "t", "source": "s"},  # missing meta
        {"id": "x", "messages": [{"role": "bot", "content": "t"}], "source": "s", "meta": {}},
        {"id": 1, "messages": [], "source": "s", "meta": {}},
    ],
)
def test_malformed_rows_are_refused(tmp_path, bad):
    kind = "text" if "text" in bad else "conversations"
    with pytest.raises(ValueError), DatasetWriter(tmp_path / "d", kind, created_by=BY) as w:
        w.write(bad)
    assert not (tmp_path / "d").exists()


def test_failure_mid_write_leaves_nothing(tmp_path):
    with pytest.raises(RuntimeError), DatasetWriter(tmp_path / "d", "conversations", created_by=BY, batch_rows=2) as w:
        for i, r in enumerate(rows(10)):
            if i == 7:
                raise RuntimeError("disk on fire")
            w.write(r)
    assert not (tmp_path / "d").exists()
    assert list(tmp_path.iterdir()) == []  # no staging dir left behind


def test_failure_mid_overwrite_keeps_the_old_dataset(tmp_path):
    old = write_dataset(tmp_path / "d", "conversations", rows(5), created_by=BY)
    with pytest.raises(RuntimeError), DatasetWriter(tmp_path / "d", "conversations", created_by=BY, overwrite=True) as w:
        w.write_all(rows(3))
        raise RuntimeError("interrupted")
    ds = open_dataset(tmp_path / "d")
    assert ds.content_hash == old["content_hash"] and ds.verify() == old["content_hash"]
    assert [p.name for p in tmp_path.iterdir()] == ["d"]


def test_existing_dataset_needs_overwrite(tmp_path):
    write_dataset(tmp_path / "d", "conversations", rows(2), created_by=BY)
    with pytest.raises(UserError, match="already exists; pass --overwrite"):
        write_dataset(tmp_path / "d", "conversations", rows(3), created_by=BY)
    m = write_dataset(tmp_path / "d", "conversations", rows(3), created_by=BY, overwrite=True)
    assert open_dataset(tmp_path / "d").content_hash == m["content_hash"] == content_hash(rows(3))


def test_open_errors_are_clear(tmp_path):
    with pytest.raises(UserError, match="no such dataset directory"):
        open_dataset(tmp_path / "missing")
    (tmp_path / "empty").mkdir()
    with pytest.raises(UserError, match=r"not a chatforge dataset \(no manifest.json\)"):
        open_dataset(tmp_path / "empty")
    write_dataset(tmp_path / "d", "conversations", rows(2), created_by=BY)
    (tmp_path / "d" / "data" / "part-00000.parquet").unlink()
    with pytest.raises(UserError, match=r"shard data/part-00000\.parquet listed in the manifest is missing"):
        open_dataset(tmp_path / "d")


def test_verify_detects_a_changed_shard(tmp_path):
    write_dataset(tmp_path / "d", "conversations", rows(4), created_by=BY)
    write_dataset(tmp_path / "e", "conversations", [conv(i, "other") for i in range(4)], created_by=BY)
    # put e's shard under d's manifest: same schema, different rows
    os.replace(tmp_path / "e" / "data" / "part-00000.parquet", tmp_path / "d" / "data" / "part-00000.parquet")
    with pytest.raises(UserError, match="content hash mismatch"):
        open_dataset(tmp_path / "d").verify()


WRITER = textwrap.dedent(
    """
    import sys
    from chatforge.data.dataset import DatasetWriter
    out, overwrite = sys.argv[1], sys.argv[2] == "1"
    with DatasetWriter(out, "text", created_by={"command": "kill-test"}, overwrite=overwrite,
                       shard_rows=5000, batch_rows=500) as w:
        print("started", flush=True)
        for i in range(10**9):
            w.write({"id": str(i), "text": "x" * 200, "source": "s", "meta": {}})
    """
)


def test_sigkill_during_write_never_leaves_a_partial_dataset(tmp_path):
    """kill -9 at random points: the target is the old dataset, intact; leftovers are cleaned next time."""
    target = tmp_path / "d"
    old = write_dataset(target, "text", [{"id": "0", "text": "old", "source": "s", "meta": {}}], created_by=BY)
    rng = random.Random(0)
    for _trial in range(3):
        proc = subprocess.Popen([sys.executable, "-c", WRITER, str(target), "1"], stdout=subprocess.PIPE, text=True)
        assert proc.stdout is not None and proc.stdout.readline().strip() == "started"
        time.sleep(rng.uniform(0.05, 0.6))
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        ds = open_dataset(target)
        assert ds.content_hash == old["content_hash"] and ds.verify() == old["content_hash"]
    assert any(p.name.startswith(".d.staging-") for p in tmp_path.iterdir())  # what the killed writers left
    write_dataset(target, "text", [{"id": "1", "text": "new", "source": "s", "meta": {}}], created_by=BY, overwrite=True)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["d"]  # stale staging dirs of dead processes removed
    assert [r["text"] for r in open_dataset(target)] == ["new"]


def test_rename_exchange_swaps_directories(tmp_path):
    from chatforge.atomic import replace_dir

    (tmp_path / "a").mkdir()
    (tmp_path / "a" / "f").write_text("new")
    (tmp_path / "b").mkdir()
    (tmp_path / "b" / "f").write_text("old")
    replace_dir(tmp_path / "a", tmp_path / "b")
    assert (tmp_path / "b" / "f").read_text() == "new"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["b"]


def test_atomic_file_write_leaves_no_partial_file(tmp_path):
    from chatforge.atomic import atomic_open, atomic_write_text

    atomic_write_text(tmp_path / "f.txt", "first")
    with pytest.raises(RuntimeError), atomic_open(tmp_path / "f.txt") as f:
        f.write("second, half-written")
        raise RuntimeError("crash")
    assert (tmp_path / "f.txt").read_text() == "first"
    assert [p.name for p in tmp_path.iterdir()] == ["f.txt"]


_ODD_TEXTS = ["", "plain", "héllo wörld", "日本語", "emoji \U0001f600", "tab\tand\nnewline", "x" * 3000]


@pytest.mark.parametrize("kind", ["conversations", "text", "preferences"])
def test_encoded_rows_equal_arrows_own_conversion(kind):
    # encode_rows builds the Arrow arrays from their buffers; they must be what
    # pa.RecordBatch.from_pylist makes of the same rows
    import pyarrow as pa

    from chatforge.data.dataset import SCHEMAS

    rng = random.Random(kind)

    def msgs() -> list[dict[str, str]]:
        roles = ["system", "user", "assistant"]
        return [{"role": rng.choice(roles), "content": rng.choice(_ODD_TEXTS)} for _ in range(rng.randrange(0, 4))]

    data = []
    for i in range(40):
        row = {"id": rng.choice(_ODD_TEXTS) + str(i), "source": rng.choice(_ODD_TEXTS), "meta": {"n": i, "t": rng.choice(_ODD_TEXTS)}}
        if kind == "conversations":
            row["messages"] = msgs()
        elif kind == "text":
            row["text"] = rng.choice(_ODD_TEXTS)
        else:
            row.update(prompt=msgs(), chosen=rng.choice(_ODD_TEXTS), rejected=rng.choice(_ODD_TEXTS))
        data.append(row)
    for part in (data, data[:1], []):
        batch, row_json = encode_rows(part, kind)
        expect = pa.RecordBatch.from_pylist([{**r, "meta": canonical_json(r["meta"])} for r in part], schema=SCHEMAS[kind])
        assert batch.equals(expect)
        assert row_json == [canonical_json(r).encode("utf-8") for r in part]


def test_encoding_rows_does_not_import_pandas():
    # pa.array imports pandas on its first call (~0.3 s and ~40 MB in every worker of data clean)
    code = textwrap.dedent(
        """
        import sys
        from chatforge.data.dataset import encode_rows
        encode_rows([{"id": "a", "messages": [{"role": "user", "content": "hi"}], "source": "s", "meta": {}}], "conversations")
        assert "pandas" not in sys.modules
        """
    )
    subprocess.run([sys.executable, "-c", code], check=True)


_JSON_LEAF = st.one_of(
    st.none(), st.booleans(), st.integers(), st.integers(min_value=-(2**80), max_value=2**80),
    st.floats(allow_nan=True, allow_infinity=True), st.text(), st.characters(min_codepoint=0xD800, max_codepoint=0xDFFF),
)  # fmt: skip
_JSON = st.recursive(
    _JSON_LEAF, lambda c: st.one_of(st.lists(c, max_size=4), st.dictionaries(st.text(max_size=5), c, max_size=4)), max_leaves=12
)


@settings(max_examples=500, deadline=None)
@given(st.dictionaries(st.text(max_size=6), _JSON, max_size=5), st.booleans())
def test_meta_is_read_back_as_json_reads_it(meta: dict, ascii_only: bool) -> None:
    # Stored meta is read by orjson where it gives what `json` gives: never a big integer
    # turned into a float, never a refusal of what `json` reads.
    text = json.dumps(meta, ensure_ascii=ascii_only)
    assert repr(_load_meta(text)) == repr(json.loads(text))
