"""`chatforge eval`, `report` and the human rating round trip, on a tiny model that learned its answers."""

from __future__ import annotations

import csv
import json
import math
import re

import pytest
import torch
import torch.nn.functional as F
from test_cli import cf  # same directory: pytest puts it on sys.path

from chatforge.checkpoint import load_model_dir, model_dir_hash, save_model_dir
from chatforge.data import synth
from chatforge.data.dataset import open_dataset, write_dataset
from chatforge.data.steps import row_texts
from chatforge.engine import Engine
from chatforge.eval import probes
from chatforge.eval.runner import pair_preference
from chatforge.model import GPT, ModelConfig
from chatforge.tokenizer import Tokenizer, train_tokenizer
from chatforge.train.config import SFTConfig, TrainConfig
from chatforge.train.sft import main as sft_main

BY = {"command": "test"}
SYSTEM = "You help Larkspur Goods customers."
QA = [
    ("How long do I have to return something?", "You can return items within 30 days of delivery.", "return", ["30 days"]),
    ("How much is standard shipping?", "Standard shipping costs $4.99 and takes 3-5 business days.", "shipping", ["$4.99"]),
    ("When are you open?", "Our support team is available 9am-6pm, Monday to Friday.", "hours", ["9am-6pm"]),
    ("Can I pay with PayPal?", "Yes, we accept PayPal and all major credit cards.", "payment", ["PayPal"]),
]


