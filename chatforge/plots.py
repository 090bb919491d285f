"""Pictures of runs, drawn with matplotlib (Agg, no display), as PNG bytes or files.

    plot_training(run_dir)          # -> RUN/curves.png: loss and validation loss, learning rate, tokens/s
    training_png(records)           # the same picture as PNG bytes (the report embeds it)
    compare_png(curves)             # validation (or training) loss of several runs on one axis
    bars_png(values)                # one bar per run for each metric (the report's comparison)

Every training stage calls `plot_training` when it finishes, so a run dir always has a
picture of how it went; `chatforge report` reuses the same functions.
"""

from __future__ import annotations

import io
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from chatforge.atomic import atomic_write_bytes
from chatforge.tracking import read_metrics

CURVES = "curves.png"


def _figure(width: float, height: float) -> Any:
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib.figure import Figure

    return Figure(figsize=(width, height), dpi=110, layout="constrained")


def _png(fig: Any) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    return buf.getvalue()


def training_png(records: Sequence[Mapping[str, Any]], *, title: str = "") -> bytes | None:
    """Loss and validation loss, learning rate and tokens/s over steps; None when there is nothing to draw."""
    train = [(m["step"], m["loss"]) for m in records if "loss" in m]
    val = [(m["step"], m["val_loss"]) for m in records if "val_loss" in m]
    if not train and not val:
        return None
    fig = _figure(10, 3.4)
    ax_loss, ax_lr, ax_speed = fig.subplots(1, 3)
    if train:
        ax_loss.plot(*zip(*train, strict=True), label="train", linewidth=1.2)
    if val:
        ax_loss.plot(*zip(*val, strict=True), "o-", label="validation", linewidth=1.2, markersize=3)
    ax_loss.set(xlabel="step", ylabel="loss (nats/token)", title="loss")
    ax_loss.legend()
    ax_loss.grid(alpha=0.3)
    for ax, key, name in ((ax_lr, "lr", "learning rate"), (ax_speed, "tok_per_s", "tokens/s")):
        points = [(m["step"], m[key]) for m in records if key in m]
        if points:
            ax.plot(*zip(*points, strict=True), linewidth=1.2)
        ax.set(xlabel="step", title=name)
        ax.grid(alpha=0.3)
    if title:
        fig.suptitle(title)
    return _png(fig)


def plot_training(run_dir: Path, *, title: str = "") -> Path | None:
    """Draw RUN/curves.png from RUN/metrics.jsonl; None when there is nothing to draw."""
    png = training_png(read_metrics(run_dir), title=title)
    if png is None:
        return None
    path = Path(run_dir) / CURVES
    atomic_write_bytes(path, png)
    return path


def compare_png(curves: Mapping[str, Sequence[Mapping[str, Any]]]) -> bytes | None:
    """Validation loss (training loss where a run has none) of several runs, one line each."""
    fig = _figure(7, 3.6)
    ax = fig.subplots()
    drawn = 0
    for name, records in curves.items():
        key = "val_loss" if any("val_loss" in m for m in records) else "loss"
        points = [(m["step"], m[key]) for m in records if key in m]
        if points:
            style = "o-" if key == "val_loss" else "-"
            ax.plot(*zip(*points, strict=True), style, label=f"{name} ({'validation' if key == 'val_loss' else 'train'})", linewidth=1.2, markersize=3)
            drawn += 1
    if not drawn:
        return None
    ax.set(xlabel="step", ylabel="loss (nats/token)", title="loss by run")
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3)
    return _png(fig)


def bars_png(values: Mapping[str, Mapping[str, float]]) -> bytes | None:
    """values[metric][run] -> one small bar chart per metric, the runs side by side."""
    metrics = [m for m, per_run in values.items() if per_run]
    if not metrics:
        return None
    cols = min(4, len(metrics))
    rows = -(-len(metrics) // cols)
    fig = _figure(2.8 * cols, 2.6 * rows)
    axes = fig.subplots(rows, cols, squeeze=False)
    for ax, metric in zip(axes.flat, metrics, strict=False):
        runs = list(values[metric])
        ax.bar(range(len(runs)), [values[metric][r] for r in runs], color=[f"C{i}" for i in range(len(runs))])
        ax.set_xticks(range(len(runs)), runs, rotation=30, ha="right", fontsize=8)
        ax.set_title(metric, fontsize=9)
        ax.grid(alpha=0.3, axis="y")
    for ax in list(axes.flat)[len(metrics) :]:
        ax.set_visible(False)
    return _png(fig)


MONITOR_PANELS = (
    ("thumbs-up rate", ("up_rate",), "thumbs-up rate"),
    ("latency (s)", ("latency_p50", "latency_p95"), "latency p95"),
    ("safety declines", ("decline_rate",), "safety declines"),
    ("unknown-intent share", ("unknown_intent",), "unknown intents"),
    ("input perplexity", ("input_perplexity",), "input perplexity"),
    ("reply entropy (nats)", ("reply_entropy",), ""),
)


def monitor_png(periods: Sequence[Mapping[str, Any]], flags: Sequence[Mapping[str, Any]] = ()) -> bytes | None:
    """`chatforge monitor`'s figures over its periods, one panel each; flagged periods marked with a red x."""
    if not periods:
        return None
    labels = [str(p["period"]) for p in periods]
    fig = _figure(11, 5.6)
    axes = fig.subplots(2, 3)
    for ax, (title, keys, figure) in zip(axes.flat, MONITOR_PANELS, strict=True):
        for key in keys:
            points = [(i, p[key]) for i, p in enumerate(periods) if p.get(key) is not None]
            if points:
                ax.plot(*zip(*points, strict=True), "o-", label=key.replace("latency_", ""), linewidth=1.2, markersize=3)
        bad = [(labels.index(str(f["period"])), f["value"]) for f in flags if f.get("figure") == figure and str(f["period"]) in labels]
        if bad:
            ax.plot(*zip(*bad, strict=True), "x", color="red", markersize=9, markeredgewidth=2, label="flagged")
        if len(keys) > 1 or bad:
            ax.legend(fontsize=7)
        ax.set_title(title, fontsize=9)
        ax.set_xticks(range(len(labels)), labels, rotation=30, ha="right", fontsize=7)
        ax.grid(alpha=0.3)
    return _png(fig)
