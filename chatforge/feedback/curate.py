"""Turning rated replies into training rows.

    rated = list(store.rated_turns())
    sft = sft_rows(rated)      # corrected answers, and replies people liked
    dpo = dpo_rows(rated)      # (corrected or liked) over (disliked) answers to the same prompt

Rules:
- a rating with a corrected answer gives an SFT row (the prompt, then the correction) and
  a DPO pair (the correction chosen over the rated reply);
- a reply rated up (thumb up, or a score of 4-5) gives an SFT row as it is;
- for the same prompt, every liked answer (up, 4-5, or a correction) is chosen over
  every disliked one (down, or 1-2): DPO pairs from users' own comparisons, such as
  rating a regenerated reply better than the first;
- rows are deduplicated by content (the same prompt and answer count once), and an
  answer identical to the one it is preferred over is no pair.
"""

from __future__ import annotations

import hashlib
import json
from collections import defaultdict
from collections.abc import Iterable
from typing import Any


def liked(r: dict[str, Any]) -> bool:
    return r.get("thumb") == 1 or (r.get("score") or 0) >= 4


def disliked(r: dict[str, Any]) -> bool:
    return r.get("thumb") == -1 or (r.get("score") is not None and r["score"] <= 2)


def _key(*parts: Any) -> str:
    return hashlib.sha256(json.dumps(parts, ensure_ascii=False, sort_keys=True).encode()).hexdigest()[:24]


def _prompt(r: dict[str, Any]) -> list[dict[str, str]] | None:
    msgs = r.get("messages")
    if not msgs or msgs[-1].get("role") != "user":
        return None
    return [{"role": m["role"], "content": m["content"]} for m in msgs]


def _meta(r: dict[str, Any]) -> dict[str, Any]:
    return {k: r[k] for k in ("turn_id", "model", "intent", "variant") if r.get(k) is not None}


def sft_rows(rated: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    """Conversation rows (the dataset kind `conversations`) from corrected and liked replies."""
    out: dict[str, dict[str, Any]] = {}
    for r in rated:
        prompt = _prompt(r)
        if prompt is None:
            continue
        answer, why = (r["corrected"], "corrected") if r.get("corrected") else ((r["reply"], "liked") if liked(r) and r.get("reply") else (None, ""))
        if not answer:
            continue
        messages = [*prompt, {"role": "assistant", "content": answer}]
        key = _key(messages)
        out.setdefault(key, {"id": f"fb-{key}", "messages": messages, "source": "feedback", "meta": {**_meta(r), "why": why}})
    return list(out.values())


def dpo_rows(rated: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    """Preference rows (`prompt`, `chosen`, `rejected`) from corrections and from liked vs
    disliked answers to the same prompt."""
    good: dict[str, list[tuple[str, dict[str, Any]]]] = defaultdict(list)
    bad: dict[str, list[tuple[str, dict[str, Any]]]] = defaultdict(list)
    prompts: dict[str, list[dict[str, str]]] = {}
    for r in rated:
        prompt = _prompt(r)
        if prompt is None:
            continue
        pk = _key(prompt)
        prompts[pk] = prompt
        if r.get("corrected"):
            good[pk].append((r["corrected"], r))
            if r.get("reply"):
                bad[pk].append((r["reply"], r))
        elif r.get("reply") and liked(r):
            good[pk].append((r["reply"], r))
        elif r.get("reply") and disliked(r):
            bad[pk].append((r["reply"], r))
    out: dict[str, dict[str, Any]] = {}
    for pk, chosen_list in good.items():
        for chosen, r in chosen_list:
            for rejected, r2 in bad.get(pk, []):
                if chosen.strip() == rejected.strip():
                    continue
                key = _key(prompts[pk], chosen, rejected)
                out.setdefault(key, {"id": f"fbp-{key}", "prompt": prompts[pk], "chosen": chosen, "rejected": rejected, "source": "feedback", "meta": {**_meta(r), "rejected_turn": r2.get("turn_id")}})
    return list(out.values())
