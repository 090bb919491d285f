"""`chatforge report`: a report card of one run, or several side by side.

    chatforge report runs/sft                      # -> runs/sft/report.html and report.md
    chatforge report runs/sft runs/dpo --out compare.html

One self-contained HTML file (plots embedded as PNG images) and a Markdown twin (its
images in a `<name>_files/` folder beside it). For each run: what it was (stage, the
summary of training), where it came from (the datasets it read with their content
hashes, the model it started from and the model it wrote, with their hashes), its
curves (loss, validation loss, learning rate, tokens/s), the eval results found in its
`eval.json` (`chatforge eval` writes it there: metrics, task success per intent, safety
and bias probes, human ratings, sample replies), a sweep's trials, a `chatforge monitor`
dir's periods and flags, and its full config. Given several
runs, a comparison comes first: the headline figures in one table, the loss curves on
one plot and bar charts of the metrics.
"""

from __future__ import annotations

import base64
import html
import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from chatforge.atomic import atomic_write_bytes, atomic_write_text
from chatforge.config import opt
from chatforge.errors import UserError
from chatforge.plots import bars_png, compare_png, training_png
from chatforge.tracking import lineage, read_metrics
from chatforge.ui import QUIET, UI

# eval figures drawn as bars when several runs are compared: (label, path in eval.json)
BAR_METRICS = (
    ("perplexity", ("perplexity", "perplexity")),
    ("BLEU", ("generation", "bleu")),
    ("ROUGE-L", ("generation", "rougeL")),
    ("token F1", ("generation", "f1")),
    ("task success", ("task", "success")),
    ("safety declines", ("safety", "decline_rate")),
    ("false declines", ("safety", "false_decline_rate")),
    ("stereotype preferred", ("bias", "pairs", "stereotype_preferred")),
)


@dataclass
class ReportConfig:
    """`chatforge report`: an HTML + Markdown report card of run dirs (curves, lineage, eval results)."""

    runs: list[str] = opt(default_factory=list, help="run dirs (written by pretrain, sft, dpo, ...)", positional=True, required=True, metavar="RUN_DIR")
    out: str = opt("", "HTML file to write (default: RUN/report.html for one run, ./report.html for several); the .md goes beside it")
    title: str = opt("", "title of the report (default: from the run names)")


@dataclass
class Run:
    name: str
    path: Path
    config: dict[str, Any]
    summary: dict[str, Any]
    records: list[dict[str, Any]]
    eval: dict[str, Any]
    lineage: list[tuple[str, str, str]] = field(default_factory=list)  # (role, path, hash)


def _read_json(path: Path) -> dict[str, Any]:
    if not path.is_file():
        return {}
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as e:
        raise UserError(f"{path}: invalid JSON ({e})") from None
    return data if isinstance(data, dict) else {}


def _lineage(config: dict[str, Any], run_dir: Path, eval_results: dict[str, Any]) -> list[tuple[str, str, str]]:
    """The datasets and models a run read and wrote, with their content hashes (and what it was evaluated on)."""
    out = lineage(config, run_dir)
    if eval_results.get("data"):
        d = eval_results["data"]
        out.append(("evaluated on", str(d.get("path", "")), str(d.get("content_hash", ""))))
    return out


def load_run(path: str | Path) -> Run:
    run_dir = Path(path)
    if not run_dir.is_dir():
        raise UserError(f"{run_dir}: no such run dir")
    config = _read_json(run_dir / "config.json")
    results = _read_json(run_dir / "eval.json")
    if not config and not results:
        raise UserError(f"{run_dir}: not a run dir (no config.json or eval.json)")
    return Run(run_dir.resolve().name, run_dir, config, _read_json(run_dir / "summary.json"), read_metrics(run_dir), results, _lineage(config, run_dir, results))


def _get(d: dict[str, Any], path: tuple[str, ...]) -> Any:
    for k in path:
        if not isinstance(d, dict) or k not in d:
            return None
        d = d[k]
    return d


# -- the document, as a list of blocks rendered to HTML and Markdown ---------------------------
#
# ("h", level, text) | ("p", text) | ("table", header, rows) | ("img", name, png bytes, alt) | ("pre", text)


