"""Ingest and export (`chatforge.data.formats`): every input format, every error, round trips.

Each test writes real files in tmp_path, runs the stage's `main(cfg)` as the CLI would,
and reads the dataset back with `open_dataset`.
"""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path
from typing import Any

import pytest

from chatforge.config import load_config
from chatforge.data import formats
from chatforge.data.dataset import open_dataset
from chatforge.data.formats import ExportConfig, IngestConfig
from chatforge.errors import DataError, UserError

# --------------------------------------------------------------------------------------
# helpers


def ingest(files: list[Path] | Path, out: Path, **overrides: Any) -> dict[str, Any]:
    """Run `data ingest FILES --out OUT` with dotted overrides; returns the manifest."""
    if isinstance(files, Path):
        files = [files]
    ov: dict[str, Any] = {"files": [str(f) for f in files], "out": str(out)}
    ov.update({k.replace("__", "."): v for k, v in overrides.items()})
    return formats.main(load_config(IngestConfig, overrides=ov))


def rows(ds: Path) -> list[dict[str, Any]]:
    return list(open_dataset(ds))


def export(ds: Path, out: Path, fmt: str = "jsonl") -> list[dict[str, Any]]:
    n = formats.export_main(load_config(ExportConfig, overrides={"dataset": str(ds), "out": str(out), "format": fmt}))
    lines = out.read_bytes().split(b"\n")
    assert lines[-1] == b"" and len(lines) - 1 == n  # one row per line, newline-terminated
    return [json.loads(line) for line in lines[:-1]]


def write_jsonl(path: Path, objs: list[Any]) -> Path:
    path.write_text("".join(json.dumps(o) + "\n" for o in objs), encoding="utf-8")
    return path


def write_csv(path: Path, table: list[list[str]], delimiter: str = ",") -> Path:
    buf = io.StringIO()
    csv.writer(buf, delimiter=delimiter).writerows(table)
    path.write_text(buf.getvalue(), encoding="utf-8", newline="")
    return path


def msgs(*pairs: str) -> list[dict[str, str]]:
    """msgs("user", "hi", "assistant", "hello") -> a message list."""
    return [{"role": r, "content": c} for r, c in zip(pairs[::2], pairs[1::2], strict=True)]


def rejected(ds: Path) -> list[dict[str, Any]]:
    path = ds / "rejected.jsonl"
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def check_counts(manifest: dict[str, Any], ds: Path) -> None:
    """rows in = written + rejected, per file and in total, and agreeing with the dataset."""
    ing = manifest["ingest"]
    for f in ing["files"]:
        assert f["rows_in"] == f["rows_written"] + f["rows_rejected"], f
        assert sum(f["reasons"].values()) == f["rows_rejected"]
    for key in ("rows_in", "rows_written", "rows_rejected"):
        assert ing[key] == sum(f[key] for f in ing["files"])
    assert ing["rows_in"] == ing["rows_written"] + ing["rows_rejected"]
    assert manifest["num_rows"] == ing["rows_written"] == len(rows(ds))
    assert len(rejected(ds)) == ing["rows_rejected"]


def file_format(manifest: dict[str, Any]) -> list[str]:
    return [f["format"] for f in manifest["ingest"]["files"]]


CONV = {"messages": msgs("user", "hi", "assistant", "hello")}


# --------------------------------------------------------------------------------------
# OpenAI chat JSONL


def test_openai_jsonl_string_content(tmp_path: Path) -> None:
    m1 = msgs("system", "be brief", "user", "where is my order?", "assistant", "it ships today")
    m2 = msgs("user", "a", "assistant", "b", "user", "c", "assistant", "d")
    src = write_jsonl(tmp_path / "chats.jsonl", [{"messages": m1}, {"messages": m2, "id": "t-7", "lang": "en"}])
    man = ingest(src, tmp_path / "ds")
    assert man["kind"] == "conversations" and file_format(man) == ["openai"]
    got = rows(tmp_path / "ds")
    assert [r["messages"] for r in got] == [m1, m2]
    # ids: given ones kept, missing ones from file:line; unknown fields go to meta
    assert [r["id"] for r in got] == ["chats.jsonl:1", "t-7"]
    assert [r["source"] for r in got] == ["chats.jsonl", "chats.jsonl"]
    assert got[1]["meta"] == {"lang": "en"}
    assert open_dataset(tmp_path / "ds").kind == "conversations"


def test_openai_content_parts_joined_and_developer_is_system(tmp_path: Path) -> None:
    rec = {
        "messages": [
            {"role": "developer", "content": "house rules"},
            {"role": "user", "content": [{"type": "text", "text": "line one"}, {"type": "text", "text": "line two"}]},
            {"role": "assistant", "content": [{"type": "text", "text": "ok"}]},
        ]
    }
    ingest(write_jsonl(tmp_path / "p.jsonl", [rec]), tmp_path / "ds")
    (row,) = rows(tmp_path / "ds")
    assert row["messages"] == msgs("system", "house rules", "user", "line one\nline two", "assistant", "ok")


def test_openai_non_text_part_is_a_clear_error(tmp_path: Path) -> None:
    img = {"type": "image_url", "image_url": {"url": "http://x/y.png"}}
    src = write_jsonl(tmp_path / "img.jsonl", [CONV, {"messages": [{"role": "user", "content": [img]}, CONV["messages"][1]]}])
    with pytest.raises(DataError) as ei:
        ingest(src, tmp_path / "ds")
    assert ei.value.line == 2 and ei.value.file == str(src)
    assert 'message 1 has a content part of type "image_url"; only text parts are supported' in ei.value.reason
    assert not (tmp_path / "ds").exists()


def test_meta_id_and_source_are_kept(tmp_path: Path) -> None:
    src = write_jsonl(
        tmp_path / "m.jsonl",
        [{**CONV, "id": 12, "source": "crm", "meta": {"team": "b"}, "score": 3}, {**CONV, "id": True}],
    )
    ingest(src, tmp_path / "ds", skip_invalid=True)
    (a,) = rows(tmp_path / "ds")
    assert (a["id"], a["source"], a["meta"]) == ("12", "crm", {"team": "b", "score": 3})
    assert [r["reason"] for r in rejected(tmp_path / "ds")] == ['field "id" must be a string or a number, got bool']


# --------------------------------------------------------------------------------------
# ShareGPT


SHAREGPT = [
    {
        "id": "s1",
        "system": "You are a support agent.",
        "conversations": [{"from": "human", "value": "my card broke"}, {"from": "gpt", "value": "sorry to hear"}],
    },
    {
        "conversations": [
            {"from": "system", "value": "sys"},
            {"from": "human", "value": "q1"},
            {"from": "gpt", "value": "a1"},
            {"from": "human", "value": "q2"},
            {"from": "gpt", "value": "a2"},
        ]
    },
]
SHAREGPT_WANT = [
    msgs("system", "You are a support agent.", "user", "my card broke", "assistant", "sorry to hear"),
    msgs("system", "sys", "user", "q1", "assistant", "a1", "user", "q2", "assistant", "a2"),
]


def test_sharegpt_json_array_pretty_printed(tmp_path: Path) -> None:
    text = json.dumps(SHAREGPT, indent=2)
    src = tmp_path / "share.json"
    src.write_text(text, encoding="utf-8")
    man = ingest(src, tmp_path / "ds")
    assert file_format(man) == ["sharegpt"]
    got = rows(tmp_path / "ds")
    assert [r["messages"] for r in got] == SHAREGPT_WANT
    # the second record starts on the line of its "{"
    second_line = text.splitlines().index("  {", 2) + 1
    assert [r["id"] for r in got] == ["s1", f"share.json:{second_line}"]
    assert got[0]["meta"] == {}  # "system" is a known field, not meta


