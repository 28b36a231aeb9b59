"""Loss connectivity and the loss barrier (paper section 2.2, Definitions 2-3, SPEC 4.3).

For a run from theta_0 to theta_T (T = T1 = 10 steps at eta = c / lambda_0) the loss on the
straight line between them, relative to the initial loss, is

    L_int(tau) = L((1 - tau) theta_0 + tau theta_T) - L(theta_0),   tau in [0, 1] (101 points),

its barrier is U(c) = max_tau L_int(tau), and c_barrier = min{c : U(c) > 0}: the first c whose
end point is not connected to the initialisation by a monotone descent line. If no trainable c
has a barrier, c_barrier := c_max. The paper finds c_loss <= c_sharp <= c_barrier <= c_max.

* ``line_losses(loss_of_params, p0, pT, taus)``: the losses along any straight line (pure JAX,
  any pytree), the building block the tests check on quadratics and double wells.
* ``interpolation_grid``: the same for S initialisations x C constants at once (one compile).
* ``barrier_point`` / ``barrier_sweep``: c_barrier on the phase sweep's c grid with
  ``search.first_true`` (the strategy of the sweep), bounded above by the first divergent c
  found by the (cached) phase sweep, so both use the same initialisations, batches and grid.
* ``interpolation_curves``: L_int(tau) and U(c) for a list of c (the figure of section 2.2).
* ``order_with_barrier``: the per-initialisation check of c_loss <= c_sharp <= c_barrier <= c_max.

The losses are measured on the sweep's fixed measurement subset (``n_measure`` examples), the
same one used for the loss and sharpness of the runs.
"""
from __future__ import annotations

import dataclasses
import functools
from dataclasses import dataclass, field
from typing import Callable

import jax
import jax.numpy as jnp
import numpy as np
import xarray as xr

from .. import cache, losses, search, sweep, train
from ..errors import as_config, check, check_int, check_real, strict_init
from ..models import Model
from ..phases import runs_diverge
from ..sweep import SweepConfig


@strict_init
@dataclass(frozen=True)
class ConnectivityConfig:
    sweep: SweepConfig = field(default_factory=SweepConfig)  # grid, data, model, T1 (= num_steps)
    n_tau: int = 101            # points tau on [0, 1] (101 = the paper's dt = 0.01)
    barrier_tol: float = 0.0    # a barrier is U > barrier_tol (0: the paper's strict U > 0) [I]

    def __post_init__(self):
        object.__setattr__(self, "sweep", as_config(SweepConfig, self.sweep, "sweep"))
        check_int(self.n_tau, "n_tau", minimum=2)
        check_real(self.barrier_tol, "barrier_tol", minimum=0)
        check(self.sweep.T1 == self.sweep.train.num_steps, "T1",
              f"equal to num_steps = {self.sweep.train.num_steps} (theta_T is the end of the T1 steps)",
              self.sweep.T1)

    def replace(self, **kw) -> "ConnectivityConfig":
        return dataclasses.replace(self, **kw)

    @property
    def taus(self) -> np.ndarray:
        return taus(self.n_tau)


def taus(n_tau: int = 101) -> np.ndarray:
    """The interpolation points tau_k = k / (n_tau - 1), k = 0..n_tau-1 (float32-exact ends)."""
    check_int(n_tau, "n_tau", minimum=2)
    return np.linspace(0.0, 1.0, n_tau)


def line_losses(loss_of_params: Callable, p0, pT, tau: jax.Array) -> jax.Array:
    """Loss at (1 - tau) p0 + tau pT for each tau [K] -> [K] (any pytree; pure, vmappable).

    The line is written (1 - tau) p0 + tau pT, so tau = 0 and tau = 1 give exactly p0 and pT. ``lax.map`` keeps one interpolated parameter set alive at a time.
    """
    def at(t):
        p = jax.tree.map(lambda a, b: (1 - t).astype(a.dtype) * a + t.astype(a.dtype) * b, p0, pT)
        return loss_of_params(p)
    return jax.lax.map(at, jnp.asarray(tau))


def barrier(line: np.ndarray, loss0: np.ndarray) -> np.ndarray:
    """U = max_tau (L(tau) - L_0): line [..., K], loss0 [...] -> [...] (NaN where line is NaN)."""
    line = np.asarray(line, float)
    return np.max(line - np.asarray(loss0, float)[..., None], axis=-1)


