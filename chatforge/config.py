"""Typed configuration: one dataclass per stage, loaded from YAML plus dotted overrides.

Precedence, lowest first: the dataclass defaults, then `--config FILE.yaml`, then
command-line flags. Every field is declared with `opt()`, which carries the help text
that `--help` shows and the allowed range that loading checks, so a bad value is
reported with the field's name and where it came from:

    chatforge: error: quick.yaml:3: synth.conversations: must be >= 1, got 0
    chatforge: error: --conversations: must be >= 1, got 0

Nested dataclasses become dotted names (`csv.user_col` in YAML, `--csv.user-col` on
the command line). No `eval`, no dotted import paths: a config is plain data.
"""

from __future__ import annotations

import argparse
import copy
import dataclasses
import difflib
import math
import types
import typing
from dataclasses import MISSING, Field, dataclass
from pathlib import Path
from typing import Any, Literal, TypeVar, Union, get_args, get_origin

import yaml

from chatforge.atomic import atomic_write_text
from chatforge.errors import ConfigError, UserError

T = TypeVar("T")


def opt(
    default: Any = MISSING,
    help: str = "",
    *,
    default_factory: Any = MISSING,
    ge: float | None = None,
    gt: float | None = None,
    le: float | None = None,
    lt: float | None = None,
    required: bool = False,
    positional: bool = False,
    metavar: str | None = None,
) -> Any:
    """Declare a config field with its help text and allowed range."""
    metadata = {
        "help": help,
        "ge": ge,
        "gt": gt,
        "le": le,
        "lt": lt,
        "required": required,
        "positional": positional,
        "metavar": metavar,
    }
    if default_factory is not MISSING:
        return dataclasses.field(default_factory=default_factory, metadata=metadata)
    return dataclasses.field(default=default, metadata=metadata)


# --------------------------------------------------------------------------------------
# YAML with line numbers


class _LineDict(dict):
    """A dict that remembers the line of each key in its YAML file."""

    lines: dict[str, int]


class _LineLoader(yaml.SafeLoader):
    """SafeLoader whose mappings remember their keys' line numbers."""


def _construct_mapping(loader: _LineLoader, node: yaml.MappingNode) -> _LineDict:
    loader.flatten_mapping(node)
    out = _LineDict()
    out.lines = {}
    for key_node, value_node in node.value:
        key = loader.construct_object(key_node, deep=True)
        if not isinstance(key, str):
            raise ConfigError(f"line {key_node.start_mark.line + 1}: keys must be strings, got {key!r}")
        out[key] = loader.construct_object(value_node, deep=True)
        out.lines[key] = key_node.start_mark.line + 1
    return out


_LineLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)


def read_yaml(path: str | Path) -> dict[str, Any]:
    """Read a YAML mapping; errors name the file and line."""
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise UserError(f"{p}: config file not found") from None
    except (OSError, UnicodeDecodeError) as e:
        raise UserError(f"{p}: cannot read config file: {e}") from None
    try:
        data = yaml.load(text, Loader=_LineLoader)
    except yaml.MarkedYAMLError as e:
        mark = e.problem_mark or e.context_mark
        line = f":{mark.line + 1}" if mark is not None else ""
        raise UserError(f"{p}{line}: invalid YAML: {e.problem or e.context}") from None
    except yaml.YAMLError as e:
        raise UserError(f"{p}: invalid YAML: {e}") from None
    except ConfigError as e:
        raise ConfigError(f"{p}: {e}") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"{p}: expected a mapping of field: value at the top level")
    return data


# --------------------------------------------------------------------------------------
# Building a dataclass from plain data


@dataclass
class _Value:
    """A raw value and where it came from, for error messages."""

    value: Any
    where: str  # "file.yaml:3" or "--flag"


def _hints(cls: type) -> dict[str, Any]:
    return typing.get_type_hints(cls)


def _is_optional(tp: Any) -> tuple[bool, Any]:
    origin = get_origin(tp)
    if origin in (Union, types.UnionType):
        args = [a for a in get_args(tp) if a is not type(None)]
        if len(args) == 1 and len(get_args(tp)) == 2:
            return True, args[0]
    return False, tp


def type_name(tp: Any) -> str:
    """A short human name for a field type, used in help and errors."""
    optional, inner = _is_optional(tp)
    if optional:
        return type_name(inner)
    if get_origin(tp) is Literal:
        return "|".join(str(a) for a in get_args(tp))
    if get_origin(tp) is list:
        (item,) = get_args(tp)
        return f"list of {type_name(item)}"
    return {bool: "bool", int: "int", float: "float", str: "str", Path: "path"}.get(tp, str(tp))


