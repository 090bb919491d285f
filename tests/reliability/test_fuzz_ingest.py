"""Fuzzing the ingest readers (chatforge/data/formats.py): `data ingest` fed mutated files.

Valid JSONL, JSON-array and CSV files are mutated at the byte level (flipped bits, inserted
BOMs, NULs, invalid UTF-8, 5,000-digit numbers, 1e400, NaN, deep nesting, truncation,
repeated slices that make very long lines) and at the field level (a field replaced by a
JSON value of any type). The round-trip properties of valid files are in
tests/unit/test_formats_property.py; here the input is hostile.

"Clear error" here: a `UserError` whose message starts with the input's name, and, when it
is about a record (a `DataError` with a line), that line is in the file; nothing is written
then. Otherwise the outcome is a dataset in which rows in = rows written + rows rejected,
no row is rejected without --skip-invalid, each rejected row is listed with its line in
rejected.jsonl, and what was written exports and re-ingests to the very same content hash
(so nothing unreadable, such as Infinity or a lone surrogate, got into it). Any other
exception fails the test.
"""

from __future__ import annotations

import csv
import io
import json
import re
import tempfile
from pathlib import Path
from typing import Any

import pytest
from fuzzing import fuzz_settings, json_values, mutations
from hypothesis import example, given
from hypothesis import strategies as st

from chatforge.config import load_config
from chatforge.data import formats
from chatforge.data.dataset import open_dataset
from chatforge.data.formats import ExportConfig, IngestConfig
from chatforge.errors import DataError, UserError

CONV = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Where is my order?"}, {"role": "assistant", "content": "On its way 📦."}]
RECORDS: dict[str, list[dict[str, Any]]] = {
    "openai": [{"messages": CONV, "id": "a"}, {"messages": CONV[1:], "meta": {"k": [1, 2.5, None]}}],
    "sharegpt": [{"conversations": [{"from": "human", "value": "hi"}, {"from": "gpt", "value": "héllo"}]}] * 2,
    "alpaca": [{"instruction": "Sum", "input": "1 2", "output": "3"}, {"instruction": "Say hi", "output": "hi"}],
    "preference": [{"prompt": "hi", "chosen": "hello", "rejected": "go away"}] * 2,
    "text": [{"text": "A paragraph.\n\nAnother one."}, {"text": "x"}],
}


def jsonl(records: list[Any]) -> bytes:
    return "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records).encode()


def csv_file(rows: list[list[str]]) -> bytes:
    buf = io.StringIO()
    csv.writer(buf).writerows(rows)
    return buf.getvalue().encode()


SEEDS = {
    **{f"{k}.jsonl": jsonl(v) for k, v in RECORDS.items()},
    "openai.json": json.dumps(RECORDS["openai"], indent=1, ensure_ascii=False).encode(),
    "sharegpt.json": json.dumps(RECORDS["sharegpt"]).encode(),
    "log.csv": csv_file([["ticket", "user", "assistant"], ["1", "hi", "hello, how can I help?"], ["2", 'a "quote"', "line\nbreak"]]),
}


def ingest(path: Path, out: Path, **overrides: Any) -> dict[str, Any]:
    return formats.main(load_config(IngestConfig, overrides={"files": [str(path)], "out": str(out), **overrides}))


def n_lines(data: bytes) -> int:
    """Lines of a file, counting a lone CR as a line end too (CSV does)."""
    return len(re.split(rb"\r\n|\r|\n", data))


