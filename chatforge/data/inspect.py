"""Look at a dataset: `chatforge data stats DIR` (tables) and `chatforge data show DIR` (rows)."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from typing import Any

from rich.panel import Panel
from rich.table import Table
from rich.text import Text

from chatforge.config import opt
from chatforge.data.dataset import Dataset, open_dataset
from chatforge.ui import QUIET, UI


@dataclass
class StatsConfig:
    """`chatforge data stats`: counts and distributions of a dataset."""

    dataset: str = opt("", "dataset directory", positional=True, required=True, metavar="DIR")
    top: int = opt(20, "how many sources / intents to list", ge=1)


@dataclass
class ShowConfig:
    """`chatforge data show`: pretty-print rows of a dataset."""

    dataset: str = opt("", "dataset directory", positional=True, required=True, metavar="DIR")
    n: int = opt(5, "number of rows to show", ge=0)
    offset: int = opt(0, "index of the first row to show", ge=0)
    max_chars: int = opt(2000, "truncate long texts to this many characters", ge=10)


class _Dist:
    """Streaming summary of a number series: count, total, min, max, and a histogram for the median."""

    def __init__(self) -> None:
        self.counts: Counter[int] = Counter()

    def add(self, x: int) -> None:
        self.counts[x] += 1

    def summary(self) -> dict[str, float]:
        n = sum(self.counts.values())
        if n == 0:
            return {"min": 0, "median": 0, "mean": 0, "max": 0, "total": 0}
        total = sum(k * v for k, v in self.counts.items())
        keys = sorted(self.counts)
        median = (self._at(keys, (n - 1) // 2) + self._at(keys, n // 2)) / 2
        return {"min": keys[0], "median": median, "mean": total / n, "max": keys[-1], "total": total}

    def _at(self, keys: list[int], index: int) -> float:
        """The value at position `index` of the sorted series."""
        seen = 0
        for k in keys:
            seen += self.counts[k]
            if seen > index:
                return float(k)
        return float(keys[-1])


def compute_stats(ds: Dataset) -> dict[str, Any]:
    """Counts and distributions of a dataset, in one streaming pass."""
    sources: Counter[str] = Counter()
    intents: Counter[str] = Counter()
    roles: Counter[str] = Counter()
    role_chars: Counter[str] = Counter()
    turns, chars, prompt_turns, chosen, rejected = _Dist(), _Dist(), _Dist(), _Dist(), _Dist()
    with_system = 0
    words = 0
    for row in ds:
        sources[row["source"]] += 1
        if isinstance(row["meta"].get("intent"), str):
            intents[row["meta"]["intent"]] += 1
        if ds.kind == "conversations":
            msgs = row["messages"]
            turns.add(len(msgs))
            with_system += msgs[0]["role"] == "system"
            chars.add(sum(len(m["content"]) for m in msgs))
            for m in msgs:
                roles[m["role"]] += 1
                role_chars[m["role"]] += len(m["content"])
        elif ds.kind == "text":
            chars.add(len(row["text"]))
            words += len(row["text"].split())
        else:
            prompt_turns.add(len(row["prompt"]))
            chosen.add(len(row["chosen"]))
            rejected.add(len(row["rejected"]))
    out: dict[str, Any] = {
        "path": str(ds.path),
        "kind": ds.kind,
        "rows": ds.num_rows,
        "content_hash": ds.content_hash,
        "sources": dict(sources.most_common()),
        "intents": dict(intents.most_common()),
    }
    if ds.kind == "conversations":
        out.update(
            messages_per_conversation=turns.summary(),
            chars_per_conversation=chars.summary(),
            with_system_prompt=with_system,
            roles=dict(roles),
            mean_chars_by_role={r: role_chars[r] / roles[r] for r in roles},
        )
    elif ds.kind == "text":
        out.update(chars_per_row=chars.summary(), words=words)
    else:
        out.update(
            prompt_messages=prompt_turns.summary(), chosen_chars=chosen.summary(), rejected_chars=rejected.summary()
        )
    return out


def _fmt(x: float) -> str:
    return f"{x:,.1f}" if isinstance(x, float) and not x.is_integer() else f"{int(x):,}"


def stats_main(cfg: StatsConfig, ui: UI = QUIET) -> dict[str, Any]:
    """Run `data stats`: print tables and return the numbers."""
    ds = open_dataset(cfg.dataset)
    s = compute_stats(ds)
    print_stats(ds, s, ui, top=cfg.top)
    return s


def print_stats(ds: Dataset, s: dict[str, Any], ui: UI, *, top: int = 20) -> None:
    """Print the tables of `compute_stats` output."""
    t = Table(title=Text(f"{ds.path} ({ds.kind})"), show_header=False, title_justify="left")
    t.add_row("rows", f"{s['rows']:,}")
    t.add_row("content hash", s["content_hash"][:23] + "…")
    t.add_row("parents", Text(", ".join(p[:15] for p in ds.manifest.get("parents", [])) or "-"))
    t.add_row("created by", Text(str(ds.manifest.get("created_by", {}).get("command", "?"))))
    ui.out.print(t)

    def dist_table(title: str, rows: dict[str, dict[str, float]]) -> Table:
        d = Table(title=title, title_justify="left")
        d.add_column("")
        for col in ("min", "median", "mean", "max", "total"):
            d.add_column(col, justify="right")
        for name, v in rows.items():
            d.add_row(name, *(_fmt(v[c]) for c in ("min", "median", "mean", "max", "total")))
        return d

    if ds.kind == "conversations":
        ui.out.print(
            dist_table(
                "per conversation",
                {"messages": s["messages_per_conversation"], "characters": s["chars_per_conversation"]},
            )
        )
        r = Table(title="roles", title_justify="left")
        for col in ("role", "messages", "mean chars"):
            r.add_column(col, justify="right" if col != "role" else "left")
        for role in ("system", "user", "assistant"):
            if role in s["roles"]:
                r.add_row(role, f"{s['roles'][role]:,}", _fmt(s["mean_chars_by_role"][role]))
        ui.out.print(r)
        share = s["with_system_prompt"] / max(1, s["rows"])
        ui.out.print(Text(f"conversations with a system prompt: {s['with_system_prompt']:,} ({share:.0%})"))
    elif ds.kind == "text":
        ui.out.print(dist_table("per row", {"characters": s["chars_per_row"]}))
        ui.out.print(f"words: {s['words']:,}")
    else:
        ui.out.print(
            dist_table(
                "per pair",
                {"prompt messages": s["prompt_messages"], "chosen chars": s["chosen_chars"], "rejected chars": s["rejected_chars"]},
            )
        )
    for key in ("sources", "intents"):
        if s[key]:
            c = Table(title=key, title_justify="left")
            c.add_column(key[:-1])
            c.add_column("rows", justify="right")
            c.add_column("share", justify="right")
            items = list(s[key].items())
            for name, n in items[:top]:
                c.add_row(Text(name), f"{n:,}", f"{n / max(1, s['rows']):.1%}")
            if len(items) > top:
                rest = sum(n for _, n in items[top:])
                c.add_row(f"({len(items) - top} more)", f"{rest:,}", f"{rest / max(1, s['rows']):.1%}")
            ui.out.print(c)


_ROLE_STYLE = {"system": "magenta", "user": "cyan", "assistant": "green"}


def _clip(text: str, n: int) -> str:
    return text if len(text) <= n else text[:n] + f"… [{len(text) - n:,} more chars]"


def render_row(row: dict[str, Any], kind: str, max_chars: int) -> Panel:
    """A row as a rich Panel (all row text printed literally, never as markup)."""
    body = Text()

    def messages(msgs: list[dict[str, str]]) -> None:
        for m in msgs:
            body.append(f"{m['role']}: ", style=f"bold {_ROLE_STYLE[m['role']]}")
            body.append(_clip(m["content"], max_chars) + "\n")

    if kind == "conversations":
        messages(row["messages"])
    elif kind == "text":
        body.append(_clip(row["text"], max_chars) + "\n")
    else:
        messages(row["prompt"])
        body.append("chosen: ", style="bold green")
        body.append(_clip(row["chosen"], max_chars) + "\n")
        body.append("rejected: ", style="bold red")
        body.append(_clip(row["rejected"], max_chars) + "\n")
    if row["meta"]:
        body.append("meta: " + ", ".join(f"{k}={v}" for k, v in row["meta"].items()), style="dim")
    body.rstrip()
    return Panel(body, title=Text(f"{row['id']}  ·  {row['source']}"), title_align="left")


def show_main(cfg: ShowConfig, ui: UI = QUIET) -> list[dict[str, Any]]:
    """Run `data show`: print rows and return them."""
    ds = open_dataset(cfg.dataset)
    shown: list[dict[str, Any]] = []
    for i, row in enumerate(ds):
        if len(shown) >= cfg.n:
            break
        if i >= cfg.offset:
            shown.append(row)
            ui.out.print(render_row(row, ds.kind, cfg.max_chars))
    if not shown:
        ui.out.print(Text(f"(no rows: the dataset has {ds.num_rows} rows)"))
    return shown

