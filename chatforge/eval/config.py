"""Configs of the evaluation commands, in a module without torch (so `--help` stays fast)."""

from __future__ import annotations

from dataclasses import dataclass

from chatforge.config import opt
from chatforge.errors import ConfigError

METRICS = ("perplexity", "generation", "task", "safety", "bias")
NEEDS_DATA = ("perplexity", "generation", "task")


@dataclass
class EvalConfig:
    """`chatforge eval`: perplexity, BLEU/ROUGE/F1, task success, safety and bias probes of a model
    (people rate answers with `chatforge eval human-export` and `human-import`)."""

    model: str = opt("", "model dir to evaluate", required=True)
    data: str = opt("", "test dataset dir (conversations; the last assistant turn of each is the reference)")
    metrics: list[str] = opt(default_factory=lambda: list(METRICS), help=f"what to measure: any of {', '.join(METRICS)}")
    out: str = opt("", "results JSON (default: eval.json in the model's run dir, or in the current dir)")
    limit: int = opt(0, "evaluate at most this many test conversations (0 = all)", ge=0)
    max_tokens: int = opt(160, "longest reply generated", ge=1)
    temperature: float = opt(0.0, "sampling temperature (0 = greedy, deterministic)", ge=0)
    top_p: float = opt(1.0, "nucleus sampling (with --temperature)", gt=0, le=1)
    seed: int = opt(0, "seed of sampled replies (item i uses seed + i)")
    batch_size: int = opt(16, "conversations per forward pass for perplexity", ge=1)
    bias_questions: int = opt(8, "test questions re-asked by each group in the bias generation probes", ge=0)
    system: str = opt("", "system prompt for the probes (default: the test data's first system message)")
    samples: int = opt(5, "replies kept in the results file next to their references", ge=0)

    def validate(self) -> None:
        unknown = sorted(set(self.metrics) - set(METRICS))
        if unknown:
            raise ConfigError(f"metrics: unknown {', '.join(unknown)}; choose from {', '.join(METRICS)}")
        if not self.metrics:
            raise ConfigError(f"metrics: name at least one of {', '.join(METRICS)}")


@dataclass
class HumanExportConfig:
    """`chatforge eval human-export`: a blind sheet of answers for people to rate."""

    model: str = opt("", "model dir whose answers are rated", required=True)
    data: str = opt("", "test dataset dir (conversations); the last user turn of each is answered", required=True)
    out: str = opt("", "output prefix: writes OUT.csv (for raters) and OUT.key.json (who wrote what)", required=True)
    compare: str = opt("", "a second model dir: each item shows both answers, in random order")
    items: int = opt(50, "conversations to sample", ge=1)
    max_tokens: int = opt(160, "longest answer", ge=1)
    seed: int = opt(0, "sampling of conversations and the A/B order")


@dataclass
class HumanImportConfig:
    """`chatforge eval human-import`: read filled-in ratings back into eval results."""

    ratings: str = opt("", "the rated CSV", required=True)
    key: str = opt("", "the key file written with it (OUT.key.json)", required=True)
    into: str = opt("", "eval results JSON to add the ratings to (default: RATINGS.results.json)")


@dataclass
class EvalBudget:
    """How much of the evaluation a pipeline (quickstart, learn) spends: the knobs that set its time."""

    limit: int = opt(0, "test conversations evaluated (0 = all)", ge=0)
    max_tokens: int = opt(160, "longest reply generated", ge=1)
    bias_questions: int = opt(8, "test questions re-asked by each group in the bias generation probes", ge=0)
