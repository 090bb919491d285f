"""`data augment`: each method does what it says, only user turns change, protected tokens
survive everything, variants are marked and follow their original into its split, and the
command is deterministic with counts that add up (end to end on a small support world)."""

from __future__ import annotations

import random
import re
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from chatforge.config import load_config
from chatforge.data import augment as A
from chatforge.data.dataset import open_dataset, write_dataset
from chatforge.data.steps import content_key, split_key
from chatforge.data.synth import generate
from chatforge.errors import ConfigError, UserError

KEYBOARD_NEIGHBOURS = {
    "q": "wa", "w": "qeas", "e": "wrsd", "r": "etdf", "t": "ryfg", "y": "tugh", "u": "yihj",
    "i": "uojk", "o": "ipkl", "p": "ol", "a": "qwsz", "s": "awedzx", "d": "serfxc", "f": "drtgcv",
    "g": "ftyhvb", "h": "gyujbn", "j": "huiknm", "k": "jiolm", "l": "kop", "z": "asx",
    "x": "zsdc", "c": "xdfv", "v": "cfgb", "b": "vghn", "n": "bhjm", "m": "njk",
}  # fmt: skip
GREETINGS = ("Hi! ", "Hello! ", "Hi there! ", "Hey! ", "Good morning! ", "Hello there. ")


def rngs(n: int) -> list[random.Random]:
    return [random.Random(i) for i in range(n)]


def conv(rid: str, *turns: tuple[str, str], meta: dict[str, Any] | None = None) -> dict[str, Any]:
    return {
        "id": rid,
        "messages": [{"role": r, "content": c} for r, c in turns],
        "source": "test",
        "meta": meta or {},
    }


def cfg(**kw: Any) -> A.AugmentConfig:
    base: dict[str, Any] = {"dataset": "in", "out": "out"}
    return load_config(A.AugmentConfig, overrides={**base, **kw})


# ------------------------------------------------------------------ each method


def test_synonym_table_ships_the_support_pairs() -> None:
    alts = A.synonym_table().alternatives
    assert "parcel" in alts[("package",)] and "package" in alts[("parcel",)]
    assert "purchase" in alts[("order",)]
    assert "a refund" in alts[("my", "money", "back")] and "my money back" in alts[("a", "refund")]
    assert all(k not in [A._phrase_key(p) for p in v] for k, v in alts.items())  # never itself


def test_synonym_swaps_a_table_word_for_a_synonym() -> None:
    assert {A.synonym_replace("where is my package", r, 0.1) for r in rngs(5)} == {"where is my parcel"}
    # phrases, longest first: "my money back" as a unit, not "money" alone
    outs = {A.synonym_replace("I want my money back", r, 0.5) for r in rngs(20)}
    assert outs <= {f"{a} a refund" for a in ("I'd like", "I would like")}
    assert len(outs) == 2


def test_synonym_keeps_capitals_articles_and_punctuation() -> None:
    assert A.synonym_replace("it is an order for a friend.", random.Random(0), 0.1) == "it is a purchase for a friend."
    for r in rngs(10):
        out = A.synonym_replace("Package arrived, thanks!", r, 0.5)
        assert out != "Package arrived, thanks!"
        assert out[0].isupper() and "," in out and out.endswith("!")


def test_dropout_removes_words_and_nothing_else() -> None:
    text = "hello I would like to know where my new reading lamp is"
    words = text.split()
    for r in rngs(20):
        out = A.word_dropout(text, r, 0.2)
        got = out.split()
        assert len(got) == len(words) - 2  # round(0.2 * 12)
        it = iter(words)
        assert all(w in it for w in got)  # a subsequence: order kept, only removals
    assert A.word_dropout("thanks!", random.Random(0), 0.5) == "thanks!"  # too short to drop from


def test_swap_swaps_exactly_one_adjacent_pair() -> None:
    text = "please cancel the blue lamp today"
    words = text.split()
    seen = set()
    for r in rngs(30):
        out = A.word_swap(text, r, 0.1).split()
        pairs = [j for j in range(len(words) - 1) if [*words[:j], words[j + 1], words[j], *words[j + 2 :]] == out]
        assert len(pairs) == 1
        seen.add(pairs[0])
    assert len(seen) > 2