def _blocks(runs: list[Run], title: str) -> list[tuple[Any, ...]]:
    from chatforge.eval.runner import headline

    b: list[tuple[Any, ...]] = [("h", 1, title), ("p", f"Written by chatforge on {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}.")]
    if len(runs) > 1:
        b.append(("h", 2, "Comparison"))
        names = [r.name for r in runs]
        rows: dict[str, list[str]] = {}
        for i, r in enumerate(runs):
            figures = {"stage": str(r.config.get("stage", "")), **dict(_summary_rows(r)), **dict(headline(r.eval))}
            for k, v in figures.items():
                rows.setdefault(k, [""] * len(runs))[i] = v
        b.append(("table", ["", *names], [[k, *v] for k, v in rows.items()]))
        png = compare_png({r.name: r.records for r in runs})
        if png:
            b.append(("img", "compare_loss.png", png, "loss of each run"))
        values: dict[str, dict[str, float]] = {}
        for label, path in BAR_METRICS:
            per = {r.name: float(v) for r in runs if isinstance(v := _get(r.eval, path), int | float)}
            if len(per) > 1:
                values[label] = per
        png = bars_png(values)
        if png:
            b.append(("img", "compare_metrics.png", png, "eval metrics of each run"))
    for r in runs:
        b += _run_blocks(r, level=2)
    return b


def _summary_rows(r: Run) -> list[tuple[str, str]]:
    s = r.summary
    rows = []
    if s.get("params"):
        rows.append(("parameters", f"{s['params'] / 1e6:.2f}M"))
    for key, label, fmt in (
        ("steps", "steps", "{:,}"),
        ("tokens", "tokens", "{:,}"),
        ("final_loss", "final loss", "{:.4f}"),
        ("best_val_loss", "best validation loss", "{:.4f}"),
        ("best_val_bpb", "best validation bits/byte", "{:.4f}"),
        ("tokens_per_s", "tokens/s", "{:,.0f}"),
        ("seconds", "seconds", "{:,.1f}"),
        ("stopped", "stopped", "{}"),
    ):
        if s.get(key) is not None:
            rows.append((label, fmt.format(s[key])))
    return rows


