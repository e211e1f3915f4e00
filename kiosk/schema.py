"""Typed TOML tables as frozen dataclasses: the one validator behind the kiosk's config
and its venue rules.

A field's default gives its type (bool, int, float, str or a str subclass, tuple of
str); `option()` adds a range, the allowed choices and a one-line help. Values of the
wrong type, outside the range or not among the choices raise ConfigError naming the
file, the key and what is allowed.

    >>> from dataclasses import dataclass
    >>> @dataclass(frozen=True)
    ... class Door:
    ...     pulse_s: float = option(1.5, lo=0.1, hi=30.0, doc="door release time")
    >>> parse_table("kiosk.toml", "door", Door, {"pulse_s": 2}).pulse_s
    2.0
    >>> parse_table("kiosk.toml", "door", Door, {"pulse_s": 99})
    Traceback (most recent call last):
    ...
    kiosk.errors.ConfigError: kiosk.toml: key 'door.pulse_s' = 99 is not allowed (out of range); expected a number from 0.1 to 30.0
"""

from __future__ import annotations

import dataclasses
import os
import tomllib
from pathlib import Path
from typing import Any, Mapping

from kiosk.errors import ConfigError

__all__ = ["describe", "coerce", "option", "parse_table", "read_toml"]


def option(default: Any, *, lo: float | None = None, hi: float | None = None,
           choices: tuple[Any, ...] | None = None, doc: str = "") -> Any:
    """A dataclass field with its default, allowed range or choices, and a one-line help."""
    meta = {"lo": lo, "hi": hi, "choices": choices, "doc": doc}
    if isinstance(default, (list, tuple)):
        return dataclasses.field(default=tuple(default), metadata=meta)
    return dataclasses.field(default=default, metadata=meta)


def describe(f: dataclasses.Field) -> str:
    """What a field allows, in words: `an integer from 1 to 120`, `one of 'a', 'b'`."""
    meta, default = f.metadata, f.default
    if meta.get("choices"):
        kind = "one of " + ", ".join(repr(c) for c in meta["choices"])
        return ("a list of " + kind) if isinstance(default, tuple) else kind
    if isinstance(default, bool):
        return "true or false"
    if isinstance(default, tuple):
        return "a list of strings"
    if isinstance(default, str):
        return "a string"
    kind = "an integer" if isinstance(default, int) else "a number"
    if meta.get("lo") is not None:
        kind += f" from {meta['lo']} to {meta['hi']}"
    return kind


def coerce(where: str, key: str, f: dataclasses.Field, value: Any) -> Any:
    """`value` as the field's type, or ConfigError naming `where`, `key` and what is allowed."""
    default, meta = f.default, f.metadata

    def bad(extra: str = "") -> ConfigError:
        return ConfigError(f"{where}: key '{key}' = {value!r} is not allowed{extra}; expected {describe(f)}")

    if isinstance(default, bool):
        if not isinstance(value, bool):
            raise bad()
        return value
    if isinstance(default, tuple):
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise bad()
        for v in value:
            if meta.get("choices") and v not in meta["choices"]:
                raise bad(f" ({v!r} is unknown)")
        return tuple(value)
    if isinstance(default, str):
        if not isinstance(value, str) or (meta.get("choices") and value not in meta["choices"]):
            raise bad()
        return type(default)(value)  # keeps a Secret a Secret
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise bad()
    if isinstance(default, int) and not isinstance(value, int):
        raise bad()
    if meta.get("choices") and value not in meta["choices"]:
        raise bad()
    if meta.get("lo") is not None and not meta["lo"] <= value <= meta["hi"]:
        raise bad(" (out of range)")
    return type(default)(value)


def parse_table(where: str, name: str, cls: type, table: Any) -> Any:
    """One `[name]` table of a TOML document as an instance of the dataclass `cls`."""
    if not isinstance(table, Mapping):
        raise ConfigError(f"{where}: '{name}' must be a table [{name}], not a value")
    fields = {f.name: f for f in dataclasses.fields(cls)}
    values = {}
    for key, value in table.items():
        if key not in fields:
            raise ConfigError(f"{where}: unknown key '{name}.{key}'; allowed keys in [{name}]: "
                              + ", ".join(fields))
        values[key] = coerce(where, f"{name}.{key}", fields[key], value)
    return cls(**values)


def read_toml(path: str | os.PathLike, what: str) -> dict[str, Any]:
    """A TOML file as a dict; ConfigError naming the file (`what`: "config", "rules")."""
    where = str(path)
    try:
        raw = Path(path).read_bytes()
    except FileNotFoundError:
        raise ConfigError(f"{where}: {what} file not found") from None
    except OSError as exc:
        raise ConfigError(f"{where}: cannot read {what} file: {exc.strerror}") from None
    try:
        return tomllib.loads(raw.decode("utf-8"))
    except UnicodeDecodeError:
        raise ConfigError(f"{where}: not UTF-8 text") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{where}: not valid TOML: {exc}") from None
