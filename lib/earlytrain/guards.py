"""Numerical guards: a measured value that cannot be used stops the computation with a clear
error; estimates that missed their accuracy bound are counted and reported.

* ``check_lambda0``: the learning rate of every run is eta = c / lambda_0, so lambda_0 must be a
  finite positive number. A zero, negative, infinite or NaN lambda_0 (a NaN output at
  initialisation, a degenerate model, an estimator failure) raises ``NumericalError`` naming the
  initialisations and values, before any run: never a silent negative or infinite eta.
* ``warn_unconverged``: an ``AccuracyWarning`` with the count, the tolerance and what to change.
"""
from __future__ import annotations

import warnings
from typing import Sequence

import numpy as np

from .errors import AccuracyWarning, NumericalError


def check_lambda0(value, labels: Sequence[str], where: str) -> None:
    """NumericalError unless every entry of ``value`` [S] (lambda_0 per initialisation, named by
    ``labels``) is finite and > 0; ``where`` says which point of a sweep it is."""
    v = np.atleast_1d(np.asarray(value, float))
    bad = ~np.isfinite(v) | (v <= 0)
    if bad.any():
        listed = ", ".join(f"{lab}: {x:.4g}" for lab, x, b in zip(labels, v, bad) if b)
        raise NumericalError(
            f"lambda_0 (the initial sharpness, the denominator of eta = c / lambda_0) is not a finite "
            f"positive number at {where} ({listed}); the learning rate would be negative, infinite or NaN. "
            "Check the network's output at initialisation (non-finite inputs, out_alpha, out_exp, "
            "last_layer) or the estimator (sharpness_method, sharpness_iters).")


def warn_unconverged(n_bad: int, n_total: int | None, what: str, tol: float, where: str) -> None:
    """AccuracyWarning if ``n_bad`` (of ``n_total``, if known) estimates did not meet ``tol``."""
    if n_bad:
        of = f" of {n_total}" if n_total is not None else ""
        warnings.warn(
            f"{where}: {n_bad}{of} {what} did not meet their accuracy bound (relative "
            f"tolerance {tol:g}) within the cap of sharpness_iters products; they are flagged in the "
            "result. Raise sharpness_iters to converge them.", AccuracyWarning, stacklevel=3)
