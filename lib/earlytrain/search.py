"""Searches for the first grid point where a monotone indicator turns True.

The c grid is c_i = 2^(x_min + i * x_step), i = 0..n-1. Every critical constant is "the first
c at which something happens" (the loss rises, the sharpness rises, the run diverges), so it is
the first True of an indicator over i. The paper evaluates every i (``strategy="grid"``). Where
the indicator is monotone in c (False ... False True ... True), two cheaper searches return the
*same grid point*:

* ``"coarse_to_fine"``: every ``stride``-th point, then the points inside the bracket found;
  about n / stride + stride evaluations per seed, in two wide vmapped batches.
* ``"bisect"``: halve a bracket per round; about log2(n) evaluations per seed, one per round.
  ``split`` puts the probe at that fraction of the bracket instead of its middle: when an
  evaluation that comes out True costs much less than one that comes out False (a c_sharp search
  run is decided, and stops, at its first measurement above the threshold; one that stays False is
  measured at every step), probing high makes the cheap outcome the likely one
  (``cost_split``). The answer is the same first True index whenever the indicator is monotone,
  and may differ where it is not: ``sweep.critical_point`` therefore bisects at 1/2 (bench/README.md).

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

from .errors import check, check_choice, check_int, is_real

STRATEGIES = ("grid", "coarse_to_fine", "bisect")
Evaluate = Callable[[np.ndarray], np.ndarray]


class NonMonotoneWarning(UserWarning):
    """An indicator was not monotone around the point a search found: that answer may differ
    from the full grid's (strategy "grid")."""


# a sweep's c_sharp search run that stays False (measured at every step) costs about this many
# runs decided True (at their first measurement above the threshold, then stopped): ~0.8 s against
# ~0.07 s at the book's settings (bench/bench_engine.py part 3's point): cost_split(1, this) = 0.85.
UNDECIDED_RUN_COST = 12.0


def bisect_evaluations(n: int, split: float = 0.5) -> int:
    """The most distinct grid indices a bisection at ``split`` evaluates for one seed, over every
    position of the first True in a grid of n points (the searches themselves, run on the
    indicator of each position at once), spot check excluded."""
    check_int(n, "n", minimum=1)
    t = np.arange(n + 1)
    probes = []  # [rounds] of [n + 1] indices: O(n log n) memory, not an [n + 1, n] table

    def evaluate(idx):
        probes.append(idx[:, 0].copy())
        return idx >= t[:, None]
    check_split(split)
    _search(evaluate, n, n + 1, "bisect", 2, np.full(n + 1, -1), np.full(n + 1, n), split)
    if not probes:
        return 0
    ordered = np.sort(np.stack(probes), axis=0)
    return int((1 + (np.diff(ordered, axis=0) != 0).sum(0)).max())


def cost_split(cost_true: float, cost_false: float) -> float:
    """The fraction f of a bracket at which a bisection should probe, given what an evaluation
    costs when it comes out True and when False: the f in [1/2, 0.95] (by steps of 0.05) that
    minimises the expected cost per bit of information, (f c_T + (1 - f) c_F) / H(f), H the binary
    entropy (a threshold uniform in the bracket is True at the probe with probability f). Equal
    costs give 1/2 (plain bisection); c_F = 12 c_T gives 0.85."""
    check(is_real(cost_true) and cost_true > 0, "cost_true", "a positive number", cost_true)
    check(is_real(cost_false) and cost_false > 0, "cost_false", "a positive number", cost_false)
    fs = np.round(np.arange(0.5, 0.951, 0.05), 2)
    entropy = -(fs * np.log2(fs) + (1 - fs) * np.log2(1 - fs))
    per_bit = (fs * cost_true + (1 - fs) * cost_false) / entropy
    return float(fs[np.argmin(np.round(per_bit, 12))])


def first_true(evaluate: Evaluate, n: int, n_seeds: int, strategy: str = "bisect",
               stride: int = 8, lo=None, hi=None, check: bool = True,
               name: str = "indicator", split: float = 0.5) -> np.ndarray:
    """First True index per seed, int [S] in [lo + 1, hi].

    lo: [S] indices known to be False (default -1, i.e. none); hi: [S] indices known to be True
    (default n, i.e. past the grid). Only indices strictly between them are evaluated, except that
    the spot check (``check``, see the module docstring; not for "grid") may pad its batch with an
    index evaluated before. ``name`` labels the indicator in the warning. ``split`` (bisect only):
    the fraction of the bracket (lo, hi) at which each round probes, lo + floor(split (hi - lo))
    kept strictly inside; 1/2 is plain bisection.
    """
    check_choice(strategy, "search", STRATEGIES)
    check_int(n, "n", minimum=1)
    check_int(stride, "stride", minimum=2)
    check_split(split)
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

    first = _search(recorded, n, n_seeds, strategy, stride, lo.copy(), hi.copy(), split)
    if check:
        _spot_check(recorded, seen, first, lo, hi, strategy, name)
    return first


def check_split(split) -> None:
    check(is_real(split) and 0 < split < 1, "split", "a fraction of the bracket in (0, 1)", split)


def _search(evaluate: Evaluate, n, n_seeds, strategy, stride, lo, hi, split=0.5) -> np.ndarray:
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
        width = hi - lo
        inner = lo + np.clip(np.floor(split * width).astype(int), 1, np.maximum(width - 1, 1))
        mid = np.where(width > 1, inner, np.clip(hi, 0, n - 1))  # split 1/2: (lo + hi) // 2
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
        # an entry without a probe of its own repeats an index its row already evaluated (a
        # memoised evaluator, as the sweep's, does not run it again; one that runs the whole
        # column does, so the found point, True, is preferred: a c_sharp search run decided True
        # is the cheap kind), else its clipped answer
        found = np.clip(first, 0, n - 1)
        known = seen[rows, found] >= 0
        filler = np.where(known, found, np.where((seen >= 0).any(1), np.argmax(seen >= 0, 1), found))
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
