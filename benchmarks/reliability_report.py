"""The reliability figures: faults, fuzzing, the API against its schema, load, security.

    python benchmarks/reliability_report.py            # the full counts (~30-40 min on 2 cores)
    python benchmarks/reliability_report.py --quick    # a few of each (~5 min)

Runs the same trials as tests/reliability (tests/reliability/trials.py) with more of them,
prints every figure beside its target, and writes benchmarks/results/reliability.json.
Needs root for the full-disk trials on a real tmpfs (else they use RLIMIT_FSIZE).
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
import time
from collections import Counter
from dataclasses import asdict
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "tests" / "reliability"), str(ROOT / "tests")]

import trials  # noqa: E402  (tests/reliability/trials.py)
from rich.console import Console  # noqa: E402
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn  # noqa: E402
from rich.table import Table  # noqa: E402

console = Console()


def progress() -> Progress:
    return Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(), TextColumn("eta"), TimeRemainingColumn(), console=console)


def figure(rows: list[dict[str, Any]], name: str, value: Any, target: str, met: bool) -> None:
    rows.append({"figure": name, "value": value, "target": target, "met": bool(met)})


def training(scratch: Path, n_kill: int, n_term: int, n_flip: int, n_nan: int) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    ref = trials.PretrainRun(trials.make_corpus(scratch / "corpus")).reference(scratch / "reference")
    rng = random.Random(0)
    kills: list[trials.KillTrial] = []
    terms: list[trials.TermTrial] = []
    nans: list[trials.NanTrial] = []
    with progress() as bar:
        task = bar.add_task("training: SIGKILL trials", total=n_kill)
        for i in range(n_kill):
            kills.append(trials.kill_trial(ref, scratch / f"kill{i}", ("random_step", "in_write")[i % 2], rng))
            bar.advance(task)
        task = bar.add_task("training: SIGTERM trials", total=n_term)
        for i in range(n_term):
            terms.append(trials.term_trial(ref, scratch / f"term{i}", rng))
            bar.advance(task)
        task = bar.add_task("training: NaN trials", total=n_nan)
        for _ in range(n_nan):
            nans.append(trials.nan_trial(scratch / "nan", rng))
            bar.advance(task)
    died = [t for t in kills if t.died]
    mid_write = [t for t in died if t.mode == "in_write"]
    figure(rows, "SIGKILL trials (random step / before an fsync or rename)", f"{len(kills)} ({sum(t.mode == 'random_step' for t in kills)} / {len(mid_write)} killed in writes)", ">= 50", len(kills) >= 50)
    figure(rows, "  killed while a checkpoint was being written (staging dir left)", sum(t.staging_left > 0 for t in died), "> 0 (the trials reach writes)", any(t.staging_left > 0 for t in died))
    figure(rows, "  resumed successfully", f"{sum(t.resumed_ok for t in kills)}/{len(kills)}", "all", all(t.resumed_ok for t in kills))
    figure(rows, "  resumed run bit-identical to the uninterrupted one", f"{sum(t.identical for t in kills)}/{len(kills)}", "all", all(t.identical for t in kills))
    figure(rows, "  published checkpoints failing verification", sum(t.published_broken for t in kills), "0", all(t.published_broken == 0 for t in kills))
    lost = max((t.lost_steps for t in died), default=0)
    figure(rows, "  most steps lost", lost, f"<= save_every ({ref.save_every})", lost <= ref.save_every)
    slowest = max((t.seconds_to_exit for t in terms), default=0.0)
    figure(rows, "SIGTERM: checkpoint of the step it stopped at, exit 0", f"{sum(t.exit_code == 0 and t.checkpoint_step == t.stopped_step for t in terms)}/{len(terms)}", "all", all(t.exit_code == 0 and t.checkpoint_step == t.stopped_step for t in terms))
    figure(rows, "  slowest exit after SIGTERM (s)", round(slowest, 2), "< 30", slowest < 30)
    figure(rows, "  resumed bit-identical", f"{sum(t.identical_after_resume for t in terms)}/{len(terms)}", "all", all(t.identical_after_resume for t in terms))
    run = scratch / "flip"
    subprocess.run(["cp", "-r", str(ref.dir), str(run)], check=True)
    flips = trials.flip_trials(run, n_flip, rng)
    figure(rows, "flipped byte in the newest checkpoint detected and skipped", f"{flips['detected']}/{flips['trials']}", "all", flips["detected"] == flips["trials"])
    figure(rows, "NaN in loss or gradient: stopped, no non-finite checkpoint, resumable", f"{sum(t.raised and t.non_finite_checkpoints == 0 and t.resumed_ok for t in nans)}/{len(nans)}", "all", all(t.raised and t.non_finite_checkpoints == 0 and t.resumed_ok for t in nans))
    full = trials.checkpoint_disk_full_trial(ref, scratch / "full")
    if full is None:
        figure(rows, "disk full during training", "not run (no tmpfs mount here)", "clear error, nothing lost", False)
    else:
        ok = full.exit_code == 1 and "No space left" in full.message and full.broken_checkpoints == 0 and full.identical_after_resume
        figure(rows, "disk full during training: clear error, checkpoints intact, resume identical", "yes" if ok else asdict(full), "yes", ok)
    return rows


def data(scratch: Path, per_command: int, n_learn: int) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    rng = random.Random(1)
    commands = trials.dataset_commands(scratch / "datasets")
    learn = trials.learn_setup(scratch / "learn")
    done: list[trials.DataKillTrial] = []
    learned: list[trials.LearnKillTrial] = []
    with progress() as bar:
        task = bar.add_task("data: ingest/clean killed", total=per_command * len(commands))
        for cmd in commands:
            for i in range(per_command):
                done.append(trials.data_kill_trial(cmd, scratch / f"{cmd.name.replace(' ', '-')}-{i}" / "out", ("in_write", "random_time")[i % 2], rng))
                bar.advance(task)
        task = bar.add_task("data: learn killed", total=n_learn)
        for i in range(n_learn):
            learned.append(trials.learn_kill_trial(learn, scratch / f"learn{i}", rng))
            bar.advance(task)
    for cmd in commands:
        mine = [t for t in done if t.command == cmd.name]
        outcomes = Counter(t.outcome for t in mine)
        ok = set(outcomes) <= {"old", "new"} and all(t.rerun_ok for t in mine)
        figure(rows, f"{cmd.name} killed ({len(mine)} trials): previous version intact or new one complete", dict(outcomes), "only old/new", ok)
    figure(rows, "learn killed: registry whole, production a listed version, next run promotes", f"{sum(t.registry_ok and t.production in t.versions and t.rerun_ok for t in learned)}/{len(learned)}", "all", all(t.registry_ok and t.production in t.versions and t.rerun_ok for t in learned))
    for how in ("tmpfs", "rlimit"):
        t = trials.disk_full_trial(scratch / f"disk-{how}", how)
        ok = t.exit_code == 1 and t.message.startswith("chatforge: error: ") and "Traceback" not in t.message and t.previous_intact and t.leftovers == 0
        figure(rows, f"disk full ({t.how}) in data clean: clear error, previous version intact", t.message.removeprefix("chatforge: error: ")[:80], "clear error, nothing lost", ok)
    return rows


def pytest_files(names: list[str], env: dict[str, str]) -> tuple[bool, str, float]:
    files = [str(p) for n in names for p in sorted((ROOT / "tests" / "reliability").glob(n))]
    if not files:
        return False, "no such tests", 0.0
    t0 = time.perf_counter()
    p = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *files], capture_output=True, text=True, cwd=ROOT, env={**os.environ, **env})
    last = (p.stdout.strip().splitlines() or ["?"])[-1]
    return p.returncode == 0, last, time.perf_counter() - t0


def checks(api_examples: int, fuzz_examples: int) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    with console.status("fuzzing (hypothesis, atheris smoke runs)"):
        ok, summary, seconds = pytest_files(["test_fuzz_*.py"], {"CHATFORGE_FUZZ_EXAMPLES": str(fuzz_examples)})
    figure(rows, f"fuzzing: ingest, tokenizer/template, importers, API bodies (x{fuzz_examples} examples)", f"{summary} ({seconds:.0f} s)", "0 crashes", ok)
    with console.status("the API against its OpenAPI schema (schemathesis)"):
        ok, summary, seconds = pytest_files(["test_api_schema.py", "test_serve_faults.py"], {"CHATFORGE_API_EXAMPLES": str(api_examples)})
    figure(rows, f"schemathesis: {api_examples} examples per route and mode; auth; small errors; oversize bodies", f"{summary} ({seconds:.0f} s)", "no 5xx, all as documented", ok)
    with console.status("security review"):
        ok, summary, seconds = pytest_files(["test_security_code.py", "test_secrets.py"], {})
    figure(rows, "security rules (pickle, torch.load, remote code, eval, shell, yaml, templates) and secrets in logs", summary, "all pass", ok)
    with console.status("pip-audit"):
        p = subprocess.run([sys.executable, str(ROOT / ".ci" / "audit.py")], capture_output=True, text=True, cwd=ROOT)
    lines = (p.stdout + p.stderr).strip().splitlines()
    audited = any("packages audited" in line for line in lines)
    figure(rows, "pip-audit of the pinned dependencies", (lines or ["?"])[-1].removeprefix("audit: "), "0 known vulnerabilities not accepted", p.returncode == 0 and audited)
    return rows


def load(scratch: Path, seconds: float) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    with console.status(f"load: capacity, then 0.5x-4x for {seconds:g} s each"):
        r = trials.load_trial(scratch, seconds=seconds)
    table = Table(title=f"load on 127.0.0.1 (tiny model, 4 slots, queue 8): capacity {r.capacity_rps:.1f} requests/s", title_justify="left")
    for col in ("load", "offered/s", "sent", "200", "429", "other", "p50 ms", "p99 ms", "goodput/s"):
        table.add_column(col, justify="right")
    for lv in r.levels:
        table.add_row(f"{lv.multiple:g}x", f"{lv.offered_rps:.1f}", str(lv.sent), str(lv.ok), str(lv.rejected), str(sum(lv.other.values())), f"{lv.p50_ms:.0f}", f"{lv.p99_ms:.0f}", f"{lv.goodput_rps:.1f}")
    console.print(table)
    top = r.levels[-1]
    figure(rows, "responses other than 200 / 429 at any load", sum(sum(lv.other.values()) for lv in r.levels), "0", all(not lv.other for lv in r.levels))
    figure(rows, "429s without Retry-After", sum(lv.rejected_without_retry_after for lv in r.levels), "0", all(lv.rejected_without_retry_after == 0 for lv in r.levels))
    figure(rows, "goodput at 4x / capacity", round(top.goodput_rps / r.capacity_rps, 2), ">= 0.3 (the load generator shares the 2 cores)", top.goodput_rps >= 0.3 * r.capacity_rps)
    figure(rows, "p99 at 4x (ms)", round(top.p99_ms), "bounded by the queue", top.p99_ms < 20 * r.levels[0].p50_ms + 2000)
    figure(rows, "server RSS: baseline -> peak -> after (MB)", f"{r.rss_baseline_mb:.0f} -> {r.rss_peak_mb:.0f} -> {r.rss_after_mb:.0f}", "back to baseline (+60 MB)", r.rss_after_mb < r.rss_baseline_mb + 60)
    figure(rows, "clients hanging up mid-stream -> slots still taken", f"{r.dropped_streams} -> {r.active_after_drops + r.waiting_after_drops} (drained in {r.seconds_to_drain:.2f} s)", "100 -> 0", r.dropped_streams >= 90 and r.active_after_drops + r.waiting_after_drops == 0)
    return rows, asdict(r)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="a few trials of each kind")
    ap.add_argument("--only", nargs="*", choices=["training", "data", "checks", "load"], help="run only these sections")
    ap.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "reliability.json"))
    args = ap.parse_args()
    q = args.quick
    sections = args.only or ["training", "data", "checks", "load"]
    result: dict[str, Any] = {"machine": {"python": platform.python_version(), "cpus": os.cpu_count()}, "quick": q, "sections": {}}
    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="chatforge-reliability-") as tmp:
        scratch = Path(tmp)
        if "training" in sections:
            result["sections"]["training"] = training(scratch / "training", 6 if q else 60, 2 if q else 10, 50 if q else 500, 3 if q else 20)
        if "data" in sections:
            result["sections"]["data"] = data(scratch / "data", 3 if q else 25, 1 if q else 12)
        if "checks" in sections:
            result["sections"]["checks"] = checks(25 if q else 200, 1 if q else 10)
        if "load" in sections:
            rows, raw = load(scratch / "load", 4.0 if q else 15.0)
            result["sections"]["load"] = rows
            result["load"] = raw
    result["seconds"] = round(time.perf_counter() - t0)
    every = [r for rows in result["sections"].values() for r in rows]
    result["all_met"] = all(r["met"] for r in every)
    for name, rows in result["sections"].items():
        table = Table(title=name, title_justify="left")
        for col in ("figure", "value", "target", "met"):
            table.add_column(col)
        for r in rows:
            table.add_row(r["figure"], str(r["value"]), r["target"], "yes" if r["met"] else "[red]NO[/red]")
        console.print(table)
    console.print(f"{sum(r['met'] for r in every)}/{len(every)} figures at target in {result['seconds']} s")
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2, default=str) + "\n", encoding="utf-8")
    console.print(f"wrote {out}")


if __name__ == "__main__":
    main()