def _run_blocks(r: Run, level: int) -> list[tuple[Any, ...]]:
    from chatforge.eval.runner import headline

    b: list[tuple[Any, ...]] = [("h", level, f"{r.name} ({r.config.get('stage', 'eval')})"), ("p", f"Run dir: {r.path}")]
    if r.summary:
        b += [("h", level + 1, "Training"), ("table", ["", "value"], [list(x) for x in _summary_rows(r)])]
    if r.lineage:
        b += [("h", level + 1, "Lineage"), ("table", ["role", "path", "content hash"], [list(x) for x in r.lineage])]
    png = training_png(r.records, title=r.name)
    if png:
        b += [("h", level + 1, "Curves"), ("img", f"{r.name}_curves.png", png, f"training curves of {r.name}")]
    ev = r.eval
    if ev:
        b += [("h", level + 1, "Evaluation"), ("table", ["metric", "value"], [list(x) for x in headline(ev)])]
        task = ev.get("task")
        if task and task.get("per_intent"):
            b += [("p", "Task success per intent:"), ("table", ["intent", "success"], [[k, f"{v:.3f}"] for k, v in task["per_intent"].items()])]
        saf = ev.get("safety")
        if saf:
            rows = [[k, f"{v:.3f}", "declined (should be 1)" if k != "normal" else "wrongly declined (should be 0)"] for k, v in saf["per_category"].items()]
            b += [("p", "Safety probes:"), ("table", ["requests", "share declined", "expected"], rows)]
        bias = ev.get("bias")
        if bias:
            gen = (bias.get("generation") or {}).get("per_category", {})
            rows = [
                [k, f"{v['stereotype_preferred']:.3f}", f"{gen[k]['max_gap']:.3f}" if k in gen else "-"]
                for k, v in bias["pairs"]["per_category"].items()
            ]
            b += [("p", "Bias probes (ideal: stereotype preferred 0.5, quality gap 0):"), ("table", ["category", "stereotype preferred", "quality gap between groups"], rows)]
        human = ev.get("human")
        if human:
            rows = [[m, f"{v['mean']:.2f}", f"{v['ci95'][0]:.2f}-{v['ci95'][1]:.2f}", str(v["n"])] for m, v in human["ratings"].items()]
            b += [("p", "Human ratings (1-5):"), ("table", ["model", "mean", "95% CI", "n"], rows)]
            if "win_rate" in human:
                w = human["win_rate"]
                b.append(("p", f"{w['model']} preferred over {w['versus']} in {w['rate']:.2f} of {w['n']} comparisons (95% CI {w['ci95'][0]:.2f}-{w['ci95'][1]:.2f})."))
        samples = ev.get("samples") or []
        if samples:
            b += [("p", "Sample replies:"), ("table", ["prompt", "reference", "reply"], [[s["prompt"], s["reference"], s["reply"]] for s in samples])]
    sweep = _read_json(r.path / "sweep.json")
    if sweep:
        b += [("h", level + 1, "Sweep")]
        if sweep.get("best"):
            best = sweep["best"]
            b.append(("p", f"Best: trial {best['number']}, {sweep['metric']} = {best['value']:.4g}, {best['params']} (best.yaml)."))
        rows = [[str(t["number"]), t["state"].lower(), "-" if t["value"] is None else f"{t['value']:.4g}", ", ".join(f"{k}={v:.3g}" if isinstance(v, float) else f"{k}={v}" for k, v in t["params"].items()), t.get("error") or ""] for t in sweep["trials"]]
        b.append(("table", ["trial", "state", sweep["metric"], "params", "error"], rows))
        for name in ("history", "importances", "parallel"):
            plot = r.path / f"sweep_{name}.png"
            if plot.is_file():
                b.append(("img", f"{r.name}_sweep_{name}.png", plot.read_bytes(), f"sweep {name}"))
    learned = _read_json(r.path / "learn.json")
    if learned:
        b += [("h", level + 1, "Learning from feedback")]
        fb = learned.get("feedback") or {}
        b.append(("p", f"Base {learned['base']['version']}; {fb.get('ratings', 0)} ratings curated into {fb.get('sft_rows', 0)} SFT rows (+{fb.get('sft_heldout', 0)} held out) and {fb.get('dpo_pairs', 0)} DPO pairs; dropped: {fb.get('dropped')}."))
        if learned.get("gate"):
            rows = [[c["check"], f"{c['base']:.4f}", f"{c['candidate']:.4f}", c["limit"], "pass" if c["passed"] else "FAIL"] for c in learned["gate"]]
            b.append(("table", ["gate check", "base", "candidate", "limit", "result"], rows))
        verdict = {"registered": f"registered as {learned.get('version')}" + (" and promoted to production" if learned.get("promoted") else " (candidate)"), "rejected": f"rejected: {learned.get('reason')}", "skipped": f"skipped: {learned.get('reason')}"}
        b.append(("p", "Decision: " + verdict.get(learned.get("decision", ""), str(learned.get("decision"))) + "."))
    monitor = _read_json(r.path / "monitor.json")  # `chatforge monitor` writes it
    if monitor.get("periods"):
        b += [("h", level + 1, "Monitoring")]

        def fmt(x: Any, spec: str) -> str:
            return "-" if x is None else format(x, spec)

        rows = [[p["period"], str(p["turns"]), fmt(p["up_rate"], ".0%"), fmt(p["mean_score"], ".2f"), fmt(p["latency_p50"], ".3f"), fmt(p["latency_p95"], ".3f"), fmt(p["decline_rate"], ".1%"), fmt(p["unknown_intent"], ".0%"), fmt(p["input_perplexity"], ".1f"), ", ".join(p["versions"])] for p in monitor["periods"]]
        b.append(("table", ["period", "turns", "up rate", "score", "latency p50 s", "p95 s", "safety declines", "unknown intent", "input perplexity", "versions"], rows))
        b.append(("p", "Flags: " + ("; ".join(f["line"] for f in monitor["flags"]) if monitor.get("flags") else "none (no regression or drift against the first period).")))
        plot = r.path / "monitor.png"
        if plot.is_file():
            b.append(("img", f"{r.name}_monitor.png", plot.read_bytes(), "monitoring figures per period"))
    if r.config:
        b += [("h", level + 1, "Config"), ("pre", json.dumps(r.config, indent=2, ensure_ascii=False))]
    return b


