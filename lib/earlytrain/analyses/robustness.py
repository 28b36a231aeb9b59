"""Comparing phase diagrams of network variants (Kalra & Barkeshli 2023, App. C, J, K).

The appendices repeat the FCN phase diagram with one change at a time: the neural tangent
parameterisation (NTP) instead of the standard one (SP), biases in every layer, a smaller SGD
batch. Their claim is that the diagram keeps its structure. These functions turn two phase sweeps
(``sweep.phase_sweep`` results over (depth, width, seed), run with the same seeds) into the
numbers such a claim is judged on, without training anything:

* :func:`shift`: per (depth, width) and constant, log2 of the ratio of the variant's mean to the
  baseline's; a c_max with a censored seed (nothing diverged on the grid: only a lower bound) on
  either side is NaN (a bound is not a value to compare);
* :func:`max_abs_shift`: the largest |shift| over the finite entries, optionally only at the
  (depth, width) points inside the paper's validity range :func:`in_regime`;
* :func:`largest_shift`: the entry of a :func:`shift_table` with the largest |shift|;
* :func:`order_mask`: per (depth, width, seed), whether c_loss <= c_sharp <= c_max, and where that
  can be judged (c_sharp measured); :func:`pooled_order_mask` over several sweeps, and :func:`order_count`
  its counts as a claim and a chapter's text use them;
* :func:`by_width`: one constant's per-width mean, spread and per-seed values (a per-width claim);
* :func:`same_diagram`: what the claim "the variant gives the baseline's diagram" is judged on;
* :func:`largest_factor_text`: the largest factor between a variant's and the baseline's means, in
  words.
"""
from __future__ import annotations

from typing import NamedTuple

import numpy as np
import xarray as xr

CONSTANTS = ("c_loss", "c_sharp", "c_max")
GAMMA = 1 / 16  # d/w below which the paper's FCN results hold (SPEC 1.1: recalled [I])


def censored(ds: xr.Dataset) -> xr.DataArray:
    """Per (depth, width, seed): True where c_max is only a lower bound."""
    if "c_max_censored" in ds:
        return ds.c_max_censored.astype(bool)
    return xr.zeros_like(ds["c_max"], dtype=bool)


def _mean(ds: xr.Dataset, name: str) -> xr.DataArray:
    c = ds[name]
    m = c.mean("seed")
    if name == "c_max":  # a mean with a censored seed is a lower bound, not a value
        m = m.where(~censored(ds).any("seed"))
    return m


def shift(variant: xr.Dataset, baseline: xr.Dataset, names=CONSTANTS) -> xr.Dataset:
    """log2(<c>_variant / <c>_baseline) per (depth, width) for each constant of ``names`` present
    in both (means over seeds). NaN where either mean is missing or not positive, and for c_max
    where either side has a censored seed. The two sweeps must share their (depth, width) points."""
    for dim in ("depth", "width"):
        a, b = np.asarray(variant[dim].values), np.asarray(baseline[dim].values)
        if a.shape != b.shape or not np.array_equal(np.sort(a), np.sort(b)):
            raise ValueError(f"shift: the sweeps differ in {dim}: {a.tolist()} vs {b.tolist()}")
    out = xr.Dataset()
    for n in names:
        if n not in variant or n not in baseline:
            continue
        mv, mb = _mean(variant, n), _mean(baseline, n).reindex_like(_mean(variant, n))
        ok = (mv > 0) & (mb > 0)
        out[n] = np.log2(mv.where(ok) / mb.where(ok))
    return out


def paired_spread(variant: xr.Dataset, baseline: xr.Dataset, names=CONSTANTS) -> xr.Dataset:
    """Standard deviation over seeds of the per-seed log2(c_variant / c_baseline) (the sweeps share
    their seeds: a paired comparison), per (depth, width); c_max of a seed censored on either side
    left out. NaN with fewer than two finite pairs."""
    out = xr.Dataset()
    for n in names:
        if n not in variant or n not in baseline:
            continue
        a, b = variant[n], baseline[n].reindex_like(variant[n])
        ok = (a > 0) & (b > 0)
        if n == "c_max":
            ok = ok & ~censored(variant) & ~censored(baseline).reindex_like(variant[n])
        r = np.log2(a.where(ok) / b.where(ok))
        out[n] = r.std("seed").where(r.count("seed") >= 2)
    return out


