"""Duplicate detection: signatures equal datasketch's, planted duplicates found, distinct rows kept."""

from __future__ import annotations

import hashlib
import random

import numpy as np
import pytest
from datasketch import MinHash, MinHashLSH
from hypothesis import given, settings
from hypothesis import strategies as st

from chatforge.data.dedup import DedupConfig, DedupIndex, Signer, affine32_permutations, lsh_params
from chatforge.data.steps import dedup_text

WORDS = ["order", "refund", "return", "shipping", "package", "tracking", "delivered", "address", "card", "payment", "discount", "warranty", "please", "thanks", "hello", "help", "week", "days", "store", "item", "size", "color", "exchange", "cancel", "status", "account", "password", "blue", "green", "small", "large", "quick", "slow", "today", "tomorrow", "yesterday", "morning", "evening", "store", "online"]


def sentence(rng: random.Random, n: int = 40) -> str:
    return " ".join(rng.choice(WORDS) for _ in range(n))


def jaccard(a: str, b: str, n: int = 3) -> float:
    def grams(t: str) -> set[tuple[str, ...]]:
        w = t.split()
        return {tuple(w[i : i + n]) for i in range(len(w) - n + 1)}

    ga, gb = grams(a), grams(b)
    return len(ga & gb) / len(ga | gb)


def test_signatures_equal_datasketch_minhash():
    signer = Signer(128, 3)
    texts = ["hello there how are you doing today my friend", "a b", "", "x", "one two three four"]
    sigs = signer.signatures(texts)
    for text, sig in zip(texts, sigs, strict=True):
        hashes, counts = signer.shingle_hashes([text])
        ref = MinHash(num_perm=128, seed=1, hashfunc=lambda x: x, scheme="affine32")
        ref.update_batch([int(h) for h in hashes])
        assert np.array_equal(ref.hashvalues.astype(np.uint32), sig)
        assert counts[0] == (0 if not text.split() else max(1, len(text.split()) - 2))


@pytest.mark.parametrize("num_perm", [16, 128, 1024])
def test_permutations_equal_datasketch(num_perm):
    a, b = affine32_permutations(num_perm)
    ref_a, ref_b = MinHash(num_perm=num_perm, seed=1, scheme="affine32").permutations
    assert a.dtype == b.dtype == np.uint32
    assert np.array_equal(a, ref_a) and np.array_equal(b, ref_b)


def test_signature_estimates_jaccard():
    rng = random.Random(0)
    signer = Signer(256, 3)
    a = sentence(rng, 60)
    words = a.split()
    for changes in (1, 4, 10):
        b = words[:]
        for i in rng.sample(range(len(b)), changes):
            b[i] = "zzz" + str(i)
        b = " ".join(b)
        sa, sb = signer.signatures([a, b])
        assert abs(float(np.mean(sa == sb)) - jaccard(a, b)) < 0.12


@pytest.mark.parametrize(("threshold", "num_perm"), [(0.8, 128), (0.5, 128), (0.9, 64), (0.7, 256)])
def test_lsh_parameters_match_datasketch(threshold, num_perm):
    ref = MinHashLSH(threshold=threshold, num_perm=num_perm)
    assert lsh_params(threshold, num_perm) == (ref.b, ref.r)


