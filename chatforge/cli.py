"""The `chatforge` command: one entry point, one subcommand per lifecycle stage.

Each subcommand is a config dataclass plus a `main(cfg, ui)` function (COMMANDS below).
Its flags are generated from the dataclass, so `--help` documents every field and any
field can be set on the command line (`--csv.user-col q`) or in a YAML file
(`--config FILE.yaml`); flags win over the file, the file over the defaults.

User mistakes print one line, `chatforge: error: ...`, and exit with status 2.
"""

from __future__ import annotations

import argparse
import dataclasses
import difflib
import os
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, NoReturn

from chatforge import __version__
from chatforge.config import add_config_arguments, load_config, normalize_bool_flags
from chatforge.errors import UserError
from chatforge.ui import UI


@dataclass(frozen=True)
class Command:
    """A subcommand: its words (`data ingest`), help, and how to load its config class and function.

    `load` imports the stage's module only when that command is parsed or run, so a
    command starts without importing every other stage (~0.4 s here).
    """

    name: str
    help: str
    load: Callable[[], tuple[type, Callable[[Any, UI], Any]]]


def _synth() -> tuple[type, Callable[[Any, UI], Any]]:
    from chatforge.data import synth

    return synth.SynthConfig, synth.main


def _ingest() -> tuple[type, Callable[[Any, UI], Any]]:
    from chatforge.data import formats

    return formats.IngestConfig, formats.main


def _clean() -> tuple[type, Callable[[Any, UI], Any]]:
    from chatforge.data import clean

    return clean.CleanConfig, clean.main


def _anonymize() -> tuple[type, Callable[[Any, UI], Any]]:
    from chatforge.data import pii

    return pii.AnonymizeConfig, pii.anonymize_main


def _augment() -> tuple[type, Callable[[Any, UI], Any]]:
    from chatforge.data import augment

    return augment.AugmentConfig, augment.main


def _split() -> tuple[type, Callable[[Any, UI], Any]]:
    from chatforge.data import split

    return split.SplitConfig, split.main


def _mix() -> tuple[type, Callable[[Any, UI], Any]]:
    from chatforge.data import mix

    return mix.MixConfig, mix.main


def _stats() -> tuple[type, Callable[[Any, UI], Any]]:
    from chatforge.data import inspect

    return inspect.StatsConfig, inspect.stats_main


def _show() -> tuple[type, Callable[[Any, UI], Any]]:
    from chatforge.data import inspect

    return inspect.ShowConfig, inspect.show_main


def _export() -> tuple[type, Callable[[Any, UI], Any]]:
    from chatforge.data import formats

    return formats.ExportConfig, formats.export_main


def _tokenizer() -> tuple[type, Callable[[Any, UI], Any]]:
    from chatforge import tokenizer

    return tokenizer.TokenizerTrainConfig, tokenizer.main


# Training stages: the configs live in torch-free modules, and the stage itself (which
# imports torch, ~2 s here) is imported only when it runs, so --help stays fast.


def _pretrain() -> tuple[type, Callable[[Any, UI], Any]]:
    from chatforge.train import config

    def run(cfg: Any, ui: UI) -> Any:
        from chatforge.train import pretrain

        return pretrain.main(cfg, ui)

    return config.PretrainConfig, run


def _sft() -> tuple[type, Callable[[Any, UI], Any]]:
    from chatforge.train import config

    def run(cfg: Any, ui: UI) -> Any:
        from chatforge.train import sft

        return sft.main(cfg, ui)

    return config.SFTConfig, run


def _dpo() -> tuple[type, Callable[[Any, UI], Any]]:
    from chatforge.train import config

    def run(cfg: Any, ui: UI) -> Any:
        from chatforge.train import dpo

        return dpo.main(cfg, ui)

    return config.DPOConfig, run


