"""`chatforge data synth` as a command: datasets on disk, determinism by content hash, atomic output."""

from __future__ import annotations

import json

import pytest

from chatforge.config import load_config
from chatforge.data import synth
from chatforge.data.dataset import open_dataset
from chatforge.errors import ConfigError, UserError

SMALL = {"conversations": "120", "test_conversations": "30", "heldout_conversations": "20", "kb_articles": "15", "preferences": "25"}


def run(out, **extra):
    return synth.main(load_config(synth.SynthConfig, overrides={**SMALL, "out": str(out), **extra}))


def hashes(out):
    return {name: open_dataset(out / name).content_hash for name in synth.DATASETS}


def test_same_seed_same_hashes_different_seed_different(tmp_path):
    run(tmp_path / "a", seed="5")
    run(tmp_path / "b", seed="5")
    run(tmp_path / "c", seed="6")
    assert hashes(tmp_path / "a") == hashes(tmp_path / "b")
    assert all(hashes(tmp_path / "a")[n] != hashes(tmp_path / "c")[n] for n in synth.DATASETS)
    assert (tmp_path / "a" / "planted_pii.jsonl").read_bytes() == (tmp_path / "b" / "planted_pii.jsonl").read_bytes()


def test_layout_kinds_and_index(tmp_path):
    manifests = run(tmp_path / "w")
    kinds = {name: open_dataset(tmp_path / "w" / name).kind for name in synth.DATASETS}
    assert kinds == {"kb": "text", "conversations": "conversations", "preferences": "preferences",
                     "test": "conversations", "test_heldout": "conversations"}
    index = json.loads((tmp_path / "w" / "world.json").read_text())
    assert index["datasets"]["conversations"]["content_hash"] == manifests["conversations"]["content_hash"]
    assert index["store"]["facts"]["return_window"] == "30 days"
    # The generator promises exact sizes: every dataset has exactly the rows asked for,
    # in its manifest, in the index and in the rows themselves.
    expected = {"conversations": 120, "test": 30, "test_heldout": 20, "kb": 15, "preferences": 25}
    assert index["sizes"] == {**{k: int(v) for k, v in SMALL.items()}, "noise": 1.0}
    for name, n in expected.items():
        ds = open_dataset(tmp_path / "w" / name)
        assert ds.num_rows == n and manifests[name]["num_rows"] == n and index["datasets"][name]["rows"] == n, name
        assert len(list(ds)) == n, name
    # every planted identifier is listed with the row it was planted in, verbatim
    conv = {r["id"]: r for r in open_dataset(tmp_path / "w" / "conversations")}
    planted = [json.loads(line) for line in (tmp_path / "w" / "planted_pii.jsonl").read_text().splitlines()]
    assert planted and len(planted) == index["planted_pii"]
    for p in planted:
        assert any(p["value"] in m["content"] for m in conv[p["id"]]["messages"] if m["role"] == "user")


def test_existing_output_is_kept_unless_overwrite(tmp_path):
    run(tmp_path / "w", seed="1")
    before = hashes(tmp_path / "w")
    with pytest.raises(UserError, match="already exists; pass --overwrite"):
        run(tmp_path / "w", seed="2")
    assert hashes(tmp_path / "w") == before
    run(tmp_path / "w", seed="2", overwrite="true")
    assert hashes(tmp_path / "w") != before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["w"]


def test_overwrite_never_replaces_a_folder_that_is_not_a_support_world(tmp_path):
    (tmp_path / "notes").mkdir()
    (tmp_path / "notes" / "todo.txt").write_text("mine")
    with pytest.raises(UserError, match="is not a support world"):
        run(tmp_path / "notes", overwrite="true")
    assert (tmp_path / "notes" / "todo.txt").read_text() == "mine"
    # A support world with a stray file of someone's in it is not replaced either.
    run(tmp_path / "w")
    (tmp_path / "w" / "keep.me").write_text("x")
    with pytest.raises(UserError, match="is not a support world"):
        run(tmp_path / "w", overwrite="true")
    assert (tmp_path / "w" / "keep.me").exists()


def test_sizes_are_validated_with_the_field_name(tmp_path):
    with pytest.raises(ConfigError, match=r"^--preferences: must be >= 1, got 0$"):
        run(tmp_path / "w", preferences="0")
    with pytest.raises(ConfigError, match=r"^--noise: must be >= 0"):
        run(tmp_path / "w", noise="-1")
