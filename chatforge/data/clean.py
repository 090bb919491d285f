"""`chatforge data clean`: the gate between raw logs and training data.

    chatforge data clean data/world/conversations --out data/clean --report

A chain of steps runs over every row, in this order:

    normalize   Unicode, HTML, control characters, mojibake, whitespace   (normalize.py)
    pii         emails, phones, cards, IBANs, SSNs, IPs, addresses, orders, names -> <TYPE_n>   (pii.py)
    quality     length, word, symbol, repetition rules; empty or echoed replies   (filters.py)
    language    keep the configured languages                              (filters.py)
    toxicity    drop toxic training targets, flag abusive users            (filters.py)
    dedup       exact and near duplicates (MinHash LSH), first kept        (dedup.py)

The per-row steps run in worker processes over batches of rows (`--workers`), with
a bounded number of batches in flight, so memory stays flat as the data grows; the
results come back in input order, so the output does not depend on the number of
workers. Deduplication, the only step that compares rows, runs in the main process
against an on-disk index.

The output is a new dataset version: its manifest records the parent's content hash,
every step's config and counts (in, kept, changed, dropped by reason) and PII
replacements by type. Beside the rows it holds `clean_report.md`/`.json` (the counts
plus examples of what each step changed or dropped, with PII masked in the examples)
and `dropped.jsonl` (the id, step and reason of every dropped row, and for duplicates
the id of the row they duplicated), so a person can audit what the gate did.

The per-row steps are plain callables `step(row, kind) -> Outcome`, so another engine
can run the same chain: see `clean_rows` and the README ("Cleaning at scale").
"""

from __future__ import annotations

import concurrent.futures as cf
import difflib
import gc
import hashlib
import heapq
import itertools
import json
import multiprocessing
import os
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
import pyarrow as pa

from chatforge.config import opt, to_dict
from chatforge.data.dataset import DatasetWriter, Kind, decode_rows, encode_rows, open_dataset
from chatforge.data.dedup import DedupConfig, DedupIndex, Signer
from chatforge.data.filters import (
    LanguageConfig,
    LanguageFilter,
    QualityConfig,
    QualityFilter,
    ToxicityConfig,
    ToxicityFilter,
)
from chatforge.data.normalize import NormalizeConfig, Normalizer, normalize_text
from chatforge.data.pii import Anonymizer, PIIConfig
from chatforge.data.steps import Outcome, Row, dedup_text, row_texts
from chatforge.errors import UserError
from chatforge.ui import QUIET, UI

STEP_ORDER = ("normalize", "pii", "quality", "language", "toxicity", "dedup")


@dataclass
class CleanConfig:
    """`chatforge data clean`: normalize, anonymize, filter and deduplicate a dataset into a new version."""

    dataset: str = opt("", "input dataset directory", positional=True, required=True, metavar="IN_DIR")
    out: str = opt("", "output dataset directory (a new version; the input is never changed)", required=True)
    workers: int = opt(0, "worker processes for the per-row steps (0 = one per CPU core; 1 = in this process)", ge=0, le=256)
    batch_rows: int = opt(
        2000,
        "rows per batch handed to a worker (larger: less overhead per row, more memory per worker; "
        "the output does not depend on it)",
        ge=1,
        le=1_000_000,
    )
    report: bool = opt(False, "print the full report (per-step table and examples) to the terminal")
    examples: int = opt(3, "examples per step and reason kept for the report", ge=0, le=100)
    overwrite: bool = opt(False, "replace OUT if it is a previous output (atomically)")
    normalize: NormalizeConfig = opt(default_factory=NormalizeConfig)
    pii: PIIConfig = opt(default_factory=PIIConfig)
    quality: QualityConfig = opt(default_factory=QualityConfig)
    language: LanguageConfig = opt(default_factory=LanguageConfig)
    toxicity: ToxicityConfig = opt(default_factory=ToxicityConfig)
    dedup: DedupConfig = opt(default_factory=DedupConfig)