def check_outcome(data: bytes, name: str, skip_invalid: bool, **overrides: Any) -> dict[str, Any] | UserError:
    """Ingest `data` as file `name`; assert the outcome is a sound dataset or a clear error, and return it."""
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        src = tmp / name
        src.write_bytes(data)
        out = tmp / "ds"
        try:
            man = ingest(src, out, skip_invalid=skip_invalid, **overrides)
        except UserError as e:
            assert str(e).startswith(str(src)), f"the error does not name the file: {e}"
            if isinstance(e, DataError) and e.line is not None:
                assert 1 <= e.line <= n_lines(data), f"line {e.line} is not in the file: {e}"
            assert not out.exists(), "a failed ingest left its output behind"
            return e
        counts = man["ingest"]
        assert counts["rows_in"] == counts["rows_written"] + counts["rows_rejected"]
        ds = open_dataset(out)
        assert ds.num_rows == counts["rows_written"]
        rejected = out / "rejected.jsonl"
        if not skip_invalid:
            assert counts["rows_rejected"] == 0
        listed = [json.loads(line) for line in rejected.read_text(encoding="utf-8").split("\n")[:-1]] if rejected.exists() else []
        assert len(listed) == counts["rows_rejected"]
        for r in listed:
            assert r["file"] == str(src) and 1 <= r["line"] <= n_lines(data) and r["reason"]
        if counts["rows_written"]:
            # What was written is valid data: it exports, and the export re-ingests to the same rows.
            exported = tmp / "rows.jsonl"
            formats.export_main(load_config(ExportConfig, overrides={"dataset": str(out), "out": str(exported)}))
            again = ingest(exported, tmp / "again")
            assert again["content_hash"] == man["content_hash"]
        return man


@fuzz_settings(150)
@given(st.sampled_from(sorted(SEEDS)).flatmap(lambda name: st.tuples(st.just(name), mutations(SEEDS[name]))), st.booleans())
@example(("openai.jsonl", SEEDS["openai.jsonl"] + b'{"messages": ' + b"[" * 100_000 + b"]" * 100_000 + b"}\n"), True)
@example(("openai.jsonl", b'{"messages": [], "x": ' + b"9" * 5000 + b"}\n"), False)
@example(("openai.jsonl", SEEDS["openai.jsonl"].replace(b'"id": "a"', b'"x": 1e400')), False)
def test_mutated_files_give_rows_or_a_clear_error(case: tuple[str, bytes], skip_invalid: bool) -> None:
    name, data = case
    check_outcome(data, name, skip_invalid)


# A field of a valid record replaced by a JSON value of any type (or a new field added).
def with_field(fmt: str) -> st.SearchStrategy[dict[str, Any]]:
    base = RECORDS[fmt][0]
    keys = [*sorted(base), "id", "source", "meta", "extra"]
    return st.builds(lambda k, v: {**base, k: v}, st.sampled_from(keys), json_values)


@fuzz_settings(100)
@given(st.sampled_from(sorted(RECORDS)).flatmap(lambda fmt: st.tuples(st.just(fmt), with_field(fmt))), st.booleans())
def test_wrong_typed_fields_give_rows_or_a_clear_error(case: tuple[str, dict[str, Any]], skip_invalid: bool) -> None:
    fmt, record = case
    # the valid first record fixes the format; the fuzzed one is line 2
    check_outcome(jsonl([RECORDS[fmt][0], record]), f"{fmt}.jsonl", skip_invalid, format=fmt)


BAD_LINES = [
    b'{"messages": [{"role": "user", "content": "cut',  # truncated
    b'{"messages": [{"role": "user", "content": "\xff"}]}',  # not UTF-8
    b'{"messages": [{"role": "user", "content": 5}, {"role": "assistant", "content": "x"}]}',  # wrong type
    b'{"messages": [{"role": "bot", "content": "hi"}, {"role": "assistant", "content": "x"}]}',  # unknown role
    b'{"messages": ' + b"[" * 5000 + b"]" * 5000 + b"}",  # nested too deeply for the parser
    b'{"messages": [{"role": "user", "content": "a"}, {"role": "assistant", "content": "b"}], "m": ' + b"[" * 40 + b"]" * 40 + b"}",  # deep meta
    b'{"messages": [], "n": NaN}',
    b'{"messages": [{"role": "user", "content": "a"}, {"role": "assistant", "content": "b"}], "n": 1e400}',
    b'{"messages": [{"role": "user", "content": "\\ud800"}, {"role": "assistant", "content": "b"}]}',  # lone surrogate
    b"\x00\x00\x00",
    b"[1, 2",
]


