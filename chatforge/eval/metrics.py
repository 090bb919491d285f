"""Text metrics of generated replies against reference replies, and the language-model ones.

    corpus_bleu(hyps, refs)            # sacrebleu's BLEU, 0-100
    rouge(hyps, refs)                  # mean ROUGE-1/2/L F-measures (Google's rouge-score), 0-1
    token_f1(hyp, ref), exact_match    # SQuAD-style: lowercased, punctuation and articles dropped
    perplexity(nats, tokens), bits_per_byte(nats, n_bytes)

BLEU and ROUGE come from the libraries everyone quotes (sacrebleu, rouge-score), so
figures compare with published ones; F1 and exact match follow the SQuAD evaluation
script's normalization (lowercase, no punctuation, no a/an/the, single spaces).
"""

from __future__ import annotations

import math
import re
import string
from collections import Counter
from collections.abc import Sequence

_ARTICLES = re.compile(r"\b(a|an|the)\b")
_PUNCT = str.maketrans("", "", string.punctuation)


def normalize_answer(text: str) -> str:
    """Lowercase, drop punctuation and the articles a/an/the, collapse whitespace."""
    return " ".join(_ARTICLES.sub(" ", text.lower().translate(_PUNCT)).split())


def token_f1(hyp: str, ref: str) -> float:
    """Harmonic mean of token precision and recall after `normalize_answer` (1.0 when both are empty)."""
    h, r = normalize_answer(hyp).split(), normalize_answer(ref).split()
    if not h or not r:
        return float(h == r)
    common = sum((Counter(h) & Counter(r)).values())
    if common == 0:
        return 0.0
    precision, recall = common / len(h), common / len(r)
    return 2 * precision * recall / (precision + recall)


def exact_match(hyp: str, ref: str) -> float:
    """1.0 when the two texts are equal after `normalize_answer`."""
    return float(normalize_answer(hyp) == normalize_answer(ref))


def corpus_bleu(hyps: Sequence[str], refs: Sequence[str]) -> float:
    """Corpus BLEU (0-100) of replies against one reference each: sacrebleu with its defaults
    (13a tokenizer, exponential smoothing off for corpus level)."""
    import sacrebleu

    if not hyps:
        return 0.0
    return float(sacrebleu.corpus_bleu(list(hyps), [list(refs)]).score)


def rouge(hyps: Sequence[str], refs: Sequence[str]) -> dict[str, float]:
    """Mean ROUGE-1, ROUGE-2 and ROUGE-L F-measures (0-1), Porter-stemmed, over reply pairs."""
    from rouge_score import rouge_scorer

    keys = ("rouge1", "rouge2", "rougeL")
    if not hyps:
        return dict.fromkeys(keys, 0.0)
    scorer = rouge_scorer.RougeScorer(list(keys), use_stemmer=True)
    totals = dict.fromkeys(keys, 0.0)
    for h, r in zip(hyps, refs, strict=True):
        scores = scorer.score(r, h)  # (target, prediction)
        for k in keys:
            totals[k] += scores[k].fmeasure
    return {k: v / len(hyps) for k, v in totals.items()}


def perplexity(nats: float, tokens: int) -> float:
    """exp of the mean negative log-likelihood per token."""
    return math.exp(nats / tokens) if tokens else float("nan")


def bits_per_byte(nats: float, n_bytes: int) -> float:
    """Total negative log-likelihood in bits over the UTF-8 bytes it covers: comparable
    across tokenizers, unlike perplexity per token."""
    return nats / math.log(2) / n_bytes if n_bytes else float("nan")


def mean_ci(values: Sequence[float], *, level: float = 0.95, resamples: int = 2000, seed: int = 0) -> tuple[float, float, float]:
    """(mean, low, high): the mean and a bootstrap percentile confidence interval (seeded, so
    the same ratings always give the same interval)."""
    import numpy as np

    if not values:
        return (float("nan"), float("nan"), float("nan"))
    x = np.asarray(values, dtype=np.float64)
    if len(x) == 1:
        return (float(x[0]), float(x[0]), float(x[0]))
    rng = np.random.default_rng(seed)
    means = x[rng.integers(0, len(x), size=(resamples, len(x)))].mean(axis=1)
    tail = (1 - level) / 2 * 100
    lo, hi = np.percentile(means, [tail, 100 - tail])
    return (float(x.mean()), float(lo), float(hi))


def wilson(successes: float, n: float, z: float = 1.96) -> tuple[float, float]:
    """Wilson score interval of a proportion (ties may count half, so successes can be fractional)."""
    if n <= 0:
        return (float("nan"), float("nan"))
    p = successes / n
    denom = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denom
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denom
    return (max(0.0, centre - half), min(1.0, centre + half))