def test_sharegpt_jsonl(tmp_path: Path) -> None:
    src = write_jsonl(tmp_path / "share.jsonl", SHAREGPT)
    man = ingest(src, tmp_path / "ds")
    assert file_format(man) == ["sharegpt"]
    assert [r["messages"] for r in rows(tmp_path / "ds")] == SHAREGPT_WANT


def test_sharegpt_unknown_from_is_an_error(tmp_path: Path) -> None:
    bad = {"conversations": [{"from": "human", "value": "q"}, {"from": "bot", "value": "a"}]}
    src = write_jsonl(tmp_path / "s.jsonl", [SHAREGPT[0], bad])
    with pytest.raises(DataError) as ei:
        ingest(src, tmp_path / "ds")
    assert ei.value.line == 2
    assert 'turn 2 has "from": "bot"; expected human, gpt or system' in ei.value.reason


# --------------------------------------------------------------------------------------
# Alpaca, prompt/completion


ALPACA = [
    {"instruction": "Translate to French", "input": "good morning", "output": "bonjour"},
    {"instruction": "Name a color", "output": "blue"},
    {"instruction": "Say hi", "input": "  ", "output": "hi", "system": "be kind", "category": "greet"},
]
ALPACA_WANT = [
    msgs("user", "Translate to French\n\ngood morning", "assistant", "bonjour"),
    msgs("user", "Name a color", "assistant", "blue"),
    msgs("system", "be kind", "user", "Say hi", "assistant", "hi"),
]


@pytest.mark.parametrize("layout", ["json", "jsonl"])
def test_alpaca(tmp_path: Path, layout: str) -> None:
    src = tmp_path / f"alpaca.{layout}"
    if layout == "json":
        src.write_text(json.dumps(ALPACA, indent=1), encoding="utf-8")
    else:
        write_jsonl(src, ALPACA)
    man = ingest(src, tmp_path / "ds")
    assert file_format(man) == ["alpaca"]
    got = rows(tmp_path / "ds")
    assert [r["messages"] for r in got] == ALPACA_WANT
    assert got[2]["meta"] == {"category": "greet"}


def test_alpaca_missing_output_in_a_later_record(tmp_path: Path) -> None:
    src = write_jsonl(tmp_path / "a.jsonl", [ALPACA[0], {"instruction": "x"}])
    with pytest.raises(DataError) as ei:
        ingest(src, tmp_path / "ds")
    assert (ei.value.line, ei.value.reason) == (2, 'missing field "output" (pass --skip-invalid to skip bad rows)')


def test_prompt_completion(tmp_path: Path) -> None:
    src = write_jsonl(
        tmp_path / "pc.jsonl",
        [
            {"prompt": "2+2?", "completion": "4"},
            {"prompt": msgs("system", "math", "user", "3+3?"), "completion": [{"role": "assistant", "content": "6"}]},
        ],
    )
    man = ingest(src, tmp_path / "ds")
    assert file_format(man) == ["prompt-completion"] and man["kind"] == "conversations"
    assert [r["messages"] for r in rows(tmp_path / "ds")] == [
        msgs("user", "2+2?", "assistant", "4"),
        msgs("system", "math", "user", "3+3?", "assistant", "6"),
    ]


# --------------------------------------------------------------------------------------
# Preferences


def test_preference_explicit_and_implicit_prompts(tmp_path: Path) -> None:
    convo = msgs("user", "hi", "assistant", "hello", "user", "refund?")
    src = write_jsonl(
        tmp_path / "pref.jsonl",
        [
            {"prompt": "capital of France?", "chosen": "Paris", "rejected": "Lyon"},
            {"prompt": convo, "chosen": "yes, done", "rejected": "no"},
            {
                "chosen": [*convo, {"role": "assistant", "content": "refunded"}],
                "rejected": [*convo, {"role": "assistant", "content": "go away"}],
            },
            {"prompt": "q", "chosen": [{"role": "assistant", "content": "good"}], "rejected": "bad"},
        ],
    )
    man = ingest(src, tmp_path / "ds")
    assert man["kind"] == "preferences" and file_format(man) == ["preference"]
    got = rows(tmp_path / "ds")
    assert [(r["prompt"], r["chosen"], r["rejected"]) for r in got] == [
        (msgs("user", "capital of France?"), "Paris", "Lyon"),
        (convo, "yes, done", "no"),
        (convo, "refunded", "go away"),
        (msgs("user", "q"), "good", "bad"),
    ]
    assert open_dataset(tmp_path / "ds").kind == "preferences"


@pytest.mark.parametrize(
    ("record", "reason"),
    [
        (
            {"prompt": msgs("user", "q", "assistant", "a"), "chosen": "x", "rejected": "y"},
            "prompt ends with an assistant turn; it must end with a user turn",
        ),
        ({"prompt": "q", "chosen": "same", "rejected": "same"}, "chosen and rejected answers are identical"),
        ({"prompt": "q", "chosen": " ", "rejected": "y"}, "chosen and rejected answers must not be empty"),
        (
            {"chosen": msgs("user", "a", "assistant", "x"), "rejected": msgs("user", "b", "assistant", "y")},
            'without "prompt", "chosen" and "rejected" must be conversations that differ only in the final assistant message',
        ),
    ],
)
def test_preference_errors(tmp_path: Path, record: dict[str, Any], reason: str) -> None:
    good = {"prompt": "q", "chosen": "a", "rejected": "b"}
    src = write_jsonl(tmp_path / "pref.jsonl", [good, record])
    with pytest.raises(DataError) as ei:
        ingest(src, tmp_path / "ds")
    assert ei.value.line == 2 and ei.value.reason.startswith(reason)
    assert not (tmp_path / "ds").exists()


# --------------------------------------------------------------------------------------
# CSV


def test_csv_one_exchange_per_row(tmp_path: Path) -> None:
    src = write_csv(
        tmp_path / "log.csv",
        [["user", "assistant", "agent"], ["hi", "hello", "ann"], ["two\nlines", "reply, with comma", "bo"], ["q", "a", "cy"]],
    )
    man = ingest(src, tmp_path / "ds")
    assert file_format(man) == ["csv"]
    got = rows(tmp_path / "ds")
    assert [r["messages"] for r in got] == [
        msgs("user", "hi", "assistant", "hello"),
        msgs("user", "two\nlines", "assistant", "reply, with comma"),
        msgs("user", "q", "assistant", "a"),
    ]
    # ids from the line each row starts on; the quoted two-line field moves the next row to line 5
    assert [r["id"] for r in got] == ["log.csv:2", "log.csv:3", "log.csv:5"]


def test_csv_conversation_column_groups_interleaved_rows_in_order(tmp_path: Path) -> None:
    table = [
        ["ticket", "user", "assistant", "ts"],
        ["T2", "t2 q1", "t2 a1", "1"],
        ["T1", "t1 q1", "t1 a1", "2"],
        ["T3", "t3 q1", "t3 a1", "3"],
        ["T1", "t1 q2", "t1 a2", "4"],
        ["T2", "t2 q2", "t2 a2", "5"],
        ["T1", "t1 q3", "t1 a3", "6"],
    ]
    src = write_csv(tmp_path / "tickets.csv", table)
    man = ingest(src, tmp_path / "ds", csv__conversation_col="ticket")
    got = rows(tmp_path / "ds")
    # conversations in order of their first row; messages in file order
    assert [r["id"] for r in got] == ["T2", "T1", "T3"]
    assert got[0]["messages"] == msgs("user", "t2 q1", "assistant", "t2 a1", "user", "t2 q2", "assistant", "t2 a2")
    assert got[1]["messages"] == msgs(
        "user", "t1 q1", "assistant", "t1 a1", "user", "t1 q2", "assistant", "t1 a2", "user", "t1 q3", "assistant", "t1 a3"
    )
    assert got[2]["messages"] == msgs("user", "t3 q1", "assistant", "t3 a1")
    assert man["ingest"]["rows_in"] == 3


