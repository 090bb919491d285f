"""Data survives faults: `data ingest` / `data clean` / `learn` killed at random points leave the
previous version intact (or the new one complete), never a half-written one; a full disk is a
clear error with nothing lost."""

from __future__ import annotations

import random

import pytest
import trials


@pytest.fixture(scope="module")
def commands(tmp_path_factory):
    return trials.dataset_commands(tmp_path_factory.mktemp("data-faults"))


def run_data_kills(commands, tmp_path, per_command: int, seed: int) -> list[trials.DataKillTrial]:
    rng = random.Random(seed)
    done = []
    for cmd in commands:
        for i in range(per_command):
            mode = ("in_write", "random_time")[i % 2]
            t = trials.data_kill_trial(cmd, tmp_path / f"{cmd.name.replace(' ', '-')}-{i}" / "out", mode, rng)
            assert t.outcome in ("old", "new"), t
            assert t.rerun_ok, t
            done.append(t)
    return done


def test_ingest_and_clean_killed_anywhere(commands, tmp_path):
    done = run_data_kills(commands, tmp_path, 3, seed=10)
    assert sum(t.died for t in done) >= 4


@pytest.mark.slow
def test_ingest_and_clean_killed_anywhere_many(commands, tmp_path):
    done = run_data_kills(commands, tmp_path, 20, seed=11)
    assert {t.outcome for t in done if t.died} == {"old", "new"}  # kills landed before and after the swap


@pytest.mark.parametrize("how", ["tmpfs", "rlimit"])
def test_a_full_disk_is_a_clear_error_and_loses_nothing(tmp_path, how):
    t = trials.disk_full_trial(tmp_path, how)
    if how == "tmpfs" and t.how != "tmpfs":
        pytest.skip("this machine does not allow mounting a small tmpfs (root is needed); the rlimit case covers it")
    reason = "No space left on device" if how == "tmpfs" else "File too large"
    assert t.exit_code == 1 and t.message.startswith("chatforge: error: ") and reason in t.message, t
    assert "Traceback" not in t.message, t
    if how == "tmpfs":
        assert "/disk/out: " in t.message, t  # names the output that failed
    else:  # the limit is on every file: the first one to pass it may be a scratch file
        assert t.message.split(": ")[2].startswith("/"), t
    assert t.previous_intact and t.leftovers == 0, t


@pytest.fixture(scope="module")
def learn(tmp_path_factory):
    return trials.learn_setup(tmp_path_factory.mktemp("learn-faults"))


def run_learn_kills(learn, tmp_path, n: int, seed: int) -> list[trials.LearnKillTrial]:
    rng = random.Random(seed)
    done = []
    for i in range(n):
        t = trials.learn_kill_trial(learn, tmp_path / f"learn{i}", rng)
        assert t.registry_ok and t.production in t.versions and t.rerun_ok, t
        done.append(t)
    return done


def test_learn_killed_anywhere(learn, tmp_path):
    run_learn_kills(learn, tmp_path, 2, seed=12)


@pytest.mark.slow
def test_learn_killed_anywhere_many(learn, tmp_path):
    done = run_learn_kills(learn, tmp_path, 6, seed=13)
    assert sum(t.died for t in done) >= 5