Step = Callable[[Row, str], Outcome]


def _makers(cfg: CleanConfig) -> list[tuple[str, Any, Callable[[Any], Step]]]:
    """The per-row steps that are enabled, in order: (name, config, constructor)."""
    makers: list[tuple[str, Any, Callable[[Any], Step]]] = [
        ("normalize", cfg.normalize, Normalizer),
        ("pii", cfg.pii, Anonymizer),
        ("quality", cfg.quality, QualityFilter),
        ("language", cfg.language, LanguageFilter),
        ("toxicity", cfg.toxicity, ToxicityFilter),
    ]
    return [m for m in makers if getattr(m[1], "enabled", True)]


def build_steps(cfg: CleanConfig) -> list[tuple[str, Step]]:
    """The enabled per-row steps, in order (dedup, which compares rows, is not among them)."""
    return [(name, make(sub)) for name, sub, make in _makers(cfg)]


def dedup_enabled(cfg: CleanConfig) -> bool:
    return cfg.dedup.exact or cfg.dedup.near


class RowResult(NamedTuple):
    """What the per-row chain did to one row: the final row (or None) and each step's outcome.

    A NamedTuple, not a dataclass: results cross process boundaries, and unpickling
    dataclasses costs ~15x more.
    """

    id: str
    row: Row | None
    steps: list[tuple[str, bool, str | None, dict[str, int]]]  # (step, changed, drop reason, counts)
    # step -> (texts before it, texts after it or None if it dropped the row); only for examples
    examples: dict[str, tuple[list[str], list[str] | None]]


def clean_rows(
    rows: Iterable[Row],
    kind: str,
    steps: list[tuple[str, Step]],
    *,
    keep_example: Callable[[str, bool, str | None], bool] | None = None,
    chunk: int = 1000,
) -> Iterator[RowResult]:
    """Run the per-row chain over rows: the function any engine can map over a data set.

    Rows are taken `chunk` at a time; a step with a `batch(rows, kind)` method (the same
    outcomes as calling it on each row, in one call) gets the chunk's remaining rows in
    one call, other steps are called row by row. Results come in input order and equal
    running the chain row by row.

    `keep_example(step, changed, reason)` says whether to record the row's texts before
    and after a step that changed or dropped it (for the report); it is asked in row
    order for each step.
    """
    # Steps with a batch method run over the chunk's live rows in one call; a run of
    # consecutive plain steps takes each row through all of them before the next row
    # (the filters share a row's lowercased view when they see it one after the other).
    groups: list[list[tuple[str, Step]]] = []
    for name, step in steps:
        batched = getattr(step, "batch", None) is not None
        if groups and not batched and getattr(groups[-1][0][1], "batch", None) is None:
            groups[-1].append((name, step))
        else:
            groups.append([(name, step)])
    it = iter(rows)
    while part := list(itertools.islice(it, max(1, chunk))):
        state = _Chunk(part, kind, keep_example)
        live = list(range(len(part)))
        for group in groups:
            if not live:
                break
            todo: list[Row] = [r for i in live if (r := state.current[i]) is not None]  # live rows are never None
            batch_fn = getattr(group[0][1], "batch", None)
            if batch_fn is not None:
                name = group[0][0]
                for i, before, out in zip(live, todo, batch_fn(todo, kind), strict=True):
                    state.take(i, name, before, out)
            else:
                for i, row in zip(live, todo, strict=True):
                    for name, step in group:
                        out = step(row, kind)
                        state.take(i, name, row, out)
                        if out.row is None:
                            break
                        row = out.row
            live = [i for i in live if state.current[i] is not None]
        for row, final, record, ex in zip(part, state.current, state.records, state.examples, strict=True):
            yield RowResult(str(row["id"]), final, record, ex)


