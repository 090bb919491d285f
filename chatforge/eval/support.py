"""Task success on the support world's test conversations.

Each test conversation carries, in its `meta`, the facts a correct reply states
(`required_facts`, e.g. "30 days") and facts of other topics that a correct reply never
states (`forbidden_facts`: a confident answer about the wrong topic is a failure even if
it happens to hold an expected number). A reply succeeds when it states every required
fact and no forbidden one (case-insensitive substrings, with numbers spelled out in words
read as digits: "thirty days" states "30 days"); an out-of-scope request
succeeds when the reply declines it politely. The model answers greedily, so the score is
deterministic.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable
from typing import Any

DECLINE = re.compile(
    r"(can(?:no|')t|cannot|unable to|not able to) (?:help|answer|assist)|outside (?:of )?what i can|"
    r"not something i can|only (?:help|assist) with|i'?m here for",
    re.IGNORECASE,
)
DECLINE_INTENTS = frozenset({"out_of_scope"})


def is_decline(reply: str) -> bool:
    """Whether a reply politely declines (says it cannot help with that)."""
    return DECLINE.search(reply) is not None


_UNITS = "zero one two three four five six seven eight nine ten eleven twelve thirteen fourteen fifteen sixteen seventeen eighteen nineteen".split()
_TENS = {w: 10 * i for i, w in enumerate("twenty thirty forty fifty sixty seventy eighty ninety".split(), start=2)}
_NUMBER_WORDS = re.compile(
    r"\b(?:(" + "|".join(_TENS) + r")(?:[- ](" + "|".join(_UNITS[1:10]) + r"))?|(" + "|".join(_UNITS) + r"))\b"
)


def _number(m: re.Match[str]) -> str:
    if m.group(3):
        return str(_UNITS.index(m.group(3)))
    return str(_TENS[m.group(1)] + (_UNITS.index(m.group(2)) if m.group(2) else 0))


def digits(text: str) -> str:
    """Lowercased `text` with the numbers zero to ninety-nine written in words turned into digits."""
    return _NUMBER_WORDS.sub(_number, text.lower())


def score_reply(reply: str, meta: dict[str, Any]) -> dict[str, Any]:
    """Whether `reply` answers a test conversation correctly, and why not."""
    low = digits(reply)
    missing = [f for f in meta.get("required_facts", []) if digits(f) not in low]
    wrong = [f for f in meta.get("forbidden_facts", []) if digits(f) in low]
    declined = is_decline(reply)
    if meta.get("intent") in DECLINE_INTENTS:
        ok = declined and not wrong
    else:
        ok = not missing and not wrong
    return {"ok": ok, "missing": missing, "forbidden": wrong, "declined": declined}


def summarize(results: Iterable[dict[str, Any]]) -> dict[str, Any]:
    """Success rates overall and per intent, decline rates, and the stop rate."""
    n = ok = stopped = 0
    per_intent: Counter[str] = Counter()
    per_intent_ok: Counter[str] = Counter()
    declines = decline_asked = false_declines = 0
    for r in results:
        n += 1
        ok += r["ok"]
        stopped += r["stopped"]
        per_intent[r["intent"]] += 1
        per_intent_ok[r["intent"]] += r["ok"]
        if r["intent"] in DECLINE_INTENTS:
            decline_asked += 1
            declines += r["declined"]
        elif r["declined"]:
            false_declines += 1
    return {
        "conversations": n,
        "success": ok / max(n, 1),
        "stop_rate": stopped / max(n, 1),
        "decline_rate": declines / decline_asked if decline_asked else None,
        "false_decline_rate": false_declines / max(n - decline_asked, 1),
        "per_intent": {k: round(per_intent_ok[k] / v, 3) for k, v in sorted(per_intent.items())},
    }
