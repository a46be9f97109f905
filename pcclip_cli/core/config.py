"""TOML configs into dataclasses: one loader with clear errors for malformed files and unknown keys."""

from __future__ import annotations

import dataclasses
import enum
import sys
import typing
from pathlib import Path
from typing import Any, TypeVar

from .errors import DataError, PcclipError

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

T = TypeVar("T")


def load_toml(path: str | Path, *, what: str = "config") -> dict:
    path = Path(path)
    if not path.exists():
        raise DataError(f"{what} file not found: {path}")
    try:
        # utf-8-sig: a byte-order mark some editors write is read as what it is, not as a TOML error.
        return tomllib.loads(path.read_bytes().decode("utf-8-sig"))
    except tomllib.TOMLDecodeError as exc:
        raise DataError(f"{path}: malformed TOML ({exc})") from None
    except UnicodeDecodeError:
        raise DataError(f"{path}: not valid UTF-8") from None


def loads_toml(text: str) -> dict:
    return tomllib.loads(text)


def from_dict(cls: type[T], data: dict, *, source: str = "config") -> T:
    """Build dataclass `cls` from `data`; unknown keys raise an error that lists the valid ones.

    Enum fields accept their string values; the dataclass's own __post_init__ validates ranges.
    """
    fields = {f.name: f for f in dataclasses.fields(cls)}
    unknown = sorted(set(data) - set(fields))
    if unknown:
        raise PcclipError(f"{source}: unknown key(s) {', '.join(unknown)}; valid keys: {', '.join(fields)}")
    hints = typing.get_type_hints(cls)
    kwargs: dict[str, Any] = {}
    for name, value in data.items():
        kind = hints.get(name)
        if isinstance(kind, type) and issubclass(kind, enum.Enum) and not isinstance(value, kind):
            try:
                value = kind(value)
            except ValueError:
                valid = ", ".join(m.value for m in kind)
                raise PcclipError(f"{source}: {name} = {value!r} is not one of {valid}") from None
        kwargs[name] = value
    return cls(**kwargs)


def to_dict(obj) -> dict:
    """A dataclass as plain TOML/JSON-friendly data (enums as values, paths as strings)."""

    def plain(v):
        if isinstance(v, enum.Enum):
            return v.value
        if isinstance(v, Path):
            return str(v)
        if isinstance(v, (list, tuple)):
            return [plain(x) for x in v]
        if isinstance(v, dict):
            return {k: plain(x) for k, x in v.items()}
        return v

    return {f.name: plain(getattr(obj, f.name)) for f in dataclasses.fields(obj)}
