"""Splits that never move and never leak; mixtures in the asked proportions."""

from __future__ import annotations

import random

import pytest

from chatforge.config import load_config
from chatforge.data import mix, split
from chatforge.data.dataset import open_dataset, write_dataset
from chatforge.data.steps import split_key
from chatforge.errors import ConfigError, UserError

BY = {"command": "test"}
WORDS = "order refund return shipping package tracking delivered address card payment week store item".split()


def conv(i: int, text: str | None = None, **meta) -> dict:
    rng = random.Random(i)
    text = text or " ".join(rng.choice(WORDS) for _ in range(60)) + f" #{i}"
    return {"id": f"c{i}", "messages": [{"role": "user", "content": text}, {"role": "assistant", "content": f"answer {i}"}],
            "source": "t", "meta": meta}


def run_split(src, out, **kw):
    ov = {"dataset": str(src), "out": str(out), **{k: str(v) for k, v in kw.items()}}
    return split.main(load_config(split.SplitConfig, overrides=ov))


def ids(path):
    return [r["id"] for r in open_dataset(path)]


def test_split_is_stable_as_the_data_grows(tmp_path):
    rows = [conv(i) for i in range(600)]
    write_dataset(tmp_path / "small", "conversations", rows[:300], created_by=BY)
    write_dataset(tmp_path / "big", "conversations", rows, created_by=BY)
    s1 = run_split(tmp_path / "small", tmp_path / "s1", val=0.1, test=0.1)
    s2 = run_split(tmp_path / "big", tmp_path / "s2", val=0.1, test=0.1)
    for name in split.SPLITS:
        first = set(ids(tmp_path / "s1" / name))
        second = set(ids(tmp_path / "s2" / name))
        assert first <= second  # no row of the small set moved elsewhere in the big one
    assert sum(s1["rows"].values()) == 300 and sum(s2["rows"].values()) == 600
    # shares are roughly right, and the split is a function of content only
    assert 40 <= s2["rows"]["test"] <= 80 and 40 <= s2["rows"]["val"] <= 80
    for name in split.SPLITS:
        for r in open_dataset(tmp_path / "s2" / name):
            assert split.assign(split_key(r, "conversations"), 0.1, 0.1) == name


def test_salt_draws_another_split(tmp_path):
    write_dataset(tmp_path / "d", "conversations", [conv(i) for i in range(200)], created_by=BY)
    run_split(tmp_path / "d", tmp_path / "a", val=0.2, test=0.2)
    run_split(tmp_path / "d", tmp_path / "b", val=0.2, test=0.2, salt="x")
    assert set(ids(tmp_path / "a" / "test")) != set(ids(tmp_path / "b" / "test"))


def test_near_duplicates_of_test_rows_never_reach_train(tmp_path):
    rows = [conv(i) for i in range(300)]
    test_rows = [r for r in rows if split.assign(split_key(r, "conversations"), 0.1, 0.1) == "test"]
    assert test_rows
    # plant a near copy (one word changed) and an exact copy (different case) of each test row
    extra = []
    for k, r in enumerate(test_rows):
        words = r["messages"][0]["content"].split()
        words[5] = "planted"
        extra.append(conv(10_000 + 2 * k, " ".join(words)))
        extra.append(conv(10_001 + 2 * k, r["messages"][0]["content"].upper()))
        extra[-1]["messages"][1]["content"] = r["messages"][1]["content"]
        extra[-2]["messages"][1]["content"] = r["messages"][1]["content"]
    write_dataset(tmp_path / "d", "conversations", rows + extra, created_by=BY)
    out = run_split(tmp_path / "d", tmp_path / "s", val=0.1, test=0.1)
    train = set(ids(tmp_path / "s" / "train"))
    planted_in_train = [e["id"] for e in extra if split.assign(split_key(e, "conversations"), 0.1, 0.1) == "train"]
    assert planted_in_train and not (train & set(planted_in_train))
    assert out["dropped"]["leak_duplicate"] + out["dropped"]["leak_near_duplicate"] == len(planted_in_train)
    # exact copies share the content key, so they land in test with their original: only near copies leak
    assert out["dropped"]["leak_duplicate"] == 0 and out["dropped"]["leak_near_duplicate"] == len(planted_in_train)
    test_ids = set(ids(tmp_path / "s" / "test"))
    assert all(e["id"] in test_ids for e in extra[1::2])
    assert sum(out["rows"].values()) + sum(out["dropped"].values()) == len(rows) + len(extra)