_TRUE = {"true", "yes", "on", "1"}
_FALSE = {"false", "no", "off", "0"}


def _coerce(value: Any, tp: Any, name: str) -> Any:
    """Convert a YAML or command-line value to the field's type, or raise ValueError."""
    optional, inner = _is_optional(tp)
    if optional:
        if value is None or (isinstance(value, str) and value.lower() in ("none", "null", "")):
            return None
        return _coerce(value, inner, name)
    origin = get_origin(tp)
    if origin is Literal:
        choices = get_args(tp)
        if value in choices:
            return value
        raise ValueError(f"must be one of {', '.join(map(str, choices))}; got {value!r}")
    if origin is list:
        (item,) = get_args(tp)
        if isinstance(value, str):
            value = [v for v in value.split(",") if v != ""]
        if not isinstance(value, (list, tuple)):
            raise ValueError(f"must be a list; got {value!r}")
        return [_coerce(v, item, name) for v in value]
    if tp is bool:
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.lower() in _TRUE | _FALSE:
            return value.lower() in _TRUE
        raise ValueError(f"must be true or false; got {value!r}")
    if tp is int:
        if isinstance(value, bool):
            raise ValueError(f"must be an integer; got {value!r}")
        if isinstance(value, int):
            return value
        if isinstance(value, float) and value.is_integer():
            return int(value)
        if isinstance(value, str):
            try:
                return int(value.replace("_", ""))
            except ValueError:
                pass
        raise ValueError(f"must be an integer; got {value!r}")
    if tp is float:
        if isinstance(value, bool):
            raise ValueError(f"must be a number; got {value!r}")
        if isinstance(value, (int, float)):
            return float(value)
        if isinstance(value, str):
            try:
                return float(value)
            except ValueError:
                pass
        raise ValueError(f"must be a number; got {value!r}")
    if tp is str:
        if isinstance(value, (dict, list)):
            raise ValueError(f"must be a string; got {value!r}")
        if isinstance(value, bool):
            return "true" if value else "false"
        return str(value)
    if tp is Path:
        if not isinstance(value, (str, Path)):
            raise ValueError(f"must be a path; got {value!r}")
        return Path(value)
    raise TypeError(f"unsupported config field type {tp!r} for {name}")  # a bug, not a user error


def check_range(value: Any, meta: typing.Mapping[str, Any]) -> str | None:
    """Why a number breaks a field's `opt()` range (its metadata), or None if it is within it."""
    if value is None or isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    if isinstance(value, float) and not math.isfinite(value):  # (an int is finite; a huge one overflows isfinite)
        return f"must be a finite number, got {value}"
    if meta.get("ge") is not None and value < meta["ge"]:
        return f"must be >= {meta['ge']}, got {value}"
    if meta.get("gt") is not None and value <= meta["gt"]:
        return f"must be > {meta['gt']}, got {value}"
    if meta.get("le") is not None and value > meta["le"]:
        return f"must be <= {meta['le']}, got {value}"
    if meta.get("lt") is not None and value >= meta["lt"]:
        return f"must be < {meta['lt']}, got {value}"
    return None


def range_text(meta: typing.Mapping[str, Any]) -> str:
    """The allowed range of a numeric field as text, e.g. '>= 1, <= 100'."""
    parts = []
    for key, sym in (("ge", ">="), ("gt", ">"), ("le", "<="), ("lt", "<")):
        if meta.get(key) is not None:
            parts.append(f"{sym} {meta[key]}")
    return ", ".join(parts)


class _Group(dict):
    """A group of fields (a nested mapping) and where it came from."""

    where: str = ""


def _where(v: _Value | _Group, path: str) -> str:
    if v.where.startswith("--"):
        return f"{v.where}: "
    return f"{v.where}: {path}: " if v.where else f"{path}: "


def _field_default(f: Field[Any]) -> Any:
    if f.default is not MISSING:
        return f.default
    if f.default_factory is not MISSING:  # type: ignore[misc]
        return f.default_factory()  # type: ignore[misc]
    return MISSING


def declared(cls: type, instance: Any) -> dict[str, Any]:
    """The fewest field values that rebuild `instance` of a config dataclass: taken in field
    order, a value is declared only if the class would not derive it from those before it
    (so ModelConfig(n_head=4) declares n_head, not the n_kv_head it fills in from it)."""
    out: dict[str, Any] = {}
    for f in dataclasses.fields(cls):  # type: ignore[arg-type]
        if getattr(instance, f.name) != getattr(cls(**out), f.name):
            out[f.name] = getattr(instance, f.name)
    return out


