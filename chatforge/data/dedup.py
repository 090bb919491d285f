"""Exact and near-duplicate removal: content hashes and MinHash LSH.

Two rows are exact duplicates when their normalized content (`steps.dedup_text`:
roles kept, lowercased, whitespace collapsed) is equal; near duplicates when the
Jaccard similarity of their word n-gram sets, estimated by MinHash, is at least
`threshold` (default 0.8). For conversations the whole conversation is compared. The
first occurrence is kept; every dropped row records which row it duplicated.

How it scales:
- Signatures are computed a batch at a time with numpy, in the worker processes, with
  datasketch's permutations and hashing scheme (a test checks they equal
  `datasketch.MinHash` signatures). Calling `MinHash.update_batch` row by row costs
  ~100 µs a row here, too slow for the cleaning chain's 10 MB/s target.
- The index keeps ~0.2 KB of RAM per kept row (its content key and LSH band keys in
  sorted numpy arrays, looked up a batch at a time); signatures and ids go to
  temporary files and are read back only for candidates. datasketch's in-memory
  `MinHashLSH` costs ~1 KB of RAM per row in Python objects, and a SQLite index cost
  ~100 µs a row. The number of bands and rows per band minimize false positives +
  weighted false negatives at the threshold.
"""

from __future__ import annotations

import functools
import os
import tempfile
from dataclasses import dataclass
from typing import Any, NamedTuple

import numpy as np

from chatforge.config import opt
from chatforge.errors import ConfigError

# MurmurHash3's 32-bit finalizer, as datasketch's "affine32" scheme applies it before
# the affine permutations (so that weak hashes still spread over the whole range).
_FMIX32 = (16, 0x85EBCA6B, 13, 0xC2B2AE35, 16)


@dataclass
class DedupConfig:
    """Exact and near-duplicate removal (keeps the first occurrence)."""

    exact: bool = opt(True, "drop rows whose normalized content equals an earlier row's")
    near: bool = opt(True, "drop rows whose MinHash Jaccard similarity to an earlier kept row is >= threshold")
    threshold: float = opt(0.8, "Jaccard similarity at which two rows are near duplicates", gt=0, lt=1)
    num_perm: int = opt(128, "MinHash permutations (more: more precise, slower)", ge=16, le=1024)
    ngram: int = opt(3, "word n-gram size of the shingles compared", ge=1, le=20)

    def validate(self) -> None:
        if self.num_perm % 8:
            raise ConfigError(f"dedup.num_perm: must be a multiple of 8, got {self.num_perm}")


