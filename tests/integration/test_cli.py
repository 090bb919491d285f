"""The `chatforge` command as a user runs it: a real subprocess of the installed console script."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from chatforge.checkpoint import model_dir_hash
from chatforge.data.dataset import open_dataset
from chatforge.feedback.store import FeedbackStore
from chatforge.registry import Registry

EXE = shutil.which("chatforge", path=str(Path(sys.executable).parent)) or "chatforge"


def cf(*args: str, cwd: Path | None = None, check: bool = True, env: dict[str, str] | None = None, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "COLUMNS": "120", **(env or {})}
    p = subprocess.run([EXE, *args], capture_output=True, text=True, cwd=cwd, env=env, timeout=timeout)
    if check and p.returncode != 0:
        raise AssertionError(f"chatforge {' '.join(args)} exited {p.returncode}\n{p.stdout}\n{p.stderr}")
    return p


def test_help_lists_the_lifecycle_that_exists():
    out = cf("--help").stdout
    for cmd in ("data", "tokenizer", "pretrain", "sft", "dpo", "eval", "report", "chat", "serve", "quickstart"):
        assert cmd in out
    data = cf("data", "--help").stdout
    for sub in ("synth", "ingest", "clean", "anonymize", "augment", "split", "mix", "stats", "show", "export"):
        assert sub in data
    listed = {line.split()[0] for line in out.split("commands:", 1)[1].splitlines() if line.startswith("    ") and line.split()}
    assert {"eval", "serve", "feedback", "import", "export"} <= listed


COMMON = ["--config", "--quiet", "--seed", "-q"]
SURFACE = {
    "data synth": (
        [],
        [
            "--conversations",
            "--heldout-conversations",
            "--kb-articles",
            "--no-overwrite",
            "--noise",
            "--out",
            "--overwrite",
            "--preferences",
            "--test-conversations",
        ],
    ),
    "data ingest": (
        ["files"],
        [
            "--csv.assistant-col",
            "--csv.content-col",
            "--csv.conversation-col",
            "--csv.delimiter",
            "--csv.role-col",
            "--csv.system-col",
            "--csv.user-col",
            "--format",
            "--no-overwrite",
            "--no-skip-invalid",
            "--out",
            "--overwrite",
            "--shard-rows",
            "--skip-invalid",
            "--text.max-chars",
            "--text.unit",
        ],
    ),
    "data clean": (
        ["dataset"],
        [
            "--batch-rows",
            "--dedup.exact",
            "--dedup.near",
            "--dedup.ngram",
            "--dedup.num-perm",
            "--dedup.threshold",
            "--examples",
            "--language.enabled",
            "--language.languages",
            "--language.max-chars",
            "--language.min-chars",
            "--language.min-score",
            "--language.scope",
            "--no-dedup.exact",
            "--no-dedup.near",
            "--no-language.enabled",
            "--no-normalize.collapse-whitespace",
            "--no-normalize.enabled",
            "--no-normalize.fix-mojibake",
            "--no-normalize.lowercase",
            "--no-normalize.remove-control",
            "--no-normalize.remove-punctuation",
            "--no-normalize.remove-stopwords",
            "--no-normalize.strip-html",
            "--no-overwrite",
            "--no-pii.enabled",
            "--no-pii.keep-role-emails",
            "--no-quality.enabled",
            "--no-report",
            "--no-toxicity.enabled",
            "--normalize.collapse-whitespace",
            "--normalize.enabled",
            "--normalize.fix-mojibake",
            "--normalize.lowercase",
            "--normalize.remove-control",
            "--normalize.remove-punctuation",
            "--normalize.remove-stopwords",
            "--normalize.strip-html",
            "--normalize.unicode",
            "--out",
            "--overwrite",
            "--pii.allow",
            "--pii.enabled",
            "--pii.keep-role-emails",
            "--pii.mode",
            "--pii.not-names",
            "--pii.order-patterns",
            "--pii.salt",
            "--pii.types",
            "--quality.echo-min-words",
            "--quality.enabled",
            "--quality.max-chars",
            "--quality.max-dup-5grams",
            "--quality.max-duplicate-lines",
            "--quality.max-echo-similarity",
            "--quality.max-mash-ratio",
            "--quality.max-mean-word-length",
            "--quality.max-messages",
            "--quality.max-symbol-ratio",
            "--quality.max-top-2gram",
            "--quality.min-alpha-ratio",
            "--quality.min-assistant-chars",
            "--quality.min-chars",
            "--quality.min-words",
            "--quality.repetition-min-words",
            "--report",
            "--toxicity.enabled",
            "--toxicity.extra-terms",
            "--toxicity.user-action",
            "--toxicity.wordlist",
            "--workers",
        ],
    ),
    "data anonymize": (
        ["input"],
        [
            "--no-per-line",
            "--no-pii.enabled",
            "--no-pii.keep-role-emails",
            "--out",
            "--per-line",
            "--pii.allow",
            "--pii.enabled",
            "--pii.keep-role-emails",
            "--pii.mode",
            "--pii.not-names",
            "--pii.order-patterns",
            "--pii.salt",
            "--pii.types",
            "--registry-limit",
        ],
    ),
    "data augment": (
        ["dataset"],
        [
            "--copies",
            "--include-original",
            "--methods",
            "--no-include-original",
            "--no-overwrite",
            "--out",
            "--overwrite",
            "--rate",
        ],
    ),
    "data split": (
        ["dataset"],
        [
            "--leakage",
            "--no-leakage",
            "--no-overwrite",
            "--out",
            "--overwrite",
            "--salt",
            "--test",
            "--threshold",
            "--val",
        ],
    ),
    "data mix": (["sources"], ["--no-overwrite", "--out", "--overwrite", "--rows"]),
    "data stats": (["dataset"], ["--top"]),
    "data show": (["dataset"], ["--max-chars", "--n", "--offset", "-n"]),
    "data export": (["dataset"], ["--format", "--out"]),
    "eval": (
        [],
        ["--batch-size", "--bias-questions", "--data", "--limit", "--max-tokens", "--metrics", "--model", "--out", "--samples", "--system", "--temperature", "--top-p"],
    ),
    "eval human-export": ([], ["--compare", "--data", "--items", "--max-tokens", "--model", "--out"]),
    "eval human-import": ([], ["--into", "--key", "--ratings"]),
    "report": (["runs"], ["--out", "--title"]),
    "sweep": (
        [],
        ["--base", "--direction", "--eval-data", "--heartbeat", "--metric", "--out", "--pruner", "--sampler", "--space", "--stage", "--storage", "--study", "--trials"],
    ),
    "runs list": (["roots"], ["--sort"]),
    "runs compare": (["runs"], []),
    "feedback stats": ([], ["--by", "--out", "--period", "--since", "--store"]),
    "feedback export": ([], ["--format", "--no-overwrite", "--out", "--overwrite", "--since", "--store"]),
    "feedback import": (["files"], ["--store"]),
    "feedback review": ([], ["--by", "--items", "--no-overwrite", "--out", "--overwrite", "--read", "--since", "--store"]),
    "learn": (
        [],
        [
            "--base", "--dpo", "--dpo-train.batch-size", "--dpo-train.compile", "--dpo-train.dtype", "--dpo-train.eval-batches",
            "--dpo-train.eval-every", "--dpo-train.keep-last", "--dpo-train.log-every", "--dpo-train.micro-batch",
            "--dpo-train.optim.beta1", "--dpo-train.optim.beta2", "--dpo-train.optim.decay-fraction", "--dpo-train.optim.eps",
            "--dpo-train.optim.grad-clip", "--dpo-train.optim.lr", "--dpo-train.optim.min-lr-ratio", "--dpo-train.optim.schedule",
            "--dpo-train.optim.warmup-steps", "--dpo-train.optim.weight-decay", "--dpo-train.patience", "--dpo-train.save-every",
            "--dpo-train.steps", "--eval.limit", "--eval.max-tokens", "--eval.safety", "--gate.feedback", "--gate.perplexity",
            "--gate.safety", "--gate.task", "--lora.alpha", "--lora.dropout", "--lora.r", "--lora.targets", "--min-rows",
            "--no-dpo", "--no-dpo-train.compile", "--no-eval.safety", "--no-gate.feedback", "--no-overwrite", "--no-promote",
            "--no-sft.compile", "--out", "--overwrite", "--promote", "--registry", "--replay", "--sft.batch-size", "--sft.compile",
            "--sft.dtype", "--sft.eval-batches", "--sft.eval-every", "--sft.keep-last", "--sft.log-every", "--sft.micro-batch",
            "--sft.optim.beta1", "--sft.optim.beta2", "--sft.optim.decay-fraction", "--sft.optim.eps", "--sft.optim.grad-clip",
            "--sft.optim.lr", "--sft.optim.min-lr-ratio", "--sft.optim.schedule", "--sft.optim.warmup-steps",
            "--sft.optim.weight-decay", "--sft.patience", "--sft.save-every", "--sft.steps", "--since", "--store", "--test-data",
            "--train-data",
        ],
    ),
    "ab report": (
        [],
        ["--alpha", "--auto-promote", "--control", "--experiment", "--min-ratings", "--no-auto-promote", "--out", "--registry", "--store", "--threshold", "--treatment"],
    ),
    "monitor": (
        [],
        [
            "--baseline-data", "--max-decline-rise", "--max-p95-rise", "--max-perplexity-rise", "--max-unknown-rise",
            "--max-up-drop", "--min-ratings", "--min-turns", "--out", "--period", "--since", "--store",
        ],
    ),
    "models list": ([], ["--registry"]),
    "models show": (["ref"], ["--registry"]),
    "models promote": (["ref"], ["--registry"]),
    "models archive": (["ref"], ["--registry"]),
    "models rollback": ([], ["--registry"]),
    "serve": (
        [],
        [
            "--ab", "--ab-experiment", "--api-key", "--api-keys-file", "--dtype", "--host", "--limits.max-body-bytes",
            "--limits.max-message-chars", "--limits.max-messages", "--limits.max-n", "--limits.max-stop",
            "--limits.max-tokens", "--limits.timeout", "--log-conversations", "--max-batch", "--model",
            "--model-name", "--no-log-conversations", "--no-safety", "--port", "--queue", "--registry",
            "--reload-interval", "--safety", "--store",
        ],
    ),
    "import": (["src"], ["--block-size", "--no-overwrite", "--out", "--overwrite"]),
    "export": ([], ["--dtype", "--format", "--model", "--no-overwrite", "--out", "--overwrite"]),
    "quickstart": (
        [],
        [
            "--simulate-users",
            "--dpo.batch-size",
            "--dpo.compile",
            "--dpo.dtype",
            "--dpo.eval-batches",
            "--dpo.eval-every",
            "--dpo.keep-last",
            "--dpo.log-every",
            "--dpo.micro-batch",
            "--dpo.optim.beta1",
            "--dpo.optim.beta2",
            "--dpo.optim.decay-fraction",
            "--dpo.optim.eps",
            "--dpo.optim.grad-clip",
            "--dpo.optim.lr",
            "--dpo.optim.min-lr-ratio",
            "--dpo.optim.schedule",
            "--dpo.optim.warmup-steps",
            "--dpo.optim.weight-decay",
            "--dpo.patience",
            "--dpo.save-every",
            "--dpo.steps",
            "--eval.bias-questions",
            "--eval.limit",
            "--eval.max-tokens",
            "--mlflow",
            "--no-mlflow",
            "--model.attention",
            "--model.block-size",
            "--model.dropout",
            "--model.intermediate-size",
            "--model.n-embd",
            "--model.n-head",
            "--model.n-kv-head",
            "--model.n-layer",
            "--model.norm-eps",
            "--model.rope-theta",
            "--model.tie-embeddings",
            "--model.vocab-size",
            "--no-dpo.compile",
            "--no-model.tie-embeddings",
            "--no-sft.compile",
            "--no-train.compile",
            "--sft.batch-size",
            "--sft.compile",
            "--sft.dtype",
            "--sft.eval-batches",
            "--sft.eval-every",
            "--sft.keep-last",
            "--sft.log-every",
            "--sft.micro-batch",
            "--sft.optim.beta1",
            "--sft.optim.beta2",
            "--sft.optim.decay-fraction",
            "--sft.optim.eps",
            "--sft.optim.grad-clip",
            "--sft.optim.lr",
            "--sft.optim.min-lr-ratio",
            "--sft.optim.schedule",
            "--sft.optim.warmup-steps",
            "--sft.optim.weight-decay",
            "--sft.patience",
            "--sft.save-every",
            "--sft.steps",
            "--sweep",
            "--synth.conversations",
            "--synth.heldout-conversations",
            "--synth.kb-articles",
            "--synth.noise",
            "--synth.preferences",
            "--synth.test-conversations",
            "--train.batch-size",
            "--train.compile",
            "--train.dtype",
            "--train.eval-batches",
            "--train.eval-every",
            "--train.keep-last",
            "--train.log-every",
            "--train.micro-batch",
            "--train.optim.beta1",
            "--train.optim.beta2",
            "--train.optim.decay-fraction",
            "--train.optim.eps",
            "--train.optim.grad-clip",
            "--train.optim.lr",
            "--train.optim.min-lr-ratio",
            "--train.optim.schedule",
            "--train.optim.warmup-steps",
            "--train.optim.weight-decay",
            "--train.patience",
            "--train.save-every",
            "--train.steps",
            "--vocab-size",
            "--workdir",
            "--workers",
        ],
    ),
    "tokenizer train": (
        [],
        [
            "--data",
            "--max-mb",
            "--min-frequency",
            "--no-overwrite",
            "--out",
            "--overwrite",
            "--vocab-size",
        ],
    ),
    "pretrain": (
        [],
        [
            "--data",
            "--model.attention",
            "--model.block-size",
            "--model.dropout",
            "--model.intermediate-size",
            "--model.n-embd",
            "--model.n-head",
            "--model.n-kv-head",
            "--model.n-layer",
            "--model.norm-eps",
            "--model.rope-theta",
            "--model.tie-embeddings",
            "--model.vocab-size",
            "--no-model.tie-embeddings",
            "--no-overwrite",
            "--no-resume",
            "--no-train.compile",
            "--out",
            "--overwrite",
            "--resume",
            "--tokenizer",
            "--train.batch-size",
            "--train.compile",
            "--train.dtype",
            "--train.eval-batches",
            "--train.eval-every",
            "--train.keep-last",
            "--train.log-every",
            "--train.micro-batch",
            "--train.optim.beta1",
            "--train.optim.beta2",
            "--train.optim.decay-fraction",
            "--train.optim.eps",
            "--train.optim.grad-clip",
            "--train.optim.lr",
            "--train.optim.min-lr-ratio",
            "--train.optim.schedule",
            "--train.optim.warmup-steps",
            "--train.optim.weight-decay",
            "--train.patience",
            "--train.save-every",
            "--train.steps",
            "--val-data",
            "--val-fraction",
        ],
    ),
    "chat": ([], ["--dtype", "--max-tokens", "--model", "--system", "--temperature", "--top-k", "--top-p"]),
    "dpo": (
        [],
        [
            "--beta",
            "--data",
            "--lora.alpha",
            "--lora.dropout",
            "--lora.r",
            "--lora.targets",
            "--max-len",
            "--model",
            "--no-overwrite",
            "--no-resume",
            "--no-train.compile",
            "--out",
            "--overwrite",
            "--resume",
            "--train.batch-size",
            "--train.compile",
            "--train.dtype",
            "--train.eval-batches",
            "--train.eval-every",
            "--train.keep-last",
            "--train.log-every",
            "--train.micro-batch",
            "--train.optim.beta1",
            "--train.optim.beta2",
            "--train.optim.decay-fraction",
            "--train.optim.eps",
            "--train.optim.grad-clip",
            "--train.optim.lr",
            "--train.optim.min-lr-ratio",
            "--train.optim.schedule",
            "--train.optim.warmup-steps",
            "--train.optim.weight-decay",
            "--train.patience",
            "--train.save-every",
            "--train.steps",
            "--val-data",
            "--val-fraction",
        ],
    ),
    "merge-lora": ([], ["--adapter", "--model", "--no-overwrite", "--out", "--overwrite"]),
    "sft": (
        [],
        [
            "--data",
            "--debug-data",
            "--dropout",
            "--freeze-layers",
            "--lora.alpha",
            "--lora.dropout",
            "--lora.r",
            "--lora.targets",
            "--max-len",
            "--model",
            "--no-overwrite",
            "--no-packing",
            "--no-resume",
            "--no-train.compile",
            "--out",
            "--overwrite",
            "--packing",
            "--resume",
            "--train-on",
            "--train.batch-size",
            "--train.compile",
            "--train.dtype",
            "--train.eval-batches",
            "--train.eval-every",
            "--train.keep-last",
            "--train.log-every",
            "--train.micro-batch",
            "--train.optim.beta1",
            "--train.optim.beta2",
            "--train.optim.decay-fraction",
            "--train.optim.eps",
            "--train.optim.grad-clip",
            "--train.optim.lr",
            "--train.optim.min-lr-ratio",
            "--train.optim.schedule",
            "--train.optim.warmup-steps",
            "--train.optim.weight-decay",
            "--train.patience",
            "--train.save-every",
            "--train.steps",
            "--val-data",
            "--val-fraction",
        ],
    ),
}


def _surface() -> dict[str, tuple[list[str], list[str]]]:
    import argparse

    from chatforge.cli import build_parser

    def walk(p: argparse.ArgumentParser, words: list[str]):
        subs = [a for a in p._actions if isinstance(a, argparse._SubParsersAction)]
        for a in subs:
            for name, sp in a.choices.items():
                yield from walk(sp, [*words, name])
        if words and p.get_default("_config") is not None:  # a command (which may have subcommands too)
            opts = {o for a in p._actions for o in a.option_strings} - {"-h", "--help"}
            # every snake_case spelling is an alias of a kebab-case flag
            assert all(o.replace("_", "-") in opts for o in opts)
            yield (
                " ".join(words),
                ([a.dest for a in p._actions if not a.option_strings and not isinstance(a, argparse._SubParsersAction)], sorted(o for o in opts if "_" not in o)),
            )

    return dict(walk(build_parser()[0], []))


def test_cli_surface_is_pinned():
    """Every subcommand with its positionals and flags, exactly: a change here is one users see."""
    want = {cmd: (pos, sorted(COMMON + flags)) for cmd, (pos, flags) in SURFACE.items()}
    assert _surface() == want


def test_synth_ingest_stats_show_export_as_a_user(tmp_path):
    cf(
        "data",
        "synth",
        "--out",
        "world",
        "--conversations",
        "200",
        "--test-conversations",
        "40",
        "--heldout-conversations",
        "30",
        "--kb-articles",
        "20",
        "--preferences",
        "30",
        "--seed",
        "3",
        "-q",
        cwd=tmp_path,
    )
    conv = open_dataset(tmp_path / "world" / "conversations")
    assert conv.num_rows == 200 and conv.kind == "conversations"

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
    bad.write_text(
        '{"messages": [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "yo"}]}\n'
        '{"messages": [{"role": "user", "content": "hi"}, {"role": "bot", "content": "yo"}]}\n'
    )
    cases = [
        (
            ["data", "ingest", str(bad), "--out", str(tmp_path / "o")],
            f'chatforge: error: {bad}:2: message 2 has role "bot"; expected system, user or assistant',
        ),
        (["data", "ingest", str(tmp_path / "nope.jsonl"), "--out", str(tmp_path / "o")], "no such file or directory"),
        (
            ["data", "synth", "--out", str(tmp_path / "w"), "--conversations", "0"],
            "--conversations: must be >= 1, got 0",
        ),
        (["data", "ingest", str(bad)], "out: required"),
        (["data", "ingest", str(bad), "--out", "x", "--skip-invalidd"], "did you mean --skip-invalid"),
        (["data", "stats", str(tmp_path)], "not a chatforge dataset"),
        (["data", "synth", "--out", "w", "--config", str(tmp_path / "missing.yaml")], "config file not found"),
        (["data", "synth", "--out", str(tmp_path / "w"), "--noise", "nan"], "--noise: must be a finite number"),
        (["data", "ingest", str(bad), "--out", f"{bad}/x"], "bad.jsonl is a file, not a directory"),
        (
            ["data", "ingest", str(bad), "--out", str(tmp_path / "o"), "--csv.delimiter", ";;"],
            "csv.delimiter: must be one character",
        ),
        (["data", "export", str(tmp_path), "--format", "xml"], "--format: must be one of jsonl, openai; got 'xml'"),
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
    (tmp_path / "synth.yaml").write_text(
        "conversations: 50\ntest_conversations: 10\nheldout_conversations: 10\n"
        "kb_articles: 5\npreferences: 10\nseed: 1\n"
    )
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
    args = [
        "quickstart",
        "--workdir",
        "qs",
        "--synth.conversations",
        "150",
        "--synth.test-conversations",
        "30",
        "--synth.heldout-conversations",
        "20",
        "--synth.kb-articles",
        "10",
        "--synth.preferences",
        "20",
        "--vocab-size",
        "512",
        "--train.steps",
        "12",
        "--train.eval-every",
        "6",
        "--train.save-every",
        "6",
        "--sft.steps",
        "6",
        "--sft.eval-every",
        "3",
        "--dpo.steps",
        "4",
        "--dpo.eval-every",
        "2",
        "--eval.max-tokens",
        "8",
        "--eval.bias-questions",
        "1",
        "--sweep",
        "2",
    ]
    p = cf(*args, *(["--quiet"] if quiet else ["--simulate-users", "12"]), cwd=tmp_path, timeout=900)
    assert open_dataset(tmp_path / "qs" / "data" / "world" / "conversations").num_rows == 150
    assert (tmp_path / "qs" / "config.yaml").is_file()
    clean = open_dataset(tmp_path / "qs" / "data" / "clean" / "conversations")
    assert 0 < clean.num_rows < 150 and clean.manifest["clean"]["steps"]  # cleaned: duplicates etc. dropped
    assert (tmp_path / "qs" / "data" / "clean" / "conversations" / "clean_report.md").is_file()
    train = open_dataset(tmp_path / "qs" / "data" / "splits" / "train")
    assert train.manifest["parents"] == [clean.content_hash]
    run = tmp_path / "qs" / "runs" / "pretrain"
    assert json.loads((run / "summary.json").read_text())["steps"] == 12
    assert (run / "model" / "model.safetensors").is_file() and (run / "model" / "tokenizer.json").is_file()
    sft = tmp_path / "qs" / "runs" / "sft"
    summary = json.loads((sft / "summary.json").read_text())
    assert summary["steps"] == 6 and summary["best_val_loss"] is not None
    assert json.loads((sft / "model" / "chatforge.json").read_text())["base_model"] == "qs/runs/pretrain/model"
    dpo = json.loads((tmp_path / "qs" / "runs" / "dpo" / "summary.json").read_text())
    assert dpo["steps"] == 4 and dpo["after"]["pairs"] > 0
    results = json.loads((tmp_path / "qs" / "runs" / "dpo" / "eval.json").read_text())
    assert results["data"]["rows"] == 30 and {"perplexity", "generation", "task", "safety", "bias"} <= set(results)
    sweep = json.loads((tmp_path / "qs" / "runs" / "sweep" / "sweep.json").read_text())
    assert sweep["counts"]["COMPLETE"] + sweep["counts"]["PRUNED"] == 2 and (tmp_path / "qs" / "runs" / "sweep" / "best.yaml").is_file()
    assert (tmp_path / "qs" / "mlflow.db").is_file()
    if not quiet:  # the learning loop: 12 simulated users rated v1, learn ran behind the gate
        learned = json.loads((tmp_path / "qs" / "runs" / "learn" / "learn.json").read_text())
        store = FeedbackStore.open(tmp_path / "qs" / "feedback.db")
        # every answered user rated (a conversation too long for this tiny model's context is refused with a 400)
        answered = store.counts()["turns"]
        assert 6 <= answered <= 12 and learned["feedback"]["ratings"] == store.counts()["ratings"] == answered
        assert learned["decision"] in ("registered", "rejected", "skipped") and {t["model"] for t in store.turns()} == {"v1"}
        reg = Registry(tmp_path / "qs" / "registry")
        assert reg.resolve("v1")["hash"] == model_dir_hash(tmp_path / "qs" / "runs" / "dpo" / "model")
        assert reg.resolve("production")["version"] == ("v2" if learned["decision"] == "registered" else "v1")
        assert "Learning from feedback" in (tmp_path / "qs" / "report.md").read_text()
    page = (tmp_path / "qs" / "report.html").read_text()
    assert ">Comparison<" in page and ">dpo (dpo)<" in page and "data:image/png;base64," in page
    if quiet:
        assert p.stdout == ""
    else:
        assert "where everything was written" in p.stdout and "qs/data/world/conversations" in p.stdout
        assert "cleaning report" in p.stdout
        assert "qs/runs/pretrain/model" in p.stdout and "pretrain done" in p.stdout
        assert "sft done" in p.stdout and "dpo done" in p.stdout and "qs/runs/dpo/model" in p.stdout
        assert "model: " in p.stdout and "reference: " in p.stdout  # the sample conversation
        assert "task success" in p.stdout and "qs/report.html" in p.stdout
        assert "chatforge serve --registry qs/registry" in p.stdout  # the loop registered the model
    # running it again replaces its outputs instead of failing
    cf(*args, "--quiet", cwd=tmp_path)


def test_markup_like_text_is_printed_literally(tmp_path):
    """Paths and row contents that look like rich markup are data, not formatting."""
    src = tmp_path / "m.jsonl"
    src.write_text(
        json.dumps(
            {
                "messages": [{"role": "user", "content": "[bold]hi[/x]"}, {"role": "assistant", "content": "ok"}],
                "source": "crm[/x]",
            }
        )
        + "\n"
    )
    out = "q[/b]"
    p = cf("data", "ingest", str(src), "--out", out, cwd=tmp_path)
    assert "-> q[/b]" in p.stdout
    stats = cf("data", "stats", out, cwd=tmp_path).stdout
    assert "crm[/x]" in stats and "q[/b]" in stats
    shown = cf("data", "show", out, cwd=tmp_path).stdout
    assert "[bold]hi[/x]" in shown


def test_seed_is_accepted_by_every_command(tmp_path):
    src = tmp_path / "a.jsonl"
    src.write_text(
        json.dumps({"messages": [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "ok"}]}) + "\n"
    )
    cf("data", "ingest", str(src), "--out", str(tmp_path / "d"), "--seed", "3", "-q")
    cf("data", "stats", str(tmp_path / "d"), "--seed", "3")


def test_cleaning_commands_as_a_user(tmp_path):
    small = ["--conversations", "300", "--test-conversations", "20", "--heldout-conversations", "20",
             "--kb-articles", "10", "--preferences", "20", "-q"]
    cf("data", "synth", "--out", "w", *small, cwd=tmp_path)
    p = cf("data", "clean", "w/conversations", "--out", "c", "--report", "--workers", "2", cwd=tmp_path)
    assert "cleaning report" in p.stdout and "dedup" in p.stdout and "pii" in p.stdout
    assert "pii: " in p.stdout or "<EMAIL_1>" in p.stdout or "<ORDER_1>" in p.stdout  # --report prints examples
    assert (tmp_path / "c" / "clean_report.md").is_file()
    cf("data", "augment", "c", "--out", "a", "--copies", "1", "-q", cwd=tmp_path)
    cf("data", "split", "a", "--out", "s", "-q", cwd=tmp_path)
    splits = {n: open_dataset(tmp_path / "s" / n).num_rows for n in ("train", "val", "test")}
    assert splits["train"] > splits["val"] > 0
    cf("data", "mix", "s/train:0.8", "w/test:0.2", "--out", "m", "--rows", "100", "-q", cwd=tmp_path)
    assert open_dataset(tmp_path / "m").num_rows == 100
    anon = subprocess.run([EXE, "data", "anonymize", "-q"], input="mail me at jane.doe@example.com\nThanks,\nJane Doe\n",
                          capture_output=True, text=True)
    assert anon.returncode == 0 and "jane.doe@example.com" not in anon.stdout and "<EMAIL_1>" in anon.stdout
    # mistakes: one line, exit 2, nothing replaced
    for args, expected in [
        (["data", "clean", "c", "--out", "c", "--overwrite"], "is the input dataset"),
        (["data", "mix", "c:1", "--out", "c", "--overwrite"], "is one of the sources"),
        (["data", "clean", "c", "--out", "w/kb", "--overwrite"], "is not a conversations dataset"),
        (["data", "split", "c", "--out", "s2", "--val", "0.7", "--test", "0.5"], "val + test: must be < 1"),
        (["data", "clean", "c", "--out", "x", "--pii.mode", "fuzzy"], "--pii.mode: must be one of"),
        (["data", "augment", "w/kb", "--out", "x"], "is a text dataset"),
    ]:
        r = cf(*args, cwd=tmp_path, check=False)
        assert r.returncode == 2 and expected in r.stderr.strip().splitlines()[-1], (args, r.stderr)
        assert "Traceback" not in r.stderr
    assert open_dataset(tmp_path / "w" / "kb").kind == "text"


def test_the_command_line_does_not_load_torch_until_a_training_stage_runs():
    """Building every command's flags must not import torch (it costs seconds per command)."""
    code = "import sys, chatforge.cli as c; c.build_parser(); print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "False"
