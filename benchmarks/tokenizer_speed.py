"""Tokenizer training and encoding speed: chatforge vs Hugging Face `tokenizers`, one run.

    python benchmarks/tokenizer_speed.py [--mb 50] [--vocab 8192]

Builds `--mb` MB of support-world text (knowledge base and conversation turns of many
seeds), then measures side by side:

  train   `tokenizers` itself (BpeTrainer, same pre-tokenizer and settings, texts fed in
          batches) vs `chatforge.tokenizer.train_tokenizer` vs the whole
          `chatforge tokenizer train` command (reading a Parquet dataset, progress bar,
          saving) on the same text;
  encode  `tokenizers` `encode_batch` vs chatforge's tiktoken-backed `encode_batch`
          (same ids: checked on every text), MB/s and the ratio.

Results go to benchmarks/results/tokenizer_speed.json.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import tokenizers
from tokenizers import Regex, decoders, models, pre_tokenizers, trainers

from chatforge import tokenizer as T
from chatforge.data.dataset import DatasetWriter
from chatforge.data.steps import row_texts
from chatforge.data.synth import generate

RESULTS = Path(__file__).parent / "results" / "tokenizer_speed.json"


def corpus(megabytes: float) -> list[str]:
    texts: list[str] = []
    size, seed = 0, 0
    while size < megabytes * 1e6:
        world = generate(seed, conversations=3000)
        for row in world.kb:
            texts.append(row["text"])
        for row in world.conversations:
            texts.extend(row_texts(row, "conversations"))
        size = sum(len(t.encode()) for t in texts)
        seed += 1
    return texts


def hf_reference(texts: list[str], vocab: int) -> tokenizers.Tokenizer:
    hf = tokenizers.Tokenizer(models.BPE())
    hf.pre_tokenizer = pre_tokenizers.Sequence(
        [pre_tokenizers.Split(Regex(T.SPLIT_PATTERN), behavior="isolated"), pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False)]
    )
    hf.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=vocab, min_frequency=2, special_tokens=list(T.SPECIAL_TOKENS),
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False)
    hf.train_from_iterator((texts[i : i + 1000] for i in range(0, len(texts), 1000)), trainer=trainer)
    return hf


def timed(fn):
    t0 = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - t0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--mb", type=float, default=50.0)
    ap.add_argument("--vocab", type=int, default=8192)
    args = ap.parse_args()
    texts = corpus(args.mb)
    mb = sum(len(t.encode()) for t in texts) / 1e6
    print(f"{mb:.1f} MB of text, {len(texts):,} texts, vocabulary {args.vocab}")

    hf, t_hf = timed(lambda: hf_reference(texts, args.vocab))
    ours, t_ours = timed(lambda: T.train_tokenizer(texts, args.vocab))
    with tempfile.TemporaryDirectory() as tmp:
        with DatasetWriter(Path(tmp) / "text", "text", created_by={"command": "benchmark"}) as w:
            for i, t in enumerate(texts):
                w.write({"id": str(i), "text": t, "source": "bench", "meta": {}})
        cfg = T.TokenizerTrainConfig(data=[str(Path(tmp) / "text")], out=str(Path(tmp) / "tok"), vocab_size=args.vocab)
        _, t_cmd = timed(lambda: T.main(cfg))
    print(f"train: tokenizers {t_hf:.1f}s, train_tokenizer {t_ours:.1f}s ({t_ours / t_hf:.2f}x), "
          f"`chatforge tokenizer train` {t_cmd:.1f}s ({t_cmd / t_hf:.2f}x)")

    sample = texts[: max(1, len(texts) // 5)]
    smb = sum(len(t.encode()) for t in sample) / 1e6
    hf_ids, e_hf = timed(lambda: [e.ids for e in ours.hf.encode_batch(sample, add_special_tokens=False)])
    tk_ids, e_tk = timed(lambda: ours.encode_batch(sample))
    same = hf_ids == tk_ids
    print(f"encode {smb:.1f} MB: tokenizers {smb / e_hf:.1f} MB/s, chatforge (tiktoken) {smb / e_tk:.1f} MB/s, "
          f"ratio {e_hf / e_tk:.2f}x, same ids: {same}")

    RESULTS.parent.mkdir(exist_ok=True)
    RESULTS.write_text(json.dumps({
        "text_mb": round(mb, 1), "vocab_size": args.vocab,
        "train_seconds": {"tokenizers": round(t_hf, 2), "train_tokenizer": round(t_ours, 2), "command": round(t_cmd, 2)},
        "train_ratio_vs_tokenizers": {"train_tokenizer": round(t_ours / t_hf, 2), "command": round(t_cmd / t_hf, 2)},
        "encode_mb_per_s": {"tokenizers": round(smb / e_hf, 2), "tiktoken": round(smb / e_tk, 2)},
        "encode_speedup": round(e_hf / e_tk, 2), "same_ids": same,
        "same_vocab_as_reference": hf.get_vocab() == ours.hf.get_vocab(),
    }, indent=2) + "\n")
    print(f"-> {RESULTS}")


if __name__ == "__main__":
    main()
