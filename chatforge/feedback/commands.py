"""`chatforge feedback export|stats|import`: the feedback store from the command line.

    chatforge feedback stats --store feedback.db                      # volume and rating rates by model, intent, day
    chatforge feedback export --store feedback.db --format sft --out data/fb-sft   # a dataset for `chatforge sft`
    chatforge feedback export --store feedback.db --format dpo --out data/fb-dpo   # a dataset for `chatforge dpo`
    chatforge feedback export --store feedback.db --format jsonl --out fb.jsonl    # every rating with its turn
    chatforge feedback import old-feedback.jsonl --store feedback.db  # JSONL logs of chatforge before the store

`--store` takes a SQLite file or a database URL (postgresql://...).
"""

from __future__ import annotations

import json
import time
from collections import defaultdict
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

from chatforge import redact
from chatforge.atomic import atomic_write_json, atomic_write_text
from chatforge.config import opt
from chatforge.errors import UserError
from chatforge.ui import QUIET, UI

STORE_HELP = "the feedback store: a SQLite file or a database URL (postgresql://...)"


@dataclass
class FeedbackExportConfig:
    """`chatforge feedback export`: rated replies as training data (sft, dpo) or as JSONL."""

    store: str = opt("feedback.db", STORE_HELP)
    format: Literal["sft", "dpo", "jsonl"] = opt("sft", "sft: corrected and liked replies (a conversations dataset); dpo: better over worse answers (a preferences dataset); jsonl: every rating with its turn")
    out: str = opt("", "output: a dataset dir (sft, dpo) or a .jsonl file", required=True)
    since: str = opt("", "only feedback from this date on (YYYY-MM-DD, UTC)")
    overwrite: bool = opt(False, "replace an existing output")


@dataclass
class FeedbackStatsConfig:
    """`chatforge feedback stats`: how much feedback, and how good, by model version, intent and period."""

    store: str = opt("feedback.db", STORE_HELP)
    by: Literal["model", "intent", "variant"] = opt("model", "group by the model version, the turn's intent or the A/B variant")
    period: Literal["hour", "day", "week", "all"] = opt("day", "time buckets (UTC)")
    since: str = opt("", "only feedback from this date on (YYYY-MM-DD, UTC)")
    out: str = opt("", "also write the table as JSON here")


@dataclass
class FeedbackImportConfig:
    """`chatforge feedback import`: JSONL ratings and conversation logs into the store (all or nothing)."""

    files: list[str] = opt(default_factory=list, help="JSONL files: rating records (completion_id, rating, ...) or turn records (id, messages, replies, ...)", positional=True, required=True, metavar="FILE")
    store: str = opt("feedback.db", STORE_HELP)


def _since(text: str) -> float:
    if not text:
        return 0.0
    try:
        return datetime.strptime(text, "%Y-%m-%d").replace(tzinfo=UTC).timestamp()
    except ValueError:
        raise UserError(f"--since {text!r}: expected a date as YYYY-MM-DD") from None


def _open(where: str) -> Any:
    from chatforge.feedback.store import FeedbackStore

    return FeedbackStore.open(where)


