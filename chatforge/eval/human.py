"""Human evaluation: a blind rating sheet out, ratings back in.

    chatforge eval human-export --model runs/sft/model --compare runs/dpo/model --data data/splits/test --out rate
        -> rate.csv        what raters see: each conversation with two answers, "A" and "B",
                           in random order per item, and empty rating columns
           rate.key.json   which model wrote A and B of each item (keep it from the raters)
    chatforge eval human-import --ratings rate.csv --key rate.key.json [--into runs/sft/eval.json]

Raters fill `rating_a` / `rating_b` with 1-5 (blank = not rated) and `preferred` with A,
B or tie. The import gives each model's mean rating with a 95% bootstrap confidence
interval and, for two models, the first model's win rate (ties count half) with a
Wilson interval; it writes them into an eval results file (`--into`) or next to the
ratings. With one model there is one answer column.
"""

from __future__ import annotations

import csv
import json
import random
from pathlib import Path
from typing import Any

from chatforge.atomic import atomic_open, atomic_write_json
from chatforge.errors import UserError
from chatforge.eval import metrics as M
from chatforge.eval.config import HumanExportConfig, HumanImportConfig
from chatforge.ui import QUIET, UI

FIELDS_TWO = ["item", "conversation", "answer_a", "answer_b", "rating_a", "rating_b", "preferred", "comment"]
FIELDS_ONE = ["item", "conversation", "answer_a", "rating_a", "comment"]


def _conversation_text(messages: list[dict[str, Any]]) -> str:
    return "\n".join(f"{m['role']}: {m['content']}" for m in messages)


def export_main(cfg: HumanExportConfig, ui: UI = QUIET) -> dict[str, Any]:
    """Write the rating sheet and its key; returns the key."""
    from chatforge.engine import Sampling
    from chatforge.eval.runner import load, reply, test_rows

    rows = test_rows(cfg.data, 0)
    rng = random.Random(cfg.seed)
    rows = rng.sample(rows, min(cfg.items, len(rows)))
    models = [cfg.model] + ([cfg.compare] if cfg.compare else [])
    greedy = Sampling(temperature=0, max_tokens=cfg.max_tokens)
    answers: list[list[str]] = []
    with ui.progress("answers", total=len(rows) * len(models), unit="items") as advance:
        for path in models:
            engine = load(path)
            got = []
            for row in rows:
                got.append(reply(engine, row["messages"][:-1], greedy).text)
                advance(1)
            answers.append(got)
    out = Path(cfg.out)
    sheet, key_path = out.with_name(out.name + ".csv"), out.with_name(out.name + ".key.json")
    key: dict[str, Any] = {"models": models, "data": cfg.data, "items": {}}
    with atomic_open(sheet, "w", encoding="utf-8") as f:
        w = csv.DictWriter(f, fieldnames=FIELDS_TWO if cfg.compare else FIELDS_ONE)
        w.writeheader()
        for i, row in enumerate(rows):
            item = f"item-{i + 1:04d}"
            order = [0, 1] if cfg.compare else [0]
            rng.shuffle(order)  # which model is "A" changes from item to item
            key["items"][item] = {"id": row["id"], "a": models[order[0]], **({"b": models[order[1]]} if cfg.compare else {})}
            line = {"item": item, "conversation": _conversation_text(row["messages"][:-1]), "answer_a": answers[order[0]][i]}
            if cfg.compare:
                line["answer_b"] = answers[order[1]][i]
            w.writerow(line)
    atomic_write_json(key_path, key)
    ui.note(f"{len(rows)} items to rate -> {sheet} (keep {key_path} from the raters)")
    return key


def _rating(value: str, where: str) -> int | None:
    value = value.strip()
    if not value:
        return None
    if value not in {"1", "2", "3", "4", "5"}:
        raise UserError(f"{where}: rating {value!r}; expected a whole number 1-5 or blank")
    return int(value)