def test_swap_keeps_sentence_capital_and_punctuation_in_place() -> None:
    outs = {A.word_swap("Where is it, please", r, 0.5) for r in rngs(20)}
    assert "Is where it, please" in outs or "Where it is, please" in outs
    assert all(o[0].isupper() and o[1:].islower() and re.sub(r"\w+", "w", o) == "w w w, w" for o in outs)


def one_typo(a: str, b: str) -> bool:
    """Whether b is a with one slip at position >= 1: neighbouring key, dropped or doubled letter."""
    if len(a) == len(b):
        diff = [k for k in range(len(a)) if a[k] != b[k]]
        return len(diff) == 1 and diff[0] >= 1 and b[diff[0]] in KEYBOARD_NEIGHBOURS[a[diff[0]]]
    if len(b) == len(a) - 1:
        return any(k >= 1 and a[:k] + a[k + 1 :] == b for k in range(len(a)))
    if len(b) == len(a) + 1:
        return any(k >= 1 and a[:k] + a[k] + a[k:] == b for k in range(len(a)))
    return False


def test_typo_changes_a_few_letters_like_fingers_do() -> None:
    text = "my reading lamp started flickering after two weeks of normal use"
    words = text.split()
    for r in rngs(40):
        out = A.inject_typos(text, r, 0.1).split()
        assert len(out) == len(words)
        changed = [(a, b) for a, b in zip(words, out, strict=True) if a != b]
        assert len(changed) == 1  # round(0.1 * 11)
        assert all(one_typo(a, b) for a, b in changed), changed
    many = A.inject_typos(text, random.Random(0), 0.5).split()
    assert sum(a != b for a, b in zip(words, many, strict=True)) == round(0.5 * len(words))


def test_paraphrase_applies_a_template() -> None:
    text = "Can you tell me where my order is?"
    rewrites = {
        "I'd like to know where my order is.",
        "Do you know where my order is?",
        "Could you let me know where my order is?",
        "Could you please tell me where my order is?",
        "Would you tell me where my order is?",
        "Please tell me where my order is.",
    }
    polite = {g + text for g in GREETINGS} | {text + t for t in (" Thanks!", " Thank you.", " Thanks in advance.", " Any help is appreciated.")}
    outs = [A.paraphrase(text, r) for r in rngs(60)]
    assert set(outs) <= rewrites | polite
    assert "I'd like to know where my order is." in outs
    assert sum(o in rewrites for o in outs) > sum(o in polite for o in outs)  # rewrites preferred
    # the other direction, keeping the user's (lack of) punctuation
    assert {A.paraphrase("I'd like to know when it ships", r) for r in rngs(20)} >= {"Can you tell me when it ships"}
    assert "Can I return my shoes?" in {A.paraphrase("I want to return my shoes.", r) for r in rngs(30)}
    assert "Do you know where my parcel is?" in {A.paraphrase("Where is my parcel?", r) for r in rngs(30)}


def test_paraphrase_politeness_adds_and_removes() -> None:
    first = {A.paraphrase("my lamp flickers all the time", r, first_turn=True) for r in rngs(40)}
    assert any(o.startswith(GREETINGS) for o in first)
    assert "my lamp flickers all the time, thanks" in first
    later = {A.paraphrase("my lamp flickers all the time", r, first_turn=False) for r in rngs(40)}
    assert later and not any(o.startswith(GREETINGS) for o in later)
    removed = {A.paraphrase("Hello, my lamp flickers all the time. Thanks in advance!", r) for r in rngs(40)}
    assert "my lamp flickers all the time. Thanks in advance!" in removed
    assert "Hello, my lamp flickers all the time." in removed


