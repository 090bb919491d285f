"""The `chatforge` command as a user runs it: a real subprocess of the installed console script."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from chatforge.data.dataset import open_dataset

EXE = shutil.which("chatforge", path=str(Path(sys.executable).parent)) or "chatforge"


def cf(*args: str, cwd: Path | None = None, check: bool = True) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "COLUMNS": "120"}
    p = subprocess.run([EXE, *args], capture_output=True, text=True, cwd=cwd, env=env, timeout=300)
    if check and p.returncode != 0:
        raise AssertionError(f"chatforge {' '.join(args)} exited {p.returncode}\n{p.stdout}\n{p.stderr}")
    return p


def test_help_lists_the_lifecycle_that_exists():
    out = cf("--help").stdout
    for cmd in ("data", "quickstart"):
        assert cmd in out
    data = cf("data", "--help").stdout
    for sub in ("synth", "ingest", "stats", "show", "export"):
        assert sub in data
    # stages not built yet are absent, not stubs
    for absent in ("pretrain", "serve", "sft"):
        assert absent not in out


def test_cli_surface_is_pinned():
    """Every subcommand and its flags; a change here is a change users see."""
    from chatforge.cli import build_parser

    _parser, bools = build_parser()
    assert sorted(bools) == ["data export", "data ingest", "data show", "data stats", "data synth", "quickstart"]
    ingest = cf("data", "ingest", "--help").stdout
    for flag in ("--out", "--format", "--skip-invalid", "--overwrite", "--csv.user-col", "--csv.assistant-col",
                 "--csv.conversation-col", "--text.unit", "--config", "--quiet"):
        assert flag in ingest
    synth = cf("data", "synth", "--help").stdout
    for flag in ("--out", "--conversations", "--seed", "--noise", "--overwrite"):
        assert flag in synth


def test_synth_ingest_stats_show_export_as_a_user(tmp_path):
    cf("data", "synth", "--out", "world", "--conversations", "200", "--test-conversations", "40",
       "--heldout-conversations", "30", "--kb-articles", "20", "--preferences", "30", "--seed", "3", "-q", cwd=tmp_path)
    conv = open_dataset(tmp_path / "world" / "conversations")
    assert conv.num_rows >= 200 and conv.kind == "conversations"

    stats = cf("data", "stats", "world/conversations", cwd=tmp_path).stdout
    assert "rows" in stats and "assistant" in stats and "order_status" in stats

    shown = cf("data", "show", "world/test", "-n", "2", cwd=tmp_path).stdout
    assert shown.count("synth/test") == 2

    cf("data", "export", "world/conversations", "--out", "conv.jsonl", "-q", cwd=tmp_path)
    lines = (tmp_path / "conv.jsonl").read_text(encoding="utf-8").splitlines()
    assert len(lines) == conv.num_rows

    # the exported file ingests back to the same rows (same content hash)
    cf("data", "ingest", "conv.jsonl", "--out", "again", "-q", cwd=tmp_path)
    assert open_dataset(tmp_path / "again").content_hash == conv.content_hash

    # export to stdout is pipe-friendly: only data on stdout
    first = json.loads(cf("data", "export", "world/kb", cwd=tmp_path).stdout.splitlines()[0])
    assert set(first) == {"id", "text", "source", "meta"}


def test_user_mistakes_are_one_line_exit_2(tmp_path):
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"messages": [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "yo"}]}\n'
                   '{"messages": [{"role": "user", "content": "hi"}, {"role": "bot", "content": "yo"}]}\n')
    cases = [
        (["data", "ingest", str(bad), "--out", str(tmp_path / "o")],
         f'chatforge: error: {bad}:2: message 2 has role "bot"; expected system, user or assistant'),
        (["data", "ingest", str(tmp_path / "nope.jsonl"), "--out", str(tmp_path / "o")], "no such file or directory"),
        (["data", "synth", "--out", str(tmp_path / "w"), "--conversations", "0"], "--conversations: must be >= 1, got 0"),
        (["data", "ingest", str(bad)], "out: required"),
        (["data", "ingest", str(bad), "--out", "x", "--skip-invalidd"], "did you mean --skip-invalid"),
        (["data", "stats", str(tmp_path)], "not a chatforge dataset"),
        (["data", "synth", "--out", "w", "--config", str(tmp_path / "missing.yaml")], "config file not found"),
    ]
    for args, expected in cases:
        p = cf(*args, check=False)
        assert p.returncode == 2, (args, p.stderr)
        err = p.stderr.strip().splitlines()
        assert err[-1].startswith("chatforge: error: "), p.stderr
        assert expected in err[-1], (expected, p.stderr)
        assert "Traceback" not in p.stderr
    assert not (tmp_path / "o").exists()  # the failed ingest wrote nothing


def test_yaml_config_and_flags(tmp_path):
    (tmp_path / "synth.yaml").write_text("conversations: 50\ntest_conversations: 10\nheldout_conversations: 10\n"
                                         "kb_articles: 5\npreferences: 10\nseed: 1\n")
    cf("data", "synth", "--config", "synth.yaml", "--out", "w", "--seed", "2", "-q", cwd=tmp_path)
    m = open_dataset(tmp_path / "w" / "conversations").manifest
    assert m["created_by"]["config"]["seed"] == 2  # the flag wins over the file
    assert m["created_by"]["config"]["conversations"] == 50
    (tmp_path / "bad.yaml").write_text("conversations: 50\nconversatoins: 3\n")
    p = cf("data", "synth", "--config", "bad.yaml", "--out", "w2", cwd=tmp_path, check=False)
    assert p.returncode == 2
    assert "bad.yaml:2: unknown field 'conversatoins'; did you mean 'conversations'?" in p.stderr


@pytest.mark.parametrize("quiet", [True, False])
def test_quickstart_runs_and_says_where_things_are(tmp_path, quiet):
    args = ["quickstart", "--workdir", "qs", "--synth.conversations", "150", "--synth.test-conversations", "30",
            "--synth.heldout-conversations", "20", "--synth.kb-articles", "10", "--synth.preferences", "20"]
    p = cf(*args, *(["--quiet"] if quiet else []), cwd=tmp_path)
    assert open_dataset(tmp_path / "qs" / "data" / "world" / "conversations").num_rows >= 150
    assert (tmp_path / "qs" / "config.yaml").is_file()
    if quiet:
        assert p.stdout == ""
    else:
        assert "where everything was written" in p.stdout and "qs/data/world/conversations" in p.stdout
    # running it again replaces its outputs instead of failing
    cf(*args, "--quiet", cwd=tmp_path)
