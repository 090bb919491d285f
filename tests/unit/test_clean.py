"""`data clean` end to end on the support world: counts add up, deterministic, parallel = serial,
and no planted identifier reaches a cleaned training split (the canary)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from chatforge.config import load_config
from chatforge.data import clean, split
from chatforge.data.dataset import open_dataset, write_dataset
from chatforge.data.steps import row_texts
from chatforge.data.synth import generate

BY = {"command": "test"}


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    root = tmp_path_factory.mktemp("world")
    w = generate(7, conversations=1500, test_conversations=50, heldout_conversations=30, kb_articles=60, preferences=200)
    for name, kind in (("conversations", "conversations"), ("kb", "text"), ("preferences", "preferences"), ("test", "conversations")):
        write_dataset(root / name, kind, getattr(w, name), created_by=BY)
    return root, w


def run(src: Path, out: Path, **kw) -> dict:
    ov = {"dataset": str(src), "out": str(out), **{k.replace("__", "."): str(v) for k, v in kw.items()}}
    return clean.main(load_config(clean.CleanConfig, overrides=ov))


def test_counts_add_up_and_the_manifest_records_lineage(world, tmp_path):
    root, _ = world
    m = run(root / "conversations", tmp_path / "c", workers=1)
    src = open_dataset(root / "conversations")
    rep = m["clean"]
    assert m["parents"] == [src.content_hash]
    assert [s["name"] for s in rep["steps"]] == list(clean.STEP_ORDER)
    rows_in = src.num_rows
    for s in rep["steps"]:
        assert s["rows_in"] == rows_in  # each step sees what the previous one kept
        assert s["kept"] + sum(s["dropped"].values()) == s["rows_in"]
        assert s["config"]  # every step's config is recorded
        rows_in = s["kept"]
    assert rows_in == rep["rows_out"] == m["num_rows"]
    dropped = [json.loads(line) for line in (tmp_path / "c" / "dropped.jsonl").read_text().splitlines()]
    assert len(dropped) == src.num_rows - m["num_rows"]
    kept_ids = {r["id"] for r in open_dataset(tmp_path / "c")}
    assert not kept_ids & {d["id"] for d in dropped}
    dups = [d for d in dropped if d["step"] == "dedup"]
    assert dups and all(d["duplicate_of"] in kept_ids for d in dups)  # a duplicate points at a row that was kept
    pii = next(s for s in rep["steps"] if s["name"] == "pii")
    assert {"EMAIL", "PHONE", "CARD", "ORDER", "NAME"} <= set(pii["counts"])


def test_same_input_same_hash_and_workers_do_not_change_the_result(world, tmp_path):
    root, _ = world
    a = run(root / "conversations", tmp_path / "a", workers=1)
    b = run(root / "conversations", tmp_path / "b", workers=2, batch_rows=97)
    assert a["content_hash"] == b["content_hash"]
    # the hash the workers' serialized rows gave is the hash of the rows on disk
    assert open_dataset(tmp_path / "b").verify() == b["content_hash"]
    assert [s["dropped"] for s in a["clean"]["steps"]] == [s["dropped"] for s in b["clean"]["steps"]]
    assert (tmp_path / "a" / "dropped.jsonl").read_text() == (tmp_path / "b" / "dropped.jsonl").read_text()


def test_canary_no_planted_identifier_reaches_any_split(world, tmp_path):
    """Every identifier the support world planted is gone from every cleaned split and from the report."""
    root, w = world
    run(root / "conversations", tmp_path / "c")
    split.main(load_config(split.SplitConfig, overrides={"dataset": str(tmp_path / "c"), "out": str(tmp_path / "s")}))
    planted = {p["value"] for p in w.planted_pii}
    assert len(planted) > 100
    for name in split.SPLITS:
        for row in open_dataset(tmp_path / "s" / name):
            text = "\n".join(row_texts(row, "conversations"))
            leaked = [v for v in planted if v in text]
            assert not leaked, (row["id"], leaked)
    for report in ("clean_report.md", "clean_report.json"):
        text = (tmp_path / "c" / report).read_text()
        assert not [v for v in planted if v in text]


def test_report_shows_examples_of_each_step(world, tmp_path):
    root, _ = world
    run(root / "conversations", tmp_path / "c", examples=2)
    md = (tmp_path / "c" / "clean_report.md").read_text()
    assert "| step | in | kept | changed | dropped |" in md
    for section in ("## normalize", "## pii", "## language", "## toxicity", "## dedup"):
        assert section in md
    assert "<EMAIL_1>" in md or "<PHONE_1>" in md or "<ORDER_1>" in md
    assert "duplicate of" in md


def test_other_kinds_and_disabled_steps(world, tmp_path):
    root, _ = world
    kb = run(root / "kb", tmp_path / "kb")
    assert kb["kind"] == "text" and kb["num_rows"] > 0
    prefs = run(root / "preferences", tmp_path / "p")
    assert prefs["kind"] == "preferences" and prefs["num_rows"] > 0
    plain = run(root / "test", tmp_path / "t", pii__enabled="false", dedup__exact="false", dedup__near="false")
    assert [s["name"] for s in plain["clean"]["steps"]] == ["normalize", "quality", "language", "toxicity"]


def test_rerun_into_existing_output_needs_overwrite(world, tmp_path):
    from chatforge.errors import UserError

    root, _ = world
    run(root / "test", tmp_path / "t")
    with pytest.raises(UserError, match="already exists; pass --overwrite"):
        run(root / "test", tmp_path / "t")
    run(root / "test", tmp_path / "t", overwrite="true")


def test_cleaning_clean_data_changes_nothing(world, tmp_path):
    root, _ = world
    first = run(root / "conversations", tmp_path / "once")
    second = run(tmp_path / "once", tmp_path / "twice")
    assert second["content_hash"] == first["content_hash"]
    assert all(s["changed"] == 0 and not s["dropped"] for s in second["clean"]["steps"])


def test_encoded_pii_never_reaches_the_data_or_the_report(tmp_path):
    """PII hidden by HTML entities, zero-width characters or markup is found after normalizing,
    and never shown raw in the report (whose examples come from before the PII step)."""
    rows = [
        {"id": "r1", "source": "t", "meta": {}, "messages": [
            {"role": "user", "content": "<p>Write to grace.silva&#64;example.com please, my order is late</p>"},
            {"role": "assistant", "content": "Sorry about that! Let me check."}]},
        {"id": "r2", "source": "t", "meta": {}, "messages": [
            {"role": "user", "content": "call me at +1 312-555-\u200b0147 or use card 4111&nbsp;1111&nbsp;1111&nbsp;1111"},
            {"role": "assistant", "content": "Thanks, we will call you back today."}]},
        {"id": "r3", "source": "t", "meta": {}, "messages": [
            {"role": "user", "content": "<a href='mailto:bob.jones@example.org'>mail</a> is my address &amp; name"},
            {"role": "assistant", "content": "<br>"}]},
    ]
    write_dataset(tmp_path / "raw", "conversations", rows, created_by=BY)
    run(tmp_path / "raw", tmp_path / "c", examples=5)
    secrets = ["grace.silva", "312-555", "0147", "4111", "bob.jones"]
    for row in open_dataset(tmp_path / "c"):
        text = " ".join(row_texts(row, "conversations"))
        assert not [s for s in secrets if s in text], text
    for name in ("clean_report.md", "clean_report.json", "dropped.jsonl", "manifest.json"):
        body = (tmp_path / "c" / name).read_text()
        assert not [s for s in secrets if s in body], name
    md = (tmp_path / "c" / "clean_report.md").read_text()
    assert "## normalize" in md and "->" in md  # the edits are still shown


def test_the_input_is_never_replaced(world, tmp_path):
    from chatforge.errors import UserError

    root, _ = world
    write_dataset(tmp_path / "in", "conversations", list(open_dataset(root / "test")), created_by=BY)
    before = open_dataset(tmp_path / "in").content_hash
    with pytest.raises(UserError, match="is the input dataset"):
        run(tmp_path / "in", tmp_path / "in", overwrite="true")
    write_dataset(tmp_path / "kb", "text", [{"id": "1", "text": "hello there", "source": "s", "meta": {}}], created_by=BY)
    with pytest.raises(UserError, match="is not a conversations dataset"):
        run(tmp_path / "in", tmp_path / "kb", overwrite="true")
    assert open_dataset(tmp_path / "in").content_hash == before
    assert open_dataset(tmp_path / "kb").kind == "text"


def test_hash_mode_salt_is_never_recorded(world, tmp_path):
    root, _ = world
    m = run(root / "test", tmp_path / "h", pii__mode="hash", pii__salt="S3cretPepper")
    for name in ("manifest.json", "clean_report.json", "clean_report.md"):
        assert "S3cretPepper" not in (tmp_path / "h" / name).read_text()
    assert m["created_by"]["config"]["pii"]["salt"] == "<redacted>"


def test_step_major_chunks_equal_row_by_row_and_use_batch_methods(world):
    """`clean_rows` runs each step over a chunk (one `batch` call where a step has one);
    every row's outcome, record and examples equal running the chain one row at a time."""
    root, _ = world
    cfg = load_config(clean.CleanConfig, overrides={"dataset": str(root / "conversations"), "out": "unused"})
    rows = list(open_dataset(root / "conversations"))[:400]
    steps = clean.build_steps(cfg)
    calls: list[int] = []
    for _, step in steps:
        if hasattr(step, "batch"):
            original = step.batch

            def counting(rs, kind, original=original):
                calls.append(len(rs))
                return original(rs, kind)

            step.batch = counting
    asked: list[list[tuple[str, bool, str | None]]] = [[], []]

    def keeper(log):
        def keep(step, changed, reason):
            log.append((step, changed, reason))
            return step != "quality"  # any rule that does not depend on the order of asking
        return keep

    one = list(clean.clean_rows(rows, "conversations", steps, keep_example=keeper(asked[0]), chunk=1))
    n_single = len(calls)
    many = list(clean.clean_rows(rows, "conversations", steps, keep_example=keeper(asked[1]), chunk=128))
    assert one == many
    assert sorted(asked[0]) == sorted(asked[1])  # the same questions, asked step by step
    assert n_single == len(rows) and calls[n_single:] and max(calls[n_single:]) == 128  # the batch method saw whole chunks
    assert any(r.row is None for r in many) and any(r.examples for r in many)