def test_csv_long_format_with_role_and_content_columns(tmp_path: Path) -> None:
    table = [
        ["conv", "speaker", "text"],
        ["a", "system", "be nice"],
        ["b", "user", "b hi"],
        ["a", "user", "a hi"],
        ["b", "Assistant", "b hello"],
        ["a", "assistant", "a hello"],
    ]
    src = write_csv(tmp_path / "long.csv", table)
    ingest(src, tmp_path / "ds", csv__conversation_col="conv", csv__role_col="speaker", csv__content_col="text")
    got = rows(tmp_path / "ds")
    assert [(r["id"], r["messages"]) for r in got] == [
        ("a", msgs("system", "be nice", "user", "a hi", "assistant", "a hello")),
        ("b", msgs("user", "b hi", "assistant", "b hello")),
    ]


def test_csv_role_column_needs_conversation_column(tmp_path: Path) -> None:
    src = write_csv(tmp_path / "long.csv", [["role", "content"], ["user", "x"]])
    with pytest.raises(UserError, match=r"needs --csv\.conversation-col"):
        ingest(src, tmp_path / "ds", csv__role_col="role")
    assert not (tmp_path / "ds").exists()


def test_csv_unknown_role_in_long_format(tmp_path: Path) -> None:
    src = write_csv(tmp_path / "long.csv", [["c", "role", "content"], ["1", "user", "x"], ["1", "bot", "y"]])
    with pytest.raises(DataError) as ei:
        ingest(src, tmp_path / "ds", csv__conversation_col="c", csv__role_col="role")
    assert ei.value.line == 2 and 'message 2 has role "bot"; expected system, user or assistant' in ei.value.reason


def test_csv_system_column(tmp_path: Path) -> None:
    table = [
        ["id", "sys", "user", "assistant"],
        ["1", "", "q1", "a1"],
        ["1", "policy v2", "q2", "a2"],
        ["2", "", "q", "a"],
        ["1", "policy v3", "q3", "a3"],
    ]
    src = write_csv(tmp_path / "s.csv", table)
    ingest(src, tmp_path / "ds", csv__conversation_col="id", csv__system_col="sys")
    got = rows(tmp_path / "ds")
    # the first non-empty system value of a conversation; none for conversation 2
    assert got[0]["messages"] == msgs(
        "system", "policy v2", "user", "q1", "assistant", "a1", "user", "q2", "assistant", "a2", "user", "q3", "assistant", "a3"
    )
    assert got[1]["messages"] == msgs("user", "q", "assistant", "a")
    # without grouping, each row carries its own system prompt
    ingest(src, tmp_path / "ds2", csv__system_col="sys")
    assert [r["messages"][0] for r in rows(tmp_path / "ds2")] == [
        {"role": "user", "content": "q1"},
        {"role": "system", "content": "policy v2"},
        {"role": "user", "content": "q"},
        {"role": "system", "content": "policy v3"},
    ]


def test_tsv_and_custom_columns_and_delimiter(tmp_path: Path) -> None:
    tsv = write_csv(tmp_path / "x.tsv", [["question", "answer"], ["a,b", "c;d"]], delimiter="\t")
    ingest(tsv, tmp_path / "ds", csv__user_col="question", csv__assistant_col="answer")
    assert [r["messages"] for r in rows(tmp_path / "ds")] == [msgs("user", "a,b", "assistant", "c;d")]
    semi = write_csv(tmp_path / "y.csv", [["q", "a"], ["x,y", "z"]], delimiter=";")
    ingest(semi, tmp_path / "ds2", csv__user_col="q", csv__assistant_col="a", csv__delimiter=";")
    assert [r["messages"] for r in rows(tmp_path / "ds2")] == [msgs("user", "x,y", "assistant", "z")]


def test_csv_missing_column_names_it_and_lists_the_columns(tmp_path: Path) -> None:
    src = write_csv(tmp_path / "c.csv", [["question", "answer"], ["q", "a"]])
    with pytest.raises(DataError) as ei:
        ingest(src, tmp_path / "ds")
    assert (ei.value.file, ei.value.line) == (str(src), 1)
    assert ei.value.reason == "no column 'user' (set --csv.user-col); the columns are: question, answer"
    with pytest.raises(DataError, match=r"no column 'ticket' \(set --csv.conversation-col\)"):
        ingest(src, tmp_path / "ds", csv__user_col="question", csv__assistant_col="answer", csv__conversation_col="ticket")
    assert not (tmp_path / "ds").exists()


def test_csv_row_with_wrong_field_count_is_rejected_with_its_line(tmp_path: Path) -> None:
    src = tmp_path / "c.csv"
    src.write_text("user,assistant\nq1,a1\nq2,a2,extra\n\nq3,a3\n", encoding="utf-8")
    with pytest.raises(DataError) as ei:
        ingest(src, tmp_path / "ds")
    assert ei.value.line == 3 and "has 3 fields but the header has 2" in ei.value.reason
    man = ingest(src, tmp_path / "ds", skip_invalid=True)
    assert [r["id"] for r in rows(tmp_path / "ds")] == ["c.csv:2", "c.csv:5"]
    (rej,) = rejected(tmp_path / "ds")
    assert rej["line"] == 3 and rej["file"] == str(src)
    check_counts(man, tmp_path / "ds")


def test_csv_unclosed_quote_is_an_error_at_its_row(tmp_path: Path) -> None:
    # Regression: the open quote swallowed every later row into one field, silently.
    src = tmp_path / "q.csv"
    src.write_text('user,assistant\nq1,a1\nq2,"a2 never closed\nq3,a3\nq4,a4\n', encoding="utf-8")
    with pytest.raises(DataError) as ei:
        ingest(src, tmp_path / "ds", skip_invalid=True)
    assert (ei.value.line, ei.value.reason) == (3, "invalid CSV: unexpected end of data")
    src.write_text('user,assistant\nq1,a1\nq2,"a2" junk\n', encoding="utf-8")
    with pytest.raises(DataError) as ei:
        ingest(src, tmp_path / "ds")
    assert ei.value.line == 3 and ei.value.reason.startswith("invalid CSV")
    assert not (tmp_path / "ds").exists()


def test_csv_field_longer_than_the_csv_module_default_limit(tmp_path: Path) -> None:
    long_reply = "x" * 200_000  # the csv module rejects fields over 128 KiB by default
    src = write_csv(tmp_path / "l.csv", [["user", "assistant"], ["q", long_reply]])
    ingest(src, tmp_path / "ds")
    assert [r["messages"] for r in rows(tmp_path / "ds")] == [msgs("user", "q", "assistant", long_reply)]


# --------------------------------------------------------------------------------------
# Plain text and Markdown


def test_folder_with_a_non_text_format_is_a_user_error(tmp_path: Path) -> None:
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "a.txt").write_text("hello", encoding="utf-8")
    with pytest.raises(UserError, match="is a folder, which is read as text files"):
        ingest(docs, tmp_path / "ds", format="openai")
    assert not (tmp_path / "ds").exists()
    ingest(docs, tmp_path / "ds", format="text")
    assert [r["text"] for r in rows(tmp_path / "ds")] == ["hello"]