def test_planted_duplicates_are_found_and_distinct_rows_kept():
    rng = random.Random(1)
    cfg = DedupConfig()
    signer = Signer(cfg.num_perm, cfg.ngram)
    base = [sentence(rng, 60) for _ in range(300)]
    texts, expect = [], []
    for i, t in enumerate(base):
        texts.append(t)
        expect.append((None, None))
        if i % 10 == 0:  # exact copy, differing only in case and spacing
            texts.append("  " + t.upper().replace(" ", "   "))
            expect.append(("duplicate", f"r{len(texts) - 2}"))
        elif i % 10 == 1:  # one word of sixty changed: Jaccard ~0.9
            w = t.split()
            w[30] = "changed"
            texts.append(" ".join(w))
            expect.append(("near_duplicate", f"r{len(texts) - 2}"))
        elif i % 10 == 2:  # half the words changed: a different row
            w = t.split()
            texts.append(" ".join([*w[:30], sentence(rng, 30)]))
            expect.append((None, None))
    ids = [f"r{i}" for i in range(len(texts))]
    keys = [hashlib.sha256(" ".join(t.lower().split()).encode()).digest() for t in texts]
    got = []
    with DedupIndex(cfg) as index:
        for start in range(0, len(texts), 64):  # duplicates straddle batch boundaries too
            sl = slice(start, start + 64)
            got += [(v.reason, v.duplicate_of) for v in index.check(ids[sl], keys[sl], signer.signatures(texts[sl]))]
    # Exact copies and distinct rows are decided exactly; near copies (Jaccard ~0.9) are found by
    # LSH with probability ~0.99 each, so allow a rare miss (but never a wrong "duplicate of").
    for (reason, of), (want, want_of) in zip(got, expect, strict=True):
        if want in (None, "duplicate"):
            assert (reason, of) == (want, want_of)
        else:
            assert (reason, of) in ((want, want_of), (None, None))
    near = [g for g, e in zip(got, expect, strict=True) if e[0] == "near_duplicate"]
    assert sum(g[0] == "near_duplicate" for g in near) >= 0.9 * len(near)


def test_query_only_mode_does_not_grow_the_index():
    rng = random.Random(2)
    cfg = DedupConfig()
    signer = Signer(cfg.num_perm, cfg.ngram)
    held = [sentence(rng) for _ in range(20)]
    other = sentence(rng)
    with DedupIndex(cfg) as index:
        index.check([f"h{i}" for i in range(20)], [hashlib.sha256(t.encode()).digest() for t in held], signer.signatures(held))
        probe = [held[3], other, other]
        v = index.check(["a", "b", "c"], [hashlib.sha256(t.encode()).digest() for t in probe], signer.signatures(probe), insert=False)
        assert [(x.reason, x.duplicate_of) for x in v] == [("duplicate", "h3"), (None, None), (None, None)]


def test_empty_text_never_matches():
    cfg = DedupConfig(exact=False)
    signer = Signer(cfg.num_perm, cfg.ngram)
    with DedupIndex(cfg) as index:
        v = index.check(["a", "b"], [bytes(16), bytes(16)], signer.signatures(["", ""]))
    assert [x.reason for x in v] == [None, None]


def test_sorted_multimap_finds_every_value_across_merges():
    from chatforge.data.dedup import SortedMultimap

    rng = np.random.default_rng(0)
    m = SortedMultimap()
    truth: dict[int, list[int]] = {}
    for batch in range(40):
        keys = rng.integers(0, 500, 300)
        vals = np.arange(batch * 300, batch * 300 + 300)
        m.add(keys, vals)
        for k, v in zip(keys.tolist(), vals.tolist(), strict=True):
            truth.setdefault(k, []).append(v)
    q = np.array([3, 7, 499, 1000])
    qi, vals = m.lookup(q)
    got: dict[int, list[int]] = {}
    for i, v in zip(qi.tolist(), vals.tolist(), strict=True):
        got.setdefault(int(q[i]), []).append(v)
    # every value, each key's in insertion order (the first is the earliest row: keep-first)
    assert got == {k: truth[k] for k in (3, 7, 499) if k in truth}
    assert len(m) == 40 * 300
    with pytest.raises(ValueError, match="nondecreasing"):
        m.add(np.array([1]), np.array([0]))


def _reference_word_hash(word: bytes) -> int:
    """The word hash by its definition: sum of (byte + 1) * MIX^i mod 2^64."""
    mix, h, power = 0x9E3779B97F4A7C15, 0, 1
    for b in word:
        h = (h + (b + 1) * power) % (1 << 64)
        power = power * mix % (1 << 64)
    return h


def test_word_hashes_equal_their_definition_across_text_boundaries():
    rng = random.Random(3)
    alphabet = ["a", "b", "é", "日", " ", "  ", "\t", "\n", "\r\n", "\x0b", "\x0c", "\u00a0", "x1"]
    texts = ["", " ", "a", "ab", "  lead", "trail  ", "\u00a0nbsp\u00a0is a word byte"]
    texts += ["".join(rng.choice(alphabet) for _ in range(rng.randrange(0, 40))) for _ in range(300)]
    hashes, counts = Signer(16, 3).word_hashes(texts)
    expect = [[_reference_word_hash(w) for w in t.encode("utf-8").split()] for t in texts]  # bytes.split: ASCII whitespace
    assert counts.tolist() == [len(e) for e in expect]
    assert hashes.tolist() == [h for e in expect for h in e]


