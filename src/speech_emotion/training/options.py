"""Option helpers shared by the recipes and the trainer (no imports of either, so no cycle)."""

from __future__ import annotations

from dataclasses import fields, is_dataclass
from typing import Any

EXECUTION_ONLY = ("threads", "progress", "workers")
"""Option names (at any depth of a recipe's options) that change how fast it trains, not what it learns."""


def options_from(cls: type, value: Any) -> Any:
    """An options dataclass from ``None`` (defaults), an instance, or a dict (nested dataclass fields as dicts)."""
    if value is None:
        return cls()
    if isinstance(value, cls):
        return value
    defaults = cls()
    kwargs = {}
    for f in fields(cls):
        if f.name not in value:
            continue
        item = value[f.name]
        default = getattr(defaults, f.name)
        if is_dataclass(default) and isinstance(item, dict):
            item = options_from(type(default), item)
        elif isinstance(default, tuple) and isinstance(item, list):
            item = tuple(item)
        kwargs[f.name] = item
    return cls(**kwargs)
