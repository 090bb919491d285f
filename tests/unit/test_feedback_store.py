"""The feedback store on a real SQLite file: CRUD, PII never on disk, schema upgrades, A/B
assignment, the curation rules and the stats."""

from __future__ import annotations

import json
import sqlite3
import time
from pathlib import Path

import pytest
import sqlalchemy as sa

from chatforge.errors import UserError
from chatforge.feedback import curate
from chatforge.feedback.commands import stats
from chatforge.feedback.store import (
    SCHEMA_VERSION,
    FeedbackStore,
    Rating,
    Turn,
    hash_user,
    pick_variant,
    store_url,
    upgrade,
    version_of,
)

CANARY_EMAIL = "zq.canary.7781@example.org"
CANARY_PHONE = "+1 415 555 0199"


def user(text):
    return [{"role": "user", "content": text}]


@pytest.fixture(params=["sqlite", "postgres"])
def where(request, tmp_path):
    """The store's location: a SQLite file, or a fresh PostgreSQL database (skipped without a server)."""
    if request.param == "sqlite":
        return str(tmp_path / "fb.db")
    return request.getfixturevalue("postgres_url")


def raw_bytes(db):
    """Everything SQLite has on disk for the store: the file and its write-ahead log."""
    return b"".join(p.read_bytes() for p in db.parent.glob(db.name + "*"))


def test_turns_and_ratings_round_trip_and_pii_never_reaches_the_disk(where):
    store = FeedbackStore.open(where)
    store.add_turn(Turn(id="c1", model="v1", messages=user(f"I'm at {CANARY_EMAIL}, call {CANARY_PHONE}"), reply=f"Noted, {CANARY_EMAIL}.", user="alice", intent="refund", latency=0.2, logprob_mean=-1.5, entropy_mean=float("nan")))
    store.add_turn(Turn(id="c1", model="v1", messages=user("again"), reply="duplicate id: ignored"))
    rid = store.add_rating(Rating(turn_id="c1", thumb=-1, comment=f"mail me at {CANARY_EMAIL}", corrected="We refund within 5 days.", user="alice"))
    assert rid == 1
    (t,) = store.turns()
    assert t["messages"] == user("I'm at <EMAIL_1>, call <PHONE_1>") and t["reply"] == "Noted, <EMAIL_1>."  # one registry per record
    assert t["user"] == hash_user("alice") != "alice" and t["entropy_mean"] is None and t["intent"] == "refund"
    (r,) = store.rated_turns()
    assert r["model"] == "v1" and r["intent"] == "refund" and r["messages"] == t["messages"] and r["comment"] == "mail me at <EMAIL_1>"
    assert store.counts() == {"turns": 1, "ratings": 1, "ab_assignments": 0}
    store.close()
    if "://" not in where:
        db = Path(where)
        data = raw_bytes(db)
        assert CANARY_EMAIL.encode() not in data and b"555 0199" not in data and b"alice" not in data
        with sqlite3.connect(db) as c:
            assert c.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    else:
        with sa.create_engine(where).connect() as c:  # every text column of every row
            dump = json.dumps([list(r) for t in ("turns", "ratings") for r in c.exec_driver_sql(f"SELECT * FROM {t}")], default=str)
        assert CANARY_EMAIL not in dump and "555 0199" not in dump and "alice" not in dump


def test_a_rating_needs_a_thumb_or_a_score(tmp_path):
    store = FeedbackStore.open(tmp_path / "fb.db")
    for bad, field in [(Rating("x"), "needs a thumb"), (Rating("x", thumb=2), "thumb"), (Rating("x", score=6), "score")]:
        with pytest.raises(UserError, match=field):
            store.add_rating(bad)
    assert store.counts()["ratings"] == 0


def test_a_store_of_the_previous_schema_upgrades_without_losing_feedback(where):
    db = where
    engine = sa.create_engine(store_url(db))
    assert upgrade(engine, target=1) == 1  # what chatforge's first store created
    with engine.begin() as c:
        c.exec_driver_sql("INSERT INTO turns (id, created, model, kind, messages, reply) VALUES ('t1', 1.0, 'v0', 'chat', '[{\"role\": \"user\", \"content\": \"hi\"}]', 'hello')")
        c.exec_driver_sql("INSERT INTO ratings (turn_id, created, thumb) VALUES ('t1', 2.0, 1)")
        assert "variant" not in {col["name"] for col in sa.inspect(c).get_columns("turns")}
    engine.dispose()
    store = FeedbackStore.open(db)
    assert version_of(store.engine) == SCHEMA_VERSION == 3
    (r,) = store.rated_turns()
    assert (r["turn_id"], r["thumb"], r["model"], r["reply"], r["variant"], r["experiment"]) == ("t1", 1, "v0", "hello", None, None)
    assert store.assign("bob", "exp", {"A": 1.0}) == "A"
    FeedbackStore.open(db)  # opening again is a no-op
    assert version_of(store.engine) == 3


