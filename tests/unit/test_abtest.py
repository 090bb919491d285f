"""`chatforge ab report`: the statistics against hand-computed cases, the figures of a store
filled with known turns and ratings, and auto-promotion only when the difference is significant."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from chatforge.errors import UserError
from chatforge.feedback.abtest import ABReportConfig, main, prob_b_beats_a, recommend, report, two_proportion_z
from chatforge.feedback.store import FeedbackStore, Rating, Turn, store_url
from chatforge.registry import Registry


def test_z_test_against_a_hand_computed_case():
    # A: 45 up of 100, B: 60 up of 100. Pooled rate 105/200 = 0.525;
    # se = sqrt(0.525 * 0.475 * (1/100 + 1/100)) = sqrt(0.0049875) = 0.070622;
    # z = (0.60 - 0.45) / 0.070622 = 2.1240; two-sided p = 2 * (1 - Phi(2.1240)) = 0.03367.
    z, p = two_proportion_z(45, 100, 60, 100)
    assert z == pytest.approx(2.1240, abs=1e-4) and p == pytest.approx(0.03367, abs=1e-5)
    z2, p2 = two_proportion_z(60, 100, 45, 100)
    assert (z2, p2) == pytest.approx((-z, p))
    assert two_proportion_z(10, 10, 5, 5) == (0.0, 1.0)  # both perfect: no evidence either way
    assert two_proportion_z(0, 0, 3, 5) == (0.0, 1.0)


def test_posterior_is_exact_and_agrees_with_sampling():
    # Beta(1, 1) priors: with no data, or equal data, B is better with probability 1/2.
    assert prob_b_beats_a(0, 0, 0, 0) == pytest.approx(0.5)
    assert prob_b_beats_a(7, 3, 7, 3) == pytest.approx(0.5)
    # one thumb up for B alone: P(U2 > U1) with U1 ~ Beta(1,1), U2 ~ Beta(2,1) is 2/3
    assert prob_b_beats_a(0, 0, 1, 0) == pytest.approx(2 / 3)
    rng = np.random.default_rng(0)
    for up_a, down_a, up_b, down_b in [(45, 55, 60, 40), (3, 9, 5, 4), (900, 100, 880, 120)]:
        exact = prob_b_beats_a(up_a, down_a, up_b, down_b)
        draws = rng.beta(1 + up_b, 1 + down_b, 400_000) > rng.beta(1 + up_a, 1 + down_a, 400_000)
        assert exact == pytest.approx(draws.mean(), abs=0.004)
        assert exact + prob_b_beats_a(up_b, down_b, up_a, down_a) == pytest.approx(1.0)
    assert 0.98 < prob_b_beats_a(45, 55, 60, 40) < 0.99


def test_the_recommendation_rule():
    cfg = ABReportConfig(min_ratings=30)
    assert recommend(100, 100, 0.01, 0.99, cfg)[0] == "promote"
    assert recommend(100, 100, 0.01, 0.01, cfg)[0] == "keep"
    assert recommend(100, 100, 0.20, 0.90, cfg)[0] == "more-data"
    assert recommend(100, 100, 0.04, 0.94, cfg)[0] == "more-data"  # significant, not sure enough
    decision, reason = recommend(29, 500, 0.0001, 0.9999, cfg)
    assert decision == "more-data" and "29" in reason and "at least 30" in reason


def fill(store: FeedbackStore, experiment: str, variant: str, model: str, up: int, down: int, *, users: int, declines: int = 0, latency: float = 0.5) -> None:
    """`up + down` rated turns (plus `declines` unrated refusals) from `users` users."""
    turns, ratings = [], []
    for i in range(up + down + declines):
        tid = f"{experiment}-{variant}-{i}"
        refused = i >= up + down
        turns.append(Turn(id=tid, model=model, messages=[{"role": "user", "content": "hi"}], reply="ok", user=f"{variant}-u{i % users}", variant=variant, experiment=experiment, latency=latency, finish_reason="content_filter" if refused else "stop"))
        if not refused:
            ratings.append(Rating(tid, thumb=1 if i < up else -1, score=5 if i < up else 2))
    store.add_many(turns, ratings)


def test_figures_per_variant_from_a_known_store(tmp_path):
    store = FeedbackStore(store_url(tmp_path / "fb.db"), anonymize=False)
    fill(store, "exp", "A", "v1", 45, 55, users=40, declines=4, latency=0.2)
    fill(store, "exp", "B", "v2", 60, 40, users=25, latency=0.4)
    fill(store, "older", "B", "v9", 0, 50, users=5)  # another experiment's B: not counted
    # B's first turn rated again, down: its latest thumb counts (B: 59 up, 41 down)
    store.add_rating(Rating("exp-B-0", thumb=-1))
    r = report(store, ABReportConfig(store=str(tmp_path / "fb.db"), experiment="exp"))
    a, b = r["variants"]["A"], r["variants"]["B"]
    assert (a["users"], a["turns"], a["up"], a["down"], a["versions"]) == (40, 104, 45, 55, {"v1": 104})
    assert a["up_rate"] == pytest.approx(0.45) and a["decline_rate"] == pytest.approx(4 / 104) and a["mean_latency"] == pytest.approx(0.2)
    assert a["mean_score"] == pytest.approx((45 * 5 + 55 * 2) / 100)
    assert (b["users"], b["turns"], b["up"], b["down"], b["decline_rate"]) == (25, 100, 59, 41, 0.0)
    z, p = two_proportion_z(45, 100, 59, 100)
    assert r["test"]["z"] == pytest.approx(z) and r["test"]["p_value"] == pytest.approx(p)
    assert r["decision"] == ("promote" if p < 0.05 and r["test"]["posterior_b_better"] > 0.95 else "more-data")
    with pytest.raises(UserError, match="no turns of experiment 'nope'"):
        report(store, ABReportConfig(experiment="nope"))
    with pytest.raises(UserError, match="no turns of variant 'C'"):
        report(store, ABReportConfig(experiment="exp", treatment="C"))


def registry(tmp_path, models) -> Registry:
    reg = Registry(tmp_path / "registry")
    for _ in range(2):
        reg.register(models)
    reg.promote("v1")
    return reg


@pytest.fixture
def model_files(tmp_path):
    d = tmp_path / "m"
    d.mkdir()
    (d / "config.json").write_text("{}")
    (d / "model.safetensors").write_bytes(b"weights")
    return d


def test_auto_promote_only_when_significant(tmp_path, model_files):
    reg = registry(tmp_path, model_files)
    db = str(tmp_path / "fb.db")
    store = FeedbackStore(store_url(db), anonymize=False)
    fill(store, "small", "A", "v1", 20, 20, users=40)
    fill(store, "small", "B", "v2", 23, 17, users=40)  # better, not significantly
    out = tmp_path / "small.json"
    r = main(ABReportConfig(store=db, experiment="small", auto_promote=True, registry=str(reg.root), out=str(out)))
    assert r["decision"] == "more-data" and "promoted" not in r
    assert reg.resolve("production")["version"] == "v1"
    assert json.loads(out.read_text())["decision"] == "more-data"
    fill(store, "big", "A", "v1", 45, 55, users=50)
    fill(store, "big", "B", "v2", 60, 40, users=50)  # p = 0.034, P(B better) = 0.98
    r = main(ABReportConfig(store=db, experiment="big", auto_promote=True, registry=str(reg.root)))
    assert r["decision"] == "promote" and r["promoted"] == "v2"
    assert reg.resolve("production")["version"] == "v2"
    assert math.isclose(r["test"]["p_value"], 0.03367, abs_tol=1e-5)
    # a stricter rule keeps A: no promotion
    reg.promote("v1")
    r = main(ABReportConfig(store=db, experiment="big", alpha=0.01, auto_promote=True, registry=str(reg.root)))
    assert r["decision"] == "more-data" and reg.resolve("production")["version"] == "v1"
