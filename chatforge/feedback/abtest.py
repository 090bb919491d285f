"""`chatforge ab report`: how the variants of an A/B test did, whether the difference is real,
and what to do about it.

    chatforge serve --registry registry --log-conversations --ab A=production:0.9 B=candidate:0.1 --ab-experiment fall
    chatforge ab report --store feedback.db --experiment fall [--out ab.json] [--auto-promote --registry registry]

Per variant, from the turns the server stored for the experiment and their ratings: users
(distinct user ids; requests without one count as turns only), turns, thumbs up and down,
the thumbs-up rate, the mean 1-5 score, the mean latency, the safety decline rate (the share
of replies ending with finish reason `content_filter`) and the model versions that served it.
A turn rated several times counts with its latest thumb.

The thumbs-up rates of the control (A) and the treatment (B) are compared two ways:

- a two-proportion z-test (pooled standard error), two-sided p-value;
- the Beta-Binomial posterior with a uniform Beta(1, 1) prior on each rate: P(rate B > rate A),
  computed exactly (a finite sum; no sampling, so the same counts always give the same number).

The recommendation: fewer than `--min-ratings` thumbs on either side -> need more data;
p < alpha and P(B > A) > threshold -> promote B; p < alpha and P(B > A) < 1 - threshold ->
keep A (B is worse); otherwise -> need more data (no significant difference; A keeps
serving). With `--auto-promote`, "promote B" promotes the version B served in the registry
(a server on that registry switches to it within a second).
"""

from __future__ import annotations

import math
from collections import Counter, defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from chatforge import redact
from chatforge.atomic import atomic_write_json
from chatforge.config import opt
from chatforge.errors import ConfigError, UserError
from chatforge.feedback.commands import STORE_HELP
from chatforge.ui import QUIET, UI


@dataclass
class ABReportConfig:
    """`chatforge ab report`: per-variant figures of an A/B test, a z-test and a Bayesian posterior on thumbs-up rates, and a recommendation."""

    store: str = opt("feedback.db", STORE_HELP)
    experiment: str = opt("ab", "the A/B test's name (chatforge serve --ab-experiment)")
    control: str = opt("A", "the control variant (the version serving now)")
    treatment: str = opt("B", "the variant that may replace it")
    alpha: float = opt(0.05, "significance level of the two-proportion z-test", gt=0, lt=1)
    threshold: float = opt(0.95, "posterior P(treatment better than control) needed to promote", gt=0.5, lt=1)
    min_ratings: int = opt(30, "fewer thumbs than this on either variant: need more data, whatever the test says", ge=1)
    out: str = opt("", "also write the report as JSON here")
    auto_promote: bool = opt(False, "when the recommendation is to promote, promote the treatment's model version in --registry")
    registry: str = opt("", "the model registry to promote in (with --auto-promote)")

    def validate(self) -> None:
        if self.control == self.treatment:
            raise ConfigError(f"treatment: {self.treatment!r} is also the control; compare two different variants")
        if self.auto_promote and not self.registry:
            raise ConfigError("registry: --auto-promote needs the model registry (--registry DIR)")


# -- statistics -----------------------------------------------------------------------------------


def two_proportion_z(x_a: int, n_a: int, x_b: int, n_b: int) -> tuple[float, float]:
    """z (positive when B's rate is higher) and the two-sided p-value of "the rates are equal",
    with the pooled standard error; (0, 1) when either side is empty or the pooled rate is 0 or 1."""
    if n_a == 0 or n_b == 0:
        return 0.0, 1.0
    pooled = (x_a + x_b) / (n_a + n_b)
    se = math.sqrt(pooled * (1 - pooled) * (1 / n_a + 1 / n_b))
    if se == 0:
        return 0.0, 1.0
    z = (x_b / n_b - x_a / n_a) / se
    return z, math.erfc(abs(z) / math.sqrt(2))


def _lbeta(a: float, b: float) -> float:
    return math.lgamma(a) + math.lgamma(b) - math.lgamma(a + b)