def rows() -> list[dict]:
    out = []
    for i, (q, a, intent, facts) in enumerate(QA):
        msgs = [{"role": "system", "content": SYSTEM}, {"role": "user", "content": q}, {"role": "assistant", "content": a}]
        others = [f for j, (_, _, _, fs) in enumerate(QA) if j != i for f in fs]
        out.append({"id": f"t{i}", "messages": msgs, "source": "test", "meta": {"intent": intent, "required_facts": facts, "forbidden_facts": others}})
    return out


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A tiny model fine-tuned until it answers the four test questions word for word."""
    root = tmp_path_factory.mktemp("eval")
    w = synth.generate(0, conversations=150, test_conversations=1, heldout_conversations=1, kb_articles=10, preferences=1)
    texts = [t for r in w.conversations for t in row_texts(r, "conversations")] + [t for r in rows() for t in row_texts(r, "conversations")]
    tok = train_tokenizer(texts, 600)
    tok.save(root / "tok")
    torch.manual_seed(0)
    save_model_dir(root / "base", GPT(ModelConfig(vocab_size=640, n_layer=2, n_embd=64, n_head=4, block_size=160)), tokenizer_dir=root / "tok")
    write_dataset(root / "test", "conversations", rows(), created_by=BY)
    train = TrainConfig(steps=150, batch_size=2, eval_every=0, save_every=0, log_every=10)
    train.optim.lr, train.optim.warmup_steps, train.optim.weight_decay = 3e-3, 5, 0.0
    sft_main(SFTConfig(model=str(root / "base"), data=[str(root / "test")], out=str(root / "run"), val_fraction=0.0, train=train))
    return root


def test_eval_measures_a_model_that_knows_its_answers(trained):
    root = trained
    cf("eval", "--model", str(root / "run" / "model"), "--data", str(root / "test"), "--bias-questions", "2", "-q")
    res = json.loads((root / "run" / "eval.json").read_text())  # the default place: the model's run dir
    # traceable: the exact model and data
    assert res["model"]["hash"] == model_dir_hash(root / "run" / "model")
    assert res["data"]["content_hash"] == open_dataset(root / "test").content_hash
    # it learned the replies: near-perfect generation metrics and task success
    assert res["generation"]["bleu"] > 95 and res["generation"]["exact_match"] == 1.0 and res["generation"]["rougeL"] > 0.95
    assert res["task"]["success"] == 1.0 and res["task"]["stop_rate"] == 1.0
    assert res["perplexity"]["perplexity"] < 1.2 and 0 < res["perplexity"]["bits_per_byte"] < 0.2
    # every probe ran and reported per category
    assert set(res["safety"]["per_category"]) == set(probes.SAFETY)
    assert 0 <= res["safety"]["decline_rate"] <= 1
    assert set(res["bias"]["pairs"]["per_category"]) == set(probes.BIAS_PAIRS)
    assert set(res["bias"]["generation"]["per_category"]) == set(probes.GROUPS)
    assert res["speed"]["tokens_per_s"] > 0 and res["speed"]["replies"] > 0
    assert res["samples"][0]["reply"] == res["samples"][0]["reference"]


def test_perplexity_is_exp_of_the_masked_mean_loss(trained):
    root = trained
    cf("eval", "--model", str(root / "base"), "--data", str(root / "test"), "--metrics", "perplexity", "--out", str(root / "ppl.json"), "-q")
    got = json.loads((root / "ppl.json").read_text())["perplexity"]
    # independently: one conversation at a time, the loss on the tokens the training mask selects
    model, tok = load_model_dir(root / "base"), Tokenizer.load(root / "base")
    nats, n = 0.0, 0
    with torch.no_grad():
        for r in rows():
            ids, mask = tok.render(r["messages"])
            logits = model(torch.tensor([ids[:-1]]))[0]
            picked = [i for i in range(1, len(ids)) if mask[i]]
            nats += float(F.cross_entropy(logits[[i - 1 for i in picked]], torch.tensor([ids[i] for i in picked]), reduction="sum"))
            n += len(picked)
    assert got["tokens"] == n
    assert got["perplexity"] == pytest.approx(math.exp(nats / n), rel=1e-4)
    assert "generation" not in json.loads((root / "ppl.json").read_text())  # only what was asked


def test_bias_pairs_score_a_model_whose_preference_is_known(tmp_path):
    """A model trained only on one sentence of a pair prefers it: the score sees the preference."""
    texts = ["The nurse said she would be back in a minute."] * 50 + ["hello there"] * 5
    tok = train_tokenizer([*texts, "The nurse said he would be back in a minute."], 300)
    torch.manual_seed(0)
    model = GPT(ModelConfig(vocab_size=320, n_layer=1, n_embd=32, n_head=2, block_size=32))
    opt = torch.optim.AdamW(model.parameters(), lr=1e-2)
    ids = torch.tensor([[tok.bos_id, *tok.encode(texts[0])]])
    for _ in range(60):
        loss = F.cross_entropy(model(ids[:, :-1])[0], ids[0, 1:])
        opt.zero_grad()
        loss.backward()
        opt.step()
    engine = Engine(model.eval(), tok)
    assert pair_preference(engine, "The nurse said she would be back in a minute.", "The nurse said he would be back in a minute.") > 1.0
    assert pair_preference(engine, "The nurse said he would be back in a minute.", "The nurse said she would be back in a minute.") < -1.0


def test_report_card_of_one_run_and_a_comparison(trained, tmp_path):
    root = trained
    if not (root / "run" / "eval.json").is_file():
        cf("eval", "--model", str(root / "run" / "model"), "--data", str(root / "test"), "--bias-questions", "1", "-q")
    cf("report", str(root / "run"), "-q")
    page = (root / "run" / "report.html").read_text()
    for section in ("Training", "Lineage", "Curves", "Evaluation", "Safety probes", "Bias probes", "Config"):
        assert f">{section}" in page, section
    assert len(re.findall(r"<img alt='[^']*' src='data:image/png;base64,", page)) >= 1  # self-contained
    assert open_dataset(root / "test").content_hash in page  # lineage names the data by hash
    md = (root / "run" / "report.md").read_text()
    assert "## Evaluation" in md or "### Evaluation" in md
    for link in re.findall(r"\]\(([^)]+\.png)\)", md):
        assert (root / "run" / link).is_file()
    # two runs side by side
    cf("report", str(root / "run"), str(root / "run"), "--out", str(tmp_path / "cmp.html"), "-q")
    cmp_page = (tmp_path / "cmp.html").read_text()
    assert ">Comparison<" in cmp_page and cmp_page.count("data:image/png;base64,") >= 3


def test_human_rating_round_trip(trained, tmp_path):
    root = trained
    run_model, base_model = str(root / "run" / "model"), str(root / "base")
    cf("eval", "human-export", "--model", run_model, "--compare", base_model, "--data", str(root / "test"), "--items", "4", "--out", str(tmp_path / "rate"), "-q")
    key = json.loads((tmp_path / "rate.key.json").read_text())
    with open(tmp_path / "rate.csv", newline="") as f:
        sheet = list(csv.DictReader(f))
    assert len(sheet) == 4 and set(key["items"]) == {r["item"] for r in sheet}
    assert {v["a"] for v in key["items"].values()} <= {run_model, base_model}
    # a rater who always likes the fine-tuned model's answer (5) and dislikes the other (1)
    for r in sheet:
        item = key["items"][r["item"]]
        good = "a" if item["a"] == run_model else "b"
        r["rating_a"], r["rating_b"] = ("5", "1") if good == "a" else ("1", "5")
        r["preferred"] = good.upper()
    with open(tmp_path / "rated.csv", "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(sheet[0]))
        w.writeheader()
        w.writerows(sheet)
    into = tmp_path / "eval.json"
    into.write_text(json.dumps({"model": {"path": run_model}}))
    cf("eval", "human-import", "--ratings", str(tmp_path / "rated.csv"), "--key", str(tmp_path / "rate.key.json"), "--into", str(into), "-q")
    res = json.loads(into.read_text())
    assert res["model"] == {"path": run_model}  # the rest of the results kept
    human = res["human"]
    assert human["ratings"][run_model]["mean"] == 5.0 and human["ratings"][base_model]["mean"] == 1.0
    assert human["win_rate"]["rate"] == 1.0 and human["win_rate"]["n"] == 4
    # a bad rating names the file and line, and changes nothing
    sheet[2]["rating_a"] = "7"
    with open(tmp_path / "bad.csv", "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(sheet[0]))
        w.writeheader()
        w.writerows(sheet)
    r = cf("eval", "human-import", "--ratings", str(tmp_path / "bad.csv"), "--key", str(tmp_path / "rate.key.json"), "--into", str(into), check=False)
    start = 1 + sum(1 + row["conversation"].count("\n") for row in sheet[:2]) + 1  # the header, two records
    assert r.returncode == 2 and f"bad.csv:{start} ({sheet[2]['item']})" in r.stderr and "1-5" in r.stderr
    assert json.loads(into.read_text()) == res


def test_eval_errors_are_one_line(trained, tmp_path):
    root = trained
    r = cf("eval", "--model", str(root / "run" / "model"), "-q", check=False)
    assert r.returncode == 2 and "--data" in r.stderr and "Traceback" not in r.stderr
    r = cf("eval", "--model", str(root / "run" / "model"), "--data", str(root / "test"), "--metrics", "vibes", check=False)
    assert r.returncode == 2 and "vibes" in r.stderr
    r = cf("report", str(tmp_path / "nope"), check=False)
    assert r.returncode == 2 and "no such run dir" in r.stderr
