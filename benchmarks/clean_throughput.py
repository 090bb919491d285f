"""Throughput and peak memory of `chatforge data clean`, side by side with HF `datasets.map`.

    python benchmarks/clean_throughput.py [--mb 100] [--workers 2]

Builds raw support logs from the built-in world (all its noise: PII, HTML, duplicates,
other languages, insults) until the JSONL file reaches `--mb` megabytes, ingests them,
then measures, each in a fresh process tree (peak RSS summed over the main process and
its workers, sampled every 50 ms):

  ours full        `chatforge data clean` with every step, dedup included
  ours per-row     the same without dedup (the part any engine can run)
  datasets.map     the same per-row chain through HF `datasets.map(num_proc=workers)`:
                   a well-known engine running our step functions, as a reference for
                   the runner's own overhead

at the full size and at half of it, so the two peak-memory figures show whether memory
grows with the input. Sizes are of the JSONL logs (what a user has); the text in
the messages is ~65% of that. Results go to benchmarks/results/clean_throughput.json.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

RESULTS = Path(__file__).parent / "results"


def make_logs(path: Path, megabytes: float) -> tuple[int, float]:
    """Support-world conversations as OpenAI JSONL until the file reaches `megabytes`."""
    from chatforge.data.synth import generate

    target = int(megabytes * 1e6)
    size, rows, text_chars, seed = 0, 0, 0, 0
    with open(path, "w", encoding="utf-8") as f:
        while size < target:
            world = generate(seed, conversations=20_000, test_conversations=1, heldout_conversations=1, kb_articles=1, preferences=1)
            for row in world.conversations:
                line = json.dumps({"id": f"s{seed}-{row['id']}", "messages": row["messages"]}, ensure_ascii=False) + "\n"
                f.write(line)
                size += len(line.encode("utf-8"))
                text_chars += sum(len(m["content"]) for m in row["messages"])
                rows += 1
                if size >= target:
                    break
            seed += 1
    return rows, text_chars / 1e6


def _tree_rss_kb(pid: int) -> int:
    """RSS of a process and all its descendants, from /proc (kB)."""
    total, todo = 0, [pid]
    while todo:
        p = todo.pop()
        try:
            with open(f"/proc/{p}/status") as f:
                for line in f:
                    if line.startswith("VmRSS:"):
                        total += int(line.split()[1])
            for task in os.listdir(f"/proc/{p}/task"):
                with open(f"/proc/{p}/task/{task}/children") as f:
                    todo += [int(c) for c in f.read().split()]
        except (FileNotFoundError, ProcessLookupError, PermissionError):
            continue
    return total


def run_measured(cmd: list[str]) -> dict:
    """Run a command; wall seconds and peak RSS of its process tree."""
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    peak = 0
    done = threading.Event()

    def sample() -> None:
        nonlocal peak
        while not done.is_set():
            peak = max(peak, _tree_rss_kb(proc.pid))
            time.sleep(0.05)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    out, err = proc.communicate()
    done.set()
    sampler.join()
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} failed:\n{err}")
    return {"seconds": time.perf_counter() - t0, "peak_rss_mb": peak / 1024, "stdout": out.strip()}


HF_MAP = """
import os, sys, json
os.environ["HF_DATASETS_CACHE"] = sys.argv[2]
import datasets
datasets.disable_progress_bars()
from chatforge.data.clean import CleanConfig, build_steps, clean_rows
STEPS = None
def chain(batch):
    global STEPS
    if STEPS is None:
        STEPS = build_steps(CleanConfig(dataset="-", out="-"))
    rows = [dict(zip(batch, vals)) for vals in zip(*batch.values())]
    for r in rows:
        r["meta"] = json.loads(r["meta"])
    kept = [res.row for res in clean_rows(rows, "conversations", STEPS) if res.row is not None]
    out = {k: [r[k] for r in kept] for k in batch}
    out["meta"] = [json.dumps(m) for m in out["meta"]]
    return out
