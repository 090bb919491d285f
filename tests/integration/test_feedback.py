"""The feedback store behind a real server and the `chatforge feedback` commands: ratings
acknowledged before a kill -9 are all in the store; import is all or nothing; export gives
datasets the training stages read."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import threading
import time
from pathlib import Path

import httpx
import pytest
from serve_helpers import free_port, tiny_model_dir, wait_until_up
from test_cli import EXE, cf  # same directory: pytest puts it on sys.path

from chatforge.data.dataset import open_dataset
from chatforge.feedback.store import FeedbackStore


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory) -> Path:
    return tiny_model_dir(tmp_path_factory.mktemp("fb"))


@pytest.mark.parametrize("db", ["sqlite", "postgres"])
def test_every_acknowledged_rating_survives_a_kill_9(model_dir, tmp_path, db, request):
    """Clients rate replies as fast as they can; the server is killed -9 in the middle. With
    PostgreSQL two servers share the store and one of them is killed while both write."""
    store = request.getfixturevalue("postgres_url") if db == "postgres" else str(tmp_path / "fb.db")
    ports = [free_port() for _ in range(2 if db == "postgres" else 1)]
    procs = [subprocess.Popen([EXE, "serve", "--model", str(model_dir), "--port", str(p), "--store", store], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True) for p in ports]
    acked: list[str] = []
    lock = threading.Lock()
    stop = threading.Event()

    def rate(worker: int) -> None:
        base = f"http://127.0.0.1:{ports[worker % len(ports)]}"
        with httpx.Client(timeout=10) as http:
            i = 0
            while not stop.is_set():
                cid = f"chatcmpl-w{worker}-{i}"
                i += 1
                try:
                    r = http.post(base + "/v1/feedback", json={"completion_id": cid, "rating": "down" if i % 2 else "up", "comment": f"rating {i}"})
                except httpx.TransportError:
                    continue  # killed: not acknowledged
                if r.status_code == 200:
                    with lock:
                        acked.append(cid)

    threads = [threading.Thread(target=rate, args=(w,)) for w in range(4)]
    try:
        for p in ports:
            wait_until_up(f"http://127.0.0.1:{p}")
        for t in threads:
            t.start()
        deadline = time.monotonic() + 60
        while len(acked) < 150 and time.monotonic() < deadline:
            time.sleep(0.05)
        os.kill(procs[0].pid, signal.SIGKILL)  # while the clients are still sending
        procs[0].wait(timeout=10)
        time.sleep(0.5)  # the other server (PostgreSQL) goes on taking ratings
        stop.set()
        for t in threads:
            t.join(timeout=20)
    finally:
        stop.set()
        for p in procs:
            if p.poll() is None:
                p.kill()
    assert len(acked) >= 150
    stored = [r["turn_id"] for r in FeedbackStore.open(store).ratings()]
    missing = set(acked) - set(stored)
    assert not missing, f"{len(missing)} acknowledged ratings lost: {sorted(missing)[:5]}"
    assert len(stored) == len(set(stored))  # and none stored twice
    if db == "postgres":
        assert {c.split("-")[1] for c in acked} == {"w0", "w1", "w2", "w3"}  # both servers took ratings


def test_import_is_all_or_nothing_and_export_feeds_training(tmp_path):
    db = tmp_path / "fb.db"
    turns = tmp_path / "turns.jsonl"
    ratings = tmp_path / "feedback.jsonl"
    # The JSONL logs chatforge serve wrote before the store existed.
    turns.write_text(
        "\n".join(
            json.dumps(r)
            for r in [
                {"time": 1.0, "id": "chatcmpl-1", "kind": "chat", "model": "v1", "messages": [{"role": "user", "content": "Where is my order 4411?"}], "replies": ["No idea."], "usage": {"prompt_tokens": 9}, "seconds": 0.3},
                {"time": 2.0, "id": "chatcmpl-2", "kind": "chat", "model": "v1", "messages": [{"role": "user", "content": "Where is my order 4411?"}], "replies": ["It ships tomorrow."], "seconds": 0.2},
            ]
        )
        + "\n"
    )
    good = [
        {"time": 3.0, "completion_id": "chatcmpl-1", "model": "v1", "rating": "down", "corrected": "It left our warehouse today."},
        {"time": 4.0, "completion_id": "chatcmpl-2", "model": "v1", "rating": 5},
    ]
    ratings.write_text("\n".join(json.dumps(r) for r in good) + '\n{"completion_id": "chatcmpl-3", "rating": 9}\n')
    bad = cf("feedback", "import", str(turns), str(ratings), "--store", str(db), check=False)
    assert bad.returncode != 0 and f"{ratings}:3" in bad.stderr and "score" in bad.stderr
    assert FeedbackStore.open(db).counts() == {"turns": 0, "ratings": 0, "ab_assignments": 0}  # nothing half-imported
    ratings.write_text("\n".join(json.dumps(r) for r in good) + "\n")
    cf("feedback", "import", str(turns), str(ratings), "--store", str(db))
    assert FeedbackStore.open(db).counts() == {"turns": 2, "ratings": 2, "ab_assignments": 0}

    cf("feedback", "export", "--store", str(db), "--format", "sft", "--out", str(tmp_path / "sft"))
    sft = open_dataset(tmp_path / "sft")
    assert sft.kind == "conversations" and sorted(r["messages"][-1]["content"] for r in sft) == ["It left our warehouse today.", "It ships tomorrow."]
    cf("feedback", "export", "--store", str(db), "--format", "dpo", "--out", str(tmp_path / "dpo"))
    pairs = {(r["chosen"], r["rejected"]) for r in open_dataset(tmp_path / "dpo")}
    assert pairs == {("It left our warehouse today.", "No idea."), ("It ships tomorrow.", "No idea.")}
    again = cf("feedback", "export", "--store", str(db), "--format", "dpo", "--out", str(tmp_path / "dpo"), check=False)
    assert again.returncode != 0 and "--overwrite" in again.stderr
    cf("feedback", "export", "--store", str(db), "--format", "jsonl", "--out", str(tmp_path / "all.jsonl"))
    assert len((tmp_path / "all.jsonl").read_text().splitlines()) == 2
    out = cf("feedback", "stats", "--store", str(db), "--period", "all", "--out", str(tmp_path / "stats.json"))
    assert "2 turns, 2 ratings" in out.stdout
    (row,) = json.loads((tmp_path / "stats.json").read_text())["rows"]
    assert (row["model"], row["turns"], row["ratings"], row["down"], row["mean_score"]) == ("v1", 2, 2, 1, 5)


def test_review_sheet_of_the_least_certain_replies_and_back(tmp_path):
    import csv

    from chatforge.feedback.store import Rating, Turn

    db = tmp_path / "fb.db"
    store = FeedbackStore.open(db)
    for i, entropy in enumerate([0.5, 3.0, 1.5, 2.5, None]):
        store.add_turn(Turn(id=f"t{i}", model="v1", messages=[{"role": "user", "content": f"question {i}"}], reply=f"answer {i}", entropy_mean=entropy, logprob_mean=None if entropy is None else -entropy))
    store.add_rating(Rating("t3", thumb=-1, corrected="already fixed"))  # corrected already: not asked again
    sheet = tmp_path / "review.csv"
    cf("feedback", "review", "--store", str(db), "--out", str(sheet), "--items", "2")
    rows = list(csv.DictReader(sheet.open()))
    assert [r["turn_id"] for r in rows] == ["t1", "t2"]  # the most uncertain first
    assert rows[0]["conversation"] == "user: question 1" and rows[0]["reply"] == "answer 1"
    rows[0]["corrected"] = "The right answer."
    rows[1]["rating"] = "4"
    with sheet.open("w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)
    cf("feedback", "review", "--store", str(db), "--read", str(sheet))
    got = {r["turn_id"]: r for r in FeedbackStore.open(db).ratings() if r["comment"] == "review"}
    assert got["t1"]["thumb"] == -1 and got["t1"]["corrected"] == "The right answer." and got["t2"]["score"] == 4
    rows[1]["rating"] = "7"
    with sheet.open("w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)
    bad = cf("feedback", "review", "--store", str(db), "--read", str(sheet), check=False)
    assert bad.returncode == 2 and f"{sheet}:3: rating '7'" in bad.stderr
    assert len([r for r in FeedbackStore.open(db).ratings() if r["comment"] == "review"]) == 2  # nothing half-read
