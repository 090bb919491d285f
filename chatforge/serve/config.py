"""`chatforge serve`'s config, in a module without torch or web libraries (so `--help` stays fast)."""

from __future__ import annotations

from dataclasses import dataclass

from chatforge.config import opt
from chatforge.errors import ConfigError
from chatforge.model_config import DTYPE_HELP, check_dtype


@dataclass
class Limits:
    """What one request may ask for; beyond it, a 400 (or 413) in OpenAI's error shape."""

    max_body_bytes: int = opt(1_000_000, "largest request body (bigger ones are refused before being read whole)", ge=1024)
    max_messages: int = opt(100, "most messages in one chat request", ge=1)
    max_message_chars: int = opt(20_000, "most characters in one message", ge=1)
    max_tokens: int = opt(1024, "largest max_tokens a request may ask for", ge=1)
    max_n: int = opt(4, "largest n (choices per request)", ge=1, le=64)
    max_stop: int = opt(4, "most stop sequences", ge=0)
    timeout: float = opt(120.0, "seconds a request may take before it is cancelled", gt=0)


@dataclass
class ServeConfig:
    """`chatforge serve`: an OpenAI-compatible API (/v1/chat/completions, /v1/completions, ...) and a web chat page."""

    model: str = opt("", "model dir to serve (or --registry)")
    registry: str = opt("", "serve the production version of this model registry (`chatforge models ...`); a promote or rollback is picked up without dropping a request (hot reload)")
    reload_interval: float = opt(1.0, "seconds between checks of the registry for a new production version", gt=0)
    ab: list[str] = opt(default_factory=list, help="A/B test between registry versions, VARIANT=VERSION:WEIGHT ... (e.g. A=production:0.9 B=candidate:0.1); each user id sticks to one variant; needs --registry and --log-conversations", metavar="VARIANT=VERSION:WEIGHT")
    ab_experiment: str = opt("ab", "the A/B test's name in the feedback store (its assignments; `chatforge ab report --experiment`)")
    host: str = opt("127.0.0.1", "address to listen on (0.0.0.0 for every interface: set --api-key then)")
    port: int = opt(8000, "port to listen on", ge=0, le=65535)
    model_name: str = opt("", "the model's name in the API (default: the model dir's name)")
    api_key: str = opt("", "require this key (Authorization: Bearer KEY) on every route but /health and the page")
    api_keys_file: str = opt("", "a file of accepted keys, one per line (with or instead of --api-key)")
    max_batch: int = opt(16, "sequences generated together (continuous batching)", ge=1, le=512)
    queue: int = opt(64, "requests that may wait for a slot; more get 429 with Retry-After", ge=0)
    safety: bool = opt(True, "refuse requests and replies that trip the harm and prompt-injection filters")
    store: str = opt("feedback.db", "the feedback store: a SQLite file or a database URL (postgresql://...); ratings from POST /v1/feedback go there, PII anonymized first")
    log_conversations: bool = opt(False, "also store every turn (prompt, reply, model, latency, token logprob and entropy; PII anonymized first) in the feedback store (opt-in)")
    dtype: str = opt("auto", DTYPE_HELP)
    limits: Limits = opt(default_factory=Limits)

    def validate(self) -> None:
        if bool(self.model) == bool(self.registry):
            raise ConfigError("model: give a model dir (--model DIR) or a registry (--registry DIR), not both" if self.model else "model: required; pass --model DIR (a model dir) or --registry DIR (a model registry)")
        if self.ab:
            if not self.registry:
                raise ConfigError("ab: an A/B test serves registry versions; pass --registry DIR")
            if not self.log_conversations:
                raise ConfigError("ab: an A/B test is read from the turns in the feedback store (their variant); add --log-conversations")
            if not self.ab_experiment or len(self.ab_experiment) > 100:
                raise ConfigError(f"ab_experiment: {self.ab_experiment!r}; give a name of 1 to 100 characters")
            ab_split(self.ab)
        check_dtype(self.dtype)


def ab_split(entries: list[str]) -> dict[str, tuple[str, float]]:
    """`["A=production:0.9", "B=candidate:0.1"]` -> {"A": ("production", 0.9), "B": ("candidate", 0.1)}.

    Weights are relative (0.9/0.1 and 9/1 split alike)."""
    out: dict[str, tuple[str, float]] = {}
    for entry in entries:
        name, eq, rest = entry.partition("=")
        ref, colon, weight = rest.rpartition(":")
        try:
            w = float(weight) if colon else -1.0
        except ValueError:
            w = -1.0
        if not eq or not name or not ref or len(name) > 64 or not w > 0 or w == float("inf"):
            raise ConfigError(f"ab: {entry!r}; expected VARIANT=VERSION:WEIGHT with a weight > 0 (e.g. A=production:0.9)")
        if name in out:
            raise ConfigError(f"ab: variant {name!r} is given twice")
        out[name] = (ref, w)
    if len(out) < 2:
        raise ConfigError(f"ab: {' '.join(entries)!r}; an A/B test needs at least two variants (--ab A=production:0.9 B=candidate:0.1)")
    return out