def test_text_file_one_row_exact_text(tmp_path: Path) -> None:
    body = "# Returns\n\nItems can be returned in 30 days.\r\nKeep the receipt.  \n\n\n"
    src = tmp_path / "faq.md"
    src.write_bytes(body.encode("utf-8"))
    man = ingest(src, tmp_path / "ds")
    assert man["kind"] == "text" and file_format(man) == ["text"]
    (row,) = rows(tmp_path / "ds")
    assert row == {"id": "faq.md", "text": body, "source": "faq.md", "meta": {"file": "faq.md", "line": 1}}


def test_text_folder_recursive_hidden_skipped(tmp_path: Path) -> None:
    docs = tmp_path / "docs"
    (docs / "sub" / "deeper").mkdir(parents=True)
    (docs / ".git").mkdir()
    (docs / "b.txt").write_text("bee", encoding="utf-8")
    (docs / "a.md").write_text("ay", encoding="utf-8")
    (docs / "sub" / "c.markdown").write_text("sea", encoding="utf-8")
    (docs / "sub" / "deeper" / "d.rst").write_text("dee", encoding="utf-8")
    (docs / ".hidden.txt").write_text("secret", encoding="utf-8")
    (docs / ".git" / "notes.txt").write_text("git", encoding="utf-8")
    (docs / "image.png").write_bytes(b"\x89PNG\xff\xfe")
    (docs / "data.json").write_text('{"text": "not a text file"}', encoding="utf-8")
    man = ingest(docs, tmp_path / "ds")
    assert man["kind"] == "text"
    got = rows(tmp_path / "ds")
    assert [(r["id"], r["text"]) for r in got] == [
        ("a.md", "ay"),
        ("b.txt", "bee"),
        ("sub/c.markdown", "sea"),
        ("sub/deeper/d.rst", "dee"),
    ]
    assert man["ingest"]["rows_in"] == 4


def test_text_unit_paragraph(tmp_path: Path) -> None:
    src = tmp_path / "p.txt"
    src.write_text("first para\nstill first\n\n\nsecond\n   \nthird\r\n", encoding="utf-8", newline="")
    ingest(src, tmp_path / "ds", text__unit="paragraph")
    got = rows(tmp_path / "ds")
    assert [(r["id"], r["text"], r["meta"]["line"]) for r in got] == [
        ("p.txt:1", "first para\nstill first", 1),
        ("p.txt:5", "second", 5),
        ("p.txt:7", "third", 7),
    ]


def test_long_text_split_into_rows_that_concatenate_to_the_file(tmp_path: Path) -> None:
    paras = [f"paragraph {i} " + "word " * (i % 7 * 9 + 3) for i in range(60)]
    body = "\n\n".join(paras) + "\n" + "x" * 450 + "\n" + "\n\n\n  \n"  # a long line, then blank tail
    src = tmp_path / "long.txt"
    src.write_text(body, encoding="utf-8", newline="")
    ingest(src, tmp_path / "ds", text__max_chars=200)
    got = rows(tmp_path / "ds")
    assert len(got) > 5
    assert "".join(r["text"] for r in got) == body
    assert all(r["text"].strip() for r in got)
    assert got[0]["id"] == "long.txt"
    # each later row starts at the line its id and meta name
    lines = body.split("\n")
    for r in got[1:]:
        line = r["meta"]["line"]
        assert r["id"] == f"long.txt:{line}"
        assert r["text"].split("\n")[0] == lines[line - 1]
    # rows are cut near the size asked for (a blank line after max_chars, any line after 2x)
    assert all(len(r["text"]) < 2 * 200 + 460 for r in got)


def test_text_whitespace_tail_after_a_cut_is_not_lost(tmp_path: Path) -> None:
    # Regression: the tail "\n\n\n" became a whitespace-only chunk and was dropped.
    body = "A" * 150 + "\n" + "\n\n\n"
    src = tmp_path / "t.txt"
    src.write_text(body, encoding="utf-8", newline="")
    ingest(src, tmp_path / "ds", text__max_chars=100)
    assert "".join(r["text"] for r in rows(tmp_path / "ds")) == body


def test_text_json_records(tmp_path: Path) -> None:
    src = write_jsonl(tmp_path / "kb.jsonl", [{"text": "doc one"}, {"text": "doc two", "title": "T"}])
    man = ingest(src, tmp_path / "ds")
    assert man["kind"] == "text" and file_format(man) == ["text"]
    got = rows(tmp_path / "ds")
    assert [(r["id"], r["text"], r["meta"]) for r in got] == [
        ("kb.jsonl:1", "doc one", {}),
        ("kb.jsonl:2", "doc two", {"title": "T"}),
    ]


def test_text_file_errors(tmp_path: Path) -> None:
    empty = tmp_path / "empty.txt"
    empty.write_text(" \n\n\t\n", encoding="utf-8")
    with pytest.raises(DataError) as ei:
        ingest(empty, tmp_path / "ds")
    assert (ei.value.line, ei.value.reason) == (1, "file has no text (pass --skip-invalid to skip bad rows)")
    bad = tmp_path / "bad.txt"
    bad.write_bytes(b"ok\nfine\nbr\xc3\x28oken\n")
    with pytest.raises(DataError) as ei:
        ingest(bad, tmp_path / "ds")
    assert ei.value.line == 3 and ei.value.reason.startswith("not valid UTF-8 (byte 0xc3 at column 3)")
    assert not (tmp_path / "ds").exists()


# --------------------------------------------------------------------------------------
# Multi-line JSON: line numbers of records and errors


def test_concatenated_pretty_printed_objects_line_numbers(tmp_path: Path) -> None:
    objs = [
        CONV,
        {"messages": msgs("user", "x", "assistant", "y", "user", "z", "assistant", "w")},
        {"messages": msgs("user", "q", "bot", "a")},
        CONV,
    ]
    chunks = [json.dumps(o, indent=2) for o in objs]
    text = "\n".join(chunks) + "\n"
    starts = []
    line = 1
    for c in chunks:
        starts.append(line)
        line += c.count("\n") + 1
    src = tmp_path / "pretty.json"
    src.write_text(text, encoding="utf-8")
    with pytest.raises(DataError) as ei:
        ingest(src, tmp_path / "ds")
    assert ei.value.line == starts[2] and 'message 2 has role "bot"' in ei.value.reason
    man = ingest(src, tmp_path / "ds", skip_invalid=True)
    assert [r["id"] for r in rows(tmp_path / "ds")] == [f"pretty.json:{starts[i]}" for i in (0, 1, 3)]
    (rej,) = rejected(tmp_path / "ds")
    assert rej["line"] == starts[2] and json.loads(rej["raw"]) == objs[2]
    check_counts(man, tmp_path / "ds")


def test_json_array_many_lines_record_lines_and_error_line(tmp_path: Path) -> None:
    items = [{"text": f"doc {i}"} for i in range(5)]
    text = json.dumps(items, indent=4)
    src = tmp_path / "arr.json"
    src.write_text(text, encoding="utf-8")
    ingest(src, tmp_path / "ds")
    lines = text.split("\n")
    want = [i + 1 for i, s in enumerate(lines) if s == "    {"]
    assert [r["id"] for r in rows(tmp_path / "ds")] == [f"arr.json:{n}" for n in want]
    # a syntax error deep in the array is reported on its own line
    broken_lines = list(lines)
    target = broken_lines.index('        "text": "doc 3"')
    broken_lines[target] = '        "text" "doc 3"'
    src.write_text("\n".join(broken_lines), encoding="utf-8")
    with pytest.raises(DataError) as ei:
        ingest(src, tmp_path / "ds2", skip_invalid=True)  # a broken stream cannot be skipped past
    assert ei.value.line == target + 1 and ei.value.reason.startswith("invalid JSON: Expecting ':' delimiter")
    assert not (tmp_path / "ds2").exists()


