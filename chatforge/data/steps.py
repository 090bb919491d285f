"""What every cleaning step shares: the texts of a row, and the outcome of a step on a row.

A step is an object built once from its config (regexes compiled, word lists loaded)
and then called on one row at a time:

    step = Normalizer(cfg.normalize)
    outcome = step(row, kind)        # -> Outcome(row=..., changed=..., reason=..., counts=...)

`chatforge data clean` runs the steps in a chain over many rows, in worker processes;
the same per-row calls work in any engine that maps a function over rows (see README).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Any

Row = dict[str, Any]


@dataclass(slots=True)
class Outcome:
    """The result of one step on one row.

    `row` is the row to pass on (possibly changed), or None if the step dropped it, in
    which case `reason` is a short snake_case key (e.g. "too_short", "toxic_assistant")
    under which drops are counted. `counts` holds step-specific counters for this row
    (e.g. PII replacements by type: {"EMAIL": 2}).
    """

    row: Row | None
    changed: bool = False
    reason: str | None = None
    counts: dict[str, int] = field(default_factory=dict)

    @staticmethod
    def drop(reason: str, **counts: int) -> Outcome:
        return Outcome(None, reason=reason, counts=dict(counts))


def row_texts(row: Row, kind: str) -> list[str]:
    """Every text of a row, in a fixed order (conversations: message contents; text: the
    text; preferences: prompt contents, then chosen, then rejected)."""
    if kind == "conversations":
        return [m["content"] for m in row["messages"]]
    if kind == "text":
        return [row["text"]]
    return [m["content"] for m in row["prompt"]] + [row["chosen"], row["rejected"]]


def text_roles(row: Row, kind: str) -> list[str]:
    """The role of each text of `row_texts` ("text" for text rows; "chosen"/"rejected" answers
    count as assistant turns)."""
    if kind == "conversations":
        return [m["role"] for m in row["messages"]]
    if kind == "text":
        return ["text"]
    return [m["role"] for m in row["prompt"]] + ["assistant", "assistant"]


def with_texts(row: Row, kind: str, texts: list[str]) -> Row:
    """A copy of `row` with its texts replaced (same order as `row_texts`)."""
    if kind == "conversations":
        msgs = [{"role": m["role"], "content": t} for m, t in zip(row["messages"], texts, strict=True)]
        return {**row, "messages": msgs}
    if kind == "text":
        (text,) = texts
        return {**row, "text": text}
    n = len(row["prompt"])
    if len(texts) != n + 2:
        raise ValueError(f"expected {n + 2} texts, got {len(texts)}")
    prompt = [{"role": m["role"], "content": t} for m, t in zip(row["prompt"], texts[:n], strict=True)]
    return {**row, "prompt": prompt, "chosen": texts[n], "rejected": texts[n + 1]}


def _squeezed(text: str) -> str:
    """`text` lowercased, its whitespace runs made single spaces, none at either end.

    `" ".join(low.split())` would do, but most messages need no change: a printable str
    holds no whitespace other than the ASCII space (every other whitespace character is
    in Unicode's Separator or Other categories), so one without a double space and not
    starting or ending with one is already squeezed, and is returned without being cut
    into words and joined again.
    """
    low = text.lower()
    if low.isprintable() and "  " not in low and low[:1] != " " and low[-1:] != " ":
        return low
    return " ".join(low.split())


def dedup_text(row: Row, kind: str) -> str:
    """A row's texts, lowercased with whitespace collapsed, roles kept: what duplicates share."""
    if kind == "conversations":  # the common case, without the generic helpers (run for every row)
        return "\n".join([m["role"] + ": " + _squeezed(m["content"]) for m in row["messages"]])
    return "\n".join(
        role + ": " + _squeezed(text) for role, text in zip(text_roles(row, kind), row_texts(row, kind), strict=True)
    )


def content_key(row: Row, kind: str) -> str:
    """A stable hex key of a row's normalized content (sha256); exact duplicates share it."""
    return hashlib.sha256(dedup_text(row, kind).encode("utf-8")).hexdigest()


def split_key(row: Row, kind: str) -> str:
    """The key `data split` assigns a row's split by: its content key, so a row's split
    never changes when the data set grows, or, for an augmented row, its original's key
    (`meta["origin_key"]`), so it always lands where its original did."""
    origin = row.get("meta", {}).get("origin_key")
    if isinstance(origin, str) and origin:
        return origin
    return content_key(row, kind)
