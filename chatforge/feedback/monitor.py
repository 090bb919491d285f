"""`chatforge monitor`: how the served assistant is doing over time, from the feedback store,
with regressions and input drift flagged.

    chatforge monitor --store feedback.db --period day [--baseline-data data/support-clean] [--out monitor]

Per period (UTC hour, day or week): turns, ratings, thumbs up and down, the thumbs-up rate,
the mean 1-5 score, latency p50 and p95, the safety decline rate (replies ending with
`content_filter`), the mean token entropy of the replies (how unsure the model was), and
two measures of input drift:

- the share of turns whose intent is unknown (the client sent none, or "unknown"): users
  asking about things the assistant was not built for;
- the perplexity of the incoming user messages under a word-unigram model (add-one
  smoothing) of the baseline: the user turns of `--baseline-data` (a conversations
  dataset, e.g. the training data), else those of the first period. The model is fitted on
  every other baseline text and the reference perplexity measured on the rest, so the
  reference is out-of-sample like every period's (an in-sample reference would make any
  later period look drifted).

Each period after the first is compared with the first (the reference), and a line is
printed for each figure beyond its limit (see the --max-* flags); periods with fewer than
`--min-turns` turns (or `--min-ratings` thumbs, for the up rate) are shown but never
flagged. The out dir holds monitor.json (periods and flags), monitor.png (the figures over
time, flagged points marked), and config.json + metrics.jsonl, which make it a run dir:
`chatforge report monitor` shows it.
"""

from __future__ import annotations

import json
import math
import re
from collections import Counter, defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from chatforge import redact, tracking
from chatforge.atomic import atomic_write_bytes, atomic_write_json, atomic_write_text
from chatforge.config import opt, to_dict
from chatforge.errors import UserError
from chatforge.feedback.commands import STORE_HELP, _bucket, _since
from chatforge.ui import QUIET, UI

MONITOR_JSON = "monitor.json"
MONITOR_PNG = "monitor.png"


@dataclass
class MonitorConfig:
    """`chatforge monitor`: feedback rates, latency, safety declines and input drift per period, with regressions flagged."""

    store: str = opt("feedback.db", STORE_HELP)
    period: Literal["hour", "day", "week"] = opt("day", "time buckets (UTC)")
    since: str = opt("", "only turns and ratings from this date on (YYYY-MM-DD, UTC)")
    baseline_data: str = opt("", "a conversations dataset (e.g. the training data): its user turns are the input-drift baseline (default: the first period's user turns)")
    out: str = opt("monitor", "dir for monitor.json, monitor.png, config.json and metrics.jsonl (a run dir for `chatforge report`)")
    min_turns: int = opt(20, "periods with fewer turns are shown, never flagged", ge=1)
    min_ratings: int = opt(20, "periods with fewer thumbs are not flagged for their thumbs-up rate", ge=1)
    max_up_drop: float = opt(10.0, "flag a thumbs-up rate more than this many points below the first period's", ge=0)
    max_p95_rise: float = opt(50.0, "flag a p95 latency more than this percent above the first period's", ge=0)
    max_decline_rise: float = opt(5.0, "flag a safety decline rate more than this many points above the first period's", ge=0)
    max_unknown_rise: float = opt(15.0, "flag a share of unknown-intent turns more than this many points above the first period's", ge=0)
    max_perplexity_rise: float = opt(50.0, "flag an input perplexity more than this percent above the baseline's", ge=0)


# -- input drift ----------------------------------------------------------------------------------------

_WORD = re.compile(r"\w+", re.UNICODE)


def words(text: str) -> list[str]:
    return _WORD.findall(text.lower())


class Unigram:
    """Word frequencies of some texts, add-one smoothed (one extra slot for every unseen word)."""

    def __init__(self, texts: Iterable[str]) -> None:
        self.counts = Counter(w for t in texts for w in words(t))
        self.denominator = sum(self.counts.values()) + len(self.counts) + 1

    def perplexity(self, texts: Iterable[str]) -> float | None:
        """exp of the mean negative log-probability per word; None without words."""
        total, n = 0.0, 0
        for t in texts:
            for w in words(t):
                total -= math.log((self.counts.get(w, 0) + 1) / self.denominator)
                n += 1
        return math.exp(total / n) if n else None


def _user_text(messages: Any) -> str:
    """The message a turn answered: its last user message."""
    users = [m.get("content") or "" for m in messages or [] if m.get("role") == "user"]
    return users[-1] if users else ""


