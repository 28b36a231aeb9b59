"""Validation: bad input is rejected before any compute, with one clear message.

Every public entry point validates its parameters with these helpers, so the message
always names the parameter, what is allowed and what was given.
"""
from __future__ import annotations

import dataclasses
import difflib
import functools
import math
import numbers
from collections.abc import Mapping
from typing import Any, Iterable

import numpy as np


class ConfigError(ValueError):
    """A parameter is outside what the library accepts (raised before any compute)."""


def fail(param: str, allowed: str, got: Any) -> None:
    raise ConfigError(f"{param}: expected {allowed}, got {got!r}")


def check(ok: bool, param: str, allowed: str, got: Any) -> None:
    """Raise ConfigError('param: expected <allowed>, got <got>') unless ``ok``."""
    if not ok:
        fail(param, allowed, got)


def check_choice(value: Any, param: str, choices: Iterable[Any]) -> None:
    choices = tuple(choices)
    check(value in choices, param, "one of " + ", ".join(map(repr, choices)), value)


def _range(what: str, minimum, maximum, strict: bool = False) -> str:
    """'an integer in [0, 5]', 'a finite number > 0', ... (strict: open bounds)."""
    if minimum is not None and maximum is not None:
        return f"{what} in {'(' if strict else '['}{minimum}, {maximum}{')' if strict else ']'}"
    if minimum is not None:
        return f"{what} {'>' if strict else '>='} {minimum}"
    if maximum is not None:
        return f"{what} {'<' if strict else '<='} {maximum}"
    return what


def check_int(value: Any, param: str, minimum: int | None = None, maximum: int | None = None) -> None:
    is_int = isinstance(value, numbers.Integral) and not isinstance(value, (bool, np.bool_))
    lo = -float("inf") if minimum is None else minimum
    hi = float("inf") if maximum is None else maximum
    check(is_int and lo <= value <= hi, param, _range("an integer", minimum, maximum), value)


def check_positive(value: Any, param: str) -> None:
    check(is_real(value) and math.isfinite(value) and value > 0, param, "a finite number > 0", value)


def is_real(value: Any) -> bool:
    """A real number (Python or numpy), not a bool."""
    return isinstance(value, numbers.Real) and not isinstance(value, (bool, np.bool_))


def check_real(value: Any, param: str, minimum: float | None = None, maximum: float | None = None,
               strict: bool = False) -> None:
    """A finite real number (numpy scalars accepted, bools not) in [minimum, maximum]
    ((minimum, maximum) with ``strict``)."""
    ok = is_real(value) and math.isfinite(value)
    if ok and minimum is not None:
        ok = value > minimum if strict else value >= minimum
    if ok and maximum is not None:
        ok = value < maximum if strict else value <= maximum
    check(ok, param, _range("a finite number", minimum, maximum, strict), value)


def check_bool(value: Any, param: str) -> None:
    check(isinstance(value, (bool, np.bool_)), param, "True or False", value)


def as_tuple(value: Any, param: str) -> tuple:
    """A list, tuple, range or 1-d numpy array as a tuple of Python scalars; a scalar as (value,)."""
    if isinstance(value, np.ndarray):
        check(value.ndim <= 1, param, "a list or a 1-d array", f"an array of shape {value.shape}")
        value = value.tolist()
    items = tuple(value) if isinstance(value, (list, tuple, range)) else (value,)
    return tuple(v.item() if isinstance(v, np.generic) else v for v in items)


def close_matches(names: Iterable[str], known: Iterable[str]) -> str:
    """'a' (did you mean 'b'?), 'c' ... for each name of ``names``."""
    known = sorted(known)
    parts = []
    for n in sorted(names):
        near = difflib.get_close_matches(str(n), known, n=3, cutoff=0.6)
        parts.append(repr(n) + (f" (did you mean {' or '.join(map(repr, near))}?)" if near else ""))
    return ", ".join(parts)


def check_names(given: Iterable[str], known: Iterable[str], param: str, what: str) -> None:
    """ConfigError naming every name of ``given`` that is not in ``known``, with close matches."""
    known = set(known)
    unknown = [n for n in given if n not in known]
    if unknown:
        raise ConfigError(f"{param}: unknown name{'s' if len(unknown) > 1 else ''} "
                          f"{close_matches(unknown, known)}; expected {what}")


def _init_names(cls) -> list[str]:
    return [f.name for f in dataclasses.fields(cls) if f.init]


def strict_init(cls):
    """Class decorator for config dataclasses: an unknown keyword is a ConfigError that names it
    and its close matches, instead of the dataclass constructor's bare TypeError."""
    init = cls.__init__

    @functools.wraps(init)
    def __init__(self, *args, **kw):
        names = _init_names(cls)
        check_names(kw, names, cls.__name__, f"fields of {cls.__name__}: {', '.join(names)}")
        check(len(args) <= len(names), cls.__name__, f"at most {len(names)} positional values", args)
        init(self, *args, **kw)

    cls.__init__ = __init__
    return cls


def as_config(cls, value: Any, param: str):
    """``value`` if it is a ``cls``; ``cls(**value)`` for a dict (unknown keys -> ConfigError
    naming ``param``); anything else is a ConfigError."""
    if isinstance(value, cls):
        return value
    check(isinstance(value, Mapping), param, f"a {cls.__name__} or a dict of its fields", value)
    names = _init_names(cls)
    check_names(value, names, param, f"fields of {cls.__name__}: {', '.join(names)}")
    return cls(**value)


class NumericalError(ArithmeticError):
    """A measured quantity cannot be used (e.g. lambda_0 <= 0 or not finite as the denominator
    of eta = c / lambda_0); raised before it reaches any run."""


class AccuracyWarning(UserWarning):
    """Some estimates did not meet their accuracy bound (the result flags them)."""
