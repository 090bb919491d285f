"""Atomic directory replacement: what --overwrite may replace, the fallback swap, and crash recovery."""

from __future__ import annotations

import random
import signal
import subprocess
import sys
import textwrap
import time

import pytest

import chatforge.atomic as atomic
from chatforge.data.dataset import open_dataset, write_dataset
from chatforge.errors import UserError

BY = {"command": "test"}


def text_rows(tag: str, n: int = 3) -> list[dict]:
    return [{"id": str(i), "text": f"{tag} {i}", "source": "s", "meta": {}} for i in range(n)]


def dead_pid() -> int:
    p = subprocess.Popen([sys.executable, "-c", "pass"])
    p.wait()
    return p.pid


def test_overwrite_never_replaces_a_folder_of_other_files(tmp_path):
    precious = tmp_path / "precious"
    precious.mkdir()
    (precious / "thesis.txt").write_text("years of work")
    with pytest.raises(UserError, match="exists and is not a text dataset; refusing to replace it"):
        write_dataset(precious, "text", text_rows("x"), created_by=BY, overwrite=True)
    assert (precious / "thesis.txt").read_text() == "years of work"
    # an empty folder is fine to fill
    (tmp_path / "empty").mkdir()
    write_dataset(tmp_path / "empty", "text", text_rows("x"), created_by=BY, overwrite=True)
    assert open_dataset(tmp_path / "empty").num_rows == 3


def test_symlinks_and_the_current_directory_are_refused(tmp_path, monkeypatch):
    write_dataset(tmp_path / "real", "text", text_rows("a"), created_by=BY)
    (tmp_path / "link").symlink_to(tmp_path / "real")
    with pytest.raises(UserError, match="is a symbolic link"):
        write_dataset(tmp_path / "link", "text", text_rows("b"), created_by=BY, overwrite=True)
    monkeypatch.chdir(tmp_path / "real")
    with pytest.raises(UserError, match="is the current directory or contains it"):
        write_dataset(".", "text", text_rows("b"), created_by=BY, overwrite=True)
    assert [r["text"] for r in open_dataset(tmp_path / "real")] == ["a 0", "a 1", "a 2"]


def test_output_under_a_file_is_a_clear_error(tmp_path):
    (tmp_path / "f.jsonl").write_text("{}\n")
    with pytest.raises(UserError, match=r"f\.jsonl/x/y: .*f\.jsonl is a file, not a directory"):
        write_dataset(tmp_path / "f.jsonl" / "x" / "y", "text", text_rows("a"), created_by=BY)


def test_fallback_swap_restores_the_old_dir_if_the_second_rename_fails(tmp_path, monkeypatch):
    write_dataset(tmp_path / "d", "text", text_rows("old"), created_by=BY)
    monkeypatch.setattr(atomic, "_rename_exchange", lambda a, b: False)
    real_rename = atomic.os.rename

    def rename(src, dst):
        if ".staging-" in str(src):
            raise KeyboardInterrupt  # stopped between moving the old dir aside and the new one in
        return real_rename(src, dst)

    monkeypatch.setattr(atomic.os, "rename", rename)
    with pytest.raises(KeyboardInterrupt):
        write_dataset(tmp_path / "d", "text", text_rows("new"), created_by=BY, overwrite=True)
    monkeypatch.setattr(atomic.os, "rename", real_rename)
    assert [r["text"] for r in open_dataset(tmp_path / "d")] == ["old 0", "old 1", "old 2"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["d"]
    # and without the failure, the fallback swap replaces the dataset
    write_dataset(tmp_path / "d", "text", text_rows("new"), created_by=BY, overwrite=True)
    assert [r["text"] for r in open_dataset(tmp_path / "d")] == ["new 0", "new 1", "new 2"]


def test_old_dir_left_aside_by_a_killed_writer_is_put_back(tmp_path):
    write_dataset(tmp_path / "d", "text", text_rows("old"), created_by=BY)
    aside = tmp_path / f".d.old-{dead_pid()}-0a1b2c3d"
    (tmp_path / "d").rename(aside)  # the state a kill between the two renames leaves
    assert [r["text"] for r in open_dataset(tmp_path / "d")] == ["old 0", "old 1", "old 2"]
    assert not aside.exists()


def test_live_writers_staging_dirs_are_left_alone(tmp_path):
    live = tmp_path / f".d.staging-{__import__('os').getppid()}-00ff00ff"
    live.mkdir()
    write_dataset(tmp_path / "d", "text", text_rows("x"), created_by=BY)
    assert live.is_dir()


KILLED_WRITER = textwrap.dedent(
    """
    import sys
    import chatforge.atomic as atomic
    from chatforge.data.dataset import write_dataset
    if sys.argv[2] == "fallback":
        atomic._rename_exchange = lambda a, b: False
    for version in range(10**9):
        rows = [{"id": str(i), "text": f"v{version}", "source": "s", "meta": {}} for i in range(200)]
        write_dataset(sys.argv[1], "text", rows, created_by={"command": "t"}, overwrite=True)
        if version == 0:
            print("committed", flush=True)
    """
)


@pytest.mark.parametrize("mode", ["exchange", "fallback"])
def test_sigkill_while_replacing_over_and_over(tmp_path, mode):
    """kill -9 at random moments of a writer that commits new versions in a loop: the
    dataset is always one whole version (all rows agree, hash verifies), never a mix or a gap."""
    target = tmp_path / "d"
    start = [{"id": str(i), "text": "v-start", "source": "s", "meta": {}} for i in range(200)]
    write_dataset(target, "text", start, created_by=BY)
    rng = random.Random(1)
    versions = set()
    for _ in range(6):
        proc = subprocess.Popen([sys.executable, "-c", KILLED_WRITER, str(target), mode], stdout=subprocess.PIPE, text=True)
        assert proc.stdout is not None and proc.stdout.readline().strip() == "committed"
        time.sleep(rng.uniform(0.0, 0.3))  # each commit takes ~30 ms: kills land at every stage
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        ds = open_dataset(target)
        ds.verify()
        texts = {r["text"] for r in ds}
        assert len(texts) == 1 and ds.num_rows == 200
        versions |= texts
    assert "v-start" not in versions and len(versions) > 1  # new versions were committed in between