def _merge_lora() -> tuple[type, Callable[[Any, UI], Any]]:
    from chatforge.train import config

    def run(cfg: Any, ui: UI) -> Any:
        from chatforge.train import lora

        return lora.main(cfg, ui)

    return config.MergeLoRAConfig, run


def _chat() -> tuple[type, Callable[[Any, UI], Any]]:
    from chatforge import chat

    return chat.ChatConfig, chat.main


def _eval() -> tuple[type, Callable[[Any, UI], Any]]:
    from chatforge.eval import config

    def run(cfg: Any, ui: UI) -> Any:
        from chatforge.eval import runner

        return runner.main(cfg, ui)

    return config.EvalConfig, run


def _human_export() -> tuple[type, Callable[[Any, UI], Any]]:
    from chatforge.eval import config

    def run(cfg: Any, ui: UI) -> Any:
        from chatforge.eval import human

        return human.export_main(cfg, ui)

    return config.HumanExportConfig, run


def _human_import() -> tuple[type, Callable[[Any, UI], Any]]:
    from chatforge.eval import config, human

    return config.HumanImportConfig, human.import_main


def _report() -> tuple[type, Callable[[Any, UI], Any]]:
    from chatforge.eval import report

    return report.ReportConfig, report.main


def _sweep() -> tuple[type, Callable[[Any, UI], Any]]:
    from chatforge import hpo

    return hpo.SweepConfig, hpo.main


def _feedback_export() -> tuple[type, Callable[[Any, UI], Any]]:
    from chatforge.feedback import commands

    return commands.FeedbackExportConfig, commands.export_main


def _feedback_stats() -> tuple[type, Callable[[Any, UI], Any]]:
    from chatforge.feedback import commands

    return commands.FeedbackStatsConfig, commands.stats_main


def _feedback_import() -> tuple[type, Callable[[Any, UI], Any]]:
    from chatforge.feedback import commands

    return commands.FeedbackImportConfig, commands.import_main


def _ab_report() -> tuple[type, Callable[[Any, UI], Any]]:
    from chatforge.feedback import abtest

    return abtest.ABReportConfig, abtest.main


def _monitor() -> tuple[type, Callable[[Any, UI], Any]]:
    from chatforge.feedback import monitor

    return monitor.MonitorConfig, monitor.main


def _models(action: str) -> Callable[[], tuple[type, Callable[[Any, UI], Any]]]:
    def load() -> tuple[type, Callable[[Any, UI], Any]]:
        from chatforge import registry as r

        return {
            "list": (r.ModelsListConfig, r.list_main),
            "show": (r.ModelsShowConfig, r.show_main),
            "promote": (r.ModelsChangeConfig, r.change_main("promote")),
            "archive": (r.ModelsChangeConfig, r.change_main("archive")),
            "rollback": (r.ModelsRollbackConfig, r.rollback_main),
        }[action]

    return load


def _feedback_review() -> tuple[type, Callable[[Any, UI], Any]]:
    from chatforge.feedback import commands

    return commands.FeedbackReviewConfig, commands.review_main


def _learn() -> tuple[type, Callable[[Any, UI], Any]]:
    from chatforge.feedback import learn

    return learn.LearnConfig, learn.main


def _runs_list() -> tuple[type, Callable[[Any, UI], Any]]:
    from chatforge import runs

    return runs.RunsListConfig, runs.list_main


def _runs_compare() -> tuple[type, Callable[[Any, UI], Any]]:
    from chatforge import runs

    return runs.RunsCompareConfig, runs.compare_main


def _serve() -> tuple[type, Callable[[Any, UI], Any]]:
    from chatforge.serve import config

    def run(cfg: Any, ui: UI) -> Any:
        from chatforge.serve import app

        return app.main(cfg, ui)

    return config.ServeConfig, run


def _import() -> tuple[type, Callable[[Any, UI], Any]]:
    from chatforge.interop import config

    def run(cfg: Any, ui: UI) -> Any:
        from chatforge.interop import commands

        return commands.import_main(cfg, ui)

    return config.ImportConfig, run