@functools.partial(jax.jit, static_argnames=("model", "loss_name"))
def interpolation_grid(model: Model, loss_name: str, params0, paramsT, aux, x, y, tau):
    """Losses on the lines theta_0 -> theta_T on (x, y).

    params0, aux: leaves [S, ...]; paramsT: leaves [S, C, ...]; tau [K] -> [S, C, K].
    One compile per (model, shapes).
    """
    loss = losses.get(loss_name)

    def one(p0, a, pT):
        return line_losses(lambda p: loss(model.apply(p, a, x), y), p0, pT, tau)
    return jax.vmap(lambda p0, a, pTs: jax.vmap(lambda pT: one(p0, a, pT))(pTs))(params0, aux, paramsT)


def _runs_and_lines(pt: "sweep.Point", c: np.ndarray, cfg: ConnectivityConfig):
    """Run T1 steps at c [S, K] and interpolate -> (loss line [S, K, n_tau], loss0 [S], diverged [S, K])."""
    tcfg = cfg.sweep.train.replace(measure_sharpness=False)
    tr, pT = train.run_grid(pt.model, pt.params, pt.aux, pt.lam0, jnp.asarray(c), pt.data, pt.batches,
                            tcfg, return_params=True)
    line = interpolation_grid(pt.model, tcfg.loss, pt.params, pT, pt.aux, pt.data.x_meas, pt.data.y_meas,
                              jnp.asarray(cfg.taus, pt.data.x_meas.dtype))
    diverged = runs_diverge(np.asarray(tr.diverged), cfg.sweep.T1)
    return np.asarray(line, float), np.asarray(tr.loss[:, 0, 0], float), diverged


def _first_divergent_index(c_max: np.ndarray, censored: np.ndarray, c_grid: np.ndarray) -> np.ndarray:
    """Invert phases.c_max_from_first_divergent: index of the first divergent grid point."""
    idx = np.full(len(c_max), len(c_grid))
    for s, (cm, cens) in enumerate(zip(c_max, censored)):
        if bool(cens):
            idx[s] = len(c_grid)
        elif not np.isfinite(cm):
            idx[s] = 0
        else:
            idx[s] = int(np.argmin(np.abs(c_grid - cm))) + 1
    return idx


def barrier_point(cfg: ConnectivityConfig) -> xr.Dataset:
    """c_barrier for the single (depth, width) of ``cfg.sweep`` -> Dataset over (seed,).

    Variables: c_barrier, barrier_censored (True where no trainable c had a barrier, so
    c_barrier = c_max), and the U value at c_barrier. The search runs below the first divergent
    c of the phase sweep (read from its cache, computed if missing).
    """
    scfg = cfg.sweep
    (depth,), (width,) = scfg.depths, scfg.widths
    crit = cache.cached(sweep.critical_point, name="sweep.critical_point")(scfg)
    c_grid, n, S = scfg.c_grid, len(scfg.c_grid), len(scfg.seeds)
    i_div = _first_divergent_index(crit["c_max"].values, crit["c_max_censored"].values, c_grid)
    pt = sweep.Point(scfg, depth, width)
    memo: dict[tuple[int, int], tuple[bool, float]] = {}

    def evaluate(idx: np.ndarray) -> np.ndarray:
        todo = not all((s, int(i)) in memo for s in range(S) for i in idx[s])
        if todo:
            line, loss0, div = _runs_and_lines(pt, c_grid[idx], cfg)
            U = barrier(line, loss0[:, None])
            for s in range(S):
                for k in range(idx.shape[1]):
                    memo[(s, int(idx[s, k]))] = (bool(div[s, k] or U[s, k] > cfg.barrier_tol), float(U[s, k]))
        return np.array([[memo[(s, int(i))][0] for i in idx[s]] for s in range(S)])

    i_bar = search.first_true(evaluate, n=n, n_seeds=S, strategy=scfg.search, stride=scfg.stride, hi=i_div,
                              name="c_barrier")
    censored = i_bar >= i_div
    c_max = crit["c_max"].values
    c_bar = np.where(censored, c_max, c_grid[np.minimum(i_bar, n - 1)])
    U_at = np.array([memo.get((s, int(i)), (False, np.nan))[1] for s, i in enumerate(i_bar)])
    out = xr.Dataset(coords={"seed": list(scfg.seeds)})
    out["c_barrier"] = ("seed", c_bar.astype(float))
    out["barrier_censored"] = ("seed", censored)
    out["U_at_c_barrier"] = ("seed", U_at)
    out.attrs.update(n_runs=len(memo), search=scfg.search)
    return out


