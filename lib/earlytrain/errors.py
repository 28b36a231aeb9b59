"""Validation: bad input is rejected before any compute, with one clear message.

Every public entry point validates its parameters with these helpers, so the message
always names the parameter, what is allowed and what was given.
"""
from __future__ import annotations

import numbers
from typing import Any, Iterable


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


def check_int(value: Any, param: str, minimum: int | None = None, maximum: int | None = None) -> None:
    is_int = isinstance(value, numbers.Integral) and not isinstance(value, bool)
    lo = -float("inf") if minimum is None else minimum
    hi = float("inf") if maximum is None else maximum
    if minimum is not None and maximum is not None:
        allowed = f"an integer in [{minimum}, {maximum}]"
    elif minimum is not None:
        allowed = f"an integer >= {minimum}"
    elif maximum is not None:
        allowed = f"an integer <= {maximum}"
    else:
        allowed = "an integer"
    check(is_int and lo <= value <= hi, param, allowed, value)


def check_positive(value: Any, param: str) -> None:
    ok = isinstance(value, numbers.Real) and not isinstance(value, bool) and value > 0
    check(ok and value == value and value != float("inf"), param, "a finite number > 0", value)
