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

Spot check (``check=True``, the default for the two cheap searches): after a search, the found
point's neighbours i + 1 (must be True) and i - 2 (must be False; i - 1 is known False) are
evaluated if no evaluation saw them yet, in one batch of [S, 2], and every value seen during the
search is compared with "False below i, True from i". A violation warns (``NonMonotoneWarning``,
naming the seed rows and indices): there the answer may differ from the full grid's. The check
is local: an isolated True far below the found point is not seen (that needs the full grid).
"""
from __future__ import annotations

import warnings
from typing import Callable

import numpy as np

from .errors import check_choice, check_int

STRATEGIES = ("grid", "coarse_to_fine", "bisect")
Evaluate = Callable[[np.ndarray], np.ndarray]


class NonMonotoneWarning(UserWarning):
    """An indicator was not monotone around the point a search found: that answer may differ
    from the full grid's (strategy "grid")."""


def first_true(evaluate: Evaluate, n: int, n_seeds: int, strategy: str = "bisect",
               stride: int = 8, lo=None, hi=None, check: bool = True,
               name: str = "indicator") -> np.ndarray:
    """First True index per seed, int [S] in [lo + 1, hi].

    lo: [S] indices known to be False (default -1, i.e. none); hi: [S] indices known to be True
    (default n, i.e. past the grid). Only indices strictly between them are evaluated, except that
    the spot check (``check``, see the module docstring; not for "grid") may pad its batch with an
    index evaluated before. ``name`` labels the indicator in the warning.
    """
    check_choice(strategy, "search", STRATEGIES)
    check_int(n, "n", minimum=1)
    check_int(stride, "stride", minimum=2)
    lo = np.full(n_seeds, -1) if lo is None else np.asarray(lo, int).copy()
    hi = np.full(n_seeds, n) if hi is None else np.asarray(hi, int).copy()
    if strategy == "grid":
        return _scan(evaluate, lo, hi, np.arange(n))
    seen = np.full((n_seeds, n), -1, np.int8)  # every value evaluated: -1 unknown, 0 False, 1 True

    def recorded(idx):
        idx = np.asarray(idx)
        true = np.asarray(evaluate(idx), bool)
        seen[np.arange(n_seeds)[:, None], idx] = true
        return true

    first = _search(recorded, n, n_seeds, strategy, stride, lo.copy(), hi.copy())
    if check:
        _spot_check(recorded, seen, first, lo, hi, strategy, name)
    return first


def _search(evaluate: Evaluate, n, n_seeds, strategy, stride, lo, hi) -> np.ndarray:
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


def _spot_check(evaluate: Evaluate, seen, first, lo, hi, strategy, name) -> None:
    """Evaluate first + 1 and first - 2 where unseen and inside (lo, hi) (one batch [S, 2]), then
    warn if any value seen inside (lo, hi) contradicts "False below first, True from first"."""
    n_seeds, n = seen.shape
    rows = np.arange(n_seeds)
    probes = np.stack([first + 1, first - 2], 1)
    inside = (probes > lo[:, None]) & (probes < hi[:, None]) & (probes >= 0) & (probes < n)
    unseen = np.zeros_like(inside)
    unseen[inside] = seen[np.repeat(rows, 2).reshape(-1, 2)[inside], probes[inside]] < 0
    if unseen.any():
        # rows without a probe of their own repeat an index they already evaluated (a memoised
        # evaluator, as the sweep's, does not run it again), else their clipped answer
        filler = np.where((seen >= 0).any(1), np.argmax(seen >= 0, 1), np.clip(first, 0, n - 1))
        filler = np.where(unseen[:, 0], probes[:, 0], np.where(unseen[:, 1], probes[:, 1], filler))
        evaluate(np.where(unseen, probes, filler[:, None]))
    idx = np.arange(n)[None, :]
    window = (idx > lo[:, None]) & (idx < hi[:, None])
    early_true = window & (idx < first[:, None]) & (seen == 1)
    late_false = window & (idx >= first[:, None]) & (seen == 0)
    bad = np.nonzero((early_true | late_false).any(1))[0]
    if len(bad):
        where = "; ".join(
            f"row {s}: found {first[s]}, True at {np.nonzero(early_true[s])[0].tolist()}, "
            f"False at {np.nonzero(late_false[s])[0].tolist()}" for s in bad[:5])
        warnings.warn(f"{name}: not monotone around the point the {strategy!r} search found for "
                      f"{len(bad)} of {n_seeds} seed rows ({where}); there the answer may differ "
                      f"from the full grid's (search='grid').", NonMonotoneWarning, stacklevel=3)
