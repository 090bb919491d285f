"""Ingest throughput and peak memory on a large JSONL file, side by side with HF `datasets`.

    python benchmarks/ingest_memory.py [--mb 200]

Writes a synthetic OpenAI-format JSONL file of about `--mb` megabytes, then runs, each
in a fresh process so peak RSS is its own:

  ours       `chatforge data ingest FILE --out DIR` (validates every row, streams)
  reference  `datasets.load_dataset("json", data_files=FILE)` (Arrow conversion, no validation)

and prints time, MB/s and peak RSS of both plus the ratios. The issue's bar: ingesting
a 200 MB file keeps memory under 500 MB. Results go to benchmarks/results/ingest_memory.json.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import subprocess
import sys
import tempfile
from pathlib import Path

RESULTS = Path(__file__).parent / "results"

WORDS = ["order", "refund", "return", "shipping", "package", "tracking", "delivered", "address", "card", "payment", "discount", "warranty", "please", "thanks", "hello", "help", "week", "days", "store", "item", "size", "color", "exchange", "cancel", "status", "account", "password"]


def make_jsonl(path: Path, megabytes: float, seed: int = 0) -> int:
    """Write conversations until the file reaches `megabytes`; returns the row count."""
    rng = random.Random(seed)
    target = int(megabytes * 1024 * 1024)
    n = 0
    with open(path, "w", encoding="utf-8") as f:
        size = 0
        while size < target:
            turns = rng.randint(1, 4)
            msgs = []
            for _ in range(turns):
                msgs.append({"role": "user", "content": " ".join(rng.choices(WORDS, k=rng.randint(5, 40))) + " ✓?"})
                msgs.append({"role": "assistant", "content": " ".join(rng.choices(WORDS, k=rng.randint(10, 80))) + "."})
            line = json.dumps({"messages": msgs}, ensure_ascii=False) + "\n"
            f.write(line)
            size += len(line.encode("utf-8"))
            n += 1
    return n


CHILD = """
import resource, sys, time, json
t = time.perf_counter()
{body}
dt = time.perf_counter() - t
print(json.dumps({{"seconds": dt, "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, "rows": rows}}))
"""

OURS = """
from chatforge.cli import run
m = run(["data", "ingest", sys.argv[1], "--out", sys.argv[2], "--quiet"])
rows = m["num_rows"]
"""

REFERENCE = """
import os
os.environ["HF_DATASETS_CACHE"] = sys.argv[2]
import datasets
datasets.disable_progress_bars()
ds = datasets.load_dataset("json", data_files=sys.argv[1], split="train", cache_dir=sys.argv[2])
rows = ds.num_rows
"""


def run_child(body: str, *args: str) -> dict:
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1", "HF_HUB_DISABLE_TELEMETRY": "1"}
    out = subprocess.run([sys.executable, "-c", CHILD.format(body=body), *args], capture_output=True, text=True, env=env)
    if out.returncode != 0:
        raise SystemExit(out.stderr)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--mb", type=float, default=200.0, help="size of the input file in MB")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="chatforge-bench-") as tmp:
        src = Path(tmp) / "logs.jsonl"
        rows = make_jsonl(src, args.mb)
        mb = src.stat().st_size / 1e6
        print(f"input: {src.stat().st_size / 2**20:.1f} MiB, {rows:,} conversations")
        ours = run_child(OURS, str(src), str(Path(tmp) / "ours"))
        ref = run_child(REFERENCE, str(src), str(Path(tmp) / "hf-cache"))
    assert ours["rows"] == ref["rows"] == rows, (ours, ref, rows)
    result = {
        "input_mib": round(mb * 1e6 / 2**20, 1),
        "rows": rows,
        "ours": {**ours, "mb_per_s": mb / ours["seconds"]},
        "reference_hf_datasets": {**ref, "mb_per_s": mb / ref["seconds"]},
        "speed_ratio_ours_vs_ref": ref["seconds"] / ours["seconds"],
        "memory_ratio_ours_vs_ref": ours["peak_rss_mb"] / ref["peak_rss_mb"],
        "memory_target_mb": 500,
        "memory_ok": ours["peak_rss_mb"] < 500,
        "machine": {"python": platform.python_version(), "cpus": os.cpu_count()},
    }
    print(f"{'':12} {'seconds':>9} {'MB/s':>8} {'peak RSS MB':>12}")
    for name, r in (("ours", result["ours"]), ("hf datasets", result["reference_hf_datasets"])):
        print(f"{name:12} {r['seconds']:9.1f} {r['mb_per_s']:8.1f} {r['peak_rss_mb']:12.0f}")
    print(
        f"speed ours/ref: {result['speed_ratio_ours_vs_ref']:.2f}x   "
        f"memory ours/ref: {result['memory_ratio_ours_vs_ref']:.2f}x   "
        f"memory under 500 MB: {result['memory_ok']}"
    )
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "ingest_memory.json").write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
