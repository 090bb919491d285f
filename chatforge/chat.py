"""`chatforge chat`: talk to a model in the terminal.

    chatforge chat --model runs/sft/model --system "You are a helpful support agent."

Type a message and press Enter; the reply streams as it is generated. Commands:
`/reset` forgets the conversation (the system prompt stays), `/system TEXT` sets a new
system prompt (and starts over), `/exit` (or Ctrl-D) leaves. Lines can also come from a
pipe: `printf 'hello\\n' | chatforge chat --model M`.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from typing import Any

from chatforge.config import opt
from chatforge.model_config import DTYPE_HELP, check_dtype
from chatforge.ui import QUIET, UI


@dataclass
class ChatConfig:
    """`chatforge chat`: a terminal chat with a model (streaming, history, /reset, /system)."""

    model: str = opt("", "model dir (from `pretrain`, `sft`, or an imported model)", required=True)
    system: str = opt("", "system prompt (empty: none)")
    temperature: float = opt(0.7, "sampling temperature (0 = always the most likely token)", ge=0, le=5)
    top_p: float = opt(0.9, "nucleus sampling: keep the most likely tokens holding this much probability", gt=0, le=1)
    top_k: int = opt(0, "keep only the k most likely tokens (0 = no limit)", ge=0)
    max_tokens: int = opt(256, "longest reply in tokens", ge=1)
    seed: int = opt(-1, "sampling seed for reproducible replies (-1 = a new sample every time)")
    dtype: str = opt("auto", DTYPE_HELP)

    def validate(self) -> None:
        check_dtype(self.dtype)


def main(cfg: ChatConfig, ui: UI = QUIET) -> dict[str, Any]:
    """Run the chat until /exit or end of input; returns the number of replies."""
    from chatforge.engine import Engine, Sampling

    engine = Engine.load(cfg.model, cfg.dtype)
    sampling = Sampling(cfg.temperature, cfg.top_k, cfg.top_p, cfg.max_tokens, None if cfg.seed < 0 else cfg.seed)
    system = cfg.system
    history: list[dict[str, str]] = []
    interactive = sys.stdin.isatty()
    replies = 0
    if interactive:
        ui.note("chat: type a message; /reset, /system TEXT, /exit")
    while True:
        try:
            line = input("you> " if interactive else "")
        except EOFError:
            break
        text = line.strip()
        if not text:
            continue
        if text in ("/exit", "/quit"):
            break
        if text == "/reset" or text.startswith("/system"):
            if text.startswith("/system"):
                system = text[len("/system") :].strip()
            history = []
            print(f"[new conversation{'; system: ' + system if system else ''}]", flush=True)
            continue
        history.append({"role": "user", "content": line})
        messages = ([{"role": "system", "content": system}] if system else []) + history
        print("assistant> ", end="", flush=True)
        pieces = []
        for piece in engine.chat(messages, sampling):
            pieces.append(piece)
            print(piece, end="", flush=True)
        print(flush=True)
        history.append({"role": "assistant", "content": "".join(pieces)})
        replies += 1
    return {"replies": replies}
