"""Searches for the first grid point where a monotone indicator turns True.

The c grid is c_i = 2^(x_min + i * x_step), i = 0..n-1. Every critical constant is "the first
c at which something happens" (the loss rises, the sharpness rises, the run diverges), so it is
the first True of an indicator over i. The paper evaluates every i (``strategy="grid"``). Where
the indicator is monotone in c (False ... False True ... True), two cheaper searches return the
*same grid point*:

* ``"coarse_to_fine"``: every ``stride``-th point, then the points inside the bracket found;
  about n / stride + stride evaluations per seed, in two wide vmapped batches.
* ``"bisect"``: halve a bracket per round; about log2(n) evaluations per seed, one per round.

``evaluate(idx)`` takes an int array [S, K] (K grid indices for each of S seeds) and returns a
bool array [S, K]. Searches return, per seed, the first True index in [0, n], where n means "not
within the grid". A non-monotone indicator (noise at large d / w) can make the searches disagree
with the full grid; the tests show they agree whenever it is monotone.
"""
from __future__ import annotations

from typing import Callable

import numpy as np

from .errors import check_choice, check_int

STRATEGIES = ("grid", "coarse_to_fine", "bisect")
Evaluate = Callable[[np.ndarray], np.ndarray]


def first_true(evaluate: Evaluate, n: int, n_seeds: int, strategy: str = "bisect",
               stride: int = 8, lo=None, hi=None) -> np.ndarray:
    """First True index per seed, int [S] in [lo + 1, hi].

    lo: [S] indices known to be False (default -1, i.e. none); hi: [S] indices known to be True
    (default n, i.e. past the grid). Only indices strictly between them are evaluated.
    """
    check_choice(strategy, "search", STRATEGIES)
    check_int(n, "n", minimum=1)
    check_int(stride, "stride", minimum=2)
    lo = np.full(n_seeds, -1) if lo is None else np.asarray(lo, int).copy()
    hi = np.full(n_seeds, n) if hi is None else np.asarray(hi, int).copy()
    if strategy == "grid":
        return _scan(evaluate, lo, hi, np.arange(n))
    if strategy == "coarse_to_fine":
        coarse = np.arange(0, n, stride)
        first = _scan(evaluate, lo, hi, coarse)
        # the answer lies in (previous coarse point, first]; evaluate the points in between
        prev = np.maximum(lo, np.searchsorted(coarse, first) * stride - stride)
        offsets = np.arange(1, stride)
        fine = np.minimum(prev[:, None] + offsets[None, :], np.maximum(first - 1, 0)[:, None])
        fine_lo = np.where(first > prev + 1, prev, first - 1)
        return np.minimum(first, _scan(evaluate, fine_lo, first, fine, per_seed=True))
    while np.any(hi - lo > 1):
        mid = np.where(hi - lo > 1, (lo + hi) // 2, np.clip(hi, 0, n - 1))
        true = np.asarray(evaluate(mid[:, None]))[:, 0]
        active = hi - lo > 1
        hi = np.where(active & true, mid, hi)
        lo = np.where(active & ~true, mid, lo)
    return hi


def _scan(evaluate: Evaluate, lo, hi, idx, per_seed: bool = False) -> np.ndarray:
    """First True among ``idx`` strictly inside (lo, hi) per seed, else hi. idx: [K] or [S, K]."""
    n_seeds = lo.shape[0]
    idx = np.broadcast_to(idx, (n_seeds, idx.shape[-1])) if not per_seed else idx
    inside = (idx > lo[:, None]) & (idx < hi[:, None])
    if not inside.any():
        return hi
    true = np.asarray(evaluate(np.ascontiguousarray(idx))) & inside
    first = np.where(true.any(1), idx[np.arange(n_seeds), np.argmax(true, 1)], hi)
    return np.minimum(first, hi)
