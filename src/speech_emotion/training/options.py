"""Option helpers shared by the recipes and the trainer (no imports of either, so no cycle).

An options dataclass declares each field's allowed values beside its default with :func:`option`
(``lr: float = option(1e-3, above=0)``); :func:`options_from` checks every value a user gives against them, so
``train`` and ``evaluate`` refuse an out-of-range value in one line before any work starts.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field, fields, is_dataclass
from typing import Any

from ..conditioning import SAMPLE_RATE
from ..errors import ModelError

EXECUTION_ONLY = ("threads", "progress", "workers")
"""Option names (at any depth of a recipe's options) that change how fast it trains, not what it learns."""
SEED_MAX = 2**32 - 1
"""The largest random seed NumPy, scikit-learn and PyTorch all accept (``--seed`` has the same bound)."""


@dataclass(frozen=True)
class Allowed:
    """The values an option may take: a numeric range (either end open or closed, or absent) or a set of choices."""

    low: float | None = None
    high: float | None = None
    low_open: bool = False
    """``True``: ``low`` itself is excluded (``value > low``)."""
    high_open: bool = False
    """``True``: ``high`` itself is excluded (``value < high``)."""
    choices: tuple[Any, ...] = ()

    def admits(self, value: Any) -> bool:
        """Whether ``value`` (already of the option's kind) is allowed."""
        if self.choices:
            return value in self.choices
        if self.low is not None and (value <= self.low if self.low_open else value < self.low):
            return False
        return self.high is None or (value < self.high if self.high_open else value <= self.high)

    def describe(self) -> str:
        """The allowed values in words: ``greater than 0``, ``from 0 to less than 1``, ``one of a, b``."""
        if self.choices:
            return f"one of {', '.join(map(str, self.choices))}"
        low = None if self.low is None else f"{'greater than' if self.low_open else 'at least'} {_number(self.low)}"
        high = None if self.high is None else f"{'less than' if self.high_open else 'at most'} {_number(self.high)}"
        if low and high:
            return f"{low} and {high}"
        return low or high or "any value"


def option(
    default: Any,
    *,
    at_least: float | None = None,
    above: float | None = None,
    at_most: float | None = None,
    below: float | None = None,
    choices: tuple[Any, ...] = (),
) -> Any:
    """A dataclass field with ``default`` whose allowed values (checked by :func:`options_from`) are given beside it:
    ``at_least``/``above`` the lower end (inclusive/exclusive), ``at_most``/``below`` the upper, or ``choices``."""
    allowed = Allowed(
        low=above if above is not None else at_least,
        high=below if below is not None else at_most,
        low_open=above is not None,
        high_open=below is not None,
        choices=tuple(choices),
    )
    return field(default=default, metadata={"allowed": allowed})


def allowed_values(cls: type) -> dict[str, Allowed]:
    """The :class:`Allowed` of each field of the options dataclass ``cls`` declared with :func:`option`."""
    return {f.name: f.metadata["allowed"] for f in fields(cls) if "allowed" in f.metadata}


def options_from(cls: type, value: Any, where: str = "") -> Any:
    """An options dataclass from ``None`` (defaults), an instance, or a dict (nested dataclass fields as dicts).

    Raises :class:`~speech_emotion.errors.ModelError` naming the option (e.g. ``train.lr``) for an unknown key, a
    value of the wrong kind (a string for a number, a number for a flag, a scalar for a group of options), a
    number that is not finite, or a value outside what the field allows (see :func:`option`).
    """
    if value is None:
        return cls()
    if isinstance(value, cls):
        return value
    if not isinstance(value, dict):
        raise ModelError(f"option {where or cls.__name__}: expected a JSON object of options, got {value!r}")
    defaults = cls()
    known = {f.name for f in fields(cls)}
    if "sample_rate" in value and "sample_rate" not in known:  # recorded before 16 kHz became a constant
        if value["sample_rate"] != SAMPLE_RATE:
            name = f"{where}.sample_rate" if where else "sample_rate"
            raise ModelError(f"option {name!r}: must be {SAMPLE_RATE} (every model reads 16 kHz audio)")
        value = {k: v for k, v in value.items() if k != "sample_rate"}
    if "max_duration_s" in value and "max_duration_s" not in known:  # a deployment limit, recorded before it left
        value = {k: v for k, v in value.items() if k != "max_duration_s"}  # the audio options: not the model's
    unknown = sorted(set(value) - known)
    if unknown:
        name = f"{where}.{unknown[0]}" if where else unknown[0]
        raise ModelError(f"unknown option {name!r} (known here: {', '.join(sorted(known))})")
    allowed = allowed_values(cls)
    kwargs = {}
    for name, item in value.items():
        default = getattr(defaults, name)
        path = f"{where}.{name}" if where else name
        if is_dataclass(default):
            kwargs[name] = options_from(type(default), item, path)
        else:
            kwargs[name] = checked_value(path, item, default, allowed.get(name))
    return cls(**kwargs)


def checked_value(name: str, value: Any, default: Any, allowed: Allowed | None = None) -> Any:
    """``value`` for an option whose default is ``default``, as the same kind (a list becomes a tuple; an int is a
    float where a float is expected); :class:`ModelError` naming ``name`` for another kind, for a number that is
    not finite (JSON's ``NaN``, ``Infinity``, ``1e999``) and for a value ``allowed`` does not admit."""
    if default is None:
        return value
    if isinstance(default, bool):
        ok = isinstance(value, bool)
    elif isinstance(default, (int, float)):
        ok = isinstance(value, (int, float)) and not isinstance(value, bool)
        if ok and not _finite(value):
            rule = f" and {allowed.describe()}" if allowed is not None else ""
            raise ModelError(f"option {name!r}: must be a finite number{rule}, got {value!r}")
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
        raise ModelError(f"option {name!r}: expected {_kind(default)} like {_json(default)}, got {_json(value)}")
    if allowed is not None and not allowed.admits(value):
        raise ModelError(f"option {name!r}: must be {allowed.describe()}, got {value!r}")
    return value


def _kind(value: Any) -> str:
    """The JSON kind of an option's value, as a user writes it in ``--options``."""
    if isinstance(value, bool):
        return "true or false"
    if isinstance(value, (int, float)):
        return "a whole number" if isinstance(value, int) else "a number"
    if isinstance(value, (list, tuple)):
        return "a list"
    return "a string" if isinstance(value, str) else "a JSON object"


def _json(value: Any) -> str:
    """``value`` as JSON text (``true``, ``[2, 3]``, ``"x"``), or its repr when JSON has no spelling for it."""
    try:
        return json.dumps(value)
    except (TypeError, ValueError):
        return repr(value)


def _finite(number: float) -> bool:
    """Whether ``number`` is finite and fits a float (a 400-digit JSON integer does not)."""
    try:
        return math.isfinite(number)
    except OverflowError:
        return False


def _number(bound: float) -> str:
    """A range end as written: ``0``, ``1``, ``4294967295``, ``0.5``."""
    return str(int(bound)) if float(bound).is_integer() else f"{bound:g}"