def test_a_store_from_a_newer_chatforge_is_refused(where):
    db = where
    FeedbackStore.open(db).close()
    with sa.create_engine(store_url(db)).begin() as c:
        c.exec_driver_sql("UPDATE schema_version SET version = 99")
    with pytest.raises(UserError, match="schema version 99"):
        FeedbackStore.open(db)


def test_ab_assignment_is_sticky_and_follows_the_split(where):
    store = FeedbackStore.open(where)
    split = {"A": 0.9, "B": 0.1}
    got = [pick_variant(hash_user(f"user-{i}") or "", "exp1", split) for i in range(10_000)]
    assert abs(got.count("B") / len(got) - 0.1) <= 0.015
    # another experiment draws independently of this one
    other = [pick_variant(hash_user(f"user-{i}") or "", "exp2", {"A": 0.5, "B": 0.5}) for i in range(2_000)]
    assert 0.45 < other.count("A") / 2000 < 0.55
    first = {u: store.assign(u, "exp1", split) for u in (f"u{i}" for i in range(200))}
    assert {u: store.assign(u, "exp1", {"A": 0.0, "B": 1.0}) for u in first} == first  # sticky when the split changes
    with pytest.raises(UserError, match="weights"):
        store.assign("new-user", "exp3", {"A": 0.0})


def _rated(rid, prompt, reply, thumb=None, score=None, corrected=None):
    return {"turn_id": rid, "messages": user(prompt), "reply": reply, "thumb": thumb, "score": score, "corrected": corrected, "model": "v1"}


def test_curation_rules():
    rated = [
        _rated("a", "Where is my order?", "No idea.", thumb=-1, corrected="It ships tomorrow."),
        _rated("b", "Where is my order?", "It is on its way.", thumb=1),
        _rated("c", "Where is my order?", "Dunno.", score=1),
        _rated("d", "Refund?", "Within 5 days.", score=5),
        _rated("e", "Refund?", "Within 5 days.", score=5),  # the same row again
        _rated("f", "Hi", "Hello", score=3),  # neither liked nor disliked
        {**_rated("g", "x", "y", thumb=1), "messages": None},  # no prompt: nothing to learn from
    ]
    sft = curate.sft_rows(rated)
    assert sorted(r["messages"][-1]["content"] for r in sft) == ["It is on its way.", "It ships tomorrow.", "Within 5 days."]
    assert all(r["messages"][-1]["role"] == "assistant" and r["source"] == "feedback" for r in sft)
    pairs = {(p["chosen"], p["rejected"]) for p in curate.dpo_rows(rated)}
    assert pairs == {
        ("It ships tomorrow.", "No idea."),
        ("It ships tomorrow.", "Dunno."),
        ("It is on its way.", "No idea."),
        ("It is on its way.", "Dunno."),
    }


def test_stats_by_model_and_period(tmp_path):
    store = FeedbackStore.open(tmp_path / "s.db", anonymize=False)
    day1, day2 = time.mktime((2026, 3, 1, 12, 0, 0, 0, 0, 0)), time.mktime((2026, 3, 2, 12, 0, 0, 0, 0, 0))
    for i, (model, created, latency) in enumerate([("v1", day1, 0.1), ("v1", day1, 0.3), ("v2", day2, 0.2)]):
        store.add_turn(Turn(id=f"t{i}", model=model, messages=user("q"), reply="a", created=created, latency=latency))
    store.add_rating(Rating("t0", thumb=1, created=day1))
    store.add_rating(Rating("t1", thumb=-1, score=2, created=day1))
    store.add_rating(Rating("t1", thumb=1, created=day1))
    store.add_rating(Rating("t2", score=5, created=day2))
    rows = {(r["period"], r["model"]): r for r in stats(store, "model", "all")}
    v1 = rows[("all", "v1")]
    assert (v1["turns"], v1["ratings"], v1["up"], v1["down"]) == (2, 3, 2, 1)
    assert v1["up_rate"] == pytest.approx(2 / 3) and v1["mean_score"] == 2 and v1["mean_latency"] == pytest.approx(0.2)
    assert rows[("all", "v2")]["mean_score"] == 5 and rows[("all", "v2")]["up_rate"] is None
    assert len(stats(store, "model", "day")) == 2
    json.dumps(rows[("all", "v1")])  # plain JSON