def _model_export() -> tuple[type, Callable[[Any, UI], Any]]:
    from chatforge.interop import config

    def run(cfg: Any, ui: UI) -> Any:
        from chatforge.interop import commands

        return commands.export_main(cfg, ui)

    return config.ExportConfig, run


def _quickstart() -> tuple[type, Callable[[Any, UI], Any]]:
    from chatforge import quickstart

    return quickstart.QuickstartConfig, quickstart.main


COMMANDS = [
    Command("data synth", "generate the built-in support world (conversations, KB text, preferences, test splits)", _synth),
    Command("data ingest", "convert chat logs (OpenAI, ShareGPT, Alpaca, prompt/completion, preference, CSV, text) to a dataset", _ingest),
    Command("data clean", "normalize, anonymize PII, filter and deduplicate a dataset into a new version", _clean),
    Command("data anonymize", "replace personal data in text (file or stdin) with typed placeholders", _anonymize),
    Command("data augment", "add varied copies of conversations (synonyms, noise, typos, paraphrases of user turns)", _augment),
    Command("data split", "train/val/test splits by content hash, with a leakage check", _split),
    Command("data mix", "combine datasets with sampling weights (multitask mixtures)", _mix),
    Command("data stats", "counts and distributions of a dataset", _stats),
    Command("data show", "pretty-print rows of a dataset", _show),
    Command("data export", "write a dataset as JSONL", _export),
    Command("tokenizer train", "train a byte-level BPE tokenizer with the chat format", _tokenizer),
    Command("pretrain", "pretrain the GPT on text and conversations (checkpoints, resume, torchrun)", _pretrain),
    Command("sft", "fine-tune a model on conversations, the loss on the assistant's turns (packing, mixtures)", _sft),
    Command("dpo", "prefer chosen over rejected answers (Direct Preference Optimization, frozen reference)", _dpo),
    Command("merge-lora", "fold a LoRA adapter into its base model (a plain model dir)", _merge_lora),
    Command("sweep", "search a stage's hyperparameters with Optuna (pruning, resumable, several workers)", _sweep),
    Command("runs list", "the run dirs under some directories, one line each", _runs_list),
    Command("runs compare", "runs side by side: the config fields that differ, training and eval figures", _runs_compare),
    Command("eval", "measure a model: perplexity, BLEU/ROUGE/F1, task success, safety and bias probes", _eval),
    Command("eval human-export", "a blind sheet of one or two models' answers for people to rate", _human_export),
    Command("eval human-import", "read the filled-in ratings back (mean, confidence interval, win rate)", _human_import),
    Command("report", "an HTML + Markdown report card of run dirs: curves, lineage, eval results", _report),
    Command("chat", "talk to a model in the terminal (streaming, history, /reset, /system)", _chat),
    Command("serve", "an OpenAI-compatible API and a web chat page (continuous batching, limits, metrics)", _serve),
    Command("import", "a Llama-family model (Hugging Face dir or .gguf) as a model dir, with its own tokenizer", _import),
    Command("export", "a model dir for other tools: Hugging Face dir, GGUF (llama.cpp), Ollama", _model_export),
    Command("feedback stats", "volume and rating rates of the feedback store, by model version, intent and period", _feedback_stats),
    Command("feedback export", "rated replies as training data (sft, dpo datasets) or JSONL", _feedback_export),
    Command("feedback review", "the replies the model was least sure of, as a CSV for a person to correct; --read takes it back", _feedback_review),
    Command("feedback import", "JSONL ratings and conversation logs into the feedback store", _feedback_import),
    Command("learn", "fine-tune the served model on curated feedback; register it if it passes the eval gate", _learn),
    Command("ab report", "an A/B test's variants side by side: thumbs-up rates, z-test, Bayesian posterior, a recommendation", _ab_report),
    Command("monitor", "feedback rates, latency, safety declines and input drift over time, regressions flagged", _monitor),
    Command("models list", "the versions in a model registry: stage, parent, eval figures", _models("list")),
    Command("models show", "one registered version: lineage, eval results, files", _models("show")),
    Command("models promote", "make a version production (a server on the registry switches to it)", _models("promote")),
    Command("models rollback", "serve the version that served before", _models("rollback")),
    Command("models archive", "retire a version (kept for lineage, never served)", _models("archive")),
    Command("quickstart", "run the whole lifecycle on the built-in data", _quickstart),
]


