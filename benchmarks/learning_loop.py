"""The learning loop measured: does a model get better from its users' feedback?

    python benchmarks/learning_loop.py --workdir quickstart --users 300      # after `make quickstart`
    python benchmarks/learning_loop.py --users 300                           # runs the quickstart first

Issue 10, item 7. Starting from the quickstart's chat model (runs/dpo/model), a copy of
its workdir's data and a fresh registry and feedback store under --out:

1. `--users` simulated users bring support conversations the model never trained or was
   tested on to the served model (chatforge serve in this process, 127.0.0.1), and rate
   the answers against the facts a right answer states, correcting wrong ones;
2. `chatforge learn` fine-tunes on that feedback behind the eval gate;
3. v1 and v2 answer a *fresh* set of users' conversations (never rated, never trained
   on): task success overall and per intent, before and after, and the gate's figures on
   the fixed test split.

Results go to benchmarks/results/learning_loop.json.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

from chatforge.feedback.loop import LoopConfig, run_loop
from chatforge.ui import UI

RESULTS = Path(__file__).parent / "results" / "learning_loop.json"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--workdir", default="", help="a finished quickstart workdir (default: run `chatforge quickstart` into --out/quickstart)")
    ap.add_argument("--out", default="/tmp/chatforge-learning-loop")
    ap.add_argument("--users", type=int, default=300)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    out = Path(args.out)
    if out.exists():
        shutil.rmtree(out)
    out.mkdir(parents=True)
    work = Path(args.workdir) if args.workdir else out / "quickstart"
    if not args.workdir:
        subprocess.run([sys.executable, "-m", "chatforge", "quickstart", "--workdir", str(work), "--no-mlflow", "-q"], check=True)
    t0 = time.time()
    cfg = LoopConfig(
        work=str(out),
        model=str(work / "runs" / "dpo" / "model"),
        test_data=str(work / "data" / "world" / "test"),
        train_data=[str(work / "data" / "splits" / "train")],
        users=args.users,
        seed=args.seed,
    )
    result = run_loop(cfg, UI())
    result["seconds"] = round(time.time() - t0, 1)
    result["cpus"] = os.cpu_count()
    fresh = result.get("fresh_users")
    if fresh:
        (_, before), (_, after) = fresh.items()  # the overall figures were printed by the loop
        for intent in sorted(before["per_intent"]):
            b, a = before["per_intent"][intent], after["per_intent"].get(intent, 0.0)
            print(f"  {intent:24s} {b:.2f} -> {a:.2f}  {'+' if a > b else ' ' if a == b else '-'}")
    for c in result["learn"].get("gate") or []:
        print(f"gate {c['check']}: base {c['base']:.4f} candidate {c['candidate']:.4f} ({c['limit']}) {'pass' if c['passed'] else 'FAIL'}")
    print(f"decision: {result['learn']['decision']} {result['learn'].get('version') or result['learn'].get('reason') or ''}")
    RESULTS.parent.mkdir(exist_ok=True)
    RESULTS.write_text(json.dumps(result, indent=2) + "\n")
    print(f"-> {RESULTS}")


if __name__ == "__main__":
    main()