def _reference_verdicts(cfg, keys, sigs):
    """Keep-first dedup by its definition, one row at a time over plain Python values: an
    exact duplicate of an earlier kept row, else the first of the earlier kept rows sharing
    an LSH band (most bands first, then the earliest; at most MAX_CANDIDATES tried) whose
    signature agrees on >= threshold of its values."""
    from chatforge.data.dedup import MAX_CANDIDATES, band_keys

    bands, rows = lsh_params(cfg.threshold, cfg.num_perm, 0.2, 0.8)
    bkeys = band_keys(sigs, bands, rows).tolist()
    kept: list[int] = []
    out = []
    for i in range(len(keys)):
        exact = next((j for j in kept if keys[j] == keys[i]), None)
        if exact is not None:
            out.append(("duplicate", exact))
            continue
        shared = {j: sum(a == b for a, b in zip(bkeys[i], bkeys[j], strict=True)) for j in kept}
        tries = sorted((j for j in shared if shared[j]), key=lambda j: (-shared[j], j))[:MAX_CANDIDATES]
        hit = next((j for j in tries if float(np.mean(sigs[j] == sigs[i])) >= cfg.threshold), None)
        out.append(("near_duplicate", hit) if hit is not None else (None, None))
        if hit is None:
            kept.append(i)
    return out


def test_index_agrees_with_the_definition_within_and_across_batches():
    # Clusters of near copies (one or two words of forty changed), spread so that copies
    # meet their originals both in the same batch (compared one by one) and in later
    # batches (compared all at once against the index).
    rng = random.Random(7)
    cfg = DedupConfig()
    signer = Signer(cfg.num_perm, cfg.ngram)
    texts = []
    for _ in range(120):
        base = sentence(rng, 40).split()
        texts.append(" ".join(base))
        for _ in range(rng.randint(0, 3)):
            w = list(base)
            for _ in range(rng.randint(1, 2)):
                w[rng.randrange(len(w))] = f"x{rng.randrange(1000)}"
            texts.append(" ".join(w))
    rng.shuffle(texts)
    texts += texts[:15]  # exact copies at the end
    keys = [hashlib.sha256(t.encode()).digest() for t in texts]
    sigs = signer.signatures(texts)
    want = _reference_verdicts(cfg, keys, sigs)
    ids = [f"r{i}" for i in range(len(texts))]
    got = []
    with DedupIndex(cfg) as index:
        for start in range(0, len(texts), 50):
            sl = slice(start, start + 50)
            got += [(v.reason, v.duplicate_of) for v in index.check(ids[sl], keys[sl], sigs[sl])]
    assert got == [(r, None if j is None else f"r{j}") for r, j in want]
    assert sum(r == "near_duplicate" for r, _ in got) > 50 and sum(r == "duplicate" for r, _ in got) == 15


