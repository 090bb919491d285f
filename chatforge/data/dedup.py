"""Exact and near-duplicate removal: content hashes and MinHash LSH, kept on disk.

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
- The index (content keys, LSH band keys, signatures of kept rows) lives in a
  temporary SQLite file, not in Python dicts: datasketch's in-memory `MinHashLSH`
  costs ~1 KB of RAM per row, so memory would grow with the data. Lookups are batched
  (one query per batch of rows), so the disk index costs ~20 µs a row. The number of
  bands and rows per band minimize false positives + negatives at the threshold.
"""

from __future__ import annotations

import functools
import os
import sqlite3
import tempfile
import zlib
from dataclasses import dataclass
from typing import Any

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


MAX_CANDIDATES = 64
_MIX = np.uint64(0x9E3779B97F4A7C15)  # odd 64-bit constant (golden ratio) to combine word hashes


class Signer:
    """MinHash signatures of word n-gram sets for a batch of texts, vectorized with numpy.

    Words are hashed once (crc32), n-gram hashes are combined from them in numpy, and
    the permutations are datasketch's own (seed 1, scheme "affine32": murmur finalizer,
    then a*h+b mod 2^32 with odd a): for the same n-gram hashes the signature equals
    `datasketch.MinHash`'s (tested). A text shorter than n words is one shingle; a
    text with no words gets the all-0xFFFFFFFF signature (it never matches).
    """

    def __init__(self, num_perm: int, ngram: int) -> None:
        from datasketch import MinHash

        self.num_perm = num_perm
        self.ngram = ngram
        a, b = MinHash(num_perm=num_perm, seed=1, scheme="affine32").permutations
        self.a = np.asarray(a, dtype=np.uint32)[:, None]  # (num_perm, 1)
        self.b = np.asarray(b, dtype=np.uint32)[:, None]

    def shingle_hashes(self, texts: list[str]) -> tuple[np.ndarray, np.ndarray]:
        """uint32 hashes of every text's n-grams, concatenated, and the count per text."""
        n = self.ngram
        words: list[int] = []
        counts = np.empty(len(texts), dtype=np.int64)
        for i, text in enumerate(texts):
            ws = text.split()
            counts[i] = len(ws)
            words.extend(zlib.crc32(w.encode("utf-8")) for w in ws)
            words.extend([0] * (n - 1))  # padding: windows never cross into the next text
        w = np.asarray(words, dtype=np.uint64)
        windows = np.where(counts >= n, counts - n + 1, np.minimum(counts, 1))
        offsets = np.concatenate([[0], np.cumsum(counts + n - 1)[:-1]]) if len(texts) else counts
        total = int(windows.sum())
        first = np.repeat(offsets, windows) + (np.arange(total) - np.repeat(np.cumsum(windows) - windows, windows))
        g = np.zeros(total, dtype=np.uint64)
        with np.errstate(over="ignore"):
            for k in range(n):
                g = g * _MIX + w[first + k]
        g = (g ^ (g >> np.uint64(32))).astype(np.uint32)
        return g, windows

    def signatures(self, texts: list[str]) -> np.ndarray:
        """uint32 array (len(texts), num_perm)."""
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
            ph = self.a * h[None, :] + self.b  # (num_perm, total shingles), wraps mod 2^32
        nonempty = counts > 0
        starts = (np.cumsum(counts) - counts)[nonempty]
        out[nonempty] = np.minimum.reduceat(ph, starts, axis=1).T
        return out


def _band_keys(sig: np.ndarray, bands: int, rows: int) -> list[int]:
    """One 63-bit key per LSH band (band index mixed in, so bands never collide)."""
    raw = sig[: bands * rows].reshape(bands, rows)
    keys = []
    for i in range(bands):
        h = zlib.crc32(raw[i].tobytes(), i) | (zlib.adler32(raw[i].tobytes(), i) << 32)
        keys.append(h & 0x7FFFFFFFFFFFFFFF)
    return keys


@dataclass
class Verdict:
    """Whether a row is a duplicate, and of which row (by id)."""

    reason: str | None  # None (keep), "duplicate" or "near_duplicate"
    duplicate_of: str | None = None
    similarity: float = 1.0