# --------------------------------------------------------------------------------------
# Every error class: message, line, nothing written by default; listed with --skip-invalid

GOOD = json.dumps(CONV)

ROW_ERRORS = [
    ('{"messages": [{"role": "user", "content": "hi"}', "invalid JSON: Expecting ',' delimiter (column 48)"),
    (
        json.dumps({"messages": msgs("user", "hi", "bot", "x")}),
        'message 2 has role "bot"; expected system, user or assistant',
    ),
    (json.dumps({"messages": [{"role": "user"}]}), 'message 1 has no "content"'),
    (json.dumps({"messages": [{"content": "x"}]}), 'message 1 has no "role"'),
    (json.dumps({"conversation": []}), 'missing field "messages"'),
    (json.dumps({"messages": []}), "empty conversation"),
    (json.dumps({"messages": msgs("system", "s")}), "conversation has only a system message and no user/assistant turns"),
    (json.dumps({"messages": msgs("user", "hi", "assistant", " \n")}), "message 2 (assistant) is empty"),
    (
        json.dumps({"messages": msgs("user", "a", "user", "b")}),
        'message 2 has role "user" where a "assistant" turn was expected (turns must alternate user/assistant)',
    ),
    (
        json.dumps({"messages": msgs("assistant", "a", "user", "b")}),
        'message 1 has role "assistant" where a "user" turn was expected',
    ),
    (
        json.dumps({"messages": msgs("user", "a", "assistant", "b", "user", "c")}),
        "conversation ends with a user turn; it needs a final assistant turn",
    ),
    (
        json.dumps({"messages": msgs("user", "a", "system", "s", "assistant", "b")}),
        "message 2 is a system message; a system message may only come first",
    ),
    (json.dumps({"messages": [{"role": "user", "content": 5}]}), "message 1 content must be a string or a list of text parts, got int"),
    (json.dumps({"messages": [{"role": "user", "content": None}]}), "message 1 has no text content"),
    (json.dumps({"messages": "hi"}), '"messages" must be a list of messages, got str'),
    (json.dumps([1, 2]), "expected a JSON object, got list"),
    ('{"messages": [{"role": "user", "content": "a\\ud800"}, {"role": "assistant", "content": "b"}]}', "unpaired surrogate \\ud800"),
]


@pytest.mark.parametrize(("bad", "reason"), ROW_ERRORS, ids=[r for _, r in ROW_ERRORS])
def test_row_error_stops_by_default_and_is_listed_with_skip_invalid(tmp_path: Path, bad: str, reason: str) -> None:
    src = tmp_path / "in.jsonl"
    src.write_text(f"{GOOD}\n\n{bad}\n{GOOD}\n", encoding="utf-8")
    out = tmp_path / "ds"
    with pytest.raises(DataError) as ei:
        ingest(src, out)
    err = ei.value
    assert (err.file, err.line) == (str(src), 3)
    assert reason in err.reason and "--skip-invalid" in err.reason
    assert str(err) == f"{src}:3: {err.reason}"
    assert not out.exists()
    assert not list(tmp_path.glob(".ds*"))  # no staging dir left behind either

    man = ingest(src, out, skip_invalid=True)
    assert [r["id"] for r in rows(out)] == ["in.jsonl:1", "in.jsonl:4"]
    (rej,) = rejected(out)
    assert rej == {"file": str(src), "line": 3, "reason": rej["reason"], "raw": bad}
    assert reason in rej["reason"]
    assert man["ingest"]["rows_in"] == 3  # the blank line is no row
    check_counts(man, out)


def test_invalid_utf8_in_jsonl_is_a_row_error_on_its_line(tmp_path: Path) -> None:
    src = tmp_path / "u.jsonl"
    src.write_bytes(GOOD.encode() + b"\n" + GOOD.encode() + b"\n" + b'{"messages": "caf\xe9"}\n' + GOOD.encode() + b"\n")
    with pytest.raises(DataError) as ei:
        ingest(src, tmp_path / "ds")
    assert ei.value.line == 3 and ei.value.reason.startswith("not valid UTF-8 (byte 0xe9 at column 18)")
    man = ingest(src, tmp_path / "ds", skip_invalid=True)
    (rej,) = rejected(tmp_path / "ds")
    assert rej["line"] == 3 and rej["raw"] == '{"messages": "caf\ufffd"}'
    check_counts(man, tmp_path / "ds")


def test_invalid_utf8_in_json_array_names_its_line(tmp_path: Path) -> None:
    src = tmp_path / "u.json"
    src.write_bytes(b'[\n{"text": "a"},\n{"text": "b"},\n{"text": "c"},\n{"text": "\xff"}\n]\n')
    with pytest.raises(DataError) as ei:
        ingest(src, tmp_path / "ds", skip_invalid=True)
    assert ei.value.line == 5 and ei.value.reason == "not valid UTF-8 (byte 0xff at column 11)"
    assert not (tmp_path / "ds").exists()


def test_invalid_utf8_in_csv_names_its_line(tmp_path: Path) -> None:
    src = tmp_path / "u.csv"
    src.write_bytes(b"user,assistant\nhi,there\nhey,you\nbad\xff,x\nok,ok\n")
    with pytest.raises(DataError) as ei:
        ingest(src, tmp_path / "ds")
    assert ei.value.line == 4 and ei.value.reason == "not valid UTF-8 (byte 0xff at column 4)"
    assert not (tmp_path / "ds").exists()


def test_unclosed_json_array(tmp_path: Path) -> None:
    src = tmp_path / "open.json"
    src.write_text('[\n  {"text": "a"},\n  {"text": "b"}\n', encoding="utf-8")
    with pytest.raises(DataError) as ei:
        ingest(src, tmp_path / "ds", skip_invalid=True)
    assert ei.value.reason == "unexpected end of file: the JSON array is not closed"
    assert ei.value.line == 4 and ei.value.file == str(src)
    assert not (tmp_path / "ds").exists()


def test_data_after_json_array(tmp_path: Path) -> None:
    src = tmp_path / "after.json"
    src.write_text('[{"text": "a"}]\n\n{"text": "b"}\n', encoding="utf-8")
    with pytest.raises(DataError) as ei:
        ingest(src, tmp_path / "ds")
    assert ei.value.line == 3 and "after the end of the JSON array" in ei.value.reason


def test_jsonl_with_a_bad_first_line_is_still_read_line_by_line(tmp_path: Path) -> None:
    # Regression: a bad first line made the file look like one JSON stream, so the whole
    # file failed (at the wrong line) even with --skip-invalid.
    src = tmp_path / "b.jsonl"
    src.write_text('{"messages": [\n' + GOOD + "\n" + GOOD + "\n", encoding="utf-8")
    with pytest.raises(DataError) as ei:
        ingest(src, tmp_path / "ds")
    assert ei.value.line == 1 and ei.value.reason.startswith("invalid JSON")
    man = ingest(src, tmp_path / "ds", skip_invalid=True)
    assert file_format(man) == ["openai"]
    assert [r["id"] for r in rows(tmp_path / "ds")] == ["b.jsonl:2", "b.jsonl:3"]
    assert [r["line"] for r in rejected(tmp_path / "ds")] == [1]
    check_counts(man, tmp_path / "ds")


