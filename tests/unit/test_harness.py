"""The lm-evaluation-harness adapter: a local multiple-choice task through `chatforge-lm-eval`
scores what our model scores, and the request types agree with the engine."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from lm_eval.api.instance import Instance

from chatforge.checkpoint import save_model_dir
from chatforge.engine import Sampling
from chatforge.eval.harness import ChatforgeLM
from chatforge.eval.runner import sentence_logprob
from chatforge.model import GPT, ModelConfig
from chatforge.tokenizer import train_tokenizer

DOCS = [
    {"question": "The sky on a clear day is", "choices": ["blue", "green", "loud"], "answer": 0},
    {"question": "Returns are accepted within", "choices": ["30 days", "a purple", "seven cats"], "answer": 0},
    {"question": "Shipping costs", "choices": ["$4.99", "the moon", "yesterday"], "answer": 0},
    {"question": "Our support team answers", "choices": ["emails", "rocks", "never"], "answer": 2},
]


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("harness")
    texts = [d["question"] + " " + c for d in DOCS for c in d["choices"]] * 5 + ["hello world, where is my order?"] * 5
    tok = train_tokenizer(texts, 400)
    tok.save(root / "tok")
    torch.manual_seed(0)
    save_model_dir(root / "model", GPT(ModelConfig(vocab_size=448, n_layer=2, n_embd=32, n_head=2, block_size=64)), tokenizer_dir=root / "tok")
    return root / "model"


def test_a_local_multiple_choice_task_through_the_harness_cli(model_dir, tmp_path):
    tasks = tmp_path / "tasks"
    tasks.mkdir()
    (tasks / "data.jsonl").write_text("".join(json.dumps(d) + "\n" for d in DOCS))
    (tasks / "cf_tiny_mc.yaml").write_text(
        "task: cf_tiny_mc\n"
        "dataset_path: json\n"
        f"dataset_kwargs:\n  data_files:\n    test: {tasks / 'data.jsonl'}\n"
        "test_split: test\n"
        "output_type: multiple_choice\n"
        'doc_to_text: "{{question}}"\n'
        'doc_to_choice: "{{choices}}"\n'
        'doc_to_target: "{{answer}}"\n'
        "metric_list:\n  - metric: acc\n"
    )
    exe = shutil.which("chatforge-lm-eval", path=str(Path(sys.executable).parent))
    assert exe is not None
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1", "HF_DATASETS_CACHE": str(tmp_path / "hf")}
    cmd = [exe, "--model", "chatforge", "--model_args", f"path={model_dir}", "--include_path", str(tasks), "--tasks", "cf_tiny_mc", "--output_path", str(tmp_path / "out")]
    p = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=600)
    assert p.returncode == 0, p.stderr[-3000:]
    results = json.loads(next((tmp_path / "out").rglob("results*.json")).read_text())
    acc = results["results"]["cf_tiny_mc"]["acc,none"]
    # the same choices picked by hand from our model's log-probabilities of " " + choice
    lm = ChatforgeLM(path=str(model_dir))
    want = 0
    for d in DOCS:
        ctx = d["question"]
        scores = []
        for c in d["choices"]:
            whole, head = lm.tok.encode(ctx + " " + c), lm.tok.encode(ctx)
            ids = torch.tensor([whole])
            with torch.no_grad():
                logp = F.log_softmax(lm.model(ids[:, :-1]).float(), dim=-1)[0]
            scores.append(float(logp[len(head) - 1 :].gather(1, ids[0, len(head) :, None]).sum()))
        want += int(max(range(len(scores)), key=scores.__getitem__) == d["answer"])
    assert acc == pytest.approx(want / len(DOCS))


def test_rolling_loglikelihood_and_generation_agree_with_the_engine(model_dir):
    lm = ChatforgeLM(path=str(model_dir), batch_size=2)
    text = "Returns are accepted within 30 days"
    (rolling,) = lm.loglikelihood_rolling([Instance("loglikelihood_rolling", {}, (text,), 0)])
    assert rolling == pytest.approx(sentence_logprob(lm.engine, text), abs=1e-4)
    # a document longer than the context is scored in windows, every token once
    long = " ".join([text] * 20)
    (rolling_long,) = lm.loglikelihood_rolling([Instance("loglikelihood_rolling", {}, (long,), 0)])
    assert rolling_long < rolling and len(lm.tok.encode(long)) > lm.block
    prompt = "Shipping costs"
    (gen,) = lm.generate_until([Instance("generate_until", {}, (prompt, {"until": ["\n"], "max_gen_toks": 12}), 0)])
    greedy = lm.tok.decode(list(lm.engine.generate(lm.tok.encode(prompt), Sampling(temperature=0, max_tokens=12))), skip_special=True)
    assert gen == greedy.split("\n", 1)[0]
