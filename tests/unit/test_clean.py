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