LIFECYCLE = """\
the lifecycle, in order:
  data synth | data ingest    gather conversations (built-in support world, or your logs)
  data clean                  normalize, remove PII, filter, deduplicate (data anonymize: PII alone)
  data augment                more training conversations from the ones you have
  data split | data mix       train/val/test splits; weighted mixtures of datasets
  data stats | data show      inspect a dataset
  data export                 write a dataset back out as JSONL
  tokenizer train             a byte-level BPE tokenizer with the chat template
  pretrain                    next-token pretraining of the GPT (torchrun for several processes)
  sft                         fine-tune on conversations (assistant-only loss, packing, mixtures)
  dpo                         learn from preference pairs (chosen vs rejected answers)
  merge-lora                  fold a LoRA adapter (sft/dpo --lora.r N) into its base model
  sweep                       hyperparameter search over a stage's config (Optuna)
  runs list | runs compare    tables of runs; what differs between them
  eval                        perplexity, BLEU/ROUGE/F1, task success, safety and bias probes
  eval human-export           blind rating sheets for people (human-import reads them back)
  report                      an HTML report card of runs (curves, lineage, eval), side by side
  chat                        talk to a model in the terminal
  serve                       an OpenAI-compatible API and a web chat page
  import | export             start from a Llama-family model (HF, GGUF); export to HF, GGUF, Ollama
  feedback stats | export     what users rated; corrected and liked replies as training data
  models list | promote ...   the model registry: versions, lineage, production and rollback
  learn                       fine-tune on users' feedback behind an eval gate; register the result
  ab report                   did the A/B test's candidate do better? (serve --registry --ab ...)
  monitor                     the served assistant over time: ratings, latency, drift, regressions
  quickstart                  all of the above on the built-in data, in one command

Run `chatforge COMMAND --help` for a command's flags. Every flag can also be set in a
YAML file passed with --config; flags on the command line win.
"""


class _Parser(argparse.ArgumentParser):
    """argparse, but usage errors become one-line UserErrors (with a did-you-mean)."""

    def error(self, message: str) -> NoReturn:
        if message.startswith("unrecognized arguments:"):
            known = [s for a in self._actions for s in a.option_strings]
            for arg in message.split(":", 1)[1].split():
                flag = arg.split("=", 1)[0]
                close = difflib.get_close_matches(flag, known, n=1)
                if close:
                    message += f" (did you mean {close[0]}?)"
                    break
        raise UserError(f"{message} (see `{self.prog} --help`)")


def _formatter(prog: str) -> argparse.HelpFormatter:
    return argparse.RawDescriptionHelpFormatter(prog, max_help_position=34, width=min(110, max(80, _width())))


def _width() -> int:
    try:
        return os.get_terminal_size().columns
    except OSError:
        return 100