class _Chunk:
    """The rows of one chunk as the chain moves them along: each row's latest version (None
    once dropped), its step records and its report examples."""

    def __init__(self, part: list[Row], kind: str, keep_example: Callable[[str, bool, str | None], bool] | None) -> None:
        self.kind, self.keep_example = kind, keep_example
        self.current: list[Row | None] = list(part)
        self.records: list[list[tuple[str, bool, str | None, dict[str, int]]]] = [[] for _ in part]
        self.examples: list[dict[str, tuple[list[str], list[str] | None]]] = [{} for _ in part]

    def take(self, i: int, name: str, before: Row, out: Outcome) -> None:
        """Record step `name`'s outcome on row i (which read `before`)."""
        self.records[i].append((name, out.changed, out.reason, out.counts))
        keep = self.keep_example
        if keep is not None and (out.changed or out.row is None) and keep(name, out.changed, out.reason):
            kept = out.row
            self.examples[i][name] = (row_texts(before, self.kind), row_texts(kept, self.kind) if kept is not None else None)
        self.current[i] = out.row


# -- worker processes ------------------------------------------------------------------
#
# The main process only reads Arrow batches, checks duplicates and writes: everything done
# per row (decoding, the chain, accounting and masked report examples, dedup keys and
# signatures, encoding for the writer) happens in the workers, so throughput grows with
# the number of cores instead of stalling on one process.

_WORKER: dict[str, Any] = {}


class BatchResult(NamedTuple):
    """What a worker returns for one batch of rows."""

    stats: dict[str, StepStats]  # this batch's counts and first examples, per per-row step
    drops: list[tuple[int, str]]  # (row position in the batch, dropped.jsonl line), in order
    survivors: pa.RecordBatch  # rows that passed every per-row step, encoded for the writer
    row_json: list[bytes]  # each survivor's canonical JSON in UTF-8 (for the content hash)
    positions: list[int]  # each survivor's position in the batch
    keys: list[bytes]  # each survivor's content key (exact dedup)
    sigs: np.ndarray | None  # each survivor's MinHash signature (near dedup)


def _init_worker(cfg: CleanConfig, kind: str) -> None:
    _WORKER["steps"] = build_steps(cfg)
    _WORKER["kind"] = kind
    _WORKER["examples"] = cfg.examples
    _WORKER["mask"] = report_masker(cfg)
    _WORKER["dedup"] = dedup_enabled(cfg)
    _WORKER["signer"] = Signer(cfg.dedup.num_perm, cfg.dedup.ngram) if cfg.dedup.near else None
    # What exists now (modules, compiled patterns, word lists, the language model) lives
    # as long as the worker: moved out of the collector's sight. And the collector stops
    # running by itself: a batch's rows are plain dicts, lists and strings, freed by
    # reference counting, yet their thousands of allocations set off collections (a few
    # percent of the chain's time). One collection after each batch frees any cycle.
    # (Only in worker processes: a caller's own process keeps its usual collector.)
    if multiprocessing.parent_process() is not None:
        gc.collect()
        gc.freeze()
        gc.disable()
        _WORKER["collect"] = True


def _process_batch(batch: pa.RecordBatch) -> BatchResult:
    """One batch of stored rows through the chain, accounted, with what dedup and the writer need."""
    kind, quota, steps = _WORKER["kind"], _WORKER["examples"], _WORKER["steps"]
    stats = {name: StepStats(name) for name, _ in steps}

    promised: dict[tuple[str, str | None], int] = {}

    def keep_example(step: str, changed: bool, reason: str | None) -> bool:
        # Texts are kept for the first `quota` rows of each step and outcome (every one
        # asked for becomes an example when the row is accounted); the main process keeps
        # the first ones over the batches in order, so the report does not depend on
        # scheduling.
        n = promised.get((step, reason), 0)
        if n >= quota:
            return False
        promised[(step, reason)] = n + 1
        return True

    drops: list[tuple[int, str]] = []
    survivors: list[Row] = []
    positions: list[int] = []
    for pos, res in enumerate(clean_rows(decode_rows(batch), kind, steps, keep_example=keep_example)):
        line = _account(res, stats, quota, _WORKER["mask"])
        if res.row is None:
            assert line is not None
            drops.append((pos, line))
        else:
            survivors.append(res.row)
            positions.append(pos)
    keys: list[bytes] = []
    sigs = None
    if _WORKER["dedup"]:
        texts = [dedup_text(r, kind) for r in survivors]
        keys = [hashlib.sha256(t.encode("utf-8")).digest()[:16] for t in texts]  # = content_key, computed once
        signer: Signer | None = _WORKER["signer"]
        sigs = signer.signatures(texts) if signer is not None else None
    encoded, row_json = encode_rows(survivors, kind)
    if _WORKER.get("collect"):
        gc.collect()
    return BatchResult(stats, drops, encoded, row_json, positions, keys, sigs)