def barrier_sweep(cfg: ConnectivityConfig, progress: bool = True, scheduler=None) -> xr.Dataset:
    """c_loss, c_sharp, c_max (the cached phase sweep) and c_barrier over (depth, width, seed);
    ``scheduler`` as in ``sweep.phase_sweep``."""
    scfg = cfg.sweep
    consts = sweep.phase_sweep(scfg, progress=progress, scheduler=scheduler)
    point_fn = cache.cached(barrier_point, name="connectivity.barrier_point")
    parts = sweep.per_point(point_fn, lambda d, w: cfg.replace(sweep=scfg.replace(depths=(d,), widths=(w,))), scfg,
                            "barrier search", progress, scheduler)
    bar = xr.combine_by_coords([ds.drop_attrs().expand_dims(depth=[d], width=[w]) for d, w, ds in parts])
    out = xr.merge([consts.drop_attrs(), bar])
    out.attrs["config"] = cache.canonical_json(cfg)
    return out


def order_with_barrier(ds: xr.Dataset) -> xr.Dataset:
    """Per initialisation: the three inequalities c_loss <= c_sharp <= c_barrier <= c_max and
    their conjunction ``all`` (bool, same dims as c_loss). A NaN constant fails its checks."""
    out = xr.Dataset()
    out["loss_le_sharp"] = ds.c_loss <= ds.c_sharp
    out["sharp_le_barrier"] = ds.c_sharp <= ds.c_barrier
    out["barrier_le_max"] = ds.c_barrier <= ds.c_max
    out["all"] = out.loss_le_sharp & out.sharp_le_barrier & out.barrier_le_max
    return out


def interpolation_point(cfg_and_c: dict) -> xr.Dataset:
    """dict(cfg=ConnectivityConfig for one (depth, width), c=[C]) -> Dataset over (seed, c, tau):
    L_int (= L(tau) - L_0, NaN for diverged runs), U, diverged, loss0."""
    cfg, c = cfg_and_c["cfg"], np.asarray(cfg_and_c["c"], float)
    if isinstance(cfg, dict):
        cfg = ConnectivityConfig(**cfg)
    scfg = cfg.sweep
    (depth,), (width,) = scfg.depths, scfg.widths
    pt = sweep.Point(scfg, depth, width)
    S = len(scfg.seeds)
    line, loss0, div = _runs_and_lines(pt, np.broadcast_to(c, (S, len(c))).copy(), cfg)
    L_int = np.where(div[..., None], np.nan, line - loss0[:, None, None])
    coords = {"seed": list(scfg.seeds), "c": c, "tau": cfg.taus}
    return xr.Dataset({"L_int": (("seed", "c", "tau"), L_int),
                       "U": (("seed", "c"), np.where(div, np.nan, L_int.max(-1))),
                       "diverged": (("seed", "c"), div),
                       "loss0": ("seed", loss0)}, coords=coords)


def interpolation_curves(cfg: ConnectivityConfig, c, progress: bool = True, scheduler=None) -> xr.Dataset:
    """L_int(tau), U(c) over (depth, width, seed, c, tau) for the constants ``c`` (cached per point;
    ``scheduler`` as in ``sweep.phase_sweep``)."""
    c = [float(v) for v in np.atleast_1d(c)]
    check(len(c) > 0 and all(v > 0 for v in c), "c", "a non-empty list of positive constants", c)
    scfg = cfg.sweep
    point_fn = cache.cached(interpolation_point, name="connectivity.interpolation_point")
    parts = sweep.per_point(point_fn, lambda d, w: {"cfg": cfg.replace(sweep=scfg.replace(depths=(d,), widths=(w,))),
                                                     "c": c}, scfg, "interpolation", progress, scheduler)
    return xr.combine_by_coords([ds.drop_attrs().expand_dims(depth=[d], width=[w]) for d, w, ds in parts])


def from_params(n_tau: int = 101, barrier_tol: float = 0.0, **flat) -> ConnectivityConfig:
    """A ConnectivityConfig from a chapter's flat parameters (the rest go to ``sweep.from_params``)."""
    return ConnectivityConfig(sweep=sweep.from_params(**flat), n_tau=n_tau, barrier_tol=barrier_tol)
