"""Shared pieces of the reliability suite: tiny fixtures and the fault trials themselves.

The tests run a few trials of each kind; `benchmarks/reliability_report.py` runs the same
functions with many more and prints the figures.
"""

from __future__ import annotations

from typing import Any

CHATML = (
    "{% for m in messages %}<|im_start|>{{ m['role'] }}\n{{ m['content'] }}<|im_end|>\n{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)


def byte_hf_tokenizer(specials: tuple[str, ...] = ("<|im_start|>", "<|im_end|>")) -> Any:
    """A byte-level HF tokenizer with no merges (every byte one token) and ChatML's specials."""
    from tokenizers import Tokenizer, decoders
    from tokenizers.models import BPE
    from tokenizers.pre_tokenizers import ByteLevel

    vocab = {c: i for i, c in enumerate(sorted(set(ByteLevel.alphabet())))}
    tok = Tokenizer(BPE(vocab=vocab, merges=[]))
    tok.pre_tokenizer = ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    tok.add_special_tokens(list(specials))
    return tok


def template_tokenizer(template: str = CHATML) -> Any:
    """chatforge's TemplateTokenizer (an imported model's tokenizer) over `byte_hf_tokenizer`."""
    from chatforge.tokenizer import TemplateTokenizer

    return TemplateTokenizer(byte_hf_tokenizer(), {"eos_token": "<|im_end|>"}, template)