@functools.lru_cache(maxsize=32)
def lsh_params(threshold: float, num_perm: int, fp_weight: float = 0.5, fn_weight: float = 0.5) -> tuple[int, int]:
    """(bands, rows per band) with b*r <= num_perm minimizing the weighted false-positive area
    below `threshold` plus the false-negative area above it (the usual LSH tuning, as
    datasketch does; equal weights give datasketch's choice).

    A pair with Jaccard similarity s shares at least one band with probability
    1 - (1 - s^r)^b. `DedupIndex` verifies every candidate against its signature, so a
    false positive only costs a comparison: it weighs misses 4x (for threshold 0.8 and 128
    permutations, a pair at similarity 0.85 is then found 93% of the time instead of 69%).
    """
    s_lo = np.linspace(0.0, threshold, 200)
    s_hi = np.linspace(threshold, 1.0, 200)
    best, best_err = (1, num_perm), float("inf")
    for b in range(1, num_perm + 1):
        for r in range(1, num_perm // b + 1):
            fp = fp_weight * np.trapezoid(1 - (1 - s_lo**r) ** b, s_lo)
            fn = fn_weight * np.trapezoid((1 - s_hi**r) ** b, s_hi)
            if fp + fn < best_err:
                best, best_err = (b, r), float(fp + fn)
    return best


MAX_CANDIDATES = 16
_MIX = np.uint64(0x9E3779B97F4A7C15)  # odd 64-bit constant (golden ratio) to combine word hashes
_MIX_INVERSE = np.uint64(pow(int(_MIX), -1, 1 << 64))  # odd, so invertible mod 2^64


@functools.lru_cache(maxsize=4)
def _power_tables(n: int) -> tuple[np.ndarray, np.ndarray]:
    """_MIX^i and _MIX^-i mod 2^64 for i < n (uint64): the weights of a byte at position i."""
    up = np.full(max(n, 1), _MIX, dtype=np.uint64)
    down = np.full(max(n, 1), _MIX_INVERSE, dtype=np.uint64)
    up[0] = down[0] = 1
    with np.errstate(over="ignore"):
        return np.cumprod(up), np.cumprod(down)


def affine32_permutations(num_perm: int, seed: int = 1) -> tuple[np.ndarray, np.ndarray]:
    """The (a, b) of `num_perm` permutations h -> a*h + b mod 2^32, a odd: the values
    `datasketch.MinHash(num_perm, seed, scheme="affine32").permutations` holds (tested),
    drawn here so that cleaning does not import datasketch (and scipy with it: ~1 s per
    process)."""
    gen = np.random.RandomState(seed)
    a = gen.randint(0, 1 << 31, num_perm, dtype=np.uint32) * np.uint32(2) + np.uint32(1)
    b = gen.randint(0, 1 << 32, num_perm, dtype=np.uint32)
    return a, b


class Signer:
    """MinHash signatures of word n-gram sets for a batch of texts, vectorized with numpy.

    Words are hashed once (crc32), n-gram hashes are combined from them in numpy, and
    the permutations are datasketch's own (seed 1, scheme "affine32": murmur finalizer,
    then a*h+b mod 2^32 with odd a): for the same n-gram hashes the signature equals
    `datasketch.MinHash`'s (tested). A text shorter than n words is one shingle; a
    text with no words gets the all-0xFFFFFFFF signature (it never matches).
    """

    def __init__(self, num_perm: int, ngram: int) -> None:
        self.num_perm = num_perm
        self.ngram = ngram
        a, b = affine32_permutations(num_perm)
        self.a = a[:, None]  # (num_perm, 1)
        self.b = b[:, None]
        self._buf = np.empty((num_perm, 0), dtype=np.uint32)

    def word_hashes(self, texts: list[str]) -> tuple[np.ndarray, np.ndarray]:
        """A 64-bit hash of every word (split on ASCII whitespace) of every text, and the word count per text.

        A word's hash is the polynomial sum of (byte + 1) * _MIX^i over its bytes (i = the
        byte's position in the word). It is read off one prefix sum over the whole batch:
        with P[k] = sum of (byte_j + 1) * _MIX^j for j < k, the word at [s, e) hashes to
        (P[e] - P[s]) * _MIX^-s. Vectorized over the bytes of the batch: a Python loop over
        words costs ~0.5 µs a word, this ~10 ns.
        """
        encoded = [t.encode("utf-8") for t in texts]
        data = np.frombuffer(b"".join(encoded), dtype=np.uint8)
        n = len(data)
        text_end = np.cumsum(np.fromiter((len(e) for e in encoded), dtype=np.int64, count=len(encoded)))
        # Comparisons, not a lookup table: ~4x faster. Whitespace is \t \n \x0b \x0c \r and space.
        is_word = (data != 32) & ((data < 9) | (data > 13))
        cut = np.zeros(n + 1, dtype=bool)  # True between two texts (and at both ends)
        cut[0] = True
        cut[text_end] = True
        # A word starts at a word byte that follows no word byte of the same text; ends likewise.
        joined = np.zeros(n + 1, dtype=bool)  # joined[k]: bytes k-1 and k are word bytes of one text
        np.logical_and(is_word[:-1], is_word[1:], out=joined[1:n])
        joined &= ~cut
        starts = np.flatnonzero(is_word & ~joined[:n])
        ends = np.flatnonzero(is_word & ~joined[1:]) + 1
        counts = np.diff(np.searchsorted(starts, text_end), prepend=0).astype(np.int64)
        if not len(starts):
            return np.zeros(0, dtype=np.uint64), counts
        up, down = _power_tables(1 << max(16, n.bit_length()))  # a few sizes, cached
        prefix = np.zeros(n + 1, dtype=np.uint64)
        with np.errstate(over="ignore"):
            weighted = data.astype(np.uint64)
            weighted += np.uint64(1)
            weighted *= up[:n]
            np.cumsum(weighted, out=prefix[1:])
            hashes = (prefix[ends] - prefix[starts]) * down[starts]
        return hashes, counts

    def shingle_hashes(self, texts: list[str]) -> tuple[np.ndarray, np.ndarray]:
        """uint32 hashes of every text's word n-grams, concatenated, and the count per text."""
        n = self.ngram
        w, counts = self.word_hashes(texts)
        # Pad every text with n-1 zero words so windows never cross into the next text.
        padded = np.zeros(len(w) + len(texts) * (n - 1), dtype=np.uint64)
        offsets = np.concatenate([[0], np.cumsum(counts + n - 1)[:-1]]) if len(texts) else counts
        word_slot = np.repeat(offsets, counts) + (np.arange(len(w)) - np.repeat(np.cumsum(counts) - counts, counts))
        padded[word_slot] = w
        windows = np.where(counts >= n, counts - n + 1, np.minimum(counts, 1))
        total = int(windows.sum())
        first = np.repeat(offsets, windows) + (np.arange(total) - np.repeat(np.cumsum(windows) - windows, windows))
        g = np.zeros(total, dtype=np.uint64)
        with np.errstate(over="ignore"):
            for k in range(n):
                g = g * _MIX + padded[first + k]
        g = (g ^ (g >> np.uint64(32))).astype(np.uint32)
        return g, windows

    def signatures(self, texts: list[str]) -> np.ndarray:
        """uint32 array (len(texts), num_perm)."""
        if len(texts) > 128:  # keep the (num_perm x shingles) matrix in cache
            return np.concatenate([self.signatures(texts[i : i + 128]) for i in range(0, len(texts), 128)])
        g, counts = self.shingle_hashes(texts)
        out = np.full((len(texts), self.num_perm), 0xFFFFFFFF, dtype=np.uint32)
        if not len(g):
            return out
        s1, m1, s2, m2, s3 = _FMIX32
        h = g
        with np.errstate(over="ignore"):
            h = h ^ (h >> np.uint32(s1))
            h = h * np.uint32(m1)
            h = h ^ (h >> np.uint32(s2))
            h = h * np.uint32(m2)
            h = h ^ (h >> np.uint32(s3))
            # (num_perm, total shingles), wraps mod 2^32; into a buffer kept between calls:
            # allocating this matrix anew every call made the step ~3x slower.
            if self._buf.shape[1] < len(h):
                self._buf = np.empty((self.num_perm, 2 * len(h)), dtype=np.uint32)
            ph = self._buf[:, : len(h)]
            np.multiply(self.a, h[None, :], out=ph)
            np.add(ph, self.b, out=ph)
        nonempty = counts > 0
        starts = (np.cumsum(counts) - counts)[nonempty]
        out[nonempty] = np.minimum.reduceat(ph, starts, axis=1).T
        return out


def band_keys(sigs: np.ndarray, bands: int, rows: int) -> np.ndarray:
    """One 63-bit key per LSH band per signature: int64 array (len(sigs), bands).

    A band's `rows` values are combined polynomially and the band's index is mixed in,
    so equal values in different bands never share a key.
    """
    raw = sigs[:, : bands * rows].reshape(len(sigs), bands, rows).astype(np.uint64)
    h = np.broadcast_to(np.arange(1, bands + 1, dtype=np.uint64), (len(sigs), bands)).copy()
    with np.errstate(over="ignore"):
        for j in range(rows):
            h = h * _MIX + raw[:, :, j]
        h ^= h >> np.uint64(29)
        h *= np.uint64(0xBF58476D1CE4E5B9)
        h ^= h >> np.uint64(32)
    return (h & np.uint64(0x7FFFFFFFFFFFFFFF)).astype(np.int64)


class Verdict(NamedTuple):
    """Whether a row is a duplicate, and of which row (by id)."""

    reason: str | None  # None (keep), "duplicate" or "near_duplicate"
    duplicate_of: str | None = None
    similarity: float = 1.0


_KEEP = Verdict(None)


class SortedMultimap:
    """An append-only multimap int64 key -> int64 value in two sorted numpy levels.

    16 bytes an entry (a Python dict costs ~100), and a whole batch of keys is looked up
    with one vectorized `searchsorted`. New entries go to a small level, merged into the
    large one when it reaches 1/8 of its size, so each entry is re-sorted O(log n) times.
    Values must come in nondecreasing order (row numbers in stream order): then a stable
    sort on the keys alone keeps each key's values in insertion order, and two sorted
    levels merge in linear time.
    """

    def __init__(self) -> None:
        self.levels: list[tuple[np.ndarray, np.ndarray]] = [(np.empty(0, np.int64), np.empty(0, np.int64))] * 2
        self._last = np.iinfo(np.int64).min

    def __len__(self) -> int:
        return sum(len(k) for k, _ in self.levels)

    @staticmethod
    def _merged(a: tuple[np.ndarray, np.ndarray], b: tuple[np.ndarray, np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
        """Two sorted levels as one, sorted by key; for equal keys, a's values before b's.

        A linear merge: each of b's entries goes after a's entries with keys up to its own
        (one `searchsorted`), the rest of the slots take a's entries in order.
        """
        if not len(b[0]):
            return a
        if not len(a[0]):
            return b
        at = np.searchsorted(a[0], b[0], side="right") + np.arange(len(b[0]))
        from_a = np.ones(len(a[0]) + len(b[0]), dtype=bool)
        from_a[at] = False
        keys, values = np.empty(len(from_a), np.int64), np.empty(len(from_a), np.int64)
        keys[at], values[at] = b
        keys[from_a], values[from_a] = a
        return keys, values

    def add(self, keys: np.ndarray, values: np.ndarray) -> None:
        if not len(values):
            return
        if values[0] < self._last or (len(values) > 1 and bool((values[1:] < values[:-1]).any())):
            raise ValueError("SortedMultimap values must be added in nondecreasing order")
        order = np.argsort(keys, kind="stable")
        self.add_sorted(keys[order], values[order])

    def add_sorted(self, keys: np.ndarray, values: np.ndarray) -> None:
        """`add` for entries already sorted by key, with equal keys' values in nondecreasing
        order (what a stable sort of entries added in order gives)."""
        if not len(values):
            return
        if values.min() < self._last:
            raise ValueError("SortedMultimap values must be added in nondecreasing order")
        self._last = int(values.max())
        big, small = self.levels
        small = self._merged(small, (keys, values))
        if len(small[0]) * 8 > max(len(big[0]), 1 << 16):
            self.levels = [self._merged(big, small), (np.empty(0, np.int64), np.empty(0, np.int64))]
        else:
            self.levels = [big, small]

    def lookup(self, queries: np.ndarray, by_key: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        """All (query index, value) pairs with keys[query] == key; `by_key` is an argsort of
        `queries` if the caller has one."""
        qi_parts, v_parts = [], []
        if by_key is None:
            by_key = np.argsort(queries)  # searchsorted runs ~4x faster on sorted queries
        sorted_q = queries[by_key]
        for keys, values in self.levels:
            if not len(keys):
                continue
            # Most queries have no entry: one search finds where each would be, and only
            # the ones found look for where their run of equal keys ends.
            lo = np.searchsorted(keys, sorted_q, "left")
            found = keys[np.minimum(lo, len(keys) - 1)] == sorted_q
            if not found.any():
                continue
            lo, q_found = lo[found], sorted_q[found]
            n = np.searchsorted(keys, q_found, "right") - lo
            qi = np.repeat(by_key[found], n)
            pos = np.repeat(lo, n) + (np.arange(int(n.sum())) - np.repeat(np.cumsum(n) - n, n))
            qi_parts.append(qi)
            v_parts.append(values[pos])
        if not qi_parts:
            return np.empty(0, np.int64), np.empty(0, np.int64)
        return np.concatenate(qi_parts), np.concatenate(v_parts)


def _content_keys(keys: list[bytes]) -> np.ndarray:
    """The first 8 bytes of each content key as a (little-endian) int64."""
    if keys and len(set(map(len, keys))) == 1 and len(keys[0]) >= 8:
        width = len(keys[0])
        return np.frombuffer(b"".join(keys), dtype=np.uint8).reshape(len(keys), width)[:, :8].copy().view("<i8").ravel()
    return np.array([int.from_bytes(k[:8], "little", signed=True) for k in keys], dtype=np.int64)


class DedupIndex:
    """Keep-first duplicate detection over a stream of rows.

        with DedupIndex(cfg) as index:
            verdicts = index.check(ids, content_keys, signatures)   # in stream order

    Each kept row joins the index, so later rows are compared against it. In memory per
    kept row: its 64-bit content key and its LSH band keys in `SortedMultimap`s (~16 bytes
    each, ~0.2 KB a row with 12 bands); its id and signature go to temporary files and
    are read back only for the few rows that turn out to be candidates.
    """

    def __init__(
        self,
        cfg: DedupConfig,
        directory: str | None = None,
        *,
        candidate_threshold: float | None = None,
        verify_threshold: float | None = None,
    ) -> None:
        """`candidate_threshold`: the similarity the LSH bands are tuned for (default: the
        threshold); lower finds more candidates (higher recall, more comparisons).
        `verify_threshold`: the signature agreement that makes a candidate a duplicate
        (default: the threshold); a leakage check sets it a little lower, to err on the
        side of dropping."""
        self.cfg = cfg
        self.verify_threshold = cfg.threshold if verify_threshold is None else verify_threshold
        self.bands, self.rows = lsh_params(candidate_threshold or cfg.threshold, cfg.num_perm, 0.2, 0.8)
        self._tmp = tempfile.TemporaryDirectory(prefix="chatforge-dedup-", dir=directory)
        self._sig_file = open(os.path.join(self._tmp.name, "signatures.bin"), "w+b")  # noqa: SIM115
        # Ids: their UTF-8 bytes one after the other, and each row's end offset (int64).
        self._id_file = open(os.path.join(self._tmp.name, "ids.bin"), "w+b")  # noqa: SIM115
        self._id_ends = open(os.path.join(self._tmp.name, "id_ends.bin"), "w+b")  # noqa: SIM115
        self._id_bytes = 0
        self.exact = SortedMultimap()  # content key -> row
        self.band = SortedMultimap()  # band key -> row
        self._next_row = 0
        self._rows_on_disk = 0  # rows whose signatures are in the file
        self._sig_table: np.memmap | None = None  # the file mapped in memory, while a batch reads it
        self._sig_bytes = cfg.num_perm * 4

    def __enter__(self) -> DedupIndex:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def close(self) -> None:
        self._sig_table = None
        self._sig_file.close()
        self._id_file.close()
        self._id_ends.close()
        self._tmp.cleanup()

    @staticmethod
    def _pwrite_all(f: Any, data: bytes, offset: int) -> None:
        """All of `data` at `offset` in file `f` (pwrite may write less, e.g. on a nearly full disk)."""
        view = memoryview(data)
        try:
            while view:
                n = os.pwrite(f.fileno(), view, offset)
                view, offset = view[n:], offset + n
        except OSError as e:
            raise OSError(e.errno, e.strerror, f.name) from None

    def _write_sigs(self, data: bytes, offset: int) -> None:
        self._pwrite_all(self._sig_file, data, offset)

    def _write_ids(self, first: int, ids: list[str]) -> None:
        """The ids of rows first, first + 1, ... after the ones written."""
        encoded = [i.encode("utf-8", "surrogatepass") for i in ids]
        ends = np.cumsum(np.fromiter(map(len, encoded), dtype=np.int64, count=len(encoded))) + self._id_bytes
        self._pwrite_all(self._id_file, b"".join(encoded), self._id_bytes)
        self._pwrite_all(self._id_ends, ends.tobytes(), first * 8)
        self._id_bytes = int(ends[-1]) if len(ends) else self._id_bytes

    def _read_sigs(self, rows: np.ndarray) -> np.ndarray:
        """The signatures of index rows `rows` (uint32, (len(rows), num_perm)), gathered from the file mapped in memory.

        The file is mapped once for all the reads of a batch (`_sig_table`; mapping it for
        every read cost more than the reads), and unmapped before the batch's rows are
        appended to it."""
        count = self._rows_on_disk
        if self._sig_table is None or len(self._sig_table) != count:
            self._sig_table = None
            try:
                self._sig_table = np.memmap(self._sig_file, dtype=np.uint32, mode="r", shape=(count, self.cfg.num_perm))
            except (ValueError, OSError) as e:  # the file is shorter than the rows written to it
                raise OSError(f"{self._sig_file.name}: the signatures could not be read back whole ({e})") from None
        return np.asarray(self._sig_table[rows])

    def _read_ids(self, rows: list[int]) -> dict[int, str]:
        out: dict[int, str] = {}
        for r in rows:
            span = os.pread(self._id_ends.fileno(), 16, (r - 1) * 8) if r else b"\0" * 8 + os.pread(self._id_ends.fileno(), 8, 0)
            if len(span) != 16:
                raise OSError(f"{self._id_ends.name}: the ids could not be read back whole")
            start, end = np.frombuffer(span, dtype=np.int64).tolist()
            data = os.pread(self._id_file.fileno(), end - start, start)
            if len(data) != end - start:
                raise OSError(f"{self._id_file.name}: the ids could not be read back whole")
            out[r] = data.decode("utf-8", "surrogatepass")
        return out

    def check(
        self, ids: list[str], keys: list[bytes], sigs: np.ndarray | None, *, insert: bool = True, insert_all: bool = False
    ) -> list[Verdict]:
        """Verdicts for a batch of rows in order; kept rows join the index unless `insert` is False
        (then rows are only compared with the index, not with each other). With `insert_all`,
        duplicates join it too (a leakage index must hold every held-out row).

        Most rows are judged at once with numpy: their verdict depends on the index alone.
        Only the rows that may duplicate an earlier row of the same batch (the same content
        key, or a band key another row of the batch holds) go through a loop in row order.
        While the batch is judged, its rows are named by `on_disk + position` (their row
        numbers are known once every verdict is), which orders them as row numbers would.
        """
        cfg, n = self.cfg, len(ids)
        near = cfg.near and sigs is not None and n > 0
        on_disk = self._next_row  # index rows before this batch (their signatures are in the file)
        ckeys = _content_keys(keys)
        # The earliest index row holding each row's content key (-1: none).
        exact_first = np.full(n, -1, dtype=np.int64)
        if cfg.exact and n:
            qi, rows = self.exact.lookup(ckeys)
            if len(qi):
                order = np.lexsort((rows, qi))
                qi, rows = qi[order], rows[order]
                first = np.concatenate(([True], qi[1:] != qi[:-1]))
                exact_first[qi[first]] = rows[first]
        # Rows whose content key an earlier row of the batch holds (all copies but the first).
        later_copy = np.zeros(n, dtype=bool)
        if cfg.exact and insert and n > 1:
            order = np.argsort(ckeys, kind="stable")
            same = ckeys[order[1:]] == ckeys[order[:-1]]
            later_copy[order[1:][same]] = True
        empty = np.zeros(n, dtype=bool)
        bkeys = np.empty((n, 0), dtype=np.int64)
        in_batch = np.zeros(bkeys.shape, dtype=bool)
        shares = np.zeros(n, dtype=bool)
        shared: dict[int, dict[int, int]] = {}  # batch row -> {index row: bands shared}, for the rows compared one by one
        hit_row = np.full(n, -1, dtype=np.int64)  # the index row each row near-duplicates (-1: none), for the rows sharing no band in the batch
        hit_sim = np.zeros(n)
        if near:
            assert sigs is not None
            empty = (sigs == 0xFFFFFFFF).all(axis=1)
            bkeys = band_keys(sigs, self.bands, self.rows)
            # Within the batch, rows are compared with the batch's earlier kept rows too,
            # through the band keys that more than one row of the batch holds.
            # One sort of the batch's band keys serves the in-batch sharing, the index
            # lookup and the insertion of the kept rows (not a stable one: ~6x faster;
            # the insertion orders the few ties itself).
            flat = bkeys.ravel()
            by_key = np.argsort(flat)
            if insert and n > 1:
                in_batch = np.zeros(bkeys.shape, dtype=bool)
                same = flat[by_key[1:]] == flat[by_key[:-1]]
                in_batch.ravel()[by_key[1:][same]] = True
                in_batch.ravel()[by_key[:-1][same]] = True
                shares = np.asarray(in_batch.any(axis=1))
            qi, rows = self.band.lookup(flat, by_key)
            if len(qi):
                # Candidates from the index: (batch row, index row, bands shared) in the order
                # they are tried, most bands shared first, then the earliest row.
                pair, count = np.unique((qi // self.bands) * on_disk + rows, return_counts=True)
                q, r = np.divmod(pair, on_disk)
                order = np.lexsort((r, -count, q))
                q, r, count = q[order], r[order], count[order]
                tried = np.arange(len(q)) - np.searchsorted(q, q) < MAX_CANDIDATES
                # A row sharing no band key with the rest of the batch has only these
                # candidates: all such rows are compared at once.
                alone = tried & ~shares[q] & ~empty[q]
                if alone.any():
                    aq, ar = q[alone], r[alone]
                    similarity = (self._read_sigs(ar) == sigs[aq]).mean(axis=1)
                    hit = similarity >= self.verify_threshold
                    first_q, first = np.unique(aq[hit], return_index=True)
                    hit_row[first_q] = ar[hit][first]
                    hit_sim[first_q] = similarity[hit][first]
                rest = shares[q]
                for a, b, c in zip(q[rest].tolist(), r[rest].tolist(), count[rest].tolist(), strict=True):
                    shared.setdefault(a, {})[b] = c
        signed = ~empty if near else np.zeros(n, dtype=bool)  # rows with a signature to compare
        # The verdicts that depend on the index alone: (reason code, row duplicated, similarity).
        code = np.zeros(n, dtype=np.int8)  # 0 keep, 1 duplicate, 2 near duplicate
        dup_of = np.full(n, -1, dtype=np.int64)
        sim = np.ones(n)
        if cfg.exact:
            code[exact_first >= 0] = 1
            dup_of = exact_first.copy()
        near_hit = (code == 0) & signed & (hit_row >= 0)
        code[near_hit] = 2
        dup_of[near_hit] = hit_row[near_hit]
        sim[near_hit] = hit_sim[near_hit]
        inserted = ((code == 0) | insert_all) & insert
        # The rows whose verdict may depend on the batch's earlier rows, in order.
        one_by_one = shares & signed
        loop = np.flatnonzero((code != 1) & (later_copy | one_by_one)).tolist()
        if loop:
            ins = inserted.tolist()
            copies: dict[int, list[int]] = {}  # content key -> positions holding it, for the keys held more than once
            if later_copy.any():
                for i in np.flatnonzero(np.isin(ckeys, ckeys[later_copy])).tolist():
                    copies.setdefault(int(ckeys[i]), []).append(i)
            batch_band: dict[int, list[int]] = {}  # band key -> earlier inserted rows (on_disk + position) holding it
            cache: dict[int, np.ndarray] = {}  # signatures of index rows read from disk
            verdicts: dict[int, tuple[int, int, float]] = {}
            ckey_list = ckeys.tolist()
            for i in loop:
                verdict = (0, -1, 1.0)
                copy_of = next((p for p in copies.get(ckey_list[i], ()) if p < i and ins[p]), None) if later_copy[i] else None
                if copy_of is not None:
                    verdict = (1, on_disk + copy_of, 1.0)
                elif not signed[i]:
                    pass
                elif not one_by_one[i]:
                    if hit_row[i] >= 0:
                        verdict = (2, int(hit_row[i]), float(hit_sim[i]))
                else:
                    assert sigs is not None
                    cand = shared.get(i, {})
                    for k in bkeys[i][in_batch[i]].tolist():
                        for j in batch_band.get(k, ()):
                            cand[j] = cand.get(j, 0) + 1
                    if cand:
                        tries = sorted(cand, key=lambda j: (-cand[j], j))[:MAX_CANDIDATES]
                        missing = [j for j in tries if j < on_disk and j not in cache]
                        if missing:
                            cache.update(zip(missing, self._read_sigs(np.array(missing, dtype=np.int64)), strict=True))
                        similarity = (np.stack([cache[j] if j < on_disk else sigs[j - on_disk] for j in tries]) == sigs[i]).mean(axis=1)
                        hits = np.flatnonzero(similarity >= self.verify_threshold)
                        if len(hits):
                            verdict = (2, tries[int(hits[0])], float(similarity[hits[0]]))
                verdicts[i] = verdict
                ins[i] = insert and (verdict[0] == 0 or insert_all)
                if ins[i] and one_by_one[i]:
                    for k in bkeys[i][in_batch[i]].tolist():
                        batch_band.setdefault(k, []).append(on_disk + i)
            for i, (c, j, si) in verdicts.items():
                code[i], dup_of[i], sim[i] = c, j, si
            inserted = np.array(ins, dtype=bool)
        if inserted.any():
            idx = np.flatnonzero(inserted)
            rows = np.arange(on_disk, on_disk + len(idx), dtype=np.int64)
            self._next_row += len(idx)
            if cfg.exact:
                self.exact.add(ckeys[idx], rows)
            if near:
                assert sigs is not None
                keep_sig = ~empty[idx]
                # The kept rows' entries in the batch's key order, each one's index row; for
                # equal keys, earlier rows first (the sort above was not stable).
                row_of = np.full(n, -1, dtype=np.int64)
                row_of[idx[keep_sig]] = rows[keep_sig]
                entries = by_key[row_of[by_key // self.bands] >= 0]
                entry_keys = flat[entries]
                tie = entry_keys[1:] == entry_keys[:-1]
                if tie.any():
                    tied = np.flatnonzero(np.concatenate(([False], tie)) | np.concatenate((tie, [False])))
                    entries[tied] = entries[tied][np.lexsort((entries[tied], entry_keys[tied]))]
                self.band.add_sorted(entry_keys, row_of[entries // self.bands])
                block = sigs[idx].copy()
                block[~keep_sig] = 0xFFFFFFFF
            else:
                block = np.full((len(idx), cfg.num_perm), 0xFFFFFFFF, dtype=np.uint32)
            self._sig_table = None  # unmapped before the file grows
            self._write_sigs(np.ascontiguousarray(block, dtype=np.uint32).tobytes(), on_disk * self._sig_bytes)
            self._rows_on_disk = self._next_row
            self._write_ids(on_disk, [ids[i] for i in idx.tolist()])
        # Name the rows that were duplicated (their ids are on disk, or in this batch).
        dropped = np.flatnonzero(code).tolist()
        out = [_KEEP] * n
        if dropped:
            of = dup_of[dropped].tolist()
            names = self._read_ids(sorted({r for r in of if r < on_disk}))
            reasons = ("", "duplicate", "near_duplicate")
            for i, r, c, si in zip(dropped, of, code[dropped].tolist(), sim[dropped].tolist(), strict=True):
                out[i] = Verdict(reasons[c], names[r] if r < on_disk else ids[r - on_disk], si)
        return out