def baseline_texts(path: str) -> list[str]:
    """The user messages of a conversations dataset."""
    from chatforge.data.dataset import open_dataset

    ds = open_dataset(path)
    if ds.kind != "conversations":
        raise UserError(f"--baseline-data {path}: a {ds.kind} dataset; the baseline needs conversations (their user turns)")
    return [m["content"] for row in ds for m in row["messages"] if m["role"] == "user" and m.get("content")]


# -- the figures ------------------------------------------------------------------------------------------


def _percentile(values: list[float], q: float) -> float | None:
    """The q-th percentile, linear between the closest ranks (numpy's default)."""
    if not values:
        return None
    v = sorted(values)
    at = (len(v) - 1) * q / 100
    lo = math.floor(at)
    hi = min(lo + 1, len(v) - 1)
    return v[lo] + (v[hi] - v[lo]) * (at - lo)


def _mean(values: list[float]) -> float | None:
    return sum(values) / len(values) if values else None


def periods(store: Any, period: str, since: float = 0.0, baseline: list[str] | None = None) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """Per period, the figures of the module docstring; and the drift reference (its source and perplexity)."""
    turns: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for t in store.turns(since):
        turns[_bucket(t["created"], period)].append(t)
    thumbs: dict[str, dict[str, Any]] = {}  # turn -> its latest rating with a thumb
    scores: dict[str, list[int]] = defaultdict(list)
    for r in store.rated_turns():
        if r["created"] < since:
            continue
        if r.get("thumb") is not None:
            thumbs[r["turn_id"]] = r
        if r.get("score") is not None:
            scores[_bucket(r["created"], period)].append(r["score"])
    up: Counter[str] = Counter()
    down: Counter[str] = Counter()
    for r in thumbs.values():
        (up if r["thumb"] == 1 else down)[_bucket(r["created"], period)] += 1
    labels = sorted(set(turns) | set(up) | set(down) | set(scores))
    if not labels:
        return [], {}
    if baseline is None:
        baseline, source = [_user_text(t["messages"]) for t in turns.get(labels[0], [])], f"the first period ({labels[0]})"
    else:
        source = "--baseline-data"
    lm = Unigram(baseline[0::2])  # fitted on half, the reference measured on the other half
    reference = {"source": source, "texts": len(baseline), "perplexity": lm.perplexity(baseline[1::2])}
    out = []
    for label in labels:
        ts = turns.get(label, [])
        n_thumbs = up[label] + down[label]
        unknown = sum(1 for t in ts if t.get("intent") in (None, "", "unknown"))
        out.append(
            {
                "period": label,
                "turns": len(ts),
                "up": up[label],
                "down": down[label],
                "up_rate": up[label] / n_thumbs if n_thumbs else None,
                "mean_score": _mean([float(s) for s in scores[label]]),
                "latency_p50": _percentile([t["latency"] for t in ts if t.get("latency") is not None], 50),
                "latency_p95": _percentile([t["latency"] for t in ts if t.get("latency") is not None], 95),
                "decline_rate": sum(1 for t in ts if t.get("finish_reason") == "content_filter") / len(ts) if ts else None,
                "reply_entropy": _mean([t["entropy_mean"] for t in ts if t.get("entropy_mean") is not None]),
                "unknown_intent": unknown / len(ts) if ts else None,
                "input_perplexity": lm.perplexity(_user_text(t["messages"]) for t in ts),
                "versions": dict(Counter(t["model"] for t in ts)),
            }
        )
    return out, reference


