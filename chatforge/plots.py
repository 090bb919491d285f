"""Pictures of a run: curves from its metrics.jsonl, drawn with matplotlib (Agg, no display).

    plot_training(run_dir)      # -> RUN/curves.png: loss and validation loss, learning rate, tokens/s

Every training stage calls it when it finishes, so a run dir always has a picture of how it
went; later reports reuse the same function.
"""

from __future__ import annotations

import io
from pathlib import Path

from chatforge.atomic import atomic_write_bytes
from chatforge.tracking import read_metrics

CURVES = "curves.png"


def plot_training(run_dir: Path, *, title: str = "") -> Path | None:
    """Draw RUN/curves.png from RUN/metrics.jsonl; None when there is nothing to draw."""
    records = read_metrics(run_dir)
    train = [(m["step"], m["loss"]) for m in records if "loss" in m]
    val = [(m["step"], m["val_loss"]) for m in records if "val_loss" in m]
    if not train and not val:
        return None
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib.figure import Figure

    fig = Figure(figsize=(10, 3.4), dpi=110, layout="constrained")
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
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    path = Path(run_dir) / CURVES
    atomic_write_bytes(path, buf.getvalue())
    return path