def test_pretty_printed_json_whose_second_line_is_a_whole_value(tmp_path: Path) -> None:
    src = tmp_path / "odd.json"
    src.write_text('{"text":\n  "hello"\n}\n{"text":\n  "world"\n}\n', encoding="utf-8")
    ingest(src, tmp_path / "ds")
    assert [(r["id"], r["text"]) for r in rows(tmp_path / "ds")] == [("odd.json:1", "hello"), ("odd.json:4", "world")]


def test_utf8_bom_is_not_content(tmp_path: Path) -> None:
    bom = "\ufeff"
    jl = tmp_path / "a.jsonl"
    jl.write_text(bom + GOOD + "\n", encoding="utf-8")
    arr = tmp_path / "b.json"
    arr.write_text(bom + json.dumps([CONV], indent=2), encoding="utf-8")
    cs = tmp_path / "c.csv"
    cs.write_text(bom + "user,assistant\nhi,hello\n", encoding="utf-8")
    man = ingest([jl, arr, cs], tmp_path / "ds")
    assert file_format(man) == ["openai", "openai", "csv"]
    assert [r["messages"] for r in rows(tmp_path / "ds")] == [CONV["messages"]] * 3
    txt = tmp_path / "t.txt"
    txt.write_text(bom + "body\n", encoding="utf-8")
    ingest(txt, tmp_path / "dt")
    assert [r["text"] for r in rows(tmp_path / "dt")] == ["body\n"]


def test_undetectable_format_mentions_format_flag(tmp_path: Path) -> None:
    src = write_jsonl(tmp_path / "odd.jsonl", [{"question": "q", "answer": "a"}])
    with pytest.raises(DataError) as ei:
        ingest(src, tmp_path / "ds")
    assert ei.value.line == 1 and "answer, question" in ei.value.reason and "--format" in ei.value.reason
    log = tmp_path / "chat.log"
    log.write_text(GOOD + "\n", encoding="utf-8")
    with pytest.raises(UserError, match=r"chat\.log: cannot tell the format from the extension '\.log'; pass --format"):
        ingest(log, tmp_path / "ds")
    # with --format it is read
    ingest(log, tmp_path / "ds", format="openai")
    assert [r["messages"] for r in rows(tmp_path / "ds")] == [CONV["messages"]]


def test_empty_json_file_has_no_records(tmp_path: Path) -> None:
    src = tmp_path / "e.json"
    src.write_text("  \n", encoding="utf-8")
    with pytest.raises(DataError, match="file holds no records"):
        ingest(src, tmp_path / "ds")


def test_mixing_conversations_and_preferences_is_an_error(tmp_path: Path) -> None:
    conv = write_jsonl(tmp_path / "c.jsonl", [CONV])
    pref = write_jsonl(tmp_path / "p.jsonl", [{"prompt": "q", "chosen": "a", "rejected": "b"}])
    with pytest.raises(UserError) as ei:
        ingest([conv, pref], tmp_path / "ds")
    msg = str(ei.value)
    assert "different kinds" in msg and "conversations (openai)" in msg and "preferences (preference)" in msg
    assert not (tmp_path / "ds").exists()


def test_nonexistent_input(tmp_path: Path) -> None:
    missing = tmp_path / "nope.jsonl"
    with pytest.raises(UserError, match=r"nope\.jsonl: no such file or directory"):
        ingest([write_jsonl(tmp_path / "c.jsonl", [CONV]), missing], tmp_path / "ds")
    assert not (tmp_path / "ds").exists()


def test_skip_invalid_accounts_for_every_input_row_across_files(tmp_path: Path) -> None:
    jl = tmp_path / "a.jsonl"
    jl_lines = [GOOD, "{oops", json.dumps({"messages": []}), GOOD, "", json.dumps({"messages": msgs("user", "x")}), GOOD]
    jl.write_text("\n".join(jl_lines) + "\n", encoding="utf-8")
    arr = tmp_path / "b.json"
    arr_items = [SHAREGPT[0], {"conversations": [{"from": "alien", "value": "x"}]}, SHAREGPT[1]]
    arr_text = json.dumps(arr_items, indent=2)
    arr.write_text(arr_text, encoding="utf-8")
    alien_line = [i + 1 for i, s in enumerate(arr_text.split("\n")) if s == "  {"][1]
    cs = tmp_path / "c.csv"
    cs.write_text("user,assistant\nq,a\n,empty user\nq,a,extra\nq2,a2\n", encoding="utf-8")
    out = tmp_path / "ds"
    man = ingest([jl, arr, cs], out, skip_invalid=True)
    check_counts(man, out)
    per_file = {f["path"]: f for f in man["ingest"]["files"]}
    # count the input rows ourselves: non-blank JSONL lines, array items, CSV data rows
    assert per_file[str(jl)]["rows_in"] == sum(1 for s in jl_lines if s.strip()) == 6
    assert per_file[str(arr)]["rows_in"] == len(arr_items)
    assert per_file[str(cs)]["rows_in"] == 4
    assert [per_file[str(p)]["rows_rejected"] for p in (jl, arr, cs)] == [3, 1, 2]
    assert man["ingest"]["rows_written"] == 3 + 2 + 2
    rej = rejected(out)
    assert [(r["file"], r["line"]) for r in rej] == [
        (str(jl), 2),
        (str(jl), 3),
        (str(jl), 6),
        (str(arr), alien_line),
        (str(cs), 3),
        (str(cs), 4),
    ]
    assert rej[0]["raw"] == "{oops" and rej[1]["raw"] == jl_lines[2]
    assert json.loads(rej[3]["raw"]) == arr_items[1]
    assert json.loads(rej[4]["raw"]) == {"user": "", "assistant": "empty user"}
    assert per_file[str(jl)]["reasons"]["empty conversation"] == 1
    assert per_file[str(jl)]["reasons"]["invalid JSON"] == 1


def test_skip_invalid_with_no_bad_rows_writes_no_rejected_file(tmp_path: Path) -> None:
    man = ingest(write_jsonl(tmp_path / "c.jsonl", [CONV]), tmp_path / "ds", skip_invalid=True)
    assert not (tmp_path / "ds" / "rejected.jsonl").exists()
    assert man["ingest"]["rows_rejected"] == 0


# --------------------------------------------------------------------------------------
# Determinism and overwrite


def test_same_input_same_content_hash(tmp_path: Path) -> None:
    src = write_jsonl(tmp_path / "c.jsonl", [CONV, {"messages": SHAREGPT_WANT[1]}])
    h1 = ingest(src, tmp_path / "d1")["content_hash"]
    h2 = ingest(src, tmp_path / "d2")["content_hash"]
    assert h1 == h2 == open_dataset(tmp_path / "d1").content_hash
    assert open_dataset(tmp_path / "d2").verify() == h1
    # and any change of content changes it
    write_jsonl(src, [CONV, {"messages": msgs("system", "sys", "user", "q1", "assistant", "a1!")}])
    assert ingest(src, tmp_path / "d3")["content_hash"] != h1