def build_parser(only: str | None = None) -> tuple[argparse.ArgumentParser, dict[str, list[str]]]:
    """The parser, and the boolean flag names of each command whose flags it holds.

    With `only`, just that command's module is imported and its flags added; the other
    commands are listed with their help (enough for `--help` and for the error of a
    mistyped command).
    """
    parser = _Parser(
        prog="chatforge",
        description="chatforge: train a ChatGPT-style assistant of your own, end to end.",
        epilog=LIFECYCLE,
        formatter_class=_formatter,
    )
    parser.add_argument("--version", action="version", version=f"chatforge {__version__}")
    top = parser.add_subparsers(title="commands", metavar="COMMAND", dest="_top")
    parsers: dict[str, argparse.ArgumentParser] = {}  # one-word commands and groups, by word
    groups: dict[str, argparse._SubParsersAction] = {}
    bools: dict[str, list[str]] = {}
    for cmd in COMMANDS:
        words = cmd.name.split()
        sub = top
        if len(words) == 2:
            if words[0] not in groups:
                # A group's parser; when the first word is a command itself ("eval"), its
                # parser, whose subcommands are then optional ("eval human-export").
                parent = parsers.get(words[0])
                if parent is None:
                    parent = parsers[words[0]] = top.add_parser(words[0], help=f"{words[0]} commands", formatter_class=_formatter)
                groups[words[0]] = parent.add_subparsers(title="commands", metavar="COMMAND", dest="_sub")
                groups[words[0]].required = words[0] not in {c.name for c in COMMANDS}
            sub = groups[words[0]]
        if only is not None and cmd.name != only:
            parsers[cmd.name] = sub.add_parser(words[-1], help=cmd.help, formatter_class=_formatter)
            continue
        config, run = cmd.load()
        p = sub.add_parser(words[-1], help=cmd.help, description=(config.__doc__ or cmd.help), formatter_class=_formatter)
        parsers[cmd.name] = p
        p.add_argument("--config", metavar="FILE.yaml", help="read settings from a YAML file (flags override it)")
        p.add_argument("--quiet", "-q", action="store_true", help="no progress bars or notes")
        bools[cmd.name] = add_config_arguments(p, config)
        if "seed" not in {f.name for f in dataclasses.fields(config)}:
            # Common to every command; this one has no randomness of its own.
            p.add_argument("--seed", dest="_seed", type=int, metavar="INT", help="random seed (this command is deterministic)")
        p.set_defaults(_config=config, _run=run, _parser=p)
    return parser, bools


def _command_words(argv: Sequence[str], names: list[str]) -> str | None:
    words = [a for a in argv if not a.startswith("-")][:2]
    for n in (2, 1):
        name = " ".join(words[:n])
        if name in names:
            return name
    return None


def run(argv: Sequence[str]) -> Any:
    """Parse `argv`, build the config, run the command; returns the command's result."""
    argv = list(argv)
    name = _command_words(argv, [c.name for c in COMMANDS])
    parser, bools = build_parser(only=name or "")
    if name is not None:
        argv = normalize_bool_flags(argv, bools[name])
    ns, extras = parser.parse_known_args(argv)
    config: type | None = getattr(ns, "_config", None)
    if config is None:
        if extras:
            parser.error(f"unrecognized arguments: {' '.join(extras)}")
        parser.print_help()
        return None
    if extras:  # reported by the command's own parser, which knows its flags
        ns._parser.error(f"unrecognized arguments: {' '.join(extras)}")
    values = {k: v for k, v in vars(ns).items() if not k.startswith("_") and k not in ("config", "quiet")}
    cfg: Any = load_config(config, file=ns.config, overrides=values)
    return ns._run(cfg, UI(quiet=ns.quiet))


def main(argv: Sequence[str] | None = None) -> int:
    """Console entry point: returns the exit status."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")
    os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
    try:
        run(sys.argv[1:] if argv is None else argv)
    except UserError as e:
        print(f"chatforge: error: {e}", file=sys.stderr)
        return 2
    except BrokenPipeError:
        # Output piped into `head` and closed early: not an error.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 0
    except OSError as e:
        # The system refused (disk full, permission denied, ...): say what and where.
        where = f"{e.filename}: " if e.filename else ""
        print(f"chatforge: error: {where}{e.strerror or e}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("chatforge: interrupted; nothing half-written was left behind", file=sys.stderr)
        return 130
    return 0