def _build(cls: type[T], data: dict[str, Any], prefix: str, base: dict[str, Any] | None = None) -> T:
    """`cls` from a tree of values; fields not given come from `base` (the values a parent's
    field declares for this group, e.g. a preset model config), else the field's own default."""
    hints = _hints(cls)
    by_name = {f.name: f for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
    for key, v in data.items():
        if key not in by_name:
            close = difflib.get_close_matches(key, list(by_name), n=1)
            hint = f"; did you mean '{prefix}{close[0]}'?" if close else ""
            where = getattr(v, "where", "")
            loc = f"{where}: " if where else ""
            raise ConfigError(f"{loc}unknown field '{prefix}{key}'{hint}")
    kwargs: dict[str, Any] = {}
    for name, f in by_name.items():
        tp = hints[name]
        path = prefix + name
        if dataclasses.is_dataclass(tp):
            sub = data.get(name, {})
            if isinstance(sub, _Value):
                raise ConfigError(f"{_where(sub, path)}expected a group of fields, got {sub.value!r}")
            kwargs[name] = _build(tp, sub, path + ".", _group_base(tp, f, base))  # type: ignore[arg-type]
            continue
        if name not in data:
            if base is not None and name in base:
                kwargs[name] = copy.deepcopy(base[name])
            elif f.default is MISSING and f.default_factory is MISSING:  # type: ignore[misc]
                raise ConfigError(f"{path}: required")
            continue
        v = data[name]
        if isinstance(v, _Group):
            raise ConfigError(f"{_where(v, path)}expected a value, got a group of fields")
        try:
            kwargs[name] = _coerce(v.value, tp, path)
        except ValueError as e:
            raise ConfigError(f"{_where(v, path)}{e}") from None
        problem = check_range(kwargs[name], f.metadata)
        if problem:
            raise ConfigError(f"{_where(v, path)}{problem}")
    obj = cls(**kwargs)
    for name, f in by_name.items():
        if f.metadata.get("required") and getattr(obj, name) in (None, "", []):
            what = f.metadata.get("help") or "no default"
            if f.metadata.get("positional"):
                how = f"give {f.metadata.get('metavar') or name.upper()} on the command line"
            else:
                how = "pass --" + (prefix + name).replace("_", "-")
            raise ConfigError(f"{prefix}{name}: required ({what}); {how}")
    validate = getattr(obj, "validate", None)
    if callable(validate):
        validate()
    return obj


def _insert(tree: dict[str, Any], dotted: str, value: _Value) -> None:
    parts = dotted.split(".")
    node = tree
    for part in parts[:-1]:
        child = node.get(part)
        if isinstance(child, _Value):
            raise ConfigError(f"{value.where}: '{part}' is a value, not a group of fields")
        if child is None:
            child = node[part] = _Group()
            child.where = value.where
        node = child
    node[parts[-1]] = value


def _wrap_yaml(data: dict[str, Any], file: str, tree: dict[str, Any]) -> None:
    lines = getattr(data, "lines", {})
    for key, value in data.items():
        where = f"{file}:{lines.get(key, '?')}"
        if isinstance(value, dict):
            sub = _Group()
            sub.where = where
            tree[key] = sub
            _wrap_yaml(value, file, sub)
        else:
            tree[key] = _Value(value, where)


def load_config(
    cls: type[T],
    *,
    file: str | Path | None = None,
    overrides: dict[str, Any] | None = None,
) -> T:
    """Build `cls` from defaults, an optional YAML file and dotted overrides.

    Overrides map dotted field names to values; strings (from the command line) are
    converted to the field's type, so `{"csv.user_col": "q"}` and `--csv.user-col q`
    are the same thing.
    """
    tree: dict[str, Any] = {}
    if file is not None:
        _wrap_yaml(read_yaml(file), str(file), tree)
    for key, value in (overrides or {}).items():
        _insert(tree, key, _Value(value, "--" + key.replace("_", "-")))
    return _build(cls, tree, "")


def to_dict(cfg: Any) -> dict[str, Any]:
    """A config as plain JSON/YAML-ready data (paths become strings)."""

    def plain(v: Any) -> Any:
        if isinstance(v, Path):
            return str(v)
        if isinstance(v, dict):
            return {k: plain(x) for k, x in v.items()}
        if isinstance(v, (list, tuple)):
            return [plain(x) for x in v]
        return v

    return plain(dataclasses.asdict(cfg))


def save_config(cfg: Any, path: str | Path) -> None:
    """Write the resolved config as YAML (atomically); `--config` reads it back."""
    text = yaml.safe_dump(to_dict(cfg), sort_keys=False, allow_unicode=True)
    atomic_write_text(Path(path), text)


# --------------------------------------------------------------------------------------
# Command-line flags generated from a dataclass


def _group_base(tp: type, f: Field[Any], base: dict[str, Any] | None) -> dict[str, Any] | None:
    """What a nested group's field declares for it: the parent's base, else its default instance."""
    if base is not None and f.name in base:
        return base[f.name]
    inst = _field_default(f)
    return None if inst is MISSING else _declared_tree(tp, inst)


def _declared_tree(tp: type, inst: Any) -> dict[str, Any]:
    return {k: (_declared_tree(type(v), v) if dataclasses.is_dataclass(v) else v) for k, v in declared(tp, inst).items()}


def iter_fields(cls: type, prefix: str = "", base: dict[str, Any] | None = None) -> typing.Iterator[tuple[str, Field[Any], Any, Any]]:
    """Every leaf field of a config dataclass as (dotted name, field, type, default); a nested
    group's defaults are what its parent's field declares for it."""
    hints = _hints(cls)
    for f in dataclasses.fields(cls):  # type: ignore[arg-type]
        tp = hints[f.name]
        if dataclasses.is_dataclass(tp):
            yield from iter_fields(tp, prefix + f.name + ".", _group_base(tp, f, base))  # type: ignore[arg-type]
        else:
            default = base[f.name] if base is not None and f.name in base else _field_default(f)
            yield prefix + f.name, f, tp, default


def _default_text(d: Any) -> str:
    if d is MISSING or d in ("", None, []):
        return ""
    if isinstance(d, bool):
        d = "true" if d else "false"
    if isinstance(d, list):
        d = " ".join(map(str, d))
    return f" (default: {d})"


def add_config_arguments(parser: argparse.ArgumentParser, cls: type) -> list[str]:
    """Add one flag per config field (`--a.b-c`); returns the names of boolean flags.

    Defaults are suppressed, so the parsed namespace holds only what the user typed:
    those values then override the YAML file, which overrides the dataclass defaults.
    """
    bools: list[str] = []
    for dotted, f, tp, default in iter_fields(cls):
        meta = f.metadata
        help_text = meta.get("help", "")
        rng = range_text(meta)
        if rng:
            help_text += f" [{rng}]"
        help_text += _default_text(default)
        help_text = help_text.replace("%", "%%")
        is_list = get_origin(_is_optional(tp)[1]) is list
        if meta.get("positional"):
            # A list positional may be empty on the command line when a --config file
            # gives it; loading then checks it is set (`required`).
            has_default = f.default not in (MISSING, "", None)
            parser.add_argument(
                dotted,
                nargs="*" if is_list else ("?" if has_default else None),
                metavar=meta.get("metavar") or dotted.upper(),
                help=help_text,
                default=argparse.SUPPRESS,
            )
            continue
        kebab = "--" + dotted.replace("_", "-")
        names = [kebab] + (["--" + dotted] if "_" in dotted else [])
        if len(dotted) == 1:  # one-letter fields also get the short form: -n 5
            names.insert(0, "-" + dotted)
        if tp is bool:
            bools.append(dotted)
            parser.add_argument(*names, dest=dotted, action="store_const", const="true", default=argparse.SUPPRESS, help=help_text)
            parser.add_argument(
                "--no-" + dotted.replace("_", "-"),
                dest=dotted,
                action="store_const",
                const="false",
                default=argparse.SUPPRESS,
                help=argparse.SUPPRESS,
            )
            continue
        choices = get_origin(tp) is Literal
        parser.add_argument(
            *names,
            dest=dotted,
            nargs="+" if is_list else None,
            action="extend" if is_list else "store",  # `--ab A=x:1 --ab B=y:1` is `--ab A=x:1 B=y:1`
            metavar=meta.get("metavar") or (type_name(tp) if choices else type_name(tp).upper().replace(" ", "_")),
            default=argparse.SUPPRESS,
            help=help_text,
        )
    return bools


def normalize_bool_flags(argv: list[str], bools: list[str]) -> list[str]:
    """Turn `--flag=false` into `--no-flag` (argparse cannot give a value to a switch)."""
    names = {}
    for dotted in bools:
        names["--" + dotted.replace("_", "-")] = dotted
        names["--" + dotted] = dotted
    out: list[str] = []
    for arg in argv:
        if arg == "--":
            out.extend(argv[len(out) :])
            break
        if arg.startswith("--") and "=" in arg:
            name, value = arg.split("=", 1)
            if name in names:
                v = value.lower()
                if v in _TRUE:
                    out.append("--" + names[name].replace("_", "-"))
                elif v in _FALSE:
                    out.append("--no-" + names[name].replace("_", "-"))
                else:
                    raise ConfigError(f"{name}: must be true or false; got {value!r}")
                continue
        out.append(arg)
    return out