ds = datasets.load_dataset("parquet", data_files=sys.argv[1] + "/data/*.parquet", split="train", cache_dir=sys.argv[2])
out = ds.map(chain, batched=True, batch_size=1000, num_proc=int(sys.argv[3]))
print(out.num_rows)
"""


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--mb", type=float, default=100.0, help="size of the raw logs (JSONL) in MB")
    ap.add_argument("--workers", type=int, default=2)
    args = ap.parse_args()
    exe = [sys.executable, "-m", "chatforge"]
    env_ok = {"HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1", "HF_HUB_DISABLE_TELEMETRY": "1"}
    os.environ.update(env_ok)
    results: dict = {"machine": {"python": platform.python_version(), "cpus": os.cpu_count()}, "workers": args.workers, "runs": []}
    with tempfile.TemporaryDirectory(prefix="chatforge-clean-bench-") as tmp:
        t = Path(tmp)
        for mb in (args.mb / 2, args.mb):
            logs = t / f"logs-{mb:g}.jsonl"
            rows, text_mb = make_logs(logs, mb)
            size_mb = logs.stat().st_size / 1e6
            raw = t / f"raw-{mb:g}"
            subprocess.run([*exe, "data", "ingest", str(logs), "--out", str(raw), "-q"], check=True)
            full = run_measured([*exe, "data", "clean", str(raw), "--out", str(t / f"full-{mb:g}"), "--workers", str(args.workers), "-q"])
            per_row = run_measured(
                [*exe, "data", "clean", str(raw), "--out", str(t / f"rows-{mb:g}"), "--workers", str(args.workers), "-q",
                 "--no-dedup.exact", "--no-dedup.near"]
            )
            hf = run_measured([sys.executable, "-c", HF_MAP, str(raw), str(t / f"hf-{mb:g}"), str(args.workers)])
            kept_ours = json.loads((t / f"rows-{mb:g}" / "manifest.json").read_text())["num_rows"]
            assert int(hf["stdout"].splitlines()[-1]) == kept_ours, "the reference must keep the same rows"
            run = {
                "input_mb_jsonl": round(size_mb, 1),
                "input_mb_text": round(text_mb, 1),
                "rows": rows,
                "ours_full": {k: full[k] for k in ("seconds", "peak_rss_mb")},
                "ours_per_row": {k: per_row[k] for k in ("seconds", "peak_rss_mb")},
                "hf_datasets_map": {k: hf[k] for k in ("seconds", "peak_rss_mb")},
            }
            for key in ("ours_full", "ours_per_row", "hf_datasets_map"):
                run[key]["mb_per_s"] = size_mb / run[key]["seconds"]
                run[key]["rows_per_s"] = rows / run[key]["seconds"]
            run["speed_ratio_ours_per_row_vs_hf"] = hf["seconds"] / per_row["seconds"]
            results["runs"].append(run)
            print(f"\ninput {size_mb:.1f} MB JSONL ({text_mb:.1f} MB of message text), {rows:,} conversations, {args.workers} workers")
            print(f"{'':18} {'seconds':>8} {'MB/s':>7} {'rows/s':>8} {'peak RSS MB':>12}")
            for name, key in (("ours, full chain", "ours_full"), ("ours, no dedup", "ours_per_row"), ("datasets.map", "hf_datasets_map")):
                r = run[key]
                print(f"{name:18} {r['seconds']:8.1f} {r['mb_per_s']:7.2f} {r['rows_per_s']:8.0f} {r['peak_rss_mb']:12.0f}")
            print(f"ours (no dedup) / datasets.map speed: {run['speed_ratio_ours_per_row_vs_hf']:.2f}x")
    a, b = results["runs"]
    results["memory_growth_full"] = b["ours_full"]["peak_rss_mb"] / a["ours_full"]["peak_rss_mb"]
    results["target_mb_per_s"] = 10.0
    print(f"\npeak memory at {b['input_mb_jsonl']} MB vs {a['input_mb_jsonl']} MB input: x{results['memory_growth_full']:.2f}")
    verdict = "meets" if b["ours_full"]["mb_per_s"] >= results["target_mb_per_s"] else "MISSES"
    print(f"full chain: {b['ours_full']['mb_per_s']:.2f} MB/s {verdict} the {results['target_mb_per_s']:.0f} MB/s target")
    results["meets_target"] = verdict == "meets"
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "clean_throughput.json").write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()