def test_overwrite_needed_to_replace_and_failed_runs_leave_the_old_dataset(tmp_path: Path) -> None:
    out = tmp_path / "ds"
    first = write_jsonl(tmp_path / "a.jsonl", [CONV])
    ingest(first, out)
    before = {p.relative_to(out): p.read_bytes() for p in out.rglob("*") if p.is_file()}

    second = write_jsonl(tmp_path / "b.jsonl", [CONV, CONV])
    with pytest.raises(UserError, match="already exists; pass --overwrite"):
        ingest(second, out)
    after = {p.relative_to(out): p.read_bytes() for p in out.rglob("*") if p.is_file()}
    assert after == before

    bad = write_jsonl(tmp_path / "bad.jsonl", [CONV, {"messages": []}])
    with pytest.raises(DataError):
        ingest(bad, out, overwrite=True)
    assert {p.relative_to(out): p.read_bytes() for p in out.rglob("*") if p.is_file()} == before

    man = ingest(second, out, overwrite=True)
    assert open_dataset(out).num_rows == 2 and open_dataset(out).content_hash == man["content_hash"]


# --------------------------------------------------------------------------------------
# Export


def _reingest_same_hash(ds: Path, tmp_path: Path, want_format: str) -> list[dict[str, Any]]:
    exported = export(ds, tmp_path / "export.jsonl")
    man = ingest(tmp_path / "export.jsonl", tmp_path / "again")
    assert file_format(man) == [want_format]
    assert man["content_hash"] == open_dataset(ds).content_hash
    assert man["kind"] == open_dataset(ds).kind
    return exported


def test_export_jsonl_conversations_reingest_same_hash(tmp_path: Path) -> None:
    share = tmp_path / "s.json"
    share.write_text(json.dumps(SHAREGPT), encoding="utf-8")
    cs = write_csv(tmp_path / "t.csv", [["t", "user", "assistant"], ["1", "q\u2028x", "a\r\n"], ["1", "q2", "a2 \U0001f600"]])
    ingest(share, tmp_path / "ds1")
    ingest(cs, tmp_path / "ds2", csv__conversation_col="t")
    for name in ("ds1", "ds2"):
        work = tmp_path / f"w-{name}"
        work.mkdir()
        exported = _reingest_same_hash(tmp_path / name, work, "openai")
        assert exported == rows(tmp_path / name)  # canonical rows, id/source/meta kept


def test_export_jsonl_preferences_and_text_reingest_same_hash(tmp_path: Path) -> None:
    pref = write_jsonl(
        tmp_path / "p.jsonl",
        [{"prompt": msgs("system", "s", "user", "q"), "chosen": "a", "rejected": "b", "rater": 4}],
    )
    ingest(pref, tmp_path / "dp")
    (tmp_path / "wp").mkdir()
    _reingest_same_hash(tmp_path / "dp", tmp_path / "wp", "preference")

    docs = tmp_path / "docs"
    (docs / "sub").mkdir(parents=True)
    (docs / "a.txt").write_text("alpha\n\nbeta\n", encoding="utf-8")
    (docs / "sub" / "b.md").write_text("# B\n" + "line\n" * 50, encoding="utf-8")
    ingest(docs, tmp_path / "dt", text__max_chars=100)
    (tmp_path / "wt").mkdir()
    _reingest_same_hash(tmp_path / "dt", tmp_path / "wt", "text")


def test_export_openai_format_is_messages_only(tmp_path: Path) -> None:
    src = write_jsonl(tmp_path / "c.jsonl", [{**CONV, "id": "x", "meta": {"k": 1}}, {"messages": SHAREGPT_WANT[1]}])
    ingest(src, tmp_path / "ds")
    got = export(tmp_path / "ds", tmp_path / "o.jsonl", fmt="openai")
    assert got == [{"messages": CONV["messages"]}, {"messages": SHAREGPT_WANT[1]}]


@pytest.mark.parametrize("kind", ["text", "preferences"])
def test_export_openai_of_non_conversations_is_an_error(tmp_path: Path, kind: str) -> None:
    if kind == "text":
        src = tmp_path / "a.txt"
        src.write_text("hello", encoding="utf-8")
    else:
        src = write_jsonl(tmp_path / "p.jsonl", [{"prompt": "q", "chosen": "a", "rejected": "b"}])
    ingest(src, tmp_path / "ds")
    out = tmp_path / "o.jsonl"
    with pytest.raises(UserError, match=f"--format openai exports conversations only; this is a {kind} dataset"):
        formats.export_main(load_config(ExportConfig, overrides={"dataset": str(tmp_path / "ds"), "out": str(out), "format": "openai"}))
    assert not out.exists()
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".o.jsonl")] == []


def test_export_to_stdout(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    ingest(write_jsonl(tmp_path / "c.jsonl", [CONV]), tmp_path / "ds")
    n = formats.export_main(load_config(ExportConfig, overrides={"dataset": str(tmp_path / "ds")}))
    out = capsys.readouterr().out
    assert n == 1 and [json.loads(line) for line in out.splitlines()] == rows(tmp_path / "ds")


# --------------------------------------------------------------------------------------
# Streaming: files larger than the 1 MiB read buffer

BUF = 1 << 20


def _array_with_emoji_across_the_buffer_end(n_before: int) -> tuple[bytes, list[str]]:
    """A JSON array (one record a line) whose record after `n_before` filler ones has a
    4-byte emoji straddling byte BUF, and a few MB of records after it."""
    texts = [f"filler {i} " + "abcdefghij" * 90 for i in range(n_before)]
    head = ("[\n" + "".join(json.dumps({"text": t}) + ",\n" for t in texts)).encode()
    assert len(head) < BUF - 100
    prefix_len = len(head) + len(b'{"text": "')
    pad = BUF - 2 - prefix_len  # the emoji's 4 bytes start at BUF-2
    special = "p" * pad + "\U0001f600" + " straddles"
    texts.append(special)
    tail = [f"after {i} " + "\u00e9" * 500 for i in range(1500)]
    texts += tail
    data = ("[\n" + ",\n".join(json.dumps({"text": t}, ensure_ascii=False) for t in texts) + "\n]\n").encode()
    start = data.index("\U0001f600".encode())
    assert start < BUF < start + 4
    return data, texts


def test_stream_json_array_larger_than_buffer(tmp_path: Path) -> None:
    data, texts = _array_with_emoji_across_the_buffer_end(1000)
    assert len(data) > 2 * BUF
    src = tmp_path / "big.json"
    src.write_bytes(data)
    man = ingest(src, tmp_path / "ds")
    got = rows(tmp_path / "ds")
    assert [r["text"] for r in got] == texts
    assert [r["id"] for r in got] == [f"big.json:{i + 2}" for i in range(len(texts))]  # record i on line i+2
    assert man["ingest"]["rows_in"] == len(texts)


def test_stream_one_huge_record(tmp_path: Path) -> None:
    huge = "\u00fc" * (1_500_000) + "x" * 1_000_000  # ~4 MB of UTF-8
    small = {"text": "tiny"}
    arr = tmp_path / "huge.json"
    arr.write_text(json.dumps([small, {"text": huge}, small], ensure_ascii=False, indent=1), encoding="utf-8")
    jl = write_jsonl(tmp_path / "huge.jsonl", [small, {"text": huge}, small])
    for src, name in ((arr, "a"), (jl, "b")):
        ingest(src, tmp_path / name)
        assert [r["text"] for r in rows(tmp_path / name)] == ["tiny", huge, "tiny"]


def test_stream_jsonl_larger_than_buffer(tmp_path: Path) -> None:
    objs = [{"messages": msgs("user", f"q{i} " + "z" * 700, "assistant", f"a{i}")} for i in range(4000)]
    src = write_jsonl(tmp_path / "big.jsonl", objs)
    assert src.stat().st_size > 2 * BUF
    man = ingest(src, tmp_path / "ds")
    assert [r["messages"] for r in rows(tmp_path / "ds")] == [o["messages"] for o in objs]
    assert man["ingest"]["rows_in"] == 4000


def test_stream_number_cut_by_the_buffer_end(tmp_path: Path) -> None:
    # Regression: a top-level number cut by the 1 MiB buffer end ("12" of "1234") parsed
    # as a shorter number, and the rest then failed as a syntax error.
    pad = {"text": "p" * (BUF - 20)}
    head = "[" + json.dumps(pad) + ",\n"
    digits = "1234567890"
    cut_at = BUF - len(head.encode())
    assert 2 < cut_at < len(digits)
    src = tmp_path / "n.json"
    src.write_text(head + digits + ',\n{"text": "end"}]\n', encoding="utf-8")
    man = ingest(src, tmp_path / "ds", skip_invalid=True)
    assert [r["text"] for r in rows(tmp_path / "ds")] == [pad["text"], "end"]
    (rej,) = rejected(tmp_path / "ds")
    assert (rej["raw"], rej["line"], rej["reason"]) == (digits, 2, "expected a JSON object, got int")
    check_counts(man, tmp_path / "ds")


def test_given_meta_and_source_must_have_the_right_type(tmp_path):
    good = msgs("user", "hi", "assistant", "hello")
    src = write_jsonl(
        tmp_path / "m.jsonl",
        [
            {"messages": good, "meta": {"k": 1}, "source": "crm"},
            {"messages": good, "meta": "a note"},
            {"messages": good, "source": 7},
        ],
    )
    m = ingest(src, tmp_path / "ds", skip_invalid=True)
    check_counts(m, tmp_path / "ds")
    assert [(r["source"], r["meta"]) for r in rows(tmp_path / "ds")] == [("crm", {"k": 1})]
    assert [(r["line"], r["reason"]) for r in rejected(tmp_path / "ds")] == [
        (2, 'field "meta" must be an object, got str'),
        (3, 'field "source" must be a string, got int'),
    ]


def test_folder_without_text_files_is_an_error(tmp_path):
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / "report.pdf").write_bytes(b"%PDF-1.4")
    with pytest.raises(UserError, match=r"docs: folder holds no text files \(\.txt"):
        ingest(tmp_path / "docs", tmp_path / "ds")
    assert not (tmp_path / "ds").exists()