def export_main(cfg: FeedbackExportConfig, ui: UI = QUIET) -> dict[str, Any]:
    from chatforge.data.dataset import write_dataset
    from chatforge.feedback import curate
    from chatforge.feedback.store import store_url

    store = _open(cfg.store)
    since = _since(cfg.since)
    rated = [r for r in store.rated_turns() if r["created"] >= since]
    if cfg.format == "jsonl":
        out = Path(cfg.out)
        if out.exists() and not cfg.overwrite:
            raise UserError(f"{out} exists; pass --overwrite to replace it")
        atomic_write_text(out, "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rated))
        ui.note(f"{len(rated)} ratings -> {out}")
        return {"rows": len(rated), "out": str(out)}
    rows = curate.sft_rows(rated) if cfg.format == "sft" else curate.dpo_rows(rated)
    kind: Any = "conversations" if cfg.format == "sft" else "preferences"
    manifest = write_dataset(
        cfg.out,
        kind,
        rows,
        created_by={"command": "feedback export", "format": cfg.format, "store": redact.url(store_url(cfg.store)), "since": cfg.since},
        overwrite=cfg.overwrite,
        manifest_extra={"feedback": {"ratings": len(rated), "rows": len(rows)}},
    )
    ui.note(f"{len(rated)} ratings -> {len(rows)} {kind} rows in {cfg.out} ({manifest['content_hash'][:19]})")
    return {"rows": len(rows), "ratings": len(rated), "out": cfg.out, "content_hash": manifest["content_hash"]}


def _bucket(t: float, period: str) -> str:
    d = datetime.fromtimestamp(t, UTC)
    if period == "hour":
        return d.strftime("%Y-%m-%d %H:00")
    if period == "day":
        return d.strftime("%Y-%m-%d")
    if period == "week":
        return d.strftime("%G-W%V")
    return "all"


def stats(store: Any, by: str = "model", period: str = "day", since: float = 0.0) -> list[dict[str, Any]]:
    """One row per (period, group): turns, ratings, thumbs up/down, up rate, mean score,
    mean latency and mean token entropy of the stored turns."""
    acc: dict[tuple[str, str], dict[str, Any]] = defaultdict(lambda: {"turns": 0, "ratings": 0, "up": 0, "down": 0, "scores": [], "latency": [], "entropy": []})
    for t in store.turns(since):
        a = acc[(_bucket(t["created"], period), str(t.get(by) or "-"))]
        a["turns"] += 1
        if t.get("latency") is not None:
            a["latency"].append(t["latency"])
        if t.get("entropy_mean") is not None:
            a["entropy"].append(t["entropy_mean"])
    for r in store.rated_turns():
        if r["created"] < since:
            continue
        a = acc[(_bucket(r["created"], period), str(r.get(by) or "-"))]
        a["ratings"] += 1
        a["up"] += r.get("thumb") == 1
        a["down"] += r.get("thumb") == -1
        if r.get("score") is not None:
            a["scores"].append(r["score"])
    rows = []
    for (bucket, group), a in sorted(acc.items()):
        thumbs = a["up"] + a["down"]
        rows.append(
            {
                "period": bucket,
                by: group,
                "turns": a["turns"],
                "ratings": a["ratings"],
                "up": a["up"],
                "down": a["down"],
                "up_rate": a["up"] / thumbs if thumbs else None,
                "mean_score": sum(a["scores"]) / len(a["scores"]) if a["scores"] else None,
                "mean_latency": sum(a["latency"]) / len(a["latency"]) if a["latency"] else None,
                "mean_entropy": sum(a["entropy"]) / len(a["entropy"]) if a["entropy"] else None,
            }
        )
    return rows


def stats_main(cfg: FeedbackStatsConfig, ui: UI = QUIET) -> dict[str, Any]:
    from rich.table import Table

    store = _open(cfg.store)
    rows = stats(store, cfg.by, cfg.period, _since(cfg.since))
    counts = store.counts()
    table = Table(title=f"feedback: {counts['turns']} turns, {counts['ratings']} ratings, {counts['ab_assignments']} A/B assignments", title_justify="left")
    columns = ["period", cfg.by, "turns", "ratings", "up", "down", "up_rate", "mean_score", "mean_latency", "mean_entropy"]
    for c in columns:
        table.add_column(c.replace("_", " "), justify="left" if c in ("period", cfg.by) else "right")
    for r in rows:
        table.add_row(*("-" if r[c] is None else f"{r[c]:.3f}" if isinstance(r[c], float) else str(r[c]) for c in columns))
    ui.out.print(table)
    result = {"counts": counts, "rows": rows}
    if cfg.out:
        atomic_write_json(Path(cfg.out), result)
    return result


def _records(path: str) -> list[tuple[int, dict[str, Any]]]:
    out = []
    try:
        lines = Path(path).read_text(encoding="utf-8").splitlines()
    except OSError as e:
        raise UserError(f"{path}: {e.strerror or e}") from None
    for n, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            rec = json.loads(line)
        except json.JSONDecodeError as e:
            raise UserError(f"{path}:{n}: not JSON ({e.msg})") from None
        if not isinstance(rec, dict):
            raise UserError(f"{path}:{n}: expected a JSON object")
        out.append((n, rec))
    return out


def import_main(cfg: FeedbackImportConfig, ui: UI = QUIET) -> dict[str, Any]:
    """Every line is checked before anything is written; then all go in one transaction."""
    from chatforge.feedback.store import Rating, Turn

    turns: list[Turn] = []
    ratings: list[Rating] = []
    for path in cfg.files:
        for n, rec in _records(path):
            where = f"{path}:{n}"
            try:
                if "completion_id" in rec:
                    value = rec["rating"]
                    r = Rating(
                        turn_id=str(rec["completion_id"]),
                        thumb={"up": 1, "down": -1}.get(value) if isinstance(value, str) else None,
                        score=value if isinstance(value, int) and not isinstance(value, bool) else None,
                        comment=rec.get("comment"),
                        corrected=rec.get("corrected"),
                        messages=rec.get("messages"),
                        reply=rec.get("reply"),
                        model=rec.get("model"),
                        created=float(rec.get("time") or time.time()),
                    )
                    r.check()
                    ratings.append(r)
                elif "id" in rec and "messages" in rec:
                    replies = rec.get("replies") or [rec.get("reply") or ""]
                    usage = rec.get("usage") or {}
                    for i, reply in enumerate(replies):
                        turns.append(
                            Turn(
                                id=str(rec["id"]) if i == 0 else f"{rec['id']}.{i}",
                                model=str(rec.get("model") or "unknown"),
                                messages=[{"role": str(m["role"]), "content": str(m["content"])} for m in rec["messages"]],
                                reply=str(reply),
                                kind=str(rec.get("kind") or "chat"),
                                created=float(rec.get("time") or time.time()),
                                latency=rec.get("seconds"),
                                prompt_tokens=usage.get("prompt_tokens"),
                            )
                        )
                else:
                    raise UserError("neither a rating (completion_id, rating) nor a turn (id, messages, replies)")
            except UserError as e:
                raise UserError(f"{where}: {e}") from None
            except (KeyError, TypeError, ValueError) as e:
                raise UserError(f"{where}: bad record ({type(e).__name__}: {e})") from None
    store = _open(cfg.store)
    store.add_many(turns, ratings)
    ui.note(f"imported {len(turns)} turns and {len(ratings)} ratings into {redact.url(cfg.store)}")
    return {"turns": len(turns), "ratings": len(ratings)}


@dataclass
class FeedbackReviewConfig:
    """`chatforge feedback review`: the replies the model was least sure of, as a CSV for a person to correct (and read back with --read)."""

    store: str = opt("feedback.db", STORE_HELP)
    out: str = opt("review.csv", "the sheet to write")
    read: str = opt("", "read a filled-in sheet back instead: its corrections and ratings go into the store")
    items: int = opt(50, "replies to put on the sheet", ge=1)
    by: Literal["entropy", "logprob"] = opt("entropy", "uncertainty: the highest mean token entropy, or the lowest mean token log probability")
    since: str = opt("", "only turns from this date on (YYYY-MM-DD, UTC)")
    overwrite: bool = opt(False, "replace an existing sheet")


REVIEW_COLUMNS = ["turn_id", "model", "intent", "uncertainty", "conversation", "reply", "corrected", "rating"]


def review_rows(store: Any, n: int, by: str = "entropy", since: float = 0.0) -> list[dict[str, Any]]:
    """The `n` most uncertain stored turns that nobody has corrected yet (active learning:
    a person's time goes where the model knows least)."""
    corrected = {r["turn_id"] for r in store.ratings() if r.get("corrected")}
    scored = []
    for t in store.turns(since):
        if t["id"] in corrected or t.get("finish_reason") == "content_filter":
            continue
        value = t.get("entropy_mean") if by == "entropy" else t.get("logprob_mean")
        if value is None:
            continue
        scored.append((value if by == "entropy" else -value, t))
    scored.sort(key=lambda x: (-x[0], x[1]["id"]))
    return [
        {
            "turn_id": t["id"],
            "model": t["model"],
            "intent": t.get("intent") or "",
            "uncertainty": f"{u:.4f}",
            "conversation": "\n".join(f"{m['role']}: {m['content']}" for m in t["messages"]),
            "reply": t["reply"],
            "corrected": "",
            "rating": "",
        }
        for u, t in scored[:n]
    ]


def review_main(cfg: FeedbackReviewConfig, ui: UI = QUIET) -> dict[str, Any]:
    import csv
    import io

    from chatforge.feedback.store import Rating

    store = _open(cfg.store)
    if not cfg.read:
        rows = review_rows(store, cfg.items, cfg.by, _since(cfg.since))
        out = Path(cfg.out)
        if out.exists() and not cfg.overwrite:
            raise UserError(f"{out} exists; pass --overwrite to replace it")
        buf = io.StringIO()
        w = csv.DictWriter(buf, fieldnames=REVIEW_COLUMNS)
        w.writeheader()
        w.writerows(rows)
        atomic_write_text(out, buf.getvalue())
        ui.note(f"{len(rows)} replies to review -> {out} (fill in `corrected` and/or `rating` (up, down, 1-5), then: chatforge feedback review --read {out})")
        return {"rows": len(rows), "out": str(out)}
    try:
        text = Path(cfg.read).read_text(encoding="utf-8-sig")
    except OSError as e:
        raise UserError(f"{cfg.read}: {e.strerror or e}") from None
    reader = csv.DictReader(io.StringIO(text))
    missing = {"turn_id", "corrected", "rating"} - set(reader.fieldnames or [])
    if missing:
        raise UserError(f"{cfg.read}: missing column(s) {', '.join(sorted(missing))}")
    ratings: list[Rating] = []
    for n, row in enumerate(reader, 2):  # line 1 is the header
        corrected, value = (row.get("corrected") or "").strip(), (row.get("rating") or "").strip().lower()
        if not corrected and not value:
            continue
        thumb = score = None
        if value in ("up", "down", "+1", "-1"):
            thumb = 1 if value in ("up", "+1") else -1
        elif value:
            if not value.isdigit() or not 1 <= int(value) <= 5:
                raise UserError(f"{cfg.read}:{n}: rating {value!r}; expected up, down or 1-5")
            score = int(value)
        elif corrected:
            thumb = -1  # a correction says the reply was not right
        ratings.append(Rating(turn_id=row["turn_id"], thumb=thumb, score=score, corrected=corrected or None, comment="review"))
    store.add_many([], ratings)
    ui.note(f"{len(ratings)} reviewed replies -> {redact.url(cfg.store)}")
    return {"ratings": len(ratings)}
