"""lm-evaluation-harness adapter: run the harness's tasks on a chatforge model dir.

    pip install 'chatforge[lmeval]'
    chatforge-lm-eval --model chatforge --model_args path=runs/sft/model --tasks hellaswag --limit 100
    chatforge-lm-eval --model chatforge --model_args path=M --include_path my_tasks/ --tasks my_task

`chatforge-lm-eval` is the harness's own command line (every `lm_eval` flag works) with
the "chatforge" model registered: lm-evaluation-harness 0.4 finds models only among the
modules it imports, so a plain `lm_eval --model chatforge` cannot see this one. From
Python, `ChatforgeLM(path=...)` can be handed to `lm_eval.simple_evaluate(model=...)`.

The model answers the harness's three request types with our model and tokenizer:
`loglikelihood` (multiple choice: the log-probability of each continuation and whether
greedy decoding would produce it), `loglikelihood_rolling` (perplexity of whole
documents, in windows of the model's context) and `generate_until` (greedy, stopping
at the task's stop strings or the end-of-turn token). `--apply_chat_template` renders
prompts with the model's own chat template. Tasks with a Hugging Face hub dataset need
network access; local task files (`dataset_path: json` and `data_files`) do not.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F

try:
    from lm_eval.api.model import TemplateLM
    from lm_eval.api.registry import register_model
    from lm_eval.utils import get_rolling_token_windows, make_disjoint_window
except ImportError as e:  # pragma: no cover - the optional extra is missing
    raise ImportError("the lm-evaluation-harness adapter needs the `lmeval` extra: pip install 'chatforge[lmeval]'") from e

from chatforge.checkpoint import load_model_dir
from chatforge.engine import Engine, Sampling
from chatforge.tokenizer import Tokenizer


@register_model("chatforge")
class ChatforgeLM(TemplateLM):
    """A chatforge model dir as an lm-evaluation-harness model (`--model_args path=DIR[,batch_size=N]`)."""

    def __init__(self, path: str, batch_size: int | str = 8, max_gen_toks: int = 256, **_: Any) -> None:
        super().__init__()
        self.engine = Engine(load_model_dir(path), Tokenizer.load(path))
        self.model, self.tok = self.engine.model, self.engine.tok
        self.block = self.model.cfg.block_size
        self.batch = int(batch_size) if str(batch_size).isdigit() else 8
        self.max_gen_toks = max_gen_toks

    # -- tokens ----------------------------------------------------------------------------
    @property
    def eot_token_id(self) -> int:
        return self.tok.eos_id

    @property
    def prefix_token_id(self) -> int:
        return self.tok.bos_id  # what documents start with in pretraining

    def tok_encode(self, string: str, add_special_tokens: bool | None = None, **kwargs: Any) -> list[int]:
        return self.tok.encode(string)

    def tok_decode(self, ids: list[int], **kwargs: Any) -> str:
        return self.tok.decode(ids)

    def apply_chat_template(self, chat_history: list[dict[str, str]], add_generation_prompt: bool = True) -> str:
        return self.tok.render_text(chat_history, add_generation_prompt=add_generation_prompt)

    @property
    def tokenizer_name(self) -> str:
        return "chatforge"

    # -- scoring -----------------------------------------------------------------------------
    @torch.inference_mode()
    def _score(self, pairs: list[tuple[list[int], list[int]]]) -> list[tuple[float, bool]]:
        """(sum of log p(continuation | context), greedy would produce it) for token pairs,
        a batch at a time; the context loses its oldest tokens to fit the model's block."""
        out: list[tuple[float, bool]] = []
        for start in range(0, len(pairs), self.batch):
            chunk = []
            for ctx, cont in pairs[start : start + self.batch]:
                ids = (ctx + cont)[-(self.block + 1) :]
                chunk.append((ids, len(cont)))
            width = max(len(ids) - 1 for ids, _ in chunk)
            x = torch.full((len(chunk), width), self.tok.pad_id, dtype=torch.long)
            for r, (ids, _) in enumerate(chunk):
                x[r, : len(ids) - 1] = torch.tensor(ids[:-1])  # right padding: causal attention never sees it
            logp = F.log_softmax(self.model(x.to(self.engine.device)).float(), dim=-1)
            for r, (ids, n) in enumerate(chunk):
                end = len(ids) - 1
                rows = logp[r, end - n : end]  # the positions that predict the continuation
                target = torch.tensor(ids[-n:], device=rows.device)
                out.append((float(rows.gather(1, target[:, None]).sum()), bool((rows.argmax(-1) == target).all())))
        return out

    def _loglikelihood_tokens(self, requests: list[tuple[tuple[str, str], list[int], list[int]]], disable_tqdm: bool = False, **kwargs: Any) -> list[tuple[float, bool]]:
        return self._score([(ctx, cont) for _, ctx, cont in requests])

    def loglikelihood_rolling(self, requests: list[Any], disable_tqdm: bool = False) -> list[float]:
        out = []
        for (text,) in (r.args for r in requests):
            windows = [
                make_disjoint_window(w)
                for w in get_rolling_token_windows(self.tok_encode(text), self.prefix_token_id, self.block, 1)
            ]
            out.append(sum(lp for lp, _ in self._score(windows)))
        return out

    # -- generation ------------------------------------------------------------------------------
    def generate_until(self, requests: list[Any], disable_tqdm: bool = False) -> list[str]:
        out = []
        for context, gen_kwargs in (r.args for r in requests):
            until = gen_kwargs.get("until") or []
            until = [until] if isinstance(until, str) else list(until)
            max_tokens = int(gen_kwargs.get("max_gen_toks", self.max_gen_toks))
            ids = self.tok_encode(context)[-(self.block - 1) :]
            s = Sampling(temperature=0, max_tokens=min(max_tokens, self.block - len(ids)))
            dec = self.tok.stream_decoder(skip_special=True)
            text = ""
            for token in self.engine.generate(ids, s):
                text += dec.push(token)
                if any(u in text for u in until):
                    break
            text += dec.flush()
            for u in until:
                text = text.split(u, 1)[0]
            out.append(text)
        return out


def main() -> None:
    """`chatforge-lm-eval`: the harness's command line with the chatforge model registered."""
    from lm_eval.__main__ import cli_evaluate

    cli_evaluate()


if __name__ == "__main__":
    main()
