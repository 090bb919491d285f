"""Security review as tests: a repository-wide read of the code for the patterns that would let
a user's file or a model's text run code.

Each rule walks the syntax tree of every module that ships or runs on user input (chatforge/
and benchmarks/), so a comment or a string that mentions `eval(` does not trip it, and a call
spelled through an alias (`from pickle import loads`) still does.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest
import trials

ROOT = Path(__file__).resolve().parents[2]
SCANNED = ("chatforge", "benchmarks")


def _modules() -> list[Path]:
    files = sorted(p for d in SCANNED for p in (ROOT / d).rglob("*.py"))
    assert len(files) > 50, files  # the walk found the code (a wrong root would pass every rule)
    return files


MODULES = _modules()


def _dotted(node: ast.AST) -> str:
    """`a.b.c` for a Name/Attribute chain, '' for anything else."""
    parts = []
    while isinstance(node, ast.Attribute):
        parts.append(node.attr)
        node = node.value
    if isinstance(node, ast.Name):
        parts.append(node.id)
        return ".".join(reversed(parts))
    return ""


class _Calls(ast.NodeVisitor):
    """Every call in a module, with the name it resolves to through `import x as y` / `from x import y`."""

    def __init__(self) -> None:
        self.aliases: dict[str, str] = {}
        self.calls: list[tuple[str, ast.Call]] = []

    def visit_Import(self, node: ast.Import) -> None:
        for a in node.names:
            self.aliases[a.asname or a.name.split(".")[0]] = a.name if a.asname else a.name.split(".")[0]

    def visit_ImportFrom(self, node: ast.ImportFrom) -> None:
        for a in node.names:
            self.aliases[a.asname or a.name] = f"{node.module}.{a.name}"

    def visit_Call(self, node: ast.Call) -> None:
        name = _dotted(node.func)
        if name:
            head, _, rest = name.partition(".")
            resolved = self.aliases.get(head, head)
            self.calls.append((f"{resolved}.{rest}" if rest else resolved, node))
        self.generic_visit(node)


def _calls(path: Path) -> list[tuple[str, ast.Call]]:
    v = _Calls()
    v.visit(ast.parse(path.read_text(encoding="utf-8"), filename=str(path)))
    return v.calls


CALLS = {p: _calls(p) for p in MODULES}


def _kw(call: ast.Call, name: str) -> ast.expr | None:
    return next((k.value for k in call.keywords if k.arg == name), None)


def _where(path: Path, call: ast.Call) -> str:
    return f"{path.relative_to(ROOT)}:{call.lineno}"


def _find(pred) -> list[str]:
    return [_where(p, c) for p, calls in CALLS.items() for name, c in calls if pred(name, c)]


def test_torch_load_always_says_weights_only_true():
    bad = _find(lambda n, c: n == "torch.load" and not (isinstance(_kw(c, "weights_only"), ast.Constant) and _kw(c, "weights_only").value is True))
    assert bad == []


UNPICKLERS = {"pickle.load", "pickle.loads", "pickle.Unpickler", "cloudpickle.load", "cloudpickle.loads", "dill.load", "dill.loads", "joblib.load", "marshal.load", "marshal.loads", "shelve.open", "pandas.read_pickle"}


def test_nothing_is_unpickled():
    assert _find(lambda n, c: n in UNPICKLERS) == []
    # numpy refuses pickles by default; nobody may turn that on
    assert _find(lambda n, c: n.endswith(".load") and isinstance(_kw(c, "allow_pickle"), ast.Constant) and _kw(c, "allow_pickle").value) == []


def test_no_remote_code_is_trusted():
    def trusting(n: str, c: ast.Call) -> bool:
        v = _kw(c, "trust_remote_code")
        return v is not None and not (isinstance(v, ast.Constant) and v.value is False)

    assert _find(trusting) == []


def test_no_eval_or_exec_of_text():
    """Builtin eval/exec/compile never run; `model.eval()` (a method, inference mode) is fine."""
    assert _find(lambda n, c: n in {"eval", "exec", "compile", "builtins.eval", "builtins.exec"}) == []


def test_no_shell_commands():
    def shell(n: str, c: ast.Call) -> bool:
        v = _kw(c, "shell")
        if n.startswith("subprocess.") and v is not None and not (isinstance(v, ast.Constant) and v.value is False):
            return True
        return n in {"os.system", "os.popen", "os.execl", "os.execlp", "os.spawnl", "commands.getoutput"}

    assert _find(shell) == []


def test_subprocess_arguments_are_lists():
    """A command built as one string would need a shell to split it; ours are argument lists."""
    bad = _find(lambda n, c: n in {"subprocess.run", "subprocess.Popen", "subprocess.check_output", "subprocess.check_call", "subprocess.call"} and c.args and not isinstance(c.args[0], (ast.List, ast.Tuple, ast.Name)))
    assert bad == []


def test_yaml_is_read_safely():
    def unsafe(n: str, c: ast.Call) -> bool:
        if n in {"yaml.unsafe_load", "yaml.full_load", "yaml.load_all"}:
            return True
        if n == "yaml.load":
            loader = _kw(c, "Loader") or (c.args[1] if len(c.args) > 1 else None)
            return loader is None or ("Safe" not in _dotted(loader) and _dotted(loader) not in {"_LineLoader"})
        return False

    assert _find(unsafe) == []
    # the config loader's own class is a SafeLoader
    import yaml

    from chatforge.config import _LineLoader

    assert issubclass(_LineLoader, yaml.SafeLoader)


def test_chat_templates_render_in_a_sandbox():
    """Templates come with imported models: rendered only by jinja2's immutable sandbox, and a
    template that reaches for Python internals is a clear error, not code that runs."""
    plain = _find(lambda n, c: n in {"jinja2.Environment", "jinja2.Template", "jinja2.environment.Environment"})
    assert plain == []
    from chatforge.errors import UserError

    for template in (
        "{{ ''.__class__.__mro__[1].__subclasses__() }}",
        "{{ cycler.__init__.__globals__.os.system('touch pwned') }}",
        "{% for m in messages %}{{ messages.append(m) }}{% endfor %}",
        "{{ raise_exception('no system role here') }}",
        "{{ messages + 1 }}",
        "{{ 'a' * 10**10 }}",  # memory: the sandbox bounds * and **
        "{{ 2 ** 100000000 }}",
    ):
        with pytest.raises(UserError, match="chat template"):
            trials.template_tokenizer(template)
    assert not Path("pwned").exists()


@pytest.mark.parametrize(
    "source, rule",
    [
        ("import torch\ntorch.load('x')\n", test_torch_load_always_says_weights_only_true),
        ("from pickle import loads as l\nl(b'')\n", test_nothing_is_unpickled),
        ("import subprocess\nsubprocess.run('ls', shell=True)\n", test_no_shell_commands),
        ("m.from_pretrained('x', trust_remote_code=flag)\n", test_no_remote_code_is_trusted),
        ("eval(reply)\n", test_no_eval_or_exec_of_text),
        ("import yaml\nyaml.load(text, Loader=yaml.Loader)\n", test_yaml_is_read_safely),
    ],
)
def test_each_rule_catches_its_pattern(tmp_path, source, rule, monkeypatch):
    """The rules are not vacuous: a module with the pattern makes its rule fail."""
    bad = tmp_path / "bad.py"
    bad.write_text(source, encoding="utf-8")
    monkeypatch.setitem(CALLS, bad, _calls(bad))
    monkeypatch.setattr(Path, "relative_to", lambda self, other: self)
    with pytest.raises(AssertionError):
        rule()


def test_a_hostile_model_dir_cannot_make_serve_allocate_what_it_declares(tmp_path):
    """`chatforge serve/chat --model DIR` on a dir whose config.json declares a huge model next
    to small weights: refused from the safetensors headers before anything is allocated."""
    import json

    from serve_helpers import tiny_model_dir

    from chatforge.checkpoint import load_model_dir
    from chatforge.errors import UserError

    model = tiny_model_dir(tmp_path)
    cfg = json.loads((model / "config.json").read_text())
    cfg.update(num_hidden_layers=100_000, vocab_size=2**24)
    (model / "config.json").write_text(json.dumps(cfg))
    with pytest.raises(UserError, match=r"config\.json"):
        load_model_dir(model)
