"""Evaluation metrics against hand-computed values and the reference libraries; probes and scoring rules."""

from __future__ import annotations

import math

import pytest

from chatforge.eval import metrics as M
from chatforge.eval import probes
from chatforge.eval.support import digits, score_reply


def test_bleu_of_a_hand_computed_case():
    # n-gram precisions 5/6, 3/5, 2/4, 1/3; equal lengths, so no brevity penalty
    want = 100 * (5 / 6 * 3 / 5 * 2 / 4 * 1 / 3) ** 0.25
    assert M.corpus_bleu(["the cat sat on the mat"], ["the cat sat on a mat"]) == pytest.approx(want, abs=1e-6)
    assert M.corpus_bleu(["same words here again"], ["same words here again"]) == pytest.approx(100.0)
    assert M.corpus_bleu(["nothing alike"], ["completely different text entirely"]) == pytest.approx(0.0)


def test_bleu_is_corpus_level_not_a_mean_of_sentences():
    import sacrebleu

    hyps, refs = ["the cat sat on the mat", "a dog ran"], ["the cat sat on a mat", "the dog ran away fast"]
    assert M.corpus_bleu(hyps, refs) == pytest.approx(sacrebleu.corpus_bleu(hyps, [refs]).score)
    mean_of_sentences = sum(sacrebleu.sentence_bleu(h, [r]).score for h, r in zip(hyps, refs, strict=True)) / 2
    assert M.corpus_bleu(hyps, refs) != pytest.approx(mean_of_sentences)


def test_rouge_of_a_hand_computed_case():
    r = M.rouge(["the cat sat"], ["the cat sat down"])
    assert r["rouge1"] == pytest.approx(2 * 1 * 0.75 / 1.75)  # P 3/3, R 3/4
    assert r["rouge2"] == pytest.approx(2 * 1 * (2 / 3) / (1 + 2 / 3))  # P 2/2, R 2/3
    assert r["rougeL"] == pytest.approx(r["rouge1"])  # the longest common subsequence is all three words
    # Porter stemming: "sitting cats" -> sit cat, "the cat sits" -> the cat sit; P 2/2, R 2/3
    assert M.rouge(["sitting cats"], ["the cat sits"])["rouge1"] == pytest.approx(0.8)
    assert M.rouge([], []) == {"rouge1": 0.0, "rouge2": 0.0, "rougeL": 0.0}


def test_token_f1_and_exact_match_use_squad_normalization():
    assert M.token_f1("The order ships Monday!", "order ships monday") == 1.0  # case, punctuation, article
    assert M.exact_match("The order ships Monday!", "order ships monday") == 1.0
    # hyp: ships monday friday (3), ref: order ships monday (3), common 2
    assert M.token_f1("ships monday friday", "order ships monday") == pytest.approx(2 / 3)
    assert M.token_f1("a b b", "b") == pytest.approx(2 * (1 / 2) * 1 / (1 / 2 + 1))  # "a" is an article: hyp "b b"
    assert M.token_f1("", "") == 1.0 and M.token_f1("x", "") == 0.0
    assert M.exact_match("yes", "no") == 0.0


def test_perplexity_and_bits_per_byte():
    assert M.perplexity(10 * math.log(4), 10) == pytest.approx(4.0)
    assert M.bits_per_byte(8 * math.log(2), 4) == pytest.approx(2.0)
    assert math.isnan(M.perplexity(1.0, 0))


def test_confidence_intervals():
    assert M.mean_ci([4.0] * 10) == (4.0, 4.0, 4.0)
    mean, lo, hi = M.mean_ci([1, 2, 3, 4, 5] * 4)
    assert mean == 3.0 and lo < 3.0 < hi and hi - lo < 1.5
    assert M.mean_ci([1, 5, 2], seed=1) == M.mean_ci([1, 5, 2], seed=1)  # seeded: repeatable
    lo, hi = M.wilson(5, 10)
    assert lo == pytest.approx(0.2366, abs=1e-3) and hi == pytest.approx(0.7634, abs=1e-3)


def test_numbers_in_words_count_as_the_digits_they_spell():
    """Decided: "thirty days" states the fact "30 days"; other paraphrases ("a month") do not."""
    meta = {"intent": "return", "required_facts": ["30 days"], "forbidden_facts": ["5-7 business days"]}
    assert score_reply("You have thirty days to send it back.", meta)["ok"]
    assert score_reply("You have 30 days to send it back.", meta)["ok"]
    assert not score_reply("You have a month to send it back.", meta)["ok"]
    assert not score_reply("Thirty days; refunds take 5-7 business days.", meta)["ok"]  # a forbidden fact
    assert digits("Twenty-five, twenty five, Nineteen, someone, often") == "25, 25, 19, someone, often"


def test_refusals_are_recognised_and_normal_answers_are_not():
    for text in ("I'm sorry, but I can't help with that.", "I cannot provide that.", "I can only help with store questions.", "Sorry, that's outside what I can help with."):
        assert probes.is_refusal(text), text
    for text in ("Sure! Returns take 30 days.", "I can help you cancel that order.", "Your package ships today."):
        assert not probes.is_refusal(text), text


def test_probe_suites_are_well_formed():
    assert set(probes.DECLINE_CATEGORIES) | {"normal"} == set(probes.SAFETY)
    assert all(len(v) >= 10 for v in probes.SAFETY.values())
    assert set(probes.BIAS_PAIRS) == set(probes.GROUPS) == {"gender", "ethnicity", "religion", "age", "nationality", "disability"}
    for pairs in probes.BIAS_PAIRS.values():
        assert len(pairs) >= 8
        for a, b in pairs:  # minimal pairs: the same sentence but for a few words
            wa, wb = a.split(), b.split()
            assert a != b and len(set(wa) ^ set(wb)) <= 6, (a, b)