@pytest.mark.parametrize("method", A.METHODS)
def test_every_method_changes_text(method: str) -> None:
    text = "Hi, can you tell me where my package is? I want to return it because it arrived broken."
    outs = {A.augment_text(method, text, r, 0.1) for r in rngs(5)}
    assert text not in outs


# ------------------------------------------------------------------ protected tokens

placeholder = st.from_regex(r"<(ORDER|EMAIL|PHONE|NAME|CARD)_[1-9]>", fullmatch=True)
number = st.integers(0, 10**9).map(str)
price = st.integers(1, 10**6).map(lambda c: f"${c // 100}.{c % 100:02d}")
email = st.from_regex(r"[a-z]{1,8}(\.[a-z]{1,8})?@example\.(com|org)", fullmatch=True)
url = st.from_regex(r"https://[a-z]{2,8}\.com/[a-z]{0,6}(\?id=[0-9]{1,4})?", fullmatch=True)
order_no = st.from_regex(r"LG-[0-9]{6}", fullmatch=True)
protected = st.one_of(placeholder, number, price, email, url, order_no)
# Table words and template openings, so that every method has something to do.
VOCAB = (
    "can you tell me where is my order package refund please thanks hi hello i want to return it the "
    "arrived broken how do what a an please cancel shipping I'd like know is there lamp money back"
)
word = st.sampled_from(VOCAB.split())
piece = st.tuples(st.one_of(word, word, protected), st.sampled_from(["", "", ",", ".", "?", "!"]))
turn = st.lists(piece, min_size=1, max_size=14)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(pieces=turn, method=st.sampled_from(A.METHODS), seed=st.integers(0, 2**32), rate=st.sampled_from([0.1, 0.5]))
def test_protected_tokens_survive_every_method(pieces: list[tuple[str, str]], method: str, seed: int, rate: float) -> None:
    rng = random.Random(seed)
    text = " ".join(p + punct for p, punct in pieces)
    if rng.random() < 0.2:
        text = text.replace(" ", "\n", 1)
    out = A.augment_text(method, text, rng, rate)
    for p, _ in pieces:
        if A.is_protected_token(p):
            assert out.count(p) == text.count(p), (p, text, out)
    assert A.protected_tokens(out) == A.protected_tokens(text)


def test_names_and_products_inside_a_sentence_are_protected() -> None:
    text = "Chloe Williams here. my Pulse Fitness Tracker from Ethan is broken and the strap is loose"
    for method in ("synonym", "dropout", "swap", "typo"):
        for r in rngs(20):
            out = A.augment_text(method, text, r, 0.5)
            assert out.startswith("Chloe Williams ") and "Pulse Fitness Tracker" in out and "Ethan" in out
    assert A.is_protected_token("<ORDER_1>.") and A.is_protected_token("larkspurgoods.com")
    assert A.is_protected_token("SKU-ABC") and not A.is_protected_token("Hello,")


# ------------------------------------------------------------------ rows


ROW = conv(
    "c1",
    ("system", "Order on file:\nOrder number: LG-123456\nStatus: shipped"),
    ("user", "Hi, can you tell me where my package is? It is order LG-123456."),
    ("assistant", "Your order LG-123456 has shipped; it should arrive in 3-5 business days."),
    ("user", "I want to return the lamp because it arrived broken"),
    ("assistant", "Returns are accepted within 30 days of delivery."),
    meta={"intent": "order_status"},
)


@pytest.mark.parametrize("method", A.METHODS)
def test_only_user_turns_change(method: str) -> None:
    for r in rngs(5):
        new = A.augment_row(ROW, method, r, 0.2)
        assert [m["role"] for m in new["messages"]] == [m["role"] for m in ROW["messages"]]
        for old, got in zip(ROW["messages"], new["messages"], strict=True):
            if old["role"] != "user":
                assert got["content"] == old["content"]
        assert any(o["content"] != g["content"] for o, g in zip(ROW["messages"], new["messages"], strict=True))
        assert all("LG-123456" in m["content"] for m in new["messages"][:3])