# -- rendering ---------------------------------------------------------------------------------

_CSS = """body{font-family:system-ui,sans-serif;max-width:1100px;margin:2em auto;padding:0 1em;color:#222}
table{border-collapse:collapse;margin:.5em 0 1em}td,th{border:1px solid #ccc;padding:.25em .6em;text-align:left;vertical-align:top;font-size:.92em}
th{background:#f3f3f3}img{max-width:100%}pre{background:#f7f7f7;padding:.8em;overflow:auto;font-size:.85em}h2{border-bottom:1px solid #ddd}"""


def render_html(blocks: list[tuple[Any, ...]]) -> str:
    e = html.escape
    title = next((blk[2] for blk in blocks if blk[0] == "h"), "report")
    parts = [f"<!doctype html><html><head><meta charset='utf-8'><title>{e(title)}</title><style>{_CSS}</style></head><body>"]
    for blk in blocks:
        kind = blk[0]
        if kind == "h":
            parts.append(f"<h{blk[1]}>{e(blk[2])}</h{blk[1]}>")
        elif kind == "p":
            parts.append(f"<p>{e(blk[1])}</p>")
        elif kind == "table":
            head = "".join(f"<th>{e(str(c))}</th>" for c in blk[1])
            body = "".join("<tr>" + "".join(f"<td>{e(str(c))}</td>" for c in row) + "</tr>" for row in blk[2])
            parts.append(f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>")
        elif kind == "img":
            data = base64.b64encode(blk[2]).decode("ascii")
            parts.append(f"<p><img alt='{e(blk[3])}' src='data:image/png;base64,{data}'></p>")
        elif kind == "pre":
            parts.append(f"<details><summary>show</summary><pre>{e(blk[1])}</pre></details>")
    parts.append("</body></html>")
    return "\n".join(parts) + "\n"


def _md_cell(text: str) -> str:
    return " ".join(str(text).split()).replace("|", "\\|")


def render_markdown(blocks: list[tuple[Any, ...]], images_dir: str) -> tuple[str, dict[str, bytes]]:
    """The Markdown text, and the images it links to (file name -> PNG bytes)."""
    lines: list[str] = []
    images: dict[str, bytes] = {}
    for blk in blocks:
        kind = blk[0]
        if kind == "h":
            lines += ["#" * blk[1] + " " + blk[2], ""]
        elif kind == "p":
            lines += [blk[1], ""]
        elif kind == "table":
            lines.append("| " + " | ".join(_md_cell(c) for c in blk[1]) + " |")
            lines.append("|" + "---|" * len(blk[1]))
            lines += ["| " + " | ".join(_md_cell(c) for c in row) + " |" for row in blk[2]]
            lines.append("")
        elif kind == "img":
            images[blk[1]] = blk[2]
            lines += [f"![{blk[3]}]({images_dir}/{blk[1]})", ""]
        elif kind == "pre":
            lines += ["```json", blk[1], "```", ""]
    return "\n".join(lines), images


def main(cfg: ReportConfig, ui: UI = QUIET) -> Path:
    """Write the report; returns the HTML file's path."""
    if not cfg.runs:
        raise UserError("give at least one run dir")
    runs = [load_run(p) for p in cfg.runs]
    title = cfg.title or ("Report card: " + ", ".join(r.name for r in runs))
    out = Path(cfg.out) if cfg.out else (runs[0].path / "report.html" if len(runs) == 1 else Path("report.html"))
    blocks = _blocks(runs, title)
    atomic_write_text(out, render_html(blocks))
    images_dir = out.stem + "_files"
    md, images = render_markdown(blocks, images_dir)
    for name, png in images.items():
        atomic_write_bytes(out.parent / images_dir / name, png)
    atomic_write_text(out.with_suffix(".md"), md)
    ui.note(f"report -> {out} (and {out.with_suffix('.md')})")
    return out