def read_ratings(path: Path, key: dict[str, Any]) -> tuple[dict[str, list[int]], list[float]]:
    """Ratings per model and, for two models, the first model's score per preference (1 win, 0.5 tie, 0 loss)."""
    models = key["models"]
    by_model: dict[str, list[int]] = {m: [] for m in models}
    wins: list[float] = []
    try:
        f = open(path, encoding="utf-8", newline="")  # noqa: SIM115 - closed below
    except OSError as e:
        raise UserError(f"{path}: cannot read: {e.strerror or e}") from None
    with f:
        reader = csv.DictReader(f)
        need = {"item", "rating_a"} | ({"rating_b", "preferred"} if len(models) > 1 else set())
        missing = need - set(reader.fieldnames or [])
        if missing:
            raise UserError(f"{path}: missing column(s) {', '.join(sorted(missing))}; is this the sheet human-export wrote?")
        start = reader.line_num + 1  # cells may span lines: name the line a record starts on
        for row in reader:
            where = f"{path}:{start} ({row.get('item')})"
            start = reader.line_num + 1
            item = key["items"].get(row["item"])
            if item is None:
                raise UserError(f"{where}: item {row['item']!r} is not in the key file")
            for col, side in (("rating_a", "a"), ("rating_b", "b")):
                if side in item:
                    r = _rating(row.get(col) or "", f"{where}: {col}")
                    if r is not None:
                        by_model[item[side]].append(r)
            if len(models) > 1:
                pref = (row.get("preferred") or "").strip().lower()
                if pref not in {"", "a", "b", "tie"}:
                    raise UserError(f"{where}: preferred {row['preferred']!r}; expected A, B, tie or blank")
                if pref == "tie":
                    wins.append(0.5)
                elif pref:
                    wins.append(1.0 if item[pref] == models[0] else 0.0)
    return by_model, wins


def summarize_ratings(by_model: dict[str, list[int]], wins: list[float], models: list[str]) -> dict[str, Any]:
    out: dict[str, Any] = {"ratings": {}}
    for m in models:
        mean, lo, hi = M.mean_ci([float(r) for r in by_model[m]])
        out["ratings"][m] = {"n": len(by_model[m]), "mean": mean, "ci95": [lo, hi]}
    if len(models) > 1:
        lo, hi = M.wilson(sum(wins), len(wins))
        out["win_rate"] = {"model": models[0], "versus": models[1], "n": len(wins), "rate": sum(wins) / len(wins) if wins else float("nan"), "ci95": [lo, hi]}
    return out


def import_main(cfg: HumanImportConfig, ui: UI = QUIET) -> dict[str, Any]:
    """Read the ratings; add their summary to the eval results (`--into`) or write it next to them."""
    try:
        key = json.loads(Path(cfg.key).read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as e:
        raise UserError(f"{cfg.key}: cannot read the key file: {e}") from None
    if not isinstance(key, dict) or not isinstance(key.get("items"), dict) or not key.get("models"):
        raise UserError(f"{cfg.key}: not a key file written by `chatforge eval human-export`")
    by_model, wins = read_ratings(Path(cfg.ratings), key)
    summary = summarize_ratings(by_model, wins, key["models"])
    target = Path(cfg.into) if cfg.into else Path(cfg.ratings).with_suffix(".results.json")
    results: dict[str, Any] = {}
    if cfg.into and target.is_file():
        try:
            results = json.loads(target.read_text(encoding="utf-8"))
        except json.JSONDecodeError as e:
            raise UserError(f"{target}: not valid JSON ({e}); nothing was changed") from None
    results["human"] = summary
    atomic_write_json(target, results)
    for m, r in summary["ratings"].items():
        ui.note(f"{m}: mean rating {r['mean']:.2f} (95% CI {r['ci95'][0]:.2f}-{r['ci95'][1]:.2f}, n={r['n']})")
    if "win_rate" in summary:
        w = summary["win_rate"]
        ui.note(f"{w['model']} preferred over {w['versus']}: {w['rate']:.2f} (95% CI {w['ci95'][0]:.2f}-{w['ci95'][1]:.2f}, n={w['n']})")
    ui.note(f"-> {target}")
    return summary