def ordered_map(fn: Callable[[Any], Any], items: Iterator[Any], workers: int, init: Callable[..., None], initargs: tuple[Any, ...]) -> Iterator[Any]:
    """`map(fn, items)` in worker processes, results in input order, at most 2 x workers items in flight."""
    if workers <= 1:
        init(*initargs)
        yield from map(fn, items)
        return
    with cf.ProcessPoolExecutor(max_workers=workers, initializer=init, initargs=initargs) as pool:
        pending: deque[cf.Future[Any]] = deque()
        for item in items:
            pending.append(pool.submit(fn, item))
            if len(pending) >= 2 * workers:
                yield pending.popleft().result()
        while pending:
            yield pending.popleft().result()


# -- statistics and report ------------------------------------------------------------


@dataclass
class StepStats:
    name: str
    rows_in: int = 0
    kept: int = 0
    changed: int = 0
    dropped: dict[str, int] = field(default_factory=dict)
    counts: dict[str, int] = field(default_factory=dict)
    changed_examples: list[dict[str, Any]] = field(default_factory=list)
    dropped_examples: dict[str, list[dict[str, Any]]] = field(default_factory=dict)

    def merge(self, other: StepStats, quota: int) -> None:
        """Add another batch's stats (a later one): counts add up, examples fill up to `quota`."""
        self.rows_in += other.rows_in
        self.kept += other.kept
        self.changed += other.changed
        for mine, theirs in ((self.dropped, other.dropped), (self.counts, other.counts)):
            for k, v in theirs.items():
                mine[k] = mine.get(k, 0) + v
        self.changed_examples.extend(other.changed_examples[: quota - len(self.changed_examples)])
        for reason, items in other.dropped_examples.items():
            mine_ex = self.dropped_examples.setdefault(reason, [])
            mine_ex.extend(items[: quota - len(mine_ex)])

    def summary(self) -> dict[str, Any]:
        return {
            "rows_in": self.rows_in,
            "kept": self.kept,
            "changed": self.changed,
            "dropped": dict(sorted(self.dropped.items())),
            "counts": dict(sorted(self.counts.items())),
        }


def _edits(before: str, after: str, mask: Callable[[list[str]], list[str]], limit: int = 8) -> list[list[str]]:
    """The changed fragments of a text, [removed, inserted] pairs, each masked and shortened."""
    out = []
    for op, i1, i2, j1, j2 in difflib.SequenceMatcher(None, before, after, autojunk=False).get_opcodes():
        if op != "equal":
            old, new = mask([before[i1:i2][:80], after[j1:j2][:80]])
            out.append([old, new])
        if len(out) >= limit:
            break
    return out


def _diff_texts(before: list[str], after: list[str]) -> list[dict[str, str]]:
    return [{"before": b, "after": a} for b, a in zip(before, after, strict=False) if a != b]


