"""The server's safety layer: input and output filters in front of and behind the model.

    guard = Guard()
    guard.check_input(messages)   # -> None, or why the request is refused ("toxic", "injection")
    guard.check_output(text)      # -> None, or why the reply is withheld ("toxic")

Input: the user's messages are checked against the cleaning step's harm word list and
patterns (`ToxicityFilter`, wordlists/toxic.txt) and against prompt-injection patterns
(instructions to ignore or reveal the system prompt, role-play jailbreaks, chat-template
tokens typed as text). Output: the reply against the same harm list. A blocked request
or reply gets `REFUSAL` instead, with finish reason "content_filter", and is counted in
the server's metrics. The patterns are deliberately narrow: a support assistant should
still answer "please ignore my previous message, the order number is ...".
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any

from chatforge.data.filters import ToxicityConfig, ToxicityFilter

REFUSAL = "I'm sorry, but I can't help with that. I'm happy to help with questions about your orders, shipping, returns and our products."

INJECTION = re.compile(
    r"\b(?:ignore|disregard|forget)\s+(?:all\s+|any\s+)?(?:the\s+|your\s+)?(?:previous|prior|above|earlier|system)\s+"
    r"(?:instructions?|prompts?|rules?|messages?\s+from\s+the\s+system)"
    r"|\b(?:reveal|print|show|repeat|output|tell\s+me)\s+(?:me\s+)?(?:your|the)\s+(?:hidden\s+|secret\s+|initial\s+)?"
    r"(?:system\s+prompt|instructions|rules)"
    r"|\byou\s+are\s+(?:now\s+)?(?:DAN|in\s+(?:developer|debug|god)\s+mode|an?\s+unrestricted)"
    r"|\b(?:developer|debug|god)\s+mode\b.{0,40}\b(?:enabled|on|activated)"
    r"|\bsystem\s+override\b"
    r"|<\|(?:system|user|assistant|end|bos|eos)\|>"
    r"|\bforget\s+your\s+rules\b",
    re.IGNORECASE | re.DOTALL,
)


class Guard:
    """Input and output filters (see the module docstring)."""

    def __init__(self, enabled: bool = True) -> None:
        self.enabled = enabled
        self.toxicity = ToxicityFilter(ToxicityConfig()) if enabled else None

    def check_input(self, messages: Sequence[Mapping[str, Any]]) -> str | None:
        """Why the request must be refused ("injection", "toxic"), or None."""
        if self.toxicity is None:
            return None
        for m in messages:
            if m.get("role") != "user":
                continue
            text = str(m.get("content", ""))
            if INJECTION.search(text):
                return "injection"
            if self.toxicity.is_toxic(text):
                return "toxic"
        return None

    def check_prompt(self, text: str) -> str | None:
        """`check_input` for a plain-text completion prompt."""
        return self.check_input([{"role": "user", "content": text}])

    def check_output(self, text: str) -> str | None:
        """Why a reply must be withheld ("toxic"), or None."""
        if self.toxicity is None:
            return None
        return "toxic" if self.toxicity.is_toxic(text) else None
