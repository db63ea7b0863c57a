"""Typed configurations: dataclasses loaded from small TOML files plus ``--key=value`` overrides.

A configuration is a dataclass whose fields are scalars (int, float, str, bool), lists of ints or
lists of lists of ints, or nested configuration dataclasses (one TOML table each). Fields may carry
``metadata={"choices": (...)}`` or ``metadata={"min": x}``; every value is checked on load, and every
problem is reported as one :class:`ConfigError` sentence naming the key and the fix.
"""

from __future__ import annotations

import dataclasses
import os
import tomllib
import typing
from collections.abc import Sequence
from pathlib import Path
from typing import Any, TypeVar

from .errors import ConfigError

__all__ = ["load_config", "apply_overrides", "from_dict", "to_dict", "to_toml", "save_config", "choice", "at_least"]

C = TypeVar("C")


def choice(default: str, *choices: str) -> Any:
    """A string field restricted to ``choices``."""
    return dataclasses.field(default=default, metadata={"choices": (default, *choices)})


def at_least(default: float, minimum: float) -> Any:
    """A numeric field that must be >= ``minimum``."""
    return dataclasses.field(default=default, metadata={"min": minimum})


def _type_name(tp: Any) -> str:
    names = {int: "an integer", float: "a number", str: "a string", bool: "true or false",
             list[int]: "a list of integers", list[list[int]]: "a list of lists of integers",
             list[str]: "a list of strings"}
    return names.get(tp, str(tp))


def _check_value(key: str, tp: Any, value: Any) -> Any:
    """Return ``value`` converted to ``tp`` or raise ConfigError."""
    ok: bool
    if tp is bool:
        ok = isinstance(value, bool)
    elif tp is int:
        ok = isinstance(value, int) and not isinstance(value, bool)
    elif tp is float:
        ok = isinstance(value, (int, float)) and not isinstance(value, bool)
        value = float(value) if ok else value
    elif tp is str:
        ok = isinstance(value, str)
    elif tp == list[int]:
        ok = isinstance(value, list) and all(isinstance(v, int) and not isinstance(v, bool) for v in value)
    elif tp == list[str]:
        ok = isinstance(value, list) and all(isinstance(v, str) for v in value)
    elif tp == list[list[int]]:
        ok = isinstance(value, list) and all(
            isinstance(row, list) and all(isinstance(v, int) and not isinstance(v, bool) for v in row)
            for row in value)
    else:  # pragma: no cover - a programming error in a config class, not user input
        raise TypeError(f"unsupported config field type {tp!r} for {key}")
    if not ok:
        raise ConfigError(f"{key} must be {_type_name(tp)}, got {value!r} ({type(value).__name__}).")
    return value


def from_dict(cls: type[C], data: dict[str, Any], prefix: str = "") -> C:
    """Build config ``cls`` from nested dicts, checking keys, types, choices and bounds."""
    if not isinstance(data, dict):
        raise ConfigError(f"[{prefix.rstrip('.')}] must be a table, got {data!r}.")
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
    unknown = sorted(set(data) - set(fields))
    if unknown:
        where = f"[{prefix.rstrip('.')}]" if prefix else "the top level"
        raise ConfigError(
            f"unknown key {prefix}{unknown[0]}; the keys of {where} are: {', '.join(sorted(fields))}."
        )
    kwargs: dict[str, Any] = {}
    for name, value in data.items():
        key, tp = prefix + name, hints[name]
        if dataclasses.is_dataclass(tp):
            kwargs[name] = from_dict(tp, value, key + ".")
            continue
        value = _check_value(key, tp, value)
        meta = fields[name].metadata
        if "choices" in meta and value not in meta["choices"]:
            raise ConfigError(f"{key} must be one of {', '.join(meta['choices'])}, got {value!r}.")
        if "min" in meta and value < meta["min"]:
            raise ConfigError(f"{key} must be at least {meta['min']}, got {value!r}.")
        kwargs[name] = value
    try:
        return cls(**kwargs)
    except ConfigError:
        raise
    except (TypeError, ValueError) as exc:  # a __post_init__ check of the config class
        raise ConfigError(str(exc)) from None


def to_dict(config: Any) -> dict[str, Any]:
    """The configuration as nested dicts (the inverse of :func:`from_dict`)."""
    return dataclasses.asdict(config)


def _parse_override(text: str) -> tuple[list[str], Any]:
    if not text.startswith("--") or "=" not in text:
        raise ConfigError(f"cannot read override {text!r}; write it as --section.key=value.")
    key, raw = text[2:].split("=", 1)
    try:
        value = tomllib.loads(f"v = {raw}")["v"]
    except tomllib.TOMLDecodeError:
        value = raw  # a bare word: a string value
    return key.split("."), value


def apply_overrides(data: dict[str, Any], overrides: Sequence[str]) -> dict[str, Any]:
    """Set ``--a.b=value`` overrides (values in TOML syntax; bare words are strings) in ``data``."""
    for text in overrides:
        path, value = _parse_override(text)
        node = data
        for part in path[:-1]:
            node = node.setdefault(part, {})
            if not isinstance(node, dict):
                raise ConfigError(f"cannot set --{'.'.join(path)}: {part} is a value, not a table.")
        node[path[-1]] = value
    return data


def load_config(cls: type[C], path: str | os.PathLike[str] | None, overrides: Sequence[str] = ()) -> C:
    """Read ``path`` (TOML; None for the defaults), apply overrides, and check everything."""
    data: dict[str, Any] = {}
    if path is not None:
        p = Path(path)
        if not p.is_file():
            raise ConfigError(f"config file {p} does not exist; pass the path of a TOML file such as configs/digits_tt.toml.")
        try:
            data = tomllib.loads(p.read_text())
        except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
            raise ConfigError(f"config file {p} is not valid TOML ({exc}); fix the syntax at that spot.") from None
    return from_dict(cls, apply_overrides(data, overrides))


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
    if isinstance(value, list):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    return repr(value)


def to_toml(config: Any) -> str:
    """The fully resolved configuration as TOML text that :func:`load_config` reads back."""
    def emit(table: dict[str, Any], name: str) -> list[str]:
        lines = [f"[{name}]"] if name else []
        lines += [f"{k} = {_toml_value(v)}" for k, v in table.items() if not isinstance(v, dict)]
        for k, v in table.items():
            if isinstance(v, dict):
                lines += ["", *emit(v, f"{name}.{k}" if name else k)]
        return lines
    return "\n".join(emit(to_dict(config), "")).lstrip("\n") + "\n"


def save_config(config: Any, path: str | os.PathLike[str]) -> None:
    """Write the resolved configuration atomically."""
    p = Path(path)
    tmp = p.with_name(p.name + ".tmp")
    tmp.write_text(to_toml(config))
    os.replace(tmp, p)
