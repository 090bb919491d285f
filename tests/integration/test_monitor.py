"""`chatforge monitor` on a store filled with known turns and ratings: the figures of each
period, the flags (and no flag for a healthy or a too-small period), the files it writes and
the report that shows them."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import numpy as np
import pytest
from test_cli import cf  # same directory: pytest puts it on sys.path

from chatforge.data.dataset import write_dataset
from chatforge.feedback.monitor import MonitorConfig, Unigram, flags, periods
from chatforge.feedback.store import FeedbackStore, Rating, Turn, store_url

DAY0 = datetime(2026, 5, 1, 12, tzinfo=UTC).timestamp()
SUPPORT = ["where is my order", "I want to return my shoes", "how do I track my parcel", "can I change my delivery address", "my order arrived damaged"]
OFF_TOPIC = ["explain quantum chromodynamics briefly", "write a sonnet about volcanoes", "best blockchain mining rig specs"]


def day(store: FeedbackStore, n: int, *, turns: int, up: int, down: int, latency: float, declines: int = 0, unknown: int = 0, texts: list[str] = SUPPORT, entropy: float = 1.0) -> list[float]:
    """`turns` turns on day `n` (the first `unknown` without an intent, the last `declines`
    refused), `up` + `down` of them rated; their latencies, returned."""
    t0 = DAY0 + n * 86400
    lat = [latency * (1 + i / turns) for i in range(turns)]
    new_turns, ratings = [], []
    for i in range(turns):
        tid = f"d{n}-{i}"
        new_turns.append(Turn(id=tid, model=f"v{1 + n // 2}", messages=[{"role": "user", "content": texts[i % len(texts)]}], reply="ok", created=t0 + i, latency=lat[i], entropy_mean=entropy, intent=None if i < unknown else "order_status", finish_reason="content_filter" if i >= turns - declines else "stop"))
        if i < up + down:
            ratings.append(Rating(tid, thumb=1 if i < up else -1, score=4 if i < up else 2, created=t0 + i + 0.5))
    store.add_many(new_turns, ratings)
    return lat


@pytest.fixture
def store(tmp_path):
    s = FeedbackStore(store_url(tmp_path / "fb.db"), anonymize=False)
    lat = [
        day(s, 0, turns=40, up=24, down=6, latency=0.1),  # the reference: 80% up
        day(s, 1, turns=40, up=23, down=7, latency=0.11),  # healthy: 77% up, p95 +10%
        day(s, 2, turns=40, up=12, down=18, latency=0.3, declines=4, unknown=20, texts=OFF_TOPIC, entropy=2.5),  # everything worse
        day(s, 3, turns=5, up=0, down=5, latency=9.0, declines=5),  # too few turns to flag
    ]
    return s, lat


def test_figures_and_flags_per_period(store):
    s, lat = store
    rows, ref = periods(s, "day")
    assert [r["period"] for r in rows] == ["2026-05-01", "2026-05-02", "2026-05-03", "2026-05-04"]
    assert [(r["turns"], r["up"], r["down"]) for r in rows] == [(40, 24, 6), (40, 23, 7), (40, 12, 18), (5, 0, 5)]
    assert [r["up_rate"] for r in rows] == pytest.approx([0.8, 23 / 30, 0.4, 0.0])
    assert rows[0]["mean_score"] == pytest.approx((24 * 4 + 6 * 2) / 30)
    for r, values in zip(rows, lat, strict=True):
        assert (r["latency_p50"], r["latency_p95"]) == pytest.approx((np.percentile(values, 50), np.percentile(values, 95)))
    assert [r["decline_rate"] for r in rows] == pytest.approx([0, 0, 0.1, 1.0])
    assert [r["unknown_intent"] for r in rows] == pytest.approx([0, 0, 0.5, 0])
    assert [r["reply_entropy"] for r in rows] == pytest.approx([1.0, 1.0, 2.5, 1.0])
    assert rows[0]["versions"] == {"v1": 40} and rows[2]["versions"] == {"v2": 40}
    # input perplexity: a unigram of the first day's even-numbered user messages, the reference
    # on its odd-numbered ones; the same support questions stay near it, off-topic ones do not
    texts = [SUPPORT[i % 5] for i in range(40)]
    lm = Unigram(texts[0::2])
    assert ref["perplexity"] == pytest.approx(lm.perplexity(texts[1::2])) and ref["source"].startswith("the first period")
    assert rows[1]["input_perplexity"] == pytest.approx(lm.perplexity(texts))
    assert rows[2]["input_perplexity"] == pytest.approx(lm.denominator)  # every word unseen
    found = flags(rows, ref, MonitorConfig())
    assert {(f["period"], f["kind"], f["figure"]) for f in found} == {
        ("2026-05-03", "regression", "thumbs-up rate"),
        ("2026-05-03", "regression", "latency p95"),
        ("2026-05-03", "regression", "safety declines"),
        ("2026-05-03", "drift", "unknown intents"),
        ("2026-05-03", "drift", "input perplexity"),
    }
    up = next(f for f in found if f["figure"] == "thumbs-up rate")
    assert up["line"] == "REGRESSION 2026-05-03: thumbs-up rate 80% -> 40% (-40.0 points; limit -10 points)"
    # looser limits: nothing flagged
    loose = MonitorConfig(max_up_drop=50, max_p95_rise=500, max_decline_rise=20, max_unknown_rise=60, max_perplexity_rise=10_000)
    assert flags(rows, ref, loose) == []


def test_the_command_writes_a_run_dir_the_report_shows(store, tmp_path):
    db = str(tmp_path / "fb.db")
    data = tmp_path / "train"
    write_dataset(data, "conversations", [{"id": str(i), "messages": [{"role": "user", "content": t}, {"role": "assistant", "content": "sure"}], "source": "t", "meta": {}} for i, t in enumerate(SUPPORT * 4)], created_by={"test": True})
    out = tmp_path / "mon"
    p = cf("monitor", "--store", db, "--period", "day", "--baseline-data", str(data), "--out", str(out))
    assert "REGRESSION 2026-05-03: thumbs-up rate 80% -> 40%" in p.stdout
    assert "DRIFT 2026-05-03: input perplexity" in p.stdout and "--baseline-data" in p.stdout
    result = json.loads((out / "monitor.json").read_text())
    assert result["reference"]["source"] == "--baseline-data" and result["reference"]["texts"] == 20
    assert len(result["periods"]) == 4 and len(result["flags"]) == 5
    assert (out / "monitor.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert json.loads((out / "config.json").read_text())["stage"] == "monitor"
    assert len((out / "metrics.jsonl").read_text().splitlines()) == 4
    cf("report", str(out))
    html = (out / "report.html").read_text()
    assert "Monitoring" in html and "REGRESSION 2026-05-03" in html and "data:image/png;base64" in html
    bad = cf("monitor", "--store", str(tmp_path / "empty.db"), "--out", str(tmp_path / "m2"), check=False)
    assert bad.returncode == 2 and "no turns or ratings" in bad.stderr