def test_variants_are_marked_and_share_the_split_key() -> None:
    aug = A.Augmenter(cfg(copies="3"))
    out = aug(ROW)
    assert out[0] is ROW
    variants = out[1:]
    assert [v["id"] for v in variants] == ["c1~aug1", "c1~aug2", "c1~aug3"]
    for v in variants:
        (method,) = v["meta"]["augment"]
        assert method in A.METHODS and v["source"] == f"augment/{method}"
        assert v["meta"] == {**ROW["meta"], "augmented_from": "c1", "augment": [method],
                             "origin_key": split_key(ROW, "conversations"), "original_source": "test"}  # fmt: skip
        assert split_key(v, "conversations") == split_key(ROW, "conversations")
        assert content_key(v, "conversations") != content_key(ROW, "conversations")
    # one method per variant, taken in turn
    assert len({v["source"] for v in variants}) == 3


def test_identical_and_duplicate_variants_are_skipped_and_counted() -> None:
    aug = A.Augmenter(cfg(copies="3", methods="swap"))
    row = conv("a", ("user", "thanks"), ("assistant", "You're welcome!"))
    assert aug(row) == [row]
    assert aug.counts.skipped_identical == 3 and aug.counts.augmented_written == 0
    out = aug(conv("b", ("user", "hello there"), ("assistant", "Hi!")))
    assert [m["messages"][0]["content"] for m in out[1:]] == ["there hello"]
    assert aug.counts.skipped_duplicate == 2 and aug.counts.augmented_written == 1


def test_augmented_input_rows_are_not_augmented_again() -> None:
    aug = A.Augmenter(cfg(copies="2"), taken_ids=["c1~aug1"])
    old = {**ROW, "id": "c1~aug1", "meta": {"augmented_from": "c1"}}
    assert aug(old) == [old]
    ids = [r["id"] for r in aug(ROW)]
    assert ids == ["c1", "c1~aug2", "c1~aug3"]  # the taken id is skipped
    assert aug.counts.already_augmented == 1 and aug.counts.originals == 1


def test_config_is_validated() -> None:
    assert cfg().methods == list(A.METHODS) and cfg().copies == 1 and cfg().include_original
    with pytest.raises(ConfigError, match="methods: unknown method 'bogus'"):
        cfg(methods="synonym,bogus")
    with pytest.raises(ConfigError, match="more than once"):
        cfg(methods="typo,typo")
    with pytest.raises(ConfigError, match="rate"):
        cfg(rate="0.6")
    with pytest.raises(ConfigError, match="copies"):
        cfg(copies="21")
    with pytest.raises(ConfigError, match="out"):
        cfg(out="in")


# ------------------------------------------------------------------ the command, end to end


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Any]:
    root = tmp_path_factory.mktemp("augment")
    w = generate(0, conversations=200, test_conversations=1, heldout_conversations=1, kb_articles=1, preferences=1)
    write_dataset(root / "in", "conversations", w.conversations, created_by={"command": "test"})
    write_dataset(root / "kb", "text", w.kb, created_by={"command": "test"})
    return root, w


def run(root: Path, out: str, **kw: Any) -> dict[str, Any]:
    over = {"dataset": str(root / kw.pop("dataset", "in")), "out": str(root / out), **kw}
    return A.main(load_config(A.AugmentConfig, overrides=over))


@pytest.fixture(scope="module")
def augmented(world: tuple[Path, Any]) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    root, _ = world
    manifest = run(root, "out", copies="2", seed="1")
    return manifest, list(open_dataset(root / "out"))


