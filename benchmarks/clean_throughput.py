"""Throughput and peak memory of `chatforge data clean`, side by side with HF `datasets.map`.

    python benchmarks/clean_throughput.py [--mb 100] [--workers 2] [--repeat 3] [--out results.json]

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

Besides wall time, each run records the CPU seconds of its process tree (user + system)
and the load average around it: on a machine that other work keeps busy the wall time
says little, and CPU seconds per MB is the figure to compare between versions (the
wall time on idle cores is about CPU seconds / cores). `--workers 1 2` measures each
worker count in turn. With `--repeat N` the three commands run N times, taking turns,
and each reports its fastest run (as `timeit` does: the run least slowed by other work
on the machine), with every run's seconds kept beside it.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
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


def _children_cpu() -> float:
    """User + system CPU seconds of every child process waited for so far (and of theirs)."""
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


def run_measured(cmd: list[str]) -> dict:
    """Run a command; wall seconds, CPU seconds and peak RSS of its process tree, and the load average before it."""
    load = os.getloadavg()[0]
    cpu0 = _children_cpu()
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
    seconds = time.perf_counter() - t0
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} failed:\n{err}")
    # The command's workers are waited for by the command, so their CPU time is in its own.
    return {
        "seconds": seconds,
        "cpu_seconds": _children_cpu() - cpu0,
        "peak_rss_mb": peak / 1024,
        "load_before": load,
        "stdout": out.strip(),
    }


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
    ap.add_argument("--workers", type=int, nargs="+", default=[2], help="worker counts to measure, in turn")
    ap.add_argument("--repeat", type=int, default=1, help="runs of each command, taking turns; the fastest counts")
    ap.add_argument("--out", type=Path, default=RESULTS / "clean_throughput.json", help="where the results go")
    args = ap.parse_args()
    exe = [sys.executable, "-m", "chatforge"]
    env_ok = {"HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1", "HF_HUB_DISABLE_TELEMETRY": "1"}
    os.environ.update(env_ok)
    results: dict = {
        "machine": {"python": platform.python_version(), "cpus": os.cpu_count()},
        "workers": args.workers,
        "runs": [],
    }
    keys = (("ours, full chain", "ours_full"), ("ours, no dedup", "ours_per_row"), ("datasets.map", "hf_datasets_map"))
    with tempfile.TemporaryDirectory(prefix="chatforge-clean-bench-") as tmp:
        t = Path(tmp)
        for mb in (args.mb / 2, args.mb):
            logs = t / f"logs-{mb:g}.jsonl"
            rows, text_mb = make_logs(logs, mb)
            size_mb = logs.stat().st_size / 1e6
            raw = t / f"raw-{mb:g}"
            subprocess.run([*exe, "data", "ingest", str(logs), "--out", str(raw), "-q"], check=True)
            for workers in args.workers:
                tag = f"{mb:g}-{workers}"
                commands = {
                    "ours_full": [*exe, "data", "clean", str(raw), "--out", str(t / f"full-{tag}"), "--workers", str(workers),
                                  "-q", "--overwrite"],
                    "ours_per_row": [*exe, "data", "clean", str(raw), "--out", str(t / f"rows-{tag}"), "--workers",
                                     str(workers), "-q", "--no-dedup.exact", "--no-dedup.near", "--overwrite"],
                    "hf_datasets_map": [sys.executable, "-c", HF_MAP, str(raw), "", str(workers)],
                }  # fmt: skip
                runs: dict[str, list[dict]] = {key: [] for key in commands}
                for i in range(max(1, args.repeat)):
                    commands["hf_datasets_map"][4] = str(t / f"hf-{tag}-{i}")  # a cold cache each time
                    for key, cmd in commands.items():
                        runs[key].append(run_measured(cmd))
                full, per_row, hf = (min(runs[key], key=lambda m: m["seconds"]) for key in commands)
                kept_ours = json.loads((t / f"rows-{tag}" / "manifest.json").read_text())["num_rows"]
                assert int(hf["stdout"].splitlines()[-1]) == kept_ours, "the reference must keep the same rows"
                run = {
                    "workers": workers,
                    "input_mb_jsonl": round(size_mb, 1),
                    "input_mb_text": round(text_mb, 1),
                    "rows": rows,
                    "output_content_hash": json.loads((t / f"full-{tag}" / "manifest.json").read_text())["content_hash"],
                }
                for key, m in (("ours_full", full), ("ours_per_row", per_row), ("hf_datasets_map", hf)):
                    run[key] = {k: m[k] for k in ("seconds", "cpu_seconds", "peak_rss_mb", "load_before")}
                    run[key]["all_seconds"] = [round(r["seconds"], 2) for r in runs[key]]
                    run[key]["peak_rss_mb"] = max(r["peak_rss_mb"] for r in runs[key])
                    run[key]["mb_per_s"] = size_mb / m["seconds"]
                    run[key]["rows_per_s"] = rows / m["seconds"]
                    run[key]["cpu_seconds_per_mb"] = m["cpu_seconds"] / size_mb
                run["speed_ratio_ours_per_row_vs_hf"] = hf["seconds"] / per_row["seconds"]
                run["speed_ratio_ours_full_vs_hf"] = hf["seconds"] / full["seconds"]
                results["runs"].append(run)
                print(
                    f"\ninput {size_mb:.1f} MB JSONL ({text_mb:.1f} MB of message text), {rows:,} conversations, "
                    f"{workers} worker(s), load average {full['load_before']:.1f} on {os.cpu_count()} CPUs"
                )
                print(f"{'':18} {'seconds':>8} {'MB/s':>7} {'rows/s':>8} {'CPU s':>7} {'CPU s/MB':>9} {'peak RSS MB':>12}")
                for name, key in keys:
                    r = run[key]
                    print(
                        f"{name:18} {r['seconds']:8.1f} {r['mb_per_s']:7.2f} {r['rows_per_s']:8.0f} "
                        f"{r['cpu_seconds']:7.1f} {r['cpu_seconds_per_mb']:9.3f} {r['peak_rss_mb']:12.0f}"
                    )
                print(
                    f"speed vs datasets.map: ours (no dedup) {run['speed_ratio_ours_per_row_vs_hf']:.2f}x, "
                    f"ours (full chain) {run['speed_ratio_ours_full_vs_hf']:.2f}x"
                )
    results["target_mb_per_s"] = 10.0
    results["memory_growth_full"] = {}
    for workers in args.workers:
        a, b = (r for r in results["runs"] if r["workers"] == workers)
        growth = b["ours_full"]["peak_rss_mb"] / a["ours_full"]["peak_rss_mb"]
        results["memory_growth_full"][str(workers)] = growth
        verdict = "meets" if b["ours_full"]["mb_per_s"] >= results["target_mb_per_s"] else "MISSES"
        print(
            f"\n{workers} worker(s): peak memory at {b['input_mb_jsonl']} MB vs {a['input_mb_jsonl']} MB input: x{growth:.2f}; "
            f"full chain {b['ours_full']['mb_per_s']:.2f} MB/s ({b['ours_full']['cpu_seconds_per_mb']:.3f} CPU s/MB) "
            f"{verdict} the {results['target_mb_per_s']:.0f} MB/s target"
        )
    full_size = max(r["input_mb_jsonl"] for r in results["runs"])
    best = max(r["ours_full"]["mb_per_s"] for r in results["runs"] if r["input_mb_jsonl"] == full_size)
    results["meets_target"] = best >= results["target_mb_per_s"]
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()