def test_augmented_rows_follow_their_original_and_never_test(tmp_path):
    rows = [conv(i) for i in range(200)]
    aug = []
    for r in rows:
        a = conv(50_000 + int(r["id"][1:]), r["messages"][0]["content"] + " please",
                 augmented_from=r["id"], origin_key=split_key(r, "conversations"))
        aug.append(a)
    write_dataset(tmp_path / "d", "conversations", rows + aug, created_by=BY)
    out = run_split(tmp_path / "d", tmp_path / "s", val=0.1, test=0.1, leakage="false")
    held = set(ids(tmp_path / "s" / "val")) | set(ids(tmp_path / "s" / "test"))
    assert all("augmented_from" not in r["meta"] for n in ("val", "test") for r in open_dataset(tmp_path / "s" / n))
    train_aug = [r for r in open_dataset(tmp_path / "s" / "train") if "augmented_from" in r["meta"]]
    assert all(r["meta"]["augmented_from"] not in held for r in train_aug)
    assert out["dropped"]["augmented_heldout"] == len(held)


def test_split_config_is_validated(tmp_path):
    with pytest.raises(ConfigError, match=r"val \+ test: must be < 1"):
        run_split(tmp_path / "d", tmp_path / "s", val=0.6, test=0.5)


def run_mix(out, *sources, **kw):
    ov = {"sources": list(sources), "out": str(out), **{k: str(v) for k, v in kw.items()}}
    return mix.main(load_config(mix.MixConfig, overrides=ov))


def test_mix_takes_rows_in_proportion_with_upsampling(tmp_path):
    write_dataset(tmp_path / "a", "conversations", [conv(i) for i in range(100)], created_by=BY)
    write_dataset(tmp_path / "b", "conversations", [conv(1000 + i) for i in range(10)], created_by=BY)
    m = run_mix(tmp_path / "m", f"{tmp_path / 'a'}:0.7", f"{tmp_path / 'b'}:0.3", rows=100, seed=1)
    got = ids(tmp_path / "m")
    assert len(got) == 100 == len(set(got))  # ids stay unique
    from_a = [i for i in got if int(i.split("~")[0][1:]) < 1000]
    assert len(from_a) == 70 and len(got) - len(from_a) == 30
    assert sum("~rep" in i for i in got) == 20  # b's 10 rows three times each
    assert [s["rows_taken"] for s in m["mix"]["sources"]] == [70, 30]
    again = run_mix(tmp_path / "m2", f"{tmp_path / 'a'}:0.7", f"{tmp_path / 'b'}:0.3", rows=100, seed=1)
    assert again["content_hash"] == m["content_hash"]
    other = run_mix(tmp_path / "m3", f"{tmp_path / 'a'}:0.7", f"{tmp_path / 'b'}:0.3", rows=100, seed=2)
    assert other["content_hash"] != m["content_hash"]


def test_mix_errors(tmp_path):
    write_dataset(tmp_path / "a", "conversations", [conv(1)], created_by=BY)
    write_dataset(tmp_path / "t", "text", [{"id": "1", "text": "x", "source": "s", "meta": {}}], created_by=BY)
    with pytest.raises(ConfigError, match="weight 'x' is not a number"):
        run_mix(tmp_path / "m", f"{tmp_path / 'a'}:x")
    with pytest.raises(ConfigError, match="weight must be a positive number"):
        run_mix(tmp_path / "m", f"{tmp_path / 'a'}:0")
    with pytest.raises(UserError, match="different kinds of data"):
        run_mix(tmp_path / "m", str(tmp_path / "a"), str(tmp_path / "t"))


def test_plan_counts_sum_to_total():
    assert mix.plan_counts([5, 5, 5], [1, 1, 1], 10) == [4, 3, 3]
    assert sum(mix.plan_counts([1, 2], [0.3, 0.7], 7)) == 7


def test_leakage_check_catches_near_copies_at_the_threshold(tmp_path):
    """Near copies at Jaccard ~0.82 (two words of sixty changed) of val/test rows: all but a rare one caught."""
    rows = [conv(i) for i in range(1500)]
    held = [r for r in rows if split.assign(split_key(r, "conversations"), 0.1, 0.1) != "train"]
    extra = []
    for k, r in enumerate(held):
        words = r["messages"][0]["content"].split()
        words[10], words[45] = "alpha", "omega"
        e = conv(20_000 + k, " ".join(words))
        e["messages"][1]["content"] = r["messages"][1]["content"]
        extra.append(e)
    write_dataset(tmp_path / "d", "conversations", rows + extra, created_by=BY)
    out = run_split(tmp_path / "d", tmp_path / "s", val=0.1, test=0.1)
    train = set(ids(tmp_path / "s" / "train"))
    planted = [e["id"] for e in extra if split.assign(split_key(e, "conversations"), 0.1, 0.1) == "train"]
    leaked = [i for i in planted if i in train]
    assert len(planted) > 150
    assert len(leaked) <= 0.01 * len(planted), (len(leaked), len(planted))
    assert out["dropped"]["leak_near_duplicate"] >= len(planted) - len(leaked)
