"""How good is the quickstart's model? Task success on the support world's test splits.

    python benchmarks/quickstart_quality.py                    # runs `chatforge quickstart` first (~5 min)
    python benchmarks/quickstart_quality.py --workdir quickstart --no-run   # score an existing quickstart
    python benchmarks/quickstart_quality.py -- --sft.steps 600              # options for the quickstart

For each model the quickstart trains after pretraining (SFT, then DPO) it answers, greedily,
every conversation of the `test` split (phrasings the training generator uses) and of the
`test_heldout` split (synonyms, phrasings and context sentences training never sees), and
prints: the share answered with every required fact and no fact of another topic
(targets: >= 90% on test, >= 80% held out), the decline rate on out-of-scope requests,
the false-decline rate on the others, the share of replies that end with the
end-of-turn token (target >= 99%), per-intent success, and the quickstart's wall time
(target < 10 minutes). Results go to benchmarks/results/quickstart_quality.json.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

RESULTS = Path(__file__).parent / "results" / "quickstart_quality.json"


def evaluate(model_dir: Path, dataset_dir: Path, max_tokens: int) -> tuple[dict, list[dict]]:
    from chatforge.checkpoint import load_model_dir
    from chatforge.data.dataset import open_dataset
    from chatforge.engine import Engine, Sampling
    from chatforge.eval.support import score_reply, summarize
    from chatforge.tokenizer import Tokenizer

    engine = Engine(load_model_dir(model_dir), Tokenizer.load(model_dir))
    greedy = Sampling(temperature=0, max_tokens=max_tokens)
    results = []
    for row in open_dataset(dataset_dir):
        prompt = row["messages"][:-1]
        try:
            ids = engine.chat_prompt(prompt, greedy)
        except ValueError:  # the last message alone does not fit the context: a failure, as in `chatforge eval`
            results.append({"id": row["id"], "intent": row["meta"]["intent"], "reply": "", "stopped": False, **score_reply("", row["meta"])})
            continue
        out = list(engine.generate(ids, greedy))
        stopped = len(out) < min(max_tokens, engine.model.cfg.block_size - len(ids))  # ended at the end-of-turn token
        reply = engine.tok.decode(out, skip_special=True)
        results.append({"id": row["id"], "intent": row["meta"]["intent"], "reply": reply, "stopped": stopped, **score_reply(reply, row["meta"])})
    return summarize(results), results


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--workdir", default="", help="quickstart dir (default: a new one in a temp dir)")
    ap.add_argument("--no-run", action="store_true", help="score an existing quickstart in --workdir")
    ap.add_argument("--max-tokens", type=int, default=160)
    ap.add_argument("quickstart_args", nargs=argparse.REMAINDER, help="after --: options for `chatforge quickstart` (e.g. -- --sft.steps 600)")
    args = ap.parse_args()
    extra = [a for a in args.quickstart_args if a != "--"]
    work = Path(args.workdir or Path(__import__("tempfile").mkdtemp(prefix="chatforge-quality-")) / "qs")
    wall = None
    if not args.no_run:
        t0 = time.perf_counter()
        subprocess.run([sys.executable, "-m", "chatforge", "quickstart", "--workdir", str(work), "-q", *extra], check=True)
        wall = time.perf_counter() - t0
        print(f"quickstart: {wall / 60:.1f} min (target < 10)")
    report: dict = {"quickstart_seconds": wall, "quickstart_args": extra, "models": {}}
    for stage in ("sft", "dpo"):
        model = work / "runs" / stage / "model"
        if not model.is_dir():
            continue
        report["models"][stage] = {}
        for split, target in (("test", 0.90), ("test_heldout", 0.80)):
            summary, results = evaluate(model, work / "data" / "world" / split, args.max_tokens)
            summary["target"] = target
            summary["failures"] = [r for r in results if not r["ok"]][:10]
            report["models"][stage][split] = summary
            dec = summary["decline_rate"]
            print(
                f"{stage:4} {split:13} success {summary['success']:.3f} (target {target:.2f})  stop {summary['stop_rate']:.3f}  "
                f"declines {'-' if dec is None else f'{dec:.2f}'}  false declines {summary['false_decline_rate']:.3f}  "
                f"n={summary['conversations']}"
            )
            worst = sorted(summary["per_intent"].items(), key=lambda kv: kv[1])[:4]
            print("      weakest intents: " + ", ".join(f"{k} {v:.2f}" for k, v in worst))
    RESULTS.parent.mkdir(exist_ok=True)
    RESULTS.write_text(json.dumps(report, indent=2) + "\n")
    print(f"-> {RESULTS}")


if __name__ == "__main__":
    main()