def prob_b_beats_a(up_a: int, down_a: int, up_b: int, down_b: int) -> float:
    """P(p_B > p_A) for p ~ Beta(1 + up, 1 + down) on each side, exactly: with integer
    parameters the integral is a finite sum over B's first parameter (Miller, "Formulas for
    Bayesian A/B testing", 2015); each term in logs, so large counts do not overflow."""
    a_a, b_a, a_b, b_b = 1 + up_a, 1 + down_a, 1 + up_b, 1 + down_b
    base = _lbeta(a_a, b_a)
    total = 0.0
    for i in range(a_b):
        total += math.exp(_lbeta(a_a + i, b_a + b_b) - math.log(b_b + i) - _lbeta(1 + i, b_b) - base)
    return min(1.0, max(0.0, total))


def recommend(n_a: int, n_b: int, p_value: float, posterior: float, cfg: ABReportConfig) -> tuple[str, str]:
    """(decision, reason): promote | keep | more-data, by the rule in the module docstring."""
    a, b = cfg.control, cfg.treatment
    if min(n_a, n_b) < cfg.min_ratings:
        return "more-data", f"need more data: {a} has {n_a} and {b} has {n_b} thumbs; at least {cfg.min_ratings} each are needed"
    if p_value < cfg.alpha and posterior > cfg.threshold:
        return "promote", f"promote {b}: its thumbs-up rate is higher (p = {p_value:.3g} < {cfg.alpha:g}, P({b} better) = {posterior:.3f} > {cfg.threshold:g})"
    if p_value < cfg.alpha and posterior < 1 - cfg.threshold:
        return "keep", f"keep {a}: {b}'s thumbs-up rate is lower (p = {p_value:.3g} < {cfg.alpha:g}, P({b} better) = {posterior:.3f})"
    return "more-data", f"need more data: no significant difference yet (p = {p_value:.3g}, needs < {cfg.alpha:g}; P({b} better) = {posterior:.3f}, needs > {cfg.threshold:g}); {a} keeps serving"


# -- the report --------------------------------------------------------------------------------------


def variant_figures(store: Any, experiment: str) -> dict[str, dict[str, Any]]:
    """Per variant of `experiment`: users, turns, thumbs, rates, mean score, latency, declines, versions."""
    acc: dict[str, dict[str, Any]] = defaultdict(lambda: {"users": set(), "turns": 0, "latency": [], "declines": 0, "versions": Counter()})
    for t in store.turns():
        if t.get("experiment") != experiment or not t.get("variant"):
            continue
        a = acc[t["variant"]]
        a["turns"] += 1
        if t.get("user"):
            a["users"].add(t["user"])
        if t.get("latency") is not None:
            a["latency"].append(t["latency"])
        a["declines"] += t.get("finish_reason") == "content_filter"
        a["versions"][t["model"]] += 1
    thumbs: dict[str, int] = {}  # turn -> its latest thumb
    scores: dict[str, list[int]] = defaultdict(list)
    variant_of: dict[str, str] = {}
    for r in store.rated_turns():  # in rating order: a later thumb replaces an earlier one
        if r.get("experiment") != experiment or not r.get("variant"):
            continue
        variant_of[r["turn_id"]] = r["variant"]
        if r.get("thumb") is not None:
            thumbs[r["turn_id"]] = r["thumb"]
        if r.get("score") is not None:
            scores[r["variant"]].append(r["score"])
    out = {}
    for name in sorted(acc):
        a = acc[name]
        up = sum(1 for turn, th in thumbs.items() if variant_of[turn] == name and th == 1)
        down = sum(1 for turn, th in thumbs.items() if variant_of[turn] == name and th == -1)
        out[name] = {
            "users": len(a["users"]),
            "turns": a["turns"],
            "up": up,
            "down": down,
            "up_rate": up / (up + down) if up + down else None,
            "mean_score": sum(scores[name]) / len(scores[name]) if scores[name] else None,
            "mean_latency": sum(a["latency"]) / len(a["latency"]) if a["latency"] else None,
            "decline_rate": a["declines"] / a["turns"],
            "versions": dict(a["versions"]),
        }
    return out