def test_empty_and_header_only_inputs_are_errors(tmp_path):
    (tmp_path / "empty.csv").write_text("")
    with pytest.raises(DataError, match=r"empty\.csv:1: file is empty \(expected a header row"):
        ingest(tmp_path / "empty.csv", tmp_path / "ds")
    (tmp_path / "header.csv").write_text("user,assistant\n")
    with pytest.raises(DataError, match=r"header\.csv: holds no records"):
        ingest(tmp_path / "header.csv", tmp_path / "ds")
    (tmp_path / "empty.jsonl").write_text("\n\n")
    with pytest.raises(DataError, match=r"empty\.jsonl: holds no records"):
        ingest(tmp_path / "empty.jsonl", tmp_path / "ds", format="openai")
    assert not (tmp_path / "ds").exists()


def test_duplicate_csv_columns_are_an_error(tmp_path):
    src = write_csv(tmp_path / "d.csv", [["user", "assistant", "user"], ["a", "b", "c"]])
    with pytest.raises(DataError, match=r"d\.csv:1: duplicate column name\(s\) in the header: user"):
        ingest(src, tmp_path / "ds")


def test_nan_and_infinity_are_not_json(tmp_path):
    good = '{"messages": [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "yo"}]'
    src = tmp_path / "n.jsonl"
    src.write_text(good + "}\n" + good + ', "meta": {"score": NaN}}\n' + good + ', "meta": {"x": -Infinity}}\n')
    m = ingest(src, tmp_path / "ds", skip_invalid=True)
    check_counts(m, tmp_path / "ds")
    assert [(r["line"], r["reason"]) for r in rejected(tmp_path / "ds")] == [
        (2, "invalid JSON: NaN is not valid JSON"),
        (3, "invalid JSON: -Infinity is not valid JSON"),
    ]
    arr = tmp_path / "n.json"
    arr.write_text("[\n" + good + "},\n" + good + ', "meta": {"s": Infinity}}\n]\n')
    with pytest.raises(DataError, match=r"n\.json:3: invalid JSON: Infinity is not valid JSON"):
        ingest(arr, tmp_path / "ds2")


def test_ids_are_unique_within_a_dataset(tmp_path):
    conv = msgs("user", "hi", "assistant", "hello")
    (tmp_path / "x").mkdir()
    (tmp_path / "y").mkdir()
    a = write_jsonl(tmp_path / "x" / "a.jsonl", [{"messages": conv}, {"messages": conv, "id": 7}, {"messages": conv, "id": 2.5}])
    b = write_jsonl(tmp_path / "y" / "a.jsonl", [{"messages": conv}, {"messages": conv, "id": "7"}])
    m = ingest([a, b], tmp_path / "ds", skip_invalid=True)
    check_counts(m, tmp_path / "ds")
    # default ids name the file as given, so same-named files in two folders do not collide
    assert [r["id"] for r in rows(tmp_path / "ds")] == [f"{tmp_path}/x/a.jsonl:1", "7", "2.5", f"{tmp_path}/y/a.jsonl:1"]
    assert [(r["file"], r["line"], r["reason"]) for r in rejected(tmp_path / "ds")] == [
        (str(b), 2, 'duplicate id "7" (ids must be unique within a dataset)')
    ]
    with pytest.raises(UserError, match="given more than once"):
        ingest([a, a], tmp_path / "ds2")


def test_csv_delimiter_must_be_one_character(tmp_path):
    src = write_csv(tmp_path / "c.csv", [["user", "assistant"], ["a", "b"]])
    with pytest.raises(UserError, match=r"csv\.delimiter: must be one character \(or 'tab'\), got ';;'"):
        ingest(src, tmp_path / "ds", csv__delimiter=";;")


def test_broken_symlink_in_a_folder_is_a_clear_error(tmp_path):
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / "a.txt").write_text("real text")
    (tmp_path / "docs" / "gone.txt").symlink_to(tmp_path / "nowhere.txt")
    with pytest.raises(UserError, match=r"gone\.txt: broken symbolic link"):
        ingest(tmp_path / "docs", tmp_path / "ds")


def test_syntax_error_early_in_a_big_array_is_reported_as_such(tmp_path):
    """A syntax error is not mistaken for a record cut by the read buffer (which would read on to EOF)."""
    good = json.dumps({"messages": msgs("user", "hi " * 50, "assistant", "hello " * 50)})
    lines = ["[", good + ",", '{"messages": [}', *([good + ","] * 6000), good, "]"]
    src = tmp_path / "big.json"
    src.write_text("\n".join(lines) + "\n")
    assert src.stat().st_size > 3 * 2**20
    with pytest.raises(DataError, match=r"big\.json:3: invalid JSON: Expecting value"):
        ingest(src, tmp_path / "ds")


def test_records_sharing_a_line_get_distinct_ids(tmp_path):
    conv = msgs("user", "hi", "assistant", "hello")
    src = tmp_path / "one_line.json"
    src.write_text(json.dumps([{"messages": conv}] * 3) + "\n")
    ingest(src, tmp_path / "ds")
    assert [r["id"] for r in rows(tmp_path / "ds")] == ["one_line.json:1", "one_line.json:1.2", "one_line.json:1.3"]