def flags(rows: list[dict[str, Any]], reference: dict[str, Any], cfg: MonitorConfig) -> list[dict[str, Any]]:
    """Regressions and drift of each period against the first (perplexity: against the baseline)."""
    if not rows:
        return []
    first = rows[0]
    out: list[dict[str, Any]] = []

    def flag(kind: str, row: dict[str, Any], what: str, before: float, now: float, change: str, limit: str) -> None:
        out.append({"period": row["period"], "kind": kind, "figure": what, "reference": before, "value": now, "line": f"{kind.upper()} {row['period']}: {what} {_show(what, before)} -> {_show(what, now)} ({change}; limit {limit})"})

    for row in rows[1:]:
        if row["turns"] < cfg.min_turns:
            continue
        a, b = first.get("up_rate"), row.get("up_rate")
        if a is not None and b is not None and first["up"] + first["down"] >= cfg.min_ratings and row["up"] + row["down"] >= cfg.min_ratings and (a - b) * 100 > cfg.max_up_drop:
            flag("regression", row, "thumbs-up rate", a, b, f"{(b - a) * 100:+.1f} points", f"-{cfg.max_up_drop:g} points")
        if first["turns"] < cfg.min_turns:
            continue
        a, b = first.get("latency_p95"), row.get("latency_p95")
        if a and b is not None and (b / a - 1) * 100 > cfg.max_p95_rise:
            flag("regression", row, "latency p95", a, b, f"{(b / a - 1) * 100:+.0f}%", f"+{cfg.max_p95_rise:g}%")
        for key, what, limit in (("decline_rate", "safety declines", cfg.max_decline_rise), ("unknown_intent", "unknown intents", cfg.max_unknown_rise)):
            a, b = first.get(key), row.get(key)
            if a is not None and b is not None and (b - a) * 100 > limit:
                flag("regression" if key == "decline_rate" else "drift", row, what, a, b, f"{(b - a) * 100:+.1f} points", f"+{limit:g} points")
        a, b = reference.get("perplexity"), row.get("input_perplexity")
        if a and b is not None and (b / a - 1) * 100 > cfg.max_perplexity_rise:
            flag("drift", row, "input perplexity", a, b, f"{(b / a - 1) * 100:+.0f}% over {reference['source']}", f"+{cfg.max_perplexity_rise:g}%")
    return out


def _show(what: str, x: float) -> str:
    if what in ("thumbs-up rate", "safety declines", "unknown intents"):
        return f"{x:.0%}"
    if what == "latency p95":
        return f"{x:.2f} s"
    return f"{x:.1f}"


# -- the command ----------------------------------------------------------------------------------------------


def main(cfg: MonitorConfig, ui: UI = QUIET) -> dict[str, Any]:
    from rich.table import Table

    from chatforge.feedback.store import FeedbackStore
    from chatforge.plots import monitor_png

    baseline = baseline_texts(cfg.baseline_data) if cfg.baseline_data else None
    rows, reference = periods(FeedbackStore.open(cfg.store), cfg.period, _since(cfg.since), baseline)
    if not rows:
        raise UserError(f"{redact.url(cfg.store)}: no turns or ratings{' since ' + cfg.since if cfg.since else ''} (chatforge serve --log-conversations stores turns)")
    found = flags(rows, reference, cfg)

    def f(x: Any, spec: str) -> str:
        return "-" if x is None else format(x, spec)

    t = Table(title=f"{redact.url(cfg.store)}: {len(rows)} periods ({cfg.period}, UTC)", title_justify="left")
    for c in ("period", "turns", "up", "down", "up rate", "score", "p50 s", "p95 s", "declines", "entropy", "unknown intent", "input ppl", "versions"):
        t.add_column(c)
    for r in rows:
        t.add_row(r["period"], str(r["turns"]), str(r["up"]), str(r["down"]), f(r["up_rate"], ".0%"), f(r["mean_score"], ".2f"), f(r["latency_p50"], ".3f"), f(r["latency_p95"], ".3f"), f(r["decline_rate"], ".1%"), f(r["reply_entropy"], ".2f"), f(r["unknown_intent"], ".0%"), f(r["input_perplexity"], ".1f"), ", ".join(r["versions"]))
    ui.out.print(t)
    ppl = reference.get("perplexity")
    ui.out.print(f"input perplexity baseline: {reference['source']}, {reference['texts']} user messages, perplexity {f(ppl, '.1f')} (held-out half)", markup=False, highlight=False)
    for fl in found:
        ui.out.print(fl["line"], markup=False, highlight=False)
    if not found:
        ui.out.print(f"no regressions or drift against the first period ({rows[0]['period']})", markup=False, highlight=False)
    result = {"store_periods": cfg.period, "reference": reference, "periods": rows, "flags": found}
    out = Path(cfg.out)
    out.mkdir(parents=True, exist_ok=True)
    atomic_write_json(out / MONITOR_JSON, result)
    # A run dir too (`chatforge report OUT`, `chatforge runs list`): its config, one record per period.
    tracking.write_config(out, "monitor", to_dict(cfg))
    records = [{"step": i, **{k: v for k, v in r.items() if k != "versions"}} for i, r in enumerate(rows)]
    atomic_write_text(out / "metrics.jsonl", "".join(json.dumps(r) + "\n" for r in records))
    png = monitor_png(rows, found)
    if png:
        atomic_write_bytes(out / MONITOR_PNG, png)
    ui.note(f"{len(found)} flags; {out / MONITOR_JSON}, {out / MONITOR_PNG}")
    return result
