"""Critical constants and phases of early training (Kalra & Barkeshli 2023, Definition 1).

With L~_t(c) = L_t / L_0 and lambda~_t(c) = lambda_t / lambda_0, measured over 1 <= t <= T1:

  c_loss  = min{c : max_t rd(L~_t(c)) > 1}          the loss rises at some step
  c_sharp = min{c : max_t rd(lambda~_t(c)) > 1 + eps}  the sharpness rises at some step
  c_max   = max{c : L_t(c) < K for all t}            the last c before the first divergence

rd rounds to ``decimals`` places (2 in the paper, App. C; None compares unrounded, as the
authors' demo). A diverged run counts as a rise of both (its loss exceeded K). c_max follows the paper's sweep,
which stops at the first divergent c: it is the grid point just below the first divergent one.

Phases of a run at c (the paper's, after Definition 1): c < c_loss sharpness reduction;
c_loss <= c < c_sharp loss catapult; c_sharp <= c <= c_max loss and sharpness catapult;
c > c_max divergent.
"""
from __future__ import annotations

import numpy as np
import xarray as xr

PHASES = ("sharpness reduction", "loss catapult", "loss and sharpness catapult", "divergent")


def _rounded_ratio(values, decimals):
    ratio = values[..., 1:] / values[..., :1]
    return ratio if decimals is None else np.round(ratio, decimals)


def loss_rises(loss: np.ndarray, diverged: np.ndarray, T1: int, decimals: int | None = 2) -> np.ndarray:
    """loss, diverged: [..., T+1] (step 0 = init) -> bool [...]: max_{1<=t<=T1} rd(L_t/L_0) > 1."""
    loss = np.asarray(loss, float)[..., : T1 + 1]
    ratio = _rounded_ratio(loss, decimals)
    return (np.max(np.where(np.isnan(ratio), -np.inf, ratio), -1) > 1) | runs_diverge(diverged, T1)


def sharpness_rises(sharp: np.ndarray, diverged: np.ndarray, T1: int, decimals: int | None = 2,
                    eps: float = 0.0) -> np.ndarray:
    """sharp: [..., T+1] -> bool [...]: max_{1<=t<=T1} rd(lambda_t / lambda_0) > 1 + eps."""
    sharp = np.asarray(sharp, float)[..., : T1 + 1]
    ratio = _rounded_ratio(sharp, decimals)
    return (np.max(np.where(np.isnan(ratio), -np.inf, ratio), -1) > 1 + eps) | runs_diverge(diverged, T1)


def rise_boundary(decimals: int | None = 2, eps: float = 0.0) -> float:
    """The ratio b at which the rise indicator rd(r) > 1 + eps switches: True for r > b, False for
    r < b (``loss_rises``, ``sharpness_rises``; what a ratio exactly at b gives depends on float
    rounding). rd(r) is a multiple of 10^-decimals, so b = (k - 1/2) 10^-decimals with k the
    smallest integer for which k 10^-decimals > 1 + eps (as floats, as the comparison is made);
    decimals None: b = 1 + eps. The early exit of a search run decides against it."""
    if decimals is None:
        return 1.0 + eps
    s = 10.0 ** decimals
    k = int(np.floor((1 + eps) * s))
    while k / s <= 1 + eps:
        k += 1
    while (k - 1) / s > 1 + eps:
        k -= 1
    return (k - 0.5) / s


def runs_diverge(diverged: np.ndarray, T1: int) -> np.ndarray:
    """diverged: [..., T+1] -> bool [...]: the run diverged at some step 1 <= t <= T1."""
    return np.asarray(diverged, bool)[..., 1: T1 + 1].any(-1)


def first_true_c(indicator: np.ndarray, c: np.ndarray) -> np.ndarray:
    """indicator [..., C] over increasing c [C] -> c of the first True (NaN if none)."""
    c = np.asarray(c, float)
    any_true = indicator.any(-1)
    return np.where(any_true, c[np.argmax(indicator, -1)], np.nan)


def c_from_index(idx: np.ndarray, c: np.ndarray) -> np.ndarray:
    """Grid index [...] in [0, n] -> c (NaN for n: not reached within the grid)."""
    c = np.asarray(c, float)
    idx = np.asarray(idx)
    return np.where(idx < len(c), c[np.minimum(idx, len(c) - 1)], np.nan)


def c_max_from_first_divergent(idx: np.ndarray, c: np.ndarray) -> np.ndarray:
    """c_max from the index of the first divergent c: the grid point below it. NaN when even the
    first grid point diverges; the grid's last point when nothing diverged (a lower bound,
    flagged by ``c_max_censored``)."""
    c = np.asarray(c, float)
    idx = np.asarray(idx)
    return np.where(idx > 0, c[np.clip(idx - 1, 0, len(c) - 1)], np.nan)


def critical_constants(ds: xr.Dataset, T1: int | None = None, decimals: int | None = 2,
                       eps: float = 0.0) -> xr.Dataset:
    """From a full-grid trajectory Dataset (variables loss, sharpness, diverged over
    (..., c, step)) to c_loss, c_sharp, c_max over the remaining dims (e.g. depth, width, seed)."""
    T1 = int(ds.sizes["step"] - 1) if T1 is None else T1
    c = ds["c"].values
    values = lambda v: ds[v].transpose(..., "c", "step").values
    loss, sharp, div = values("loss"), values("sharpness"), values("diverged")
    dims = [d for d in ds["loss"].transpose(..., "c", "step").dims if d not in ("c", "step")]
    coords = {d: ds[d] for d in dims}
    divs = runs_diverge(div, T1)
    first_div = np.where(divs.any(-1), np.argmax(divs, -1), len(c))
    out = xr.Dataset(coords=coords)
    out["c_loss"] = (dims, first_true_c(loss_rises(loss, div, T1, decimals), c))
    out["c_sharp"] = (dims, first_true_c(sharpness_rises(sharp, div, T1, decimals, eps), c))
    out["c_max"] = (dims, c_max_from_first_divergent(first_div, c))
    out["c_max_censored"] = (dims, first_div == len(c))
    return out


def phase_of(c, c_loss, c_sharp, c_max) -> np.ndarray:
    """Phase index (into PHASES) of learning-rate constant(s) c given the critical constants."""
    c = np.asarray(c, float)
    return np.select([c < c_loss, c < c_sharp, c <= c_max], [0, 1, 2], 3)
