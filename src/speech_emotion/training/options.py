"""Option helpers shared by the recipes and the trainer (no imports of either, so no cycle)."""

from __future__ import annotations

from dataclasses import fields, is_dataclass
from typing import Any

from ..errors import ModelError

EXECUTION_ONLY = ("threads", "progress", "workers")
"""Option names (at any depth of a recipe's options) that change how fast it trains, not what it learns."""


def options_from(cls: type, value: Any, where: str = "") -> Any:
    """An options dataclass from ``None`` (defaults), an instance, or a dict (nested dataclass fields as dicts).

    Raises :class:`~speech_emotion.errors.ModelError` naming the option (e.g. ``train.lr``) for an unknown key or a
    value of the wrong kind (a string for a number, a number for a flag, a scalar for a group of options).
    """
    if value is None:
        return cls()
    if isinstance(value, cls):
        return value
    if not isinstance(value, dict):
        raise ModelError(f"option {where or cls.__name__}: expected a JSON object of options, got {value!r}")
    defaults = cls()
    known = {f.name for f in fields(cls)}
    unknown = sorted(set(value) - known)
    if unknown:
        name = f"{where}.{unknown[0]}" if where else unknown[0]
        raise ModelError(f"unknown option {name!r} (known here: {', '.join(sorted(known))})")
    kwargs = {}
    for name, item in value.items():
        default = getattr(defaults, name)
        path = f"{where}.{name}" if where else name
        nested = is_dataclass(default)
        kwargs[name] = options_from(type(default), item, path) if nested else checked_value(path, item, default)
    return cls(**kwargs)


def checked_value(name: str, value: Any, default: Any) -> Any:
    """``value`` for an option whose default is ``default``, as the same kind (a list becomes a tuple; an int is a
    float where a float is expected); :class:`ModelError` naming ``name`` for another kind."""
    if default is None:
        return value
    if isinstance(default, bool):
        ok = isinstance(value, bool)
    elif isinstance(default, (int, float)):
        ok = isinstance(value, (int, float)) and not isinstance(value, bool)
        if ok and isinstance(default, int) and not float(value).is_integer():
            ok = False
        if ok:
            value = type(default)(value)
    elif isinstance(default, tuple):
        ok = isinstance(value, (list, tuple))
        value = tuple(value) if ok else value
    else:
        ok = isinstance(value, type(default))
    if not ok:
        raise ModelError(f"option {name!r}: expected {type(default).__name__} like {default!r}, got {value!r}")
    return value