def test_support_world_end_to_end(world: tuple[Path, Any], augmented: tuple[dict[str, Any], list[dict[str, Any]]]) -> None:
    root, w = world
    manifest, rows = augmented
    originals = {r["id"]: r for r in w.conversations}
    info = manifest["augment"]
    assert manifest["parents"] == [open_dataset(root / "in").content_hash]
    assert manifest["created_by"]["command"] == "data augment" and manifest["created_by"]["config"]["copies"] == 2
    # counts add up
    assert info["originals"] == info["rows_in"] == 200 and info["requested"] == 400
    assert info["augmented_written"] + info["skipped_identical"] + info["skipped_duplicate"] == 400
    assert sum(info["per_method"].values()) == info["augmented_written"] > 380
    assert all(n > 40 for n in info["per_method"].values())
    assert manifest["num_rows"] == len(rows) == info["originals_written"] + info["augmented_written"]
    variants = [r for r in rows if "augmented_from" in r["meta"]]
    assert len(variants) == info["augmented_written"]
    assert [r for r in rows if r["id"] in originals] == w.conversations  # originals unchanged, in order
    assert len({r["id"] for r in rows}) == len(rows)
    planted: dict[str, list[str]] = {}
    for p in w.planted_pii:
        planted.setdefault(p["id"], []).append(p["value"])
    keys = set()
    for v in variants:
        orig = originals[v["meta"]["augmented_from"]]
        assert v["id"].startswith(orig["id"] + "~aug") and split_key(v, "conversations") == split_key(orig, "conversations")
        assert v["source"] == "augment/" + ",".join(v["meta"]["augment"])
        for a, b in zip(orig["messages"], v["messages"], strict=True):
            assert a["role"] == b["role"]
            if a["role"] != "user":
                assert a["content"] == b["content"]
            assert A.protected_tokens(a["content"]) == A.protected_tokens(b["content"])
        text = "\n".join(m["content"] for m in v["messages"])
        assert all(value in text for value in planted.get(orig["id"], []))  # planted PII kept verbatim
        key = content_key(v, "conversations")
        assert key != content_key(orig, "conversations") and key not in keys
        keys.add(key)


def test_same_seed_same_hash_different_seed_different(world: tuple[Path, Any], augmented: tuple[dict[str, Any], Any]) -> None:
    root, _ = world
    again = run(root, "again", copies="2", seed="1")
    other = run(root, "other", copies="2", seed="2")
    assert again["content_hash"] == augmented[0]["content_hash"]
    assert other["content_hash"] != augmented[0]["content_hash"]


def test_a_rows_variants_do_not_depend_on_the_other_rows(world: tuple[Path, Any], augmented: tuple[Any, list[dict[str, Any]]]) -> None:
    _, w = world
    _, rows = augmented
    for row in w.conversations[100:110]:
        alone = A.Augmenter(cfg(copies="2", seed="1"))(row)
        assert alone == [r for r in rows if r["id"] == row["id"] or r["meta"].get("augmented_from") == row["id"]]


def test_copies_zero_gives_the_input_back(world: tuple[Path, Any]) -> None:
    root, _ = world
    m = run(root, "zero", copies="0")
    assert m["content_hash"] == open_dataset(root / "in").content_hash
    assert m["augment"]["augmented_written"] == 0 and m["augment"]["originals_written"] == 200


def test_only_augmented_rows_and_reaugmenting(world: tuple[Path, Any], augmented: tuple[dict[str, Any], Any]) -> None:
    root, _ = world
    m = run(root, "only", copies="1", include_original="false", methods="typo,paraphrase")
    rows = list(open_dataset(root / "only"))
    assert len(rows) == m["augment"]["augmented_written"] == m["num_rows"] > 190
    assert all(r["meta"]["augmented_from"] and r["meta"]["augment"][0] in ("typo", "paraphrase") for r in rows)
    # augmenting an augmented dataset: variants are passed through, only originals get new ones
    m2 = run(root, "twice", dataset="out", copies="1")
    rows2 = list(open_dataset(root / "twice"))
    assert m2["augment"]["already_augmented"] == augmented[0]["augment"]["augmented_written"]
    assert m2["augment"]["originals"] == 200
    assert len({r["id"] for r in rows2}) == len(rows2)
    assert not any("~aug" in r["meta"].get("augmented_from", "") for r in rows2)


def test_conversations_only(world: tuple[Path, Any]) -> None:
    root, _ = world
    with pytest.raises(UserError, match=r"kb: is a text dataset; data augment .* needs a conversations dataset"):
        run(root, "bad", dataset="kb")
    assert not (root / "bad").exists()