@fuzz_settings(40)
@given(st.lists(st.one_of(st.none(), st.sampled_from(range(len(BAD_LINES)))), min_size=1, max_size=12))
def test_skip_invalid_skips_and_counts_each_bad_line(layout: list[int | None]) -> None:
    """A JSONL file of good lines (None) and known-bad ones: with --skip-invalid exactly the bad
    lines are rejected, each listed with its line number; without it the first bad line stops
    the command, naming that line."""
    good = json.dumps({"messages": CONV}, ensure_ascii=False).encode()
    lines = [good] + [good if i is None else BAD_LINES[i] for i in layout]  # line 1 good: the format is detected from it
    data = b"\n".join(lines) + b"\n"
    bad_at = [n for n, i in enumerate(layout, 2) if i is not None]
    with tempfile.TemporaryDirectory() as d:
        src = Path(d) / "mixed.jsonl"
        src.write_bytes(data)
        man = ingest(src, Path(d) / "ds", skip_invalid=True)
        assert man["ingest"]["rows_rejected"] == len(bad_at)
        assert man["ingest"]["rows_written"] == len(lines) - len(bad_at)
        listed = [json.loads(line) for line in (Path(d) / "ds" / "rejected.jsonl").read_text(encoding="utf-8").split("\n")[:-1]] if bad_at else []
        assert [r["line"] for r in listed] == bad_at
        if bad_at:
            with pytest.raises(DataError) as e:
                ingest(src, Path(d) / "strict")
            assert (e.value.file, e.value.line) == (str(src), bad_at[0])


@pytest.mark.parametrize(
    "name, data",
    [
        ("deep.jsonl", b'{"messages": ' + b"[" * 100_000 + b"]" * 100_000 + b"}\n"),  # was RecursionError
        ("deep.json", b"[" + b"[" * 100_000 + b"]" * 100_000 + b"]"),  # was RecursionError
        ("meta.jsonl", b'{"messages": [{"role": "user", "content": "a"}, {"role": "assistant", "content": "b"}], "m": ' + b"[" * 900 + b"]" * 900 + b"}\n"),  # was RecursionError when written
        ("digits.jsonl", b'{"text": "a", "n": ' + b"9" * 5000 + b"}\n"),  # was ValueError in format detection
        ("inf.jsonl", b'{"text": "a"}\n{"text": "b", "n": 1e400}\n'),  # was stored as Infinity, which no JSON reader re-reads
    ],
)
def test_inputs_that_crashed_ingest_are_clear_errors(name: str, data: bytes) -> None:
    outcome = check_outcome(data, name, skip_invalid=False)
    assert isinstance(outcome, DataError) and outcome.line is not None
    skipped = check_outcome(data, name, skip_invalid=True)
    assert isinstance(skipped, DataError) or skipped["ingest"]["rows_rejected"] >= 1


def test_the_outcome_check_catches_a_broken_dataset() -> None:
    """The checker itself can fail: a dataset holding Infinity (as 1e400 was stored before the
    fix) does not re-ingest to the same hash."""
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        (tmp / "a.jsonl").write_text('{"text": "a", "n": 1.5}\n', encoding="utf-8")
        ingest(tmp / "a.jsonl", tmp / "ds")
        formats.export_main(load_config(ExportConfig, overrides={"dataset": str(tmp / "ds"), "out": str(tmp / "rows.jsonl")}))
        exported = (tmp / "rows.jsonl").read_text(encoding="utf-8").replace("1.5", "Infinity")
        (tmp / "rows.jsonl").write_text(exported, encoding="utf-8")
        with pytest.raises(DataError, match="Infinity is not valid JSON"):
            ingest(tmp / "rows.jsonl", tmp / "again")
