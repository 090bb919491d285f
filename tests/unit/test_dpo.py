"""DPO: the loss against a hand-computed value, answer log-probabilities, pair tokenization,
and a tiny run that learns to prefer the chosen answers."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from chatforge.checkpoint import save_model_dir
from chatforge.data import synth
from chatforge.data.dataset import write_dataset
from chatforge.data.steps import row_texts
from chatforge.model import GPT, ModelConfig
from chatforge.tokenizer import Tokenizer, train_tokenizer
from chatforge.train.config import DPOConfig, TrainConfig
from chatforge.train.dpo import answer_logps, dpo_loss, main, pair_batch, tokenize_pairs
from chatforge.train.sft import IGNORE

BY = {"command": "test"}


@pytest.fixture(scope="module")
def tok() -> Tokenizer:
    w = synth.generate(2, conversations=150, test_conversations=1, heldout_conversations=1, kb_articles=10, preferences=40)
    texts = [t for r in w.conversations for t in row_texts(r, "conversations")]
    return train_tokenizer(texts + [t for r in w.preferences for t in row_texts(r, "preferences")], 600)


def pair(i: int) -> dict:
    return {
        "id": f"p{i}",
        "prompt": [{"role": "system", "content": "Be exact."}, {"role": "user", "content": f"How long is return window {i}?"}],
        "chosen": f"Returns are accepted within 30 days, case {i}.",
        "rejected": f"I think maybe 90 days or so for case {i}?",
        "source": "test",
        "meta": {},
    }


def test_dpo_loss_matches_a_hand_computed_value():
    policy = torch.tensor([[-10.0, -12.0], [-5.0, -4.0]])
    reference = torch.tensor([[-11.0, -11.0], [-5.0, -5.0]])
    loss, margin = dpo_loss(policy, reference, beta=0.1)
    # pair 0: ratios +1 (chosen) and -1 (rejected): margin 0.1 * (1 - (-1)) = 0.2
    # pair 1: ratios 0 and +1: margin 0.1 * (0 - 1) = -0.1
    assert margin.tolist() == pytest.approx([0.2, -0.1])
    assert loss.tolist() == pytest.approx([math.log(1 + math.exp(-0.2)), math.log(1 + math.exp(0.1))])
    assert loss[0].item() == pytest.approx(0.5981388693815918)


def test_pairs_share_the_prompt_and_train_only_on_the_answers(tok, tmp_path):
    write_dataset(tmp_path / "p", "preferences", [pair(i) for i in range(6)], created_by=BY)
    train, held, counts = tokenize_pairs([str(tmp_path / "p")], tok, limit=200, val_fraction=0, split=False)
    assert counts == {"pairs": 6, "truncated": 0, "too_long": 0} and len(train) == 12 and len(held) == 0
    for i in range(6):
        (c_ids, c_mask), (r_ids, r_mask) = train.get(2 * i), train.get(2 * i + 1)
        start = int(np.argmax(c_mask))
        assert start == int(np.argmax(r_mask)) and list(c_ids[:start]) == list(r_ids[:start])  # same prompt
        assert tok.decode(c_ids[start:].tolist()) == pair(i)["chosen"] + "<|end|>"
        assert tok.decode(r_ids[start:].tolist()) == pair(i)["rejected"] + "<|end|>"
        assert c_mask[start:].all() and r_mask[start:].all() and not c_mask[:start].any()
    b = pair_batch([1, 4], train, np.zeros((6, 2), np.float32), pad_id=tok.pad_id, device=torch.device("cpu"))
    assert list(b) == ["ref_logps", "input_ids", "labels"] and b["ref_logps"].shape == (2, 2)  # pairs counted first
    assert b["input_ids"].shape[0] == 4 and (b["labels"] != IGNORE).sum(1).tolist() == [
        int(train.get(k)[1].sum()) for k in (2, 3, 8, 9)
    ]


def test_answer_logps_sum_the_answer_tokens_only(tok):
    torch.manual_seed(0)
    model = GPT(ModelConfig(vocab_size=640, n_layer=1, n_embd=32, n_head=2, block_size=128)).eval()
    ids = torch.randint(7, 600, (2, 20))
    labels = torch.full((2, 20), IGNORE)
    labels[0, 10:15] = ids[0, 11:16]
    labels[1, 3:4] = ids[1, 4:5]
    with torch.no_grad():
        got = answer_logps(model, ids, labels)
        logp = torch.log_softmax(model(ids).float(), -1)
    want0 = sum(logp[0, t, int(labels[0, t])] for t in range(10, 15))
    assert got.tolist() == pytest.approx([float(want0), float(logp[1, 3, int(labels[1, 3])])], abs=1e-4)


def test_a_tiny_dpo_run_learns_to_prefer_the_chosen_answers(tok, tmp_path):
    tok.save(tmp_path / "tok")
    torch.manual_seed(0)
    save_model_dir(tmp_path / "base", GPT(ModelConfig(vocab_size=640, n_layer=2, n_embd=48, n_head=4, block_size=96)), tokenizer_dir=tmp_path / "tok")
    write_dataset(tmp_path / "p", "preferences", [pair(i) for i in range(8)], created_by=BY)
    train = TrainConfig(steps=40, batch_size=4, eval_every=0, save_every=0, log_every=10)
    train.optim.lr, train.optim.warmup_steps = 2e-3, 2
    cfg = DPOConfig(model=str(tmp_path / "base"), data=[str(tmp_path / "p")], out=str(tmp_path / "run"), val_fraction=0, train=train)
    s = main(cfg)
    assert s["before"]["reward_margin"] == pytest.approx(0.0, abs=1e-6)  # the model is its own reference at the start
    assert s["before"]["loss"] == pytest.approx(math.log(2), abs=1e-5)
    assert s["after"]["reward_accuracy"] == 1.0 and s["after"]["reward_margin"] > 1.0
    assert s["after"]["chosen_reward"] > s["after"]["rejected_reward"]
    assert s["pairs"] == 40 * 4 and (tmp_path / "run" / "model" / "model.safetensors").is_file()