class DedupIndex:
    """Keep-first duplicate detection over a stream of rows, backed by a temporary SQLite file.

        with DedupIndex(cfg) as index:
            verdicts = index.check(ids, content_keys, signatures)   # in stream order

    Each kept row is added to the index, so later rows are compared against it.
    """

    def __init__(self, cfg: DedupConfig, directory: str | None = None) -> None:
        self.cfg = cfg
        self.bands, self.rows = lsh_params(cfg.threshold, cfg.num_perm, 0.2, 0.8)
        self._tmp = tempfile.TemporaryDirectory(prefix="chatforge-dedup-", dir=directory)
        self.db = sqlite3.connect(os.path.join(self._tmp.name, "index.db"))
        self.db.executescript(
            """
            PRAGMA journal_mode = OFF;
            PRAGMA synchronous = OFF;
            PRAGMA cache_size = -32000;
            CREATE TABLE exact (key BLOB PRIMARY KEY, id TEXT) WITHOUT ROWID;
            CREATE TABLE band (key INTEGER, row INTEGER);
            CREATE INDEX band_key ON band (key);
            CREATE TABLE sig (row INTEGER PRIMARY KEY, id TEXT, sig BLOB);
            """
        )
        self._next_row = 0

    def __enter__(self) -> DedupIndex:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def close(self) -> None:
        self.db.close()
        self._tmp.cleanup()

    def _lookup(self, sql: str, keys: list[Any]) -> list[tuple[Any, ...]]:
        out: list[tuple[Any, ...]] = []
        for i in range(0, len(keys), 30_000):  # stay under SQLite's bound-parameter limit
            chunk = keys[i : i + 30_000]
            out += self.db.execute(sql.format(",".join("?" * len(chunk))), chunk).fetchall()
        return out

    def check(self, ids: list[str], keys: list[bytes], sigs: np.ndarray | None, *, insert: bool = True) -> list[Verdict]:
        """Verdicts for a batch of rows in order; kept rows join the index unless `insert` is False
        (then rows are only compared with the index, not with each other)."""
        cfg = self.cfg
        verdicts: list[Verdict] = []
        exact_seen: dict[bytes, str] = {}
        if cfg.exact:
            exact_seen = dict(self._lookup("SELECT key, id FROM exact WHERE key IN ({})", list(set(keys))))
        band_keys: list[list[int]] = []
        known: dict[int, list[int]] = {}
        if cfg.near and sigs is not None:
            band_keys = [_band_keys(s, self.bands, self.rows) for s in sigs]
            flat = list({k for ks in band_keys for k in ks})
            for key, row in self._lookup("SELECT key, row FROM band WHERE key IN ({})", flat):
                known.setdefault(key, []).append(row)
        batch_sigs: dict[int, tuple[str, np.ndarray]] = {}  # rows kept in this batch
        new_exact: list[tuple[bytes, str]] = []
        new_bands: list[tuple[int, int]] = []
        new_sigs: list[tuple[int, str, bytes]] = []
        for i, rid in enumerate(ids):
            if cfg.exact and keys[i] in exact_seen:
                verdicts.append(Verdict("duplicate", exact_seen[keys[i]]))
                continue
            if cfg.near and sigs is not None:
                hit = self._near(sigs[i], band_keys[i], known, batch_sigs)
                if hit is not None:
                    verdicts.append(Verdict("near_duplicate", hit[0], hit[1]))
                    continue
            verdicts.append(Verdict(None))
            if not insert:
                continue
            if cfg.exact:
                exact_seen[keys[i]] = rid
                new_exact.append((keys[i], rid))
            if cfg.near and sigs is not None and not (sigs[i] == 0xFFFFFFFF).all():
                row = self._next_row
                self._next_row += 1
                batch_sigs[row] = (rid, sigs[i])
                new_sigs.append((row, rid, sigs[i].tobytes()))
                for k in band_keys[i]:
                    known.setdefault(k, []).append(row)
                    new_bands.append((k, row))
        if not insert:
            return verdicts
        with self.db:
            self.db.executemany("INSERT OR IGNORE INTO exact VALUES (?, ?)", new_exact)
            self.db.executemany("INSERT INTO band VALUES (?, ?)", new_bands)
            self.db.executemany("INSERT INTO sig VALUES (?, ?, ?)", new_sigs)
        return verdicts

    def _near(
        self,
        sig: np.ndarray,
        band_keys: list[int],
        known: dict[int, list[int]],
        batch_sigs: dict[int, tuple[str, np.ndarray]],
    ) -> tuple[str, float] | None:
        if (sig == 0xFFFFFFFF).all():
            return None
        # Earliest kept rows first; templated data can make many rows share a band, so only
        # the first MAX_CANDIDATES are compared.
        candidates = sorted({row for k in band_keys for row in known.get(k, ())})[:MAX_CANDIDATES]
        if not candidates:
            return None
        stored = {row: (rid, np.frombuffer(blob, dtype=np.uint32)) for row, rid, blob in self._lookup(
            "SELECT row, id, sig FROM sig WHERE row IN ({})", [c for c in candidates if c not in batch_sigs]
        )}
        stored.update({c: batch_sigs[c] for c in candidates if c in batch_sigs})
        # The LSH bands only propose candidates; the signature estimate decides (first match wins).
        for row in candidates:
            rid, other = stored[row]
            similarity = float(np.mean(sig == other))
            if similarity >= self.cfg.threshold:
                return rid, similarity
        return None
