"""SFT: loss masks, truncation, packing without cross-attention, mixtures, resumable rows,
and a tiny run that learns its answers verbatim."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import torch

from chatforge.checkpoint import load_model_dir, save_model_dir
from chatforge.data import synth
from chatforge.data.dataset import write_dataset
from chatforge.data.steps import row_texts
from chatforge.engine import Engine, Sampling
from chatforge.errors import ConfigError
from chatforge.model import GPT, ModelConfig
from chatforge.tokenizer import Tokenizer, fit_turns, train_tokenizer
from chatforge.train.config import SFTConfig, TrainConfig
from chatforge.train.loop import Dist
from chatforge.train.sft import IGNORE, Conversations, SFTRows, collate, main, pack, select_mask, tokenize

BY = {"command": "test"}


@pytest.fixture(scope="module")
def tok() -> Tokenizer:
    w = synth.generate(0, conversations=200, test_conversations=1, heldout_conversations=1, kb_articles=20, preferences=1)
    return train_tokenizer([t for r in w.conversations for t in row_texts(r, "conversations")], 600)


def conv(i: int, *, system: bool = False, turns: int = 1) -> dict:
    msgs = [{"role": "system", "content": "You help Larkspur Goods customers."}] if system else []
    for t in range(turns):
        msgs += [
            {"role": "user", "content": f"Question {i}.{t}: where is order {1000 + i}?"},
            {"role": "assistant", "content": f"Order {1000 + i} ships on day {i % 7 + t}."},
        ]
    return {"id": f"c{i}", "messages": msgs, "source": "test", "meta": {}}


def encode(tok: Tokenizer, rows: list[dict], train_on: str = "assistant", src: int = 0) -> Conversations:
    items = []
    for r in rows:
        ids, mask = tok.render(r["messages"])
        items.append((ids, select_mask(mask, train_on), src))
    return Conversations.build(items)


def test_train_on_variants(tok):
    ids, mask = tok.render(conv(0, system=True, turns=2)["messages"])
    runs = [i for i in range(1, len(mask)) if mask[i] and not mask[i - 1]]
    assert len(runs) == 2  # two assistant turns
    assert select_mask(mask, "assistant") == mask
    last = select_mask(mask, "last-assistant")
    assert last == [0] * runs[1] + [1] * (len(mask) - runs[1])
    assert ids[-1] == tok.end_id and last[-1] == 1  # the stop token is trained
    assert select_mask(mask, "all") == [0] + [1] * (len(mask) - 1)


def test_truncation_keeps_the_system_prompt_and_the_latest_turns(tok):
    msgs = conv(1, system=True, turns=4)["messages"]
    contents = [tok.encode(m["content"]) for m in msgs]
    full = 1 + sum(len(c) + 2 for c in contents)
    assert fit_turns(msgs, contents, full, need_reply=True) == list(range(9))
    keep = fit_turns(msgs, contents, full - 1, need_reply=True)  # one token short: the oldest turn goes
    assert keep is not None
    assert keep[0] == 0 and msgs[keep[1]]["role"] == "user" and keep[-1] == 8
    assert keep == [0, 3, 4, 5, 6, 7, 8]
    last = 1 + len(contents[0]) + 2 + sum(len(c) + 2 for c in contents[7:])
    assert fit_turns(msgs, contents, last, need_reply=True) == [0, 7, 8]
    assert fit_turns(msgs, contents, last - 1, need_reply=True) is None  # not even one exchange fits


def test_packed_rows_train_only_on_assistant_turns_and_their_end(tok):
    rows = [conv(i, system=i == 1) for i in range(3)]
    convs = encode(tok, rows)
    packed = pack(range(3), convs, capacity=200)
    assert sorted(packed[0]) == [0, 1, 2] and len(packed) == 1
    b = collate([[0, 1, 2]], convs, length=199, pad_id=tok.pad_id, device=torch.device("cpu"))
    targets, docs, pos = b["targets"][0], b["doc_ids"][0], b["position_ids"][0]
    trained = targets[targets != IGNORE].tolist()
    want = []
    for r in rows:
        for m in r["messages"]:
            if m["role"] == "assistant":
                want += [*tok.encode(m["content"]), tok.end_id]
    assert trained == want  # assistant content and <|end|>, nothing else, in order
    starts = [0, convs.length(0), convs.length(0) + convs.length(1)]
    assert [int(pos[s]) for s in starts] == [0, 0, 0]  # positions restart per conversation
    assert docs[: starts[1]].unique().tolist() == [0] and docs[starts[1] : starts[2]].unique().tolist() == [1]
    assert b["input_ids"][0, starts[1]] == tok.bos_id and targets[starts[1] - 1] == IGNORE  # no target across a boundary
    assert (targets[sum(convs.length(i) for i in range(3)) :] == IGNORE).all()  # padding is never trained


def test_best_fit_packing_places_every_conversation_once_in_nearly_full_rows():
    rng = np.random.default_rng(0)
    lengths = rng.integers(20, 200, size=300)
    convs = Conversations.build([([1] * int(n), [1] * int(n), 0) for n in lengths])
    order = rng.permutation(300)
    rows = pack(order, convs, capacity=257)
    assert sorted(i for r in rows for i in r) == list(range(300))  # each exactly once
    assert max(sum(int(lengths[i]) for i in r) for r in rows) <= 257
    assert len(rows) <= np.ceil(lengths.sum() / 257 * 1.02)  # within 2% of the fewest rows possible
    in_order, used = 1, 0  # rows filled in order, a new one when the next conversation does not fit
    for i in order:
        in_order, used = (in_order + 1, int(lengths[i])) if used + lengths[i] > 257 else (in_order, used + int(lengths[i]))
    assert len(rows) < 0.85 * in_order  # far less padding


@pytest.mark.parametrize("attention", ["manual", "sdpa"])
def test_a_packed_row_computes_what_its_conversations_compute_alone(tok, attention):
    torch.manual_seed(0)
    model = GPT(ModelConfig(vocab_size=640, n_layer=2, n_embd=32, n_head=4, n_kv_head=2, block_size=256, attention=attention)).eval()
    rows = [conv(i, system=i == 0, turns=1 + i % 2) for i in range(3)]
    convs = encode(tok, rows)
    total = sum(convs.length(i) for i in range(3))
    assert total < 250
    b = collate([[0, 1, 2]], convs, length=total + 4, pad_id=tok.pad_id, device=torch.device("cpu"))
    with torch.no_grad():
        packed = model(b["input_ids"], position_ids=b["position_ids"], doc_ids=b["doc_ids"])[0]
        at = 0
        for i in range(3):
            ids = torch.from_numpy(convs.get(i)[0].astype(np.int64))[None]
            n = ids.shape[1]
            torch.testing.assert_close(packed[at : at + n], model(ids)[0], atol=2e-5, rtol=1e-5)
            at += n


def test_mixture_weights_set_each_datasets_share_of_an_epoch(tok):
    a = [(tok.render(conv(i)["messages"])[0], tok.render(conv(i)["messages"])[1], 0) for i in range(10)]
    b = [(tok.render(conv(i)["messages"])[0], tok.render(conv(i)["messages"])[1], 1) for i in range(10, 20)]
    convs = Conversations.build(a + b)
    rows = SFTRows(convs, [3.0, 1.0], length=64, packing=False, seed=0, pad_id=tok.pad_id, dist=Dist())
    epoch = [r[0] for r in rows.epoch_rows]
    assert len(epoch) == 20
    assert sum(convs.source[i] == 0 for i in epoch) == 15  # upsampled: every one of A once, then 5 more
    assert set(range(10)) <= set(epoch)
    assert sum(convs.source[i] == 1 for i in epoch) == 5  # sampled without replacement
    assert len({i for i in epoch if convs.source[i] == 1}) == 5


def test_rows_resume_where_they_stopped(tok):
    convs = encode(tok, [conv(i) for i in range(7)])
    make = lambda: SFTRows(convs, [1.0], length=48, packing=True, seed=3, pad_id=tok.pad_id, dist=Dist())  # noqa: E731
    straight = make()
    batches = [straight.next_batch(2) for _ in range(9)]  # several epochs
    resumed = make()
    for _ in range(4):
        resumed.next_batch(2)
    again = make()
    again.load_state_dict(resumed.state_dict())
    for want in batches[4:]:
        got = again.next_batch(2)
        assert all(torch.equal(got[k], want[k]) for k in want)


def test_a_tiny_sft_run_learns_its_answers_verbatim_and_to_stop(tok, tmp_path):
    tok.save(tmp_path / "tok")
    torch.manual_seed(0)
    base = GPT(ModelConfig(vocab_size=640, n_layer=2, n_embd=64, n_head=4, block_size=96))
    save_model_dir(tmp_path / "base", base, tokenizer_dir=tmp_path / "tok")
    rows = [conv(i, system=i % 2 == 0) for i in range(4)]
    write_dataset(tmp_path / "data", "conversations", rows, created_by=BY)
    train = TrainConfig(steps=120, batch_size=2, eval_every=0, save_every=0, log_every=20)
    train.optim.lr, train.optim.warmup_steps, train.optim.weight_decay = 3e-3, 5, 0.0
    cfg = SFTConfig(model=str(tmp_path / "base"), data=[str(tmp_path / "data")], out=str(tmp_path / "run"), val_fraction=0.0, train=train)
    summary = main(cfg)
    assert summary["final_loss"] < 0.05
    engine = Engine(load_model_dir(tmp_path / "run" / "model"), Tokenizer.load(tmp_path / "run" / "model"))
    for r in rows:  # greedy replies are the trained answers, word for word, and then stop
        prompt = r["messages"][:-1]
        assert "".join(engine.chat(prompt, Sampling(temperature=0, max_tokens=40))) == r["messages"][-1]["content"]
    assert (tmp_path / "run" / "summary.json").is_file() and (tmp_path / "run" / "curves.png").is_file()


def test_tokenize_refuses_other_kinds_and_counts_what_it_leaves_out(tok, tmp_path):
    pair = {"id": "p", "prompt": [{"role": "user", "content": "hi"}], "chosen": "Hello!", "rejected": "Go away.", "source": "s", "meta": {}}
    write_dataset(tmp_path / "p", "preferences", [pair], created_by=BY)
    with pytest.raises(Exception, match="holds preferences; sft trains on conversation datasets"):
        tokenize([str(tmp_path / "p")], tok, limit=64, train_on="assistant", val_fraction=0, split=False)
    rows = [conv(0), conv(1, turns=6), {"id": "u", "messages": [{"role": "user", "content": "hi"}], "source": "s", "meta": {}}]
    write_dataset(tmp_path / "c", "conversations", rows, created_by=BY)
    one = 1 + sum(len(tok.encode(m["content"])) + 2 for m in conv(1)["messages"])
    train, held, counts = tokenize([str(tmp_path / "c")], tok, limit=one + 2, train_on="assistant", val_fraction=0, split=False)
    assert counts == {"conversations": 3, "truncated": 1, "too_long": 0, "no_assistant": 1, "documents": 0}
    assert len(train) == 2 and len(held) == 0
    assert all(train.length(i) <= one + 2 for i in range(len(train)))


def test_held_out_share_is_stable(tok, tmp_path):
    write_dataset(tmp_path / "c", "conversations", [conv(i) for i in range(200)], created_by=BY)
    train, held, _ = tokenize([str(tmp_path / "c")], tok, limit=128, train_on="assistant", val_fraction=0.2, split=True)
    assert len(train) + len(held) == 200 and 20 <= len(held) <= 60
    again = tokenize([str(tmp_path / "c")], tok, limit=128, train_on="assistant", val_fraction=0.2, split=True)[1]
    assert np.array_equal(held.ids, again.ids)


def test_freeze_layers_keeps_the_lower_blocks_and_skips_their_backward(tok, tmp_path):
    tok.save(tmp_path / "tok")
    torch.manual_seed(0)
    base = GPT(ModelConfig(vocab_size=640, n_layer=3, n_embd=32, n_head=4, block_size=96))
    save_model_dir(tmp_path / "base", base, tokenizer_dir=tmp_path / "tok")
    write_dataset(tmp_path / "data", "conversations", [conv(i) for i in range(6)], created_by=BY)
    train = TrainConfig(steps=6, batch_size=2, eval_every=0, save_every=0, log_every=3)
    train.optim.lr = 1e-2
    cfg = SFTConfig(model=str(tmp_path / "base"), data=[str(tmp_path / "data")], out=str(tmp_path / "run"), val_fraction=0.0, train=train, freeze_layers=2)
    main(cfg)
    before = base.state_dict()
    after = load_model_dir(tmp_path / "run" / "model").state_dict()
    for name, w in before.items():  # embeddings (and the tied head) and blocks 0-1: bit-identical; block 2 trained
        frozen = name.startswith(("model.embed_tokens", "lm_head", "model.layers.0.", "model.layers.1."))
        assert torch.equal(after[name], w) == frozen, name
    # No gradient flows below the first trained block: block 1's backward never runs.
    from chatforge.train.sft import freeze_lower

    model = load_model_dir(tmp_path / "base")
    assert 0 < freeze_lower(model, 2) < 0.5
    tracked = {}  # whether each block's output is in autograd's graph
    for i, block in enumerate(model.model.layers):
        block.register_forward_hook(lambda mod, args, out, i=i: tracked.__setitem__(i, out.requires_grad))
    model(torch.randint(0, 600, (1, 20))).sum().backward()
    assert tracked == {0: False, 1: False, 2: True}
    assert all(p.grad is None for p in model.model.layers[1].parameters())
    assert all(p.grad is not None for p in model.model.layers[2].parameters())
    with pytest.raises(ConfigError, match="at least one"):
        main(SFTConfig(model=str(tmp_path / "base"), data=[str(tmp_path / "data")], out=str(tmp_path / "r2"), train=train, freeze_layers=3))


def test_text_documents_train_on_every_token_in_overlapping_pieces(tok, tmp_path):
    texts = ["The Haven Pillow sells for $48.00.", " ".join(f"word{i}" for i in range(60))]
    write_dataset(tmp_path / "kb", "text", [{"id": f"d{i}", "text": t, "source": "kb", "meta": {}} for i, t in enumerate(texts)], created_by=BY)
    write_dataset(tmp_path / "c", "conversations", [conv(0)], created_by=BY)
    limit = 32
    train, held, counts = tokenize([str(tmp_path / "c"), str(tmp_path / "kb")], tok, limit=limit, train_on="assistant", val_fraction=0, split=False)
    assert counts["documents"] == 2 and counts["conversations"] == 1 and len(held) == 0
    docs = [[tok.bos_id, *tok.encode(t), tok.eos_id] for t in texts]
    assert len(docs[0]) <= limit < len(docs[1])
    pieces = [train.get(i) for i in range(len(train)) if train.source[i] == 1]
    assert all(len(ids) <= limit and mask.all() for ids, mask in pieces)  # every token trained
    assert pieces[0][0].tolist() == docs[0]
    # the long document: consecutive pieces share one token, so each token is a target once
    long = [ids.tolist() for ids, _ in pieces[1:]]
    assert long[0][0] == tok.bos_id and long[-1][-1] == tok.eos_id
    assert [t for p in long for t in p[1:]] == docs[1][1:] and all(a[-1] == b[0] for a, b in itertools.pairwise(long))


def test_sft_learns_a_fact_from_a_text_document_mixed_in(tok, tmp_path):
    """A knowledge-base page in the mixture: the model learns to continue it word for word."""
    tok.save(tmp_path / "tok")
    torch.manual_seed(0)
    save_model_dir(tmp_path / "base", GPT(ModelConfig(vocab_size=640, n_layer=2, n_embd=64, n_head=4, block_size=96)), tokenizer_dir=tmp_path / "tok")
    page = "Returns: you have 30 days from delivery to return an item."
    write_dataset(tmp_path / "kb", "text", [{"id": "kb1", "text": page, "source": "kb", "meta": {}}], created_by=BY)
    write_dataset(tmp_path / "c", "conversations", [conv(i) for i in range(3)], created_by=BY)
    train = TrainConfig(steps=100, batch_size=2, eval_every=0, save_every=0, log_every=20)
    train.optim.lr, train.optim.warmup_steps, train.optim.weight_decay = 3e-3, 5, 0.0
    data = [str(tmp_path / "c") + ":0.5", str(tmp_path / "kb") + ":0.5"]
    summary = main(SFTConfig(model=str(tmp_path / "base"), data=data, out=str(tmp_path / "run"), val_fraction=0.0, packing=False, train=train))
    assert summary["data"]["documents"] == 1 and summary["final_loss"] < 0.1
    engine = Engine(load_model_dir(tmp_path / "run" / "model"), Tokenizer.load(tmp_path / "run" / "model"))
    head = [tok.bos_id, *tok.encode("Returns: you have")]
    got = tok.decode(list(engine.generate(head, Sampling(temperature=0, max_tokens=12))), skip_special=True)
    assert got.startswith(page[len("Returns: you have") :])