def report(store: Any, cfg: ABReportConfig) -> dict[str, Any]:
    """The figures, the tests and the recommendation, as data."""
    variants = variant_figures(store, cfg.experiment)
    if not variants:
        raise UserError(f"{redact.url(cfg.store)}: no turns of experiment {cfg.experiment!r} (chatforge serve --ab ... --ab-experiment {cfg.experiment} --log-conversations stores them)")
    for name in (cfg.control, cfg.treatment):
        if name not in variants:
            raise UserError(f"experiment {cfg.experiment!r} has no turns of variant {name!r} (variants: {', '.join(variants)}); see --control and --treatment")
    a, b = variants[cfg.control], variants[cfg.treatment]
    z, p = two_proportion_z(a["up"], a["up"] + a["down"], b["up"], b["up"] + b["down"])
    posterior = prob_b_beats_a(a["up"], a["down"], b["up"], b["down"])
    decision, reason = recommend(a["up"] + a["down"], b["up"] + b["down"], p, posterior, cfg)
    return {
        "experiment": cfg.experiment,
        "control": cfg.control,
        "treatment": cfg.treatment,
        "variants": variants,
        "test": {"z": z, "p_value": p, "alpha": cfg.alpha, "posterior_b_better": posterior, "threshold": cfg.threshold, "min_ratings": cfg.min_ratings},
        "decision": decision,
        "reason": reason,
    }


def _fmt(x: Any, spec: str = ".3f") -> str:
    return "-" if x is None else format(x, spec)


def main(cfg: ABReportConfig, ui: UI = QUIET) -> dict[str, Any]:
    from rich.table import Table

    from chatforge.feedback.store import FeedbackStore

    result = report(FeedbackStore.open(cfg.store), cfg)
    t = Table(title=f"A/B test {cfg.experiment!r}", title_justify="left")
    for c in ("variant", "versions", "users", "turns", "up", "down", "up rate", "mean score", "mean latency s", "safety declines"):
        t.add_column(c)
    for name, v in result["variants"].items():
        role = " (control)" if name == cfg.control else " (treatment)" if name == cfg.treatment else ""
        t.add_row(name + role, ", ".join(v["versions"]), str(v["users"]), str(v["turns"]), str(v["up"]), str(v["down"]), _fmt(v["up_rate"]), _fmt(v["mean_score"], ".2f"), _fmt(v["mean_latency"]), _fmt(v["decline_rate"]))
    ui.out.print(t)
    test = result["test"]
    ui.out.print(f"thumbs-up rate {cfg.treatment} vs {cfg.control}: z = {test['z']:.3f}, p = {test['p_value']:.4g} (two-proportion z-test); P({cfg.treatment} better) = {test['posterior_b_better']:.4f} (Beta(1,1) prior, exact)", markup=False, highlight=False)
    ui.out.print(f"recommendation: {result['reason']}", markup=False, highlight=False)
    ui.out.print(f"rule: promote when p < {cfg.alpha:g} and P(better) > {cfg.threshold:g} with >= {cfg.min_ratings} thumbs per variant; keep when p < {cfg.alpha:g} and P(better) < {1 - cfg.threshold:g}; else need more data", markup=False, highlight=False)
    if cfg.auto_promote and result["decision"] == "promote":
        versions = result["variants"][cfg.treatment]["versions"]
        if len(versions) != 1:
            raise UserError(f"variant {cfg.treatment} was served by {', '.join(versions)}: promote one by hand (chatforge models promote VERSION)")
        from chatforge.registry import Registry

        (version,) = versions
        result["promoted"] = Registry(cfg.registry).promote(version)
        ui.note(f"promoted {version} to production in {cfg.registry}")
    elif cfg.auto_promote:
        ui.note("--auto-promote: nothing promoted (the recommendation is not to promote)")
    if cfg.out:
        atomic_write_json(Path(cfg.out), result)
        ui.note(f"report -> {cfg.out}")
    return result