def csharp_shift_widest(variant: xr.Dataset, baseline: xr.Dataset) -> tuple[int | None, np.ndarray]:
    """App. J.1's comparison: log2(c_sharp_variant / c_sharp_baseline) per initialisation (paired
    by seed) at the widest width of the first depth where every initialisation of both sweeps has
    a measured c_sharp -> (that width, [S]); (None, [NaN]) when no width has them all."""
    both = (variant.c_sharp.notnull() & baseline.c_sharp.notnull()).isel(depth=0).all("seed")
    if not bool(both.any()):
        return None, np.array([np.nan])
    w = int(baseline.width.values[both.values][-1])
    return w, np.log2(variant.c_sharp / baseline.c_sharp).isel(depth=0).sel(width=w).values


def in_regime(ds: xr.Dataset, gamma: float = GAMMA) -> xr.DataArray:
    """Per (depth, width): d/w <= gamma, the range where the paper's results hold."""
    return (ds.depth / ds.width) <= gamma * (1 + 1e-12)


def max_abs_shift(s: xr.Dataset, where: xr.DataArray | None = None) -> float:
    """Largest |shift| over the finite entries of every constant (only where ``where`` is True,
    a (depth, width) mask); NaN if there is none."""
    top = largest_shift(shift_table(s, where))
    return abs(top[1]) if top else float("nan")


def largest_shift(table: dict[str, float]) -> tuple[str, float] | None:
    """The entry of a ``shift_table`` with the largest |shift|: (key, shift), or None if empty."""
    return max(table.items(), key=lambda kv: abs(kv[1])) if table else None


def shift_table(s: xr.Dataset, where: xr.DataArray | None = None) -> dict[str, float]:
    """The shifts as ``{"c_loss w=64": value, ...}`` (depth named too when there are several),
    finite entries only, restricted to ``where`` if given: what a claim records."""
    out = {}
    multi = s.sizes.get("depth", 1) > 1
    for n in s.data_vars:
        v = s[n] if where is None else s[n].where(where.broadcast_like(s[n]))
        v = v.transpose("depth", "width")
        for d in v.depth.values:
            for w in v.width.values:
                x = float(v.sel(depth=d, width=w))
                if np.isfinite(x):
                    out[f"{n} " + (f"d={int(d)} " if multi else "") + f"w={int(w)}"] = x
    return out


def order_mask(ds: xr.Dataset) -> tuple[np.ndarray, np.ndarray]:
    """(ordered, valid), boolean arrays over (depth, width, seed) raveled: c_loss <= c_sharp <=
    c_max, and whether c_sharp was measured (finite) so the order can be judged. A censored c_max
    is a lower bound of the true one, so c_sharp <= it still implies the order."""
    dims = ("depth", "width", "seed")
    cl, cs, cm = (ds[n].transpose(*dims).values.ravel() for n in CONSTANTS)
    valid = np.isfinite(cl) & np.isfinite(cs) & np.isfinite(cm)
    with np.errstate(invalid="ignore"):
        ordered = (cl <= cs) & (cs <= cm)
    return ordered & valid, valid


