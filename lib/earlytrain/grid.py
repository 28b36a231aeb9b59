"""The grid c = 2^x, x = x_min, x_min + x_step, ... <= x_max, on which every critical constant is
searched, for the networks (``sweep.SweepConfig``) and for the uv model (``uv.phases``) alike.

One construction and one validation for both, so that a grid means the same thing everywhere.
What differs between the two is how many points a grid may sensibly have, because a point costs
very different amounts: a named limit each (``MAX_POINTS_NETWORK``, ``MAX_POINTS_UV``), passed to
``check_grid`` by the config that owns the grid.
"""
from __future__ import annotations

import numpy as np

from .errors import check, check_positive, check_real

X_LIMIT = 1000             # |x| at most: c = 2^x stays a finite, nonzero float (2^1000 ~ 1e301)
MAX_POINTS_NETWORK = 10**5  # a network grid point is a training run per seed (seconds on a CPU)
MAX_POINTS_UV = 10**6       # a uv grid point is a scalar map iterated T times (microseconds)
DECIMALS = 10              # x values are rounded to this many decimals (see ``x_grid``)


def n_points(x_min: float, x_max: float, x_step: float) -> int:
    """Number of grid points from x_min to x_max (inclusive, to a relative 1e-9 of a step)."""
    return int(np.floor((x_max - x_min) / x_step + 1e-9)) + 1


def x_grid(x_min: float, x_max: float, x_step: float) -> np.ndarray:
    """x_i = x_min + i * x_step up to x_max -> float [n_points].

    Each x_i is computed from i (no accumulated sum) and rounded to ``DECIMALS`` decimals, so a
    grid given in decimals (x_step = 0.1, 0.025, ...) holds exactly the doubles nearest to those
    decimals, whatever the float error of the product; 10 decimals keep every step above 1e-10
    distinct. (The uv sweeps rounded to 6 decimals before: for every grid of decimals with at most
    6 places, as all of the book's are, both give the same doubles, tests/test_layering.py.)"""
    return np.round(x_min + x_step * np.arange(n_points(x_min, x_max, x_step)), DECIMALS)


def c_grid(x_min: float, x_max: float, x_step: float) -> np.ndarray:
    """c_i = 2^x_i on ``x_grid`` -> float [n_points]."""
    return 2.0 ** x_grid(x_min, x_max, x_step)


def check_grid(x_min, x_max, x_step, max_points: int, single_point: bool = False) -> None:
    """ConfigError naming the parameter unless x_min, x_max lie in [-X_LIMIT, X_LIMIT], x_step > 0,
    x_max > x_min (x_max >= x_min with ``single_point``: a one-point grid is allowed) and the grid
    has fewer than ``max_points`` steps."""
    check_real(x_min, "x_min", -X_LIMIT, X_LIMIT)
    check_real(x_max, "x_max", -X_LIMIT, X_LIMIT)
    check_positive(x_step, "x_step")
    if single_point:
        check(x_max >= x_min, "x_max", f"a grid end >= x_min = {x_min} (c = 2^x)", x_max)
    else:
        check(x_max > x_min, "x_max", f"a number > x_min = {x_min}", x_max)
    check((x_max - x_min) / x_step < max_points, "x_step",
          f"a step giving at most {max_points} grid points from x_min to x_max", x_step)