def main(cfg: CleanConfig, ui: UI = QUIET) -> dict[str, Any]:
    """Run `data clean`; returns the new dataset's manifest."""
    src = open_dataset(cfg.dataset)
    kind: Kind = src.kind
    workers = cfg.workers or os.cpu_count() or 1
    workers = min(workers, max(1, -(-src.num_rows // cfg.batch_rows)))  # no idle processes for small data
    stats = {name: StepStats(name) for name in STEP_ORDER}
    enabled = [name for name, _, _ in _makers(cfg)] + (["dedup"] if dedup_enabled(cfg) else [])
    if Path(cfg.out).resolve() == src.path.resolve():
        raise UserError(f"{cfg.out}: is the input dataset; write the cleaned version to another --out (the input is never changed)")
    mask = report_masker(cfg)
    t0 = time.perf_counter()
    rows_out = 0
    with DatasetWriter(
        cfg.out,
        kind,
        created_by={"command": "data clean", "config": recorded_config(cfg)},
        parents=[src.content_hash],
        overwrite=cfg.overwrite,
    ) as writer, DedupIndex(cfg.dedup) as index, ui.progress("clean", total=src.num_rows) as advance:
        dropped_log = open(writer.side_file("dropped.jsonl"), "w", encoding="utf-8")  # noqa: SIM115
        try:
            batches = src.arrow_batches(cfg.batch_rows)
            for out in ordered_map(_process_batch, batches, workers, _init_worker, (cfg, kind)):
                for name, st in out.stats.items():
                    stats[name].merge(st, cfg.examples)
                keep = [True] * out.survivors.num_rows
                dedup_drops: list[tuple[int, str]] = []
                if dedup_enabled(cfg):
                    ids = out.survivors.column("id").to_pylist()
                    st = stats["dedup"]
                    st.rows_in += len(ids)
                    for j, v in enumerate(index.check(ids, out.keys, out.sigs)):
                        if v.reason is None:
                            continue
                        keep[j] = False
                        st.dropped[v.reason] = st.dropped.get(v.reason, 0) + 1
                        entry = {"id": ids[j], "step": "dedup", "reason": v.reason, "duplicate_of": v.duplicate_of}
                        dedup_drops.append((out.positions[j], json.dumps(entry)))
                        ex = st.dropped_examples.setdefault(v.reason, [])
                        if len(ex) < cfg.examples:
                            row = decode_rows(out.survivors.slice(j, 1))[0]
                            ex.append({**entry, "similarity": round(v.similarity, 3), "texts": mask(row_texts(row, kind))})
                    st.kept += sum(keep)
                # The log in row order (not step by step), so it does not depend on batch size.
                for _, line in heapq.merge(out.drops, dedup_drops):
                    dropped_log.write(line + "\n")
                if all(keep):
                    writer.write_encoded(out.survivors, out.row_json)
                else:
                    # take, not filter: filter is ~60x slower on the nested messages column. The
                    # indices are wrapped, not converted: `pa.array` would import pandas (~0.3 s).
                    kept = np.flatnonzero(keep).astype(np.int64)
                    indices = pa.Array.from_buffers(pa.int64(), len(kept), [None, pa.py_buffer(kept)])
                    writer.write_encoded(out.survivors.take(indices), [out.row_json[j] for j in kept])
                rows_out += sum(keep)
                advance(len(out.drops) + len(keep))
        finally:
            dropped_log.close()
        report = {
            "input": {"path": str(src.path), "content_hash": src.content_hash, "rows": src.num_rows, "kind": kind},
            "rows_out": rows_out,
            "steps": [{"name": n, "config": recorded_config(cfg)[n], **stats[n].summary()} for n in enabled],
            "seconds": round(time.perf_counter() - t0, 2),
            "workers": workers,
        }
        assert src.num_rows == rows_out + sum(sum(stats[n].dropped.values()) for n in enabled)  # counts add up
        writer.manifest_extra["clean"] = report
        examples = {n: {"changed": stats[n].changed_examples, "dropped": stats[n].dropped_examples} for n in enabled}
        with open(writer.side_file("clean_report.json"), "w", encoding="utf-8") as f:
            json.dump({**report, "examples": examples}, f, indent=2, ensure_ascii=False)
        with open(writer.side_file("clean_report.md"), "w", encoding="utf-8") as f:
            f.write(render_report_md(report, examples))
    assert writer.manifest is not None
    print_summary(report, ui)
    if cfg.report:
        print_examples(examples, ui)
    ui.note(f"cleaned {src.num_rows:,} rows -> {rows_out:,} kept in {report['seconds']:.1f}s -> {cfg.out} (report: {Path(cfg.out) / 'clean_report.md'})")
    return writer.manifest


def recorded_config(cfg: CleanConfig) -> dict[str, Any]:
    """The config as recorded in manifests and reports: the hash-mode salt is a secret."""
    d = to_dict(cfg)
    if d["pii"].get("salt"):
        d["pii"]["salt"] = "<redacted>"
    return d


def _clip(text: str, limit: int = 600) -> str:
    return text if len(text) <= limit else text[:limit] + f"… [{len(text) - limit:,} more chars]"


def report_masker(cfg: CleanConfig) -> Callable[[list[str]], list[str]]:
    """How texts are shown in the report. Examples are read by people: every text shown is
    normalized (so encoded PII like "grace&#64;example.com" becomes visible to the
    detector) and then anonymized, even when the chain itself has these steps turned off."""
    masker = Anonymizer(replace(cfg.pii, enabled=True, mode="mask"))
    display_norm = NormalizeConfig()

    def mask(texts: list[str]) -> list[str]:
        return [_clip(t) for t in masker.anonymize_texts([normalize_text(t, display_norm) for t in texts])[0]]

    return mask


def _account(res: RowResult, stats: dict[str, StepStats], quota: int, mask: Callable[[list[str]], list[str]]) -> str | None:
    """Add one row's step outcomes to the totals and examples; the row's dropped.jsonl line if a step dropped it."""
    for name, changed, reason, counts in res.steps:
        st = stats[name]
        st.rows_in += 1
        if not changed and reason is None and not counts:  # most rows at most steps: passed as they were
            st.kept += 1
            continue
        for k, v in counts.items():
            st.counts[k] = st.counts.get(k, 0) + v
        example = res.examples.get(name)
        if reason is not None:
            st.dropped[reason] = st.dropped.get(reason, 0) + 1
            ex = st.dropped_examples.setdefault(reason, [])
            if len(ex) < quota and example is not None:
                ex.append({"id": res.id, "texts": mask(example[0])})
            return json.dumps({"id": res.id, "step": name, "reason": reason})
        st.kept += 1
        if changed:
            st.changed += 1
            if len(st.changed_examples) < quota and example is not None and example[1] is not None:
                changes = _diff_texts(example[0], example[1])
                if not changes:  # the texts are the same: the step flagged the row in meta
                    st.changed_examples.append({"id": res.id, "flagged": mask(example[0])})
                    continue
                shown: list[dict[str, Any]]
                if name == "pii":  # the text before anonymization is exactly what must not be shown
                    shown = [{"after": _clip(c["after"])} for c in changes]
                elif name == "normalize":
                    # Show what changed as small edits plus the (masked) result: the raw
                    # text before normalization may hide PII from the detector.
                    shown = [{"edits": _edits(c["before"], c["after"], mask), "after": mask([c["after"]])[0]} for c in changes]
                else:
                    shown = [{"before": mask([c["before"]])[0], "after": mask([c["after"]])[0]} for c in changes]
                st.changed_examples.append({"id": res.id, "changes": shown})
    return None


def render_report_md(report: dict[str, Any], examples: dict[str, Any]) -> str:
    """The cleaning report as Markdown: the per-step table, then examples per step."""
    lines = [
        "# Cleaning report",
        "",
        f"Input: `{report['input']['path']}` ({report['input']['kind']}, {report['input']['rows']:,} rows, {report['input']['content_hash']})",
        f"Output: {report['rows_out']:,} rows, in {report['seconds']}s with {report['workers']} worker(s).",
        "",
        "| step | in | kept | changed | dropped | dropped by reason | counts |",
        "|---|---:|---:|---:|---:|---|---|",
    ]
    for s in report["steps"]:
        reasons = ", ".join(f"{k}: {v:,}" for k, v in s["dropped"].items()) or "-"
        counts = ", ".join(f"{k}: {v:,}" for k, v in s["counts"].items()) or "-"
        lines.append(f"| {s['name']} | {s['rows_in']:,} | {s['kept']:,} | {s['changed']:,} | {sum(s['dropped'].values()):,} | {reasons} | {counts} |")
    for name, ex in examples.items():
        if not ex["changed"] and not ex["dropped"]:
            continue
        lines += ["", f"## {name}", ""]
        for e in ex["changed"]:
            if "flagged" in e:
                lines.append(f"- flagged `{e['id']}`: `{_one_line(' | '.join(e['flagged']))}`")
            for c in e.get("changes", []):
                if "edits" in c:
                    edits = "; ".join(f"`{_one_line(a, 60)}` -> `{_one_line(b, 60)}`" for a, b in c["edits"])
                    lines += [f"- changed `{e['id']}`: {edits}", f"  - after: `{_one_line(c['after'])}`"]
                elif "before" in c:
                    lines += [f"- changed `{e['id']}`:", f"  - before: `{_one_line(c['before'])}`", f"  - after: `{_one_line(c['after'])}`"]
                else:
                    lines.append(f"- anonymized `{e['id']}`: `{_one_line(c['after'])}`")
        for reason, items in ex["dropped"].items():
            for e in items:
                extra = f" (duplicate of `{e['duplicate_of']}`, similarity {e['similarity']})" if "duplicate_of" in e else ""
                lines.append(f"- dropped `{e['id']}`, {reason}{extra}: `{_one_line(' | '.join(e['texts']))}`")
    return "\n".join(lines) + "\n"


def _one_line(text: str, limit: int = 300) -> str:
    text = text.replace("\n", "⏎").replace("`", "'")
    return text if len(text) <= limit else text[:limit] + "…"


def print_summary(report: dict[str, Any], ui: UI) -> None:
    """The per-step table on the terminal."""
    if ui.quiet:
        return
    from rich.table import Table
    from rich.text import Text

    t = Table(title="cleaning report", title_justify="left")
    for col in ("step", "in", "kept", "changed", "dropped", "by reason / counts"):
        t.add_column(col, justify="left" if col in ("step", "by reason / counts") else "right")
    for s in report["steps"]:
        detail = ", ".join(f"{k} {v:,}" for k, v in {**s["dropped"], **s["counts"]}.items())
        t.add_row(s["name"], f"{s['rows_in']:,}", f"{s['kept']:,}", f"{s['changed']:,}", f"{sum(s['dropped'].values()):,}", Text(detail))
    ui.out.print(t)


def print_examples(examples: dict[str, Any], ui: UI) -> None:
    """Examples of what each step changed or dropped, on the terminal (--report)."""
    from rich.text import Text

    for name, ex in examples.items():
        for e in ex["changed"]:
            if "flagged" in e:
                ui.out.print(Text.assemble((f"{name} flagged: ", "bold"), _one_line(" | ".join(e["flagged"]), 200)))
            for c in e.get("changes", []):
                if "edits" in c:
                    edits = "; ".join(f"{_one_line(a, 40)!r} -> {_one_line(b, 40)!r}" for a, b in c["edits"])
                    ui.out.print(Text.assemble((f"{name} changed: ", "bold"), edits))
                elif "before" in c:
                    ui.out.print(
                        Text.assemble((f"{name} changed: ", "bold"), (_one_line(c["before"], 200), "red"), " -> ", (_one_line(c["after"], 200), "green"))
                    )
                else:
                    ui.out.print(Text.assemble((f"{name}: ", "bold"), (_one_line(c["after"], 200), "green")))
        for reason, items in ex["dropped"].items():
            for e in items:
                ui.out.print(Text.assemble((f"{name} dropped ({reason}): ", "bold"), _one_line(" | ".join(e["texts"]), 200)))