def pooled_order_mask(diagrams) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``order_mask`` over several sweeps (an iterable of Datasets), concatenated: (ordered, valid,
    in_regime), the last saying which (depth, width, seed) entries lie in the validity range."""
    diagrams = list(diagrams)
    masks = [order_mask(ds) for ds in diagrams]
    regime = [in_regime(ds).broadcast_like(ds["c_loss"]).transpose("depth", "width", "seed").values.ravel()
              for ds in diagrams]
    return (np.concatenate([m[0] for m in masks]), np.concatenate([m[1] for m in masks]),
            np.concatenate(regime))


class OrderCount(NamedTuple):
    """The order c_loss <= c_sharp <= c_max over several sweeps, per (sweep, depth, width) row
    and seed column: P rows (the sweeps' (depth, width) points in turn, width fastest), S seeds."""
    fraction: float  # ordered / valid; NaN when no entry can be judged
    ordered: np.ndarray  # bool [P, S]: ordered and judged
    valid: np.ndarray  # bool [P, S]: all three constants finite, so the order can be judged
    in_regime: np.ndarray  # bool [P, S]: d/w <= GAMMA (the paper's validity range)

    @property
    def n_valid(self) -> int:
        return int(self.valid.sum())

    @property
    def n_bad(self) -> int:
        """Judged entries out of order."""
        return int((self.valid & ~self.ordered).sum())

    @property
    def n_bad_in_regime(self) -> int:
        """Judged entries out of order inside the validity range (the paper finds outliers only
        at large d/w)."""
        return int((self.valid & ~self.ordered & self.in_regime).sum())


def order_count(diagrams) -> OrderCount:
    """``order_mask`` over several sweeps (an iterable of Datasets over (depth, width, seed) with
    the same number of seeds), as [P, S] arrays with the fraction ordered among those judged."""
    diagrams = list(diagrams)
    n_seed = {ds.sizes["seed"] for ds in diagrams}
    if len(n_seed) != 1:
        raise ValueError(f"order_count: the sweeps differ in their number of seeds: {sorted(n_seed)}")
    (s,) = n_seed
    ordered, valid, regime = (m.reshape(-1, s) for m in pooled_order_mask(diagrams))
    frac = float(ordered.sum() / valid.sum()) if valid.any() else float("nan")
    return OrderCount(frac, ordered, valid, regime)


def by_width(da: xr.DataArray) -> dict[str, dict]:
    """One constant of a sweep (over (depth, width, seed)) at its first depth, per width: what a
    per-width claim records, ``{"measured": {"w=64": mean over seeds}, "spread": {"w=64": standard
    deviation over seeds}, "per_init": {"w=64": values [S]}}``."""
    d = da.isel(depth=0).transpose("width", "seed")
    keys = [f"w={w}" for w in d.width.values]
    return {"measured": dict(zip(keys, d.mean("seed").values)), "spread": dict(zip(keys, d.std("seed").values)),
            "per_init": dict(zip(keys, d.values))}


def same_diagram(variant: xr.Dataset, baseline: xr.Dataset, where: xr.DataArray | None = None,
                 ignore=()) -> tuple[dict | float, dict | None]:
    """What the claim "the variant gives the baseline's phase diagram" is judged on: the
    ``shift_table`` of the shifts and that of the ``paired_spread``, restricted to ``where``
    (default: ``in_regime(baseline)``), without the constants named in ``ignore`` (e.g. c_sharp,
    which a smaller batch moves: a claim of its own) -> (shifts, spreads); NaN and None when no
    entry is left."""
    where = in_regime(baseline) if where is None else where
    keep = lambda t: {k: v for k, v in t.items() if k.split(" ", 1)[0] not in ignore}
    measured = keep(shift_table(shift(variant, baseline), where))
    spread = keep(shift_table(paired_spread(variant, baseline), where))
    return measured or float("nan"), spread or None


def largest_factor_text(s: xr.Dataset, gamma: float = GAMMA) -> str:
    """The largest factor 2^|shift| between a variant's mean constant and the baseline's over the
    points of the ``shift`` Dataset ``s`` with d/w <= gamma, with the constant and width it is
    at: "1.41 (c_loss, w = 64)"; "n/a (...)" when no such point has a finite shift."""
    top = largest_shift(shift_table(s, where=in_regime(s, gamma)))
    if top is None:
        return f"n/a (no width with d/w <= 1/{1 / gamma:.3g})"
    name, where = top[0].split(" ", 1)
    return f"{2 ** abs(top[1]):.2f} ({name}, {where.replace('=', ' = ')})"
