"""Property tests: any Unicode text survives ingest -> export unchanged, in every format.

Text includes line and paragraph separators (U+2028/2029, NEL), lone CR, NUL, emoji,
right-to-left marks and a BOM, which break readers that split lines with
`str.splitlines()` or decode in fixed-size blocks.
"""

from __future__ import annotations

import csv
import io
import json
import tempfile
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from chatforge.config import load_config
from chatforge.data import formats
from chatforge.data.dataset import open_dataset
from chatforge.data.formats import ExportConfig, IngestConfig

TRICKY = ["\u2028", "\u2029", "\x85", "\r", "\n", "\x00", "\ufeff", "\U0001f600", "\u202e", "\u05e9", '"', ",", "\\", "\t", " "]
chars = st.one_of(st.characters(exclude_categories=("Cs",)), st.sampled_from(TRICKY))
any_text = st.text(alphabet=chars, max_size=40)
content = any_text.filter(lambda s: s.strip() != "")

SETTINGS = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def ingest(files: list[Path], out: Path, **overrides: Any) -> dict[str, Any]:
    ov: dict[str, Any] = {"files": [str(f) for f in files], "out": str(out)}
    ov.update(overrides)
    return formats.main(load_config(IngestConfig, overrides=ov))


def export(ds: Path, out: Path, fmt: str = "jsonl") -> list[dict[str, Any]]:
    formats.export_main(load_config(ExportConfig, overrides={"dataset": str(ds), "out": str(out), "format": fmt}))
    # split on "\n" only: a reader of JSONL must not split on U+2028 or a lone CR
    lines = out.read_text(encoding="utf-8").split("\n")
    assert lines[-1] == ""
    return [json.loads(line) for line in lines[:-1]]


def conversation(system: str | None, turns: list[tuple[str, str]]) -> list[dict[str, str]]:
    msgs = [{"role": "system", "content": system}] if system is not None else []
    for user, assistant in turns:
        msgs += [{"role": "user", "content": user}, {"role": "assistant", "content": assistant}]
    return msgs


conversations = st.lists(
    st.tuples(st.none() | content, st.lists(st.tuples(content, content), min_size=1, max_size=3)), min_size=1, max_size=3
)


@SETTINGS
@given(convs=conversations, ascii_only=st.booleans())
def test_openai_jsonl_round_trip(convs: list[tuple[str | None, list[tuple[str, str]]]], ascii_only: bool) -> None:
    want = [conversation(s, t) for s, t in convs]
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        src = tmp / "in.jsonl"
        src.write_text("".join(json.dumps({"messages": m}, ensure_ascii=ascii_only) + "\n" for m in want), encoding="utf-8")
        man = ingest([src], tmp / "ds")
        assert [r["messages"] for r in export(tmp / "ds", tmp / "out.jsonl", "openai")] == want
        # the canonical export re-ingests to the very same rows
        export(tmp / "ds", tmp / "rows.jsonl")
        assert ingest([tmp / "rows.jsonl"], tmp / "again")["content_hash"] == man["content_hash"]


@SETTINGS
@given(convs=conversations, indent=st.sampled_from([None, 1, 4]))
def test_sharegpt_json_array_round_trip(convs: list[tuple[str | None, list[tuple[str, str]]]], indent: int | None) -> None:
    records = []
    for system, turns in convs:
        conv = [t for u, a in turns for t in ({"from": "human", "value": u}, {"from": "gpt", "value": a})]
        records.append({"conversations": conv, **({"system": system} if system is not None else {})})
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        src = tmp / "share.json"
        src.write_text(json.dumps(records, indent=indent, ensure_ascii=False), encoding="utf-8")
        ingest([src], tmp / "ds")
        got = [r["messages"] for r in export(tmp / "ds", tmp / "out.jsonl", "openai")]
    # a whitespace-only top-level system prompt is dropped; otherwise it becomes the first message
    assert got == [conversation(s if s is not None and s.strip() else None, t) for s, t in convs]


@SETTINGS
@given(
    items=st.lists(st.tuples(content, any_text, content), min_size=1, max_size=4),
    layout=st.sampled_from(["json", "jsonl"]),
)
def test_alpaca_round_trip(items: list[tuple[str, str, str]], layout: str) -> None:
    records = [{"instruction": i, "input": x, "output": o} for i, x, o in items]
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        src = tmp / f"alpaca.{layout}"
        if layout == "json":
            src.write_text(json.dumps(records, ensure_ascii=False), encoding="utf-8")
        else:
            src.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records), encoding="utf-8")
        ingest([src], tmp / "ds")
        got = [r["messages"] for r in export(tmp / "ds", tmp / "out.jsonl", "openai")]
    want = [
        [{"role": "user", "content": f"{i}\n\n{x}" if x.strip() else i}, {"role": "assistant", "content": o}]
        for i, x, o in items
    ]
    assert got == want


@SETTINGS
@given(
    table=st.lists(st.tuples(st.sampled_from(["A", "B", "C"]), content, content), min_size=1, max_size=6),
    grouped=st.booleans(),
)
def test_csv_round_trip(table: list[tuple[str, str, str]], grouped: bool) -> None:
    buf = io.StringIO()
    w = csv.writer(buf)
    w.writerow(["ticket", "user", "assistant"])
    w.writerows(table)
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        src = tmp / "log.csv"
        src.write_text(buf.getvalue(), encoding="utf-8", newline="")
        ingest([src], tmp / "ds", **({"csv.conversation_col": "ticket"} if grouped else {}))
        got = [(r["id"], r["messages"]) for r in export(tmp / "ds", tmp / "out.jsonl")]
    if grouped:
        order = list(dict.fromkeys(t for t, _, _ in table))
        want = [(t, conversation(None, [(u, a) for tt, u, a in table if tt == t])) for t in order]
        assert got == want
    else:
        assert [m for _, m in got] == [conversation(None, [(u, a)]) for _, u, a in table]
        assert len({i for i, _ in got}) == len(table)


text_file = st.text(alphabet=chars, min_size=1, max_size=300).filter(lambda s: s.removeprefix("\ufeff").strip() != "")


@SETTINGS
@given(body=text_file)
def test_text_file_exact_bytes(body: str) -> None:
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        src = tmp / "doc.txt"
        src.write_bytes(body.encode("utf-8"))
        ingest([src], tmp / "ds")
        got = export(tmp / "ds", tmp / "out.jsonl")
    assert [r["text"] for r in got] == [body.removeprefix("\ufeff")]  # a leading BOM is not text


lines_of_text = st.lists(st.one_of(st.just(""), st.just(" "), any_text, st.text(alphabet="xy ", min_size=50, max_size=260)), max_size=40)


@SETTINGS
@given(lines=lines_of_text, ending=st.sampled_from(["\n", "\r\n"]), final_newline=st.booleans())
def test_long_text_rows_concatenate_to_the_file(lines: list[str], ending: str, final_newline: bool) -> None:
    body = ending.join(line.replace("\n", " ") for line in lines) + (ending if final_newline else "")
    if not body.removeprefix("\ufeff").strip():
        body = "x" + body
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        src = tmp / "long.md"
        src.write_bytes(body.encode("utf-8"))
        ingest([src], tmp / "ds", **{"text.max_chars": 100})
        ds = open_dataset(tmp / "ds")
        got = [r["text"] for r in ds]
    assert "".join(got) == body.removeprefix("\ufeff")
    assert all(t.strip() for t in got)  # no row is only whitespace
