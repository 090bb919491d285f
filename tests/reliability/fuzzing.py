"""Shared pieces of the fuzz tests (test_fuzz_*.py) and the atheris harness (fuzz_atheris.py).

Example counts are small by default so the default suite stays fast; set
CHATFORGE_FUZZ_EXAMPLES=N to multiply them by N (`benchmarks/reliability_report.py` does, for
long runs). `fuzz_settings(n)` is hypothesis' settings for n examples times that multiplier.
"""

from __future__ import annotations

import os
import random
from typing import Any

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st

FUZZ_EXAMPLES = max(1, int(os.environ.get("CHATFORGE_FUZZ_EXAMPLES", "1") or 1))
"""Multiplier of every fuzz test's example count (CHATFORGE_FUZZ_EXAMPLES, default 1)."""


def fuzz_settings(n: int) -> Any:
    """hypothesis settings for `n` x FUZZ_EXAMPLES examples, no deadline (a shared, loaded machine)."""
    return settings(
        max_examples=n * FUZZ_EXAMPLES,
        deadline=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.function_scoped_fixture],
    )


# Byte strings that break parsers: a BOM (also in the middle), NUL, invalid UTF-8 (a lone
# continuation byte, a truncated sequence, an overlong encoding, an encoded surrogate),
# line and paragraph separators, JSON escapes of lone surrogates, huge numbers, deep nesting.
NASTY = [
    b"\xef\xbb\xbf",
    b"\x00",
    b"\x80",
    b"\xe2\x82",
    b"\xc0\xaf",
    b"\xed\xa0\x80",
    b"\xff\xfe",
    "\u2028\u2029\x85".encode(),
    b"\r",
    b'"\\ud800"',
    b"1e400",
    b"-0",
    b"9" * 5000,
    b"NaN",
    b"Infinity",
    b"[" * 3000,
    b"{" * 3000,
    b'{"a":' * 200,
    b",",
    b'"',
    b"\\",
    b"<|assistant|>",
]


def mutate(data: bytes, rng: random.Random, steps: int) -> bytes:
    """`data` after `steps` random edits: flipped bits, inserted junk or NASTY bytes, deletions,
    truncation, a duplicated slice (long lines), a swapped pair of slices."""
    b = bytearray(data)
    for _ in range(steps):
        op = rng.randrange(7)
        at = rng.randrange(len(b) + 1)
        if op == 0 and b:
            i = rng.randrange(len(b))
            b[i] ^= 1 << rng.randrange(8)
        elif op == 1:
            b[at:at] = rng.choice(NASTY)
        elif op == 2:
            b[at:at] = bytes(rng.randrange(256) for _ in range(rng.randrange(1, 8)))
        elif op == 3 and b:
            del b[at : at + rng.randrange(1, 16)]
        elif op == 4:
            del b[at:]
        elif op == 5 and b:
            j = rng.randrange(len(b))
            piece = b[min(at, j) : max(at, j)][:4096]
            b[at:at] = piece * rng.randrange(1, 4)
        elif op == 6 and len(b) > 2:
            i, j = sorted(rng.sample(range(len(b)), 2))
            b[i:j] = b[i:j][::-1]
    return bytes(b)


def mutations(data: bytes, max_steps: int = 4) -> st.SearchStrategy[bytes]:
    """Strategy: `data` mutated by 1..max_steps random edits (hypothesis shrinks the seed)."""
    return st.builds(lambda seed, steps: mutate(data, random.Random(seed), steps), st.integers(0, 2**32 - 1), st.integers(1, max_steps))


# JSON values of every kind, for wrong-typed fields: numbers at and past the float range,
# long and special strings, nesting.
json_scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.sampled_from([0, -1, 2**63, -(2**63) - 1, 10**30, 1e308, -1e-320]),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=20),
    st.sampled_from(["", " ", "\x00", "\ufeff", "<|end|>", "x" * 10_000]),
)
json_values = st.recursive(json_scalars, lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3), max_leaves=8)