@pytest.mark.parametrize("batch", [1, 7, 50, 1000])
def test_copies_inside_a_batch_agree_with_the_definition(batch):
    # Exact copies a few rows after their source, so they meet it in the same batch: copies
    # of kept rows, of rows dropped as near duplicates (a copy of a dropped row is not a
    # "duplicate" of it: it near-duplicates what its source did), copies of copies, and
    # empty texts (no signature) with their copies.
    rng = random.Random(11)
    cfg = DedupConfig()
    signer = Signer(cfg.num_perm, cfg.ngram)
    texts: list[str] = []
    for _ in range(80):
        base = sentence(rng, 40).split()
        texts.append(" ".join(base))
        if rng.random() < 0.5:
            w = list(base)
            w[rng.randrange(len(w))] = f"x{rng.randrange(1000)}"
            texts.append(" ".join(w))
        if rng.random() < 0.1:
            texts.append("")
    for _ in range(60):
        at = rng.randrange(len(texts))
        texts.insert(min(len(texts), at + rng.randint(1, 6)), texts[at])
    keys = [hashlib.sha256(t.encode()).digest()[:16] for t in texts]
    sigs = signer.signatures(texts)
    want = _reference_verdicts(cfg, keys, sigs)
    ids = [f"r{i}" for i in range(len(texts))]
    got = []
    with DedupIndex(cfg) as index:
        for start in range(0, len(texts), batch):
            sl = slice(start, start + batch)
            got += [(v.reason, v.duplicate_of) for v in index.check(ids[sl], keys[sl], sigs[sl])]
        assert len(index.exact) == sum(r is None for r, _ in want)  # only kept rows joined the index
        for keys_, rows_ in index.band.levels:  # each band key's rows in row order
            assert bool(np.all((np.diff(keys_) > 0) | ((np.diff(keys_) == 0) & (np.diff(rows_) > 0))))
    assert got == [(r, None if j is None else f"r{j}") for r, j in want]
    copied_dropped = [i for i, (r, j) in enumerate(want) if r == "near_duplicate" and keys[i] in {keys[k] for k in range(i) if want[k][0]}]
    assert sum(r == "duplicate" for r, _ in want) > 30 and copied_dropped  # the cases this test is for occur


def test_query_only_and_insert_all_modes_agree_with_a_one_by_one_check():
    # `data split`'s leakage check: every held-out row joins the index (insert_all), then
    # train rows are only compared with it (insert=False). Either mode's verdict for a row
    # must not depend on the batch it comes in.
    rng = random.Random(12)
    cfg = DedupConfig()
    signer = Signer(cfg.num_perm, cfg.ngram)
    held = [sentence(rng, 60) for _ in range(40)]
    held += held[:5]  # copies among the held-out rows join too
    probe = [held[i] for i in range(0, 40, 4)] + [h.replace(h.split()[3], "changed", 1) for h in held[1:40:4]]
    probe += [sentence(rng, 60) for _ in range(20)] + [probe[0], ""]

    def run(batch: int) -> list[tuple[str | None, str | None]]:
        out = []
        with DedupIndex(cfg) as index:
            for start in range(0, len(held), batch):
                sl = slice(start, start + batch)
                h = held[sl]
                index.check([f"h{i}" for i in range(start, start + len(h))], [hashlib.sha256(t.encode()).digest() for t in h], signer.signatures(h), insert_all=True)
            assert len(index.exact) == len(held)
            for start in range(0, len(probe), batch):
                p = probe[start : start + batch]
                verdicts = index.check([f"p{i}" for i in range(len(p))], [hashlib.sha256(t.encode()).digest() for t in p], signer.signatures(p), insert=False)
                out += [(v.reason, v.duplicate_of) for v in verdicts]
            assert len(index.exact) == len(held)  # query-only: nothing joined
        return out

    one = run(1)
    assert run(7) == one and run(100) == one
    assert one[:10] == [("duplicate", f"h{i}") for i in range(0, 40, 4)]
    assert sum(r == "near_duplicate" for r, _ in one[10:20]) >= 8
    assert one[-2] == ("duplicate", "h0") and one[-1] == (None, None)


@settings(max_examples=400, deadline=None)
@given(
    st.lists(
        st.one_of(
            st.text(max_size=12),
            st.sampled_from([" ", "  ", "\t", "\n", "\r\n", "\x0b", "\x0c", "\x1c", "\x85", "\xa0", "\u2003", "\u2028", "\u3000"]),
            st.sampled_from(["Hello", "ÉCOLE", "İstanbul", "ǅ", "ΣΑΣ", "x"]),
        ),
        max_size=8,
    ).map("".join)
)
def test_dedup_text_squeezes_like_split_and_join(text):
    """The fast path of `dedup_text` gives what lowercasing, splitting on whitespace and joining gives."""
    row = {"messages": [{"role": "user", "content": text}, {"role": "assistant", "content": text.upper()}]}
    want = "\n".join(m["role"] + ": " + " ".join(m["content"].lower().split()) for m in row["messages"])
    assert dedup_text(row, "conversations") == want
    assert dedup_text({"text": text}, "text") == "text: " + " ".join(text.lower().split())
