"""Intermediate saturation of the sharpness and c_crit (paper section 3, App. I, SPEC 4.5).

After the early transient (sharpness reduction or catapult) the sharpness sits on a plateau
before progressive sharpening sets in. Measured at a step tau with c * tau = K_tau fixed (equal
"gradient-flow time" eta * lambda_0 * tau for every c), averaged over a window of steps around
tau and normalised by lambda_0,

    chi(c) = < mean_{t in [tau (1 - delta), tau (1 + delta)]} lambda_t / lambda_0 >_init,

chi is flat for small c, falls over a range of c and flattens again. With x = log2 c on a
uniform grid, chi' and chi'' are taken with Savitzky-Golay filters and

    c_crit = 2^{argmin_x chi''(x)},

the point of most negative curvature, where the drop sets in. The paper finds c_crit ~ 2 (MSE).

Not stated by the paper, exposed as parameters [I]: K_tau, the window half-width delta
(relative to tau), the number of measurements per window, and the Savitzky-Golay window and order.

Cost. Runs with small c need K_tau / c steps but only a few sharpness measurements, all inside
their window. Runs are grouped by tau (``bin_ratio``); each group is trained in chunks of
``chunk`` steps without sharpness and advanced one step at a time to each of the group's
measurement steps, where ``measure_many`` measures the sharpness of every run, warm-started from
that run's previous measurement. This composes ``train.run_grid`` (restarting plain SGD from
the returned parameters is exact: optax.sgd without momentum has no state; the batch schedule
is sliced so the batch order is that of one uninterrupted run) and needs three compiles per
(depth, width), whatever the grid.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from functools import partial

import jax
import jax.numpy as jnp
import numpy as np
import xarray as xr
from scipy.signal import savgol_filter
from tqdm.auto import tqdm

from .. import cache, sweep, train
from ..errors import as_config, check, check_int, check_positive, check_real, is_real, strict_init
from ..sweep import SweepConfig


def _default_sweep() -> SweepConfig:
    return SweepConfig(x_min=-1.0, x_max=3.0, x_step=0.2)


@strict_init
@dataclass(frozen=True)
class SaturationConfig:
    sweep: SweepConfig = field(default_factory=_default_sweep)  # data, model, SGD, c grid, seeds
    K_tau: float = 100.0      # tau = K_tau / c: step at which the plateau is read [I]
    window: float = 0.2       # window [tau (1 - window), tau (1 + window)] of steps averaged [I]
    n_window: int = 3         # at least this many sharpness measurements per window [I]
    bin_ratio: float = 1.5    # runs whose tau differ by less than this factor share a group (cost only)
    chunk: int = 8            # steps per compiled training chunk (cost only)

    def __post_init__(self):
        object.__setattr__(self, "sweep", as_config(SweepConfig, self.sweep, "sweep"))
        check_positive(self.K_tau, "K_tau")
        check(is_real(self.window) and 0 < self.window < 1, "window",
              "a relative half-width in (0, 1)", self.window)
        check_int(self.n_window, "n_window", minimum=1)
        check_real(self.bin_ratio, "bin_ratio", minimum=1)
        check_int(self.chunk, "chunk", minimum=1)
        check(self.sweep.x_min < 1, "x_min", "< 1, so the c grid extends below c = 2", self.sweep.x_min)
        check(len(self.sweep.c_grid) >= 3, "x_max", "a grid of at least 3 points from x_min", self.sweep.x_max)
        check(self.K_tau / self.sweep.c_grid.max() >= 1, "K_tau",
              f"at least the largest c = {self.sweep.c_grid.max():.3g} (tau = K_tau / c >= 1 step)", self.K_tau)

    def replace(self, **kw) -> "SaturationConfig":
        return dataclasses.replace(self, **kw)


def tau_of(c, K_tau: float) -> np.ndarray:
    """tau = K_tau / c (steps, real-valued): c [...] -> [...]."""
    check_positive(K_tau, "K_tau")
    c = np.asarray(c, float)
    check(bool(np.all(c > 0)), "c", "positive constants", c)
    return K_tau / c


def window_bounds(tau, window: float) -> tuple[np.ndarray, np.ndarray]:
    """Integer step window [lo, hi] (inclusive) around tau: lo = max(1, floor((1 - window) tau)),
    hi = max(lo, ceil((1 + window) tau))."""
    check(isinstance(window, (int, float)) and 0 < window < 1, "window", "a relative half-width in (0, 1)", window)
    tau = np.asarray(tau, float)
    lo = np.maximum(1, np.floor((1 - window) * tau)).astype(int)
    hi = np.maximum(lo, np.ceil((1 + window) * tau)).astype(int)
    return lo, hi


def plan(cfg: SaturationConfig) -> list[dict]:
    """Groups of c indices with their measurement steps.

    Returns a list of dicts: ``idx`` (indices into the c grid), ``steps`` (sorted measurement
    steps, 1-based: the sharpness after that many steps). Every window [lo, hi] of a group holds
    at least min(n_window, hi - lo + 1) of its steps.
    """
    c = cfg.sweep.c_grid
    tau = tau_of(c, cfg.K_tau)
    lo, hi = window_bounds(tau, cfg.window)
    order = np.argsort(tau)
    groups, start = [], 0
    while start < len(order):
        end = start
        while end + 1 < len(order) and tau[order[end + 1]] <= cfg.bin_ratio * tau[order[start]]:
            end += 1
        idx = np.sort(order[start:end + 1])
        spacing = max(1, int((hi[idx] - lo[idx]).min() // cfg.n_window))
        steps = np.arange(lo[idx].min(), hi[idx].max() + 1, spacing)
        groups.append({"idx": idx, "steps": steps})
        start = end + 1
    return groups


def _repeat(tree, k: int):
    return jax.tree.map(lambda a: jnp.repeat(a, k, axis=0), tree)


def saturation_point(cfg: SaturationConfig, progress: bool = False) -> xr.Dataset:
    """chi per initialisation for the single (depth, width) of ``cfg.sweep`` -> Dataset (seed, c).

    Variables: chi (window-mean sharpness / lambda_0; NaN if the run diverged), tau, window_lo,
    window_hi, n_measured (measurements inside the window), diverged, lambda0 (seed).
    """
    scfg = cfg.sweep
    (depth,), (width,) = scfg.depths, scfg.widths
    groups = plan(cfg)
    T = int(max(g["steps"][-1] for g in groups))
    pcfg = scfg.replace(T1=1, train=scfg.train.replace(num_steps=T))
    pt = sweep.Point(pcfg, depth, width)
    S, c_grid = len(scfg.seeds), scfg.c_grid
    width_g = max(len(g["idx"]) for g in groups)  # every group padded to this size: no recompiles
    aux, lam0 = _repeat(pt.aux, width_g), _repeat(pt.lam0, width_g)
    base = scfg.train.replace(sharpness_every=1)
    cfg_chunk = base.replace(num_steps=cfg.chunk, measure_sharpness=False)
    cfg_step = base.replace(num_steps=1, measure_sharpness=False)
    cfg_meas = base.replace(num_steps=1, measure_sharpness=True)
    lam0_np = np.asarray(pt.lam0.value, float)
    n_matvecs = n_unconverged = 0

    chi = np.full((S, len(c_grid)), np.nan)
    n_meas = np.zeros((S, len(c_grid)), int)
    diverged = np.zeros((S, len(c_grid)), bool)
    tau = tau_of(c_grid, cfg.K_tau)
    lo, hi = window_bounds(tau, cfg.window)
    for g in tqdm(groups, desc=f"saturation d={depth} w={width}", disable=not progress):
        idx = np.concatenate([g["idx"], np.repeat(g["idx"][-1:], width_g - len(g["idx"]))])
        c = jnp.asarray(np.tile(c_grid[idx], S)[:, None])
        params = _repeat(pt.params, width_g)
        div = np.zeros(S * width_g, bool)
        t = 0

        def call(k, tcfg, t, params):
            tr, p = train.run_grid(pt.model, params, aux, lam0, c, pt.data, pt.batches[t:t + k], tcfg,
                                   return_params=True)
            return tr, jax.tree.map(lambda a: a[:, 0], p), np.asarray(tr.diverged[:, 0, -1])

        sharp = np.full((S * width_g, len(g["steps"])), np.nan)
        warm = lam0.vector  # each run's last sharpness eigenvector (lambda_0's at first)
        for j, m in enumerate(g["steps"]):
            while t < m - 1:  # train to step m - 1 without sharpness
                k = cfg.chunk if m - 1 - t >= cfg.chunk else 1
                _, params, d = call(k, cfg_chunk if k == cfg.chunk else cfg_step, t, params)
                div |= d
                t += k
            _, params, d = call(1, cfg_step, t, params)  # step m, then the sharpness after it,
            div |= d                                     # warm-started from the run's last one
            t += 1
            eig = measure_many(pt.model, params, aux, pt.data.x_meas, pt.data.y_meas, cfg_meas, warm)
            warm = jnp.where(jnp.asarray(div)[:, None], warm, eig.vector)
            sharp[:, j] = np.where(div, np.nan, np.asarray(eig.value, float))
            n_matvecs += int(np.asarray(eig.n_matvec)[~div].sum())
            n_unconverged += int((~np.asarray(eig.converged))[~div].sum())
        sharp = sharp.reshape(S, width_g, -1)[:, : len(g["idx"])]
        div = div.reshape(S, width_g)[:, : len(g["idx"])]
        for k, i in enumerate(g["idx"]):
            inside = (g["steps"] >= lo[i]) & (g["steps"] <= hi[i])
            n_meas[:, i] = inside.sum()
            diverged[:, i] = div[:, k]
            with np.errstate(invalid="ignore"):
                chi[:, i] = np.where(div[:, k], np.nan, sharp[:, k, inside].mean(-1) / lam0_np)
    dims = ("seed", "c")
    out = xr.Dataset({"chi": (dims, chi), "n_measured": (dims, n_meas), "diverged": (dims, diverged),
                      "tau": ("c", tau), "window_lo": ("c", lo), "window_hi": ("c", hi),
                      "lambda0": ("seed", lam0_np)},
                     coords={"seed": list(scfg.seeds), "c": c_grid, "x": ("c", scfg.x_grid)})
    out.attrs.update(n_sharpness_matvecs=n_matvecs, n_sharpness_unconverged=n_unconverged)
    return out


@partial(jax.jit, static_argnames=("model", "cfg"))
def measure_many(model, params, aux, x, y, cfg: train.TrainConfig, v0):
    """Sharpness of R runs at once: params/aux/v0 with leading axis R -> hessian.Eig of [R].
    Each is warm-started from its own v0 and stops at cfg.sharpness_tol (lax.map on CPU, where
    a vmapped while_loop would run every member as long as the slowest; vmap elsewhere)."""
    one = lambda a: train.measure_sharpness(model, a[0], a[1], x, y, cfg, a[2])
    if train.default_batching() == "map":
        return jax.lax.map(one, (params, aux, v0))
    return jax.vmap(lambda p, a, v: one((p, a, v)))(params, aux, v0)


def saturation_sweep(cfg: SaturationConfig, progress: bool = True, scheduler=None) -> xr.Dataset:
    """chi over (depth, width, seed, c), each (depth, width) cached on its own; ``scheduler`` as
    in ``sweep.phase_sweep``."""
    scfg = cfg.sweep
    point_fn = cache.cached(saturation_point, name="saturation.saturation_point")
    parts = sweep.per_point(point_fn, lambda d, w: cfg.replace(sweep=scfg.replace(depths=(d,), widths=(w,))), scfg,
                            "saturation sweep", progress, scheduler)
    out = xr.combine_by_coords([ds.drop_attrs().expand_dims(depth=[d], width=[w]) for d, w, ds in parts])
    out.attrs["config"] = cache.canonical_json(cfg)
    return out


def _check_sg(n: int, sg_window: int, polyorder: int) -> None:
    check_int(polyorder, "polyorder", minimum=2)
    check_int(sg_window, "sg_window", minimum=polyorder + 1)
    check(sg_window % 2 == 1, "sg_window", "an odd number of grid points", sg_window)
    check(sg_window <= n, "sg_window", f"at most the number of finite grid points ({n})", sg_window)


def sg_derivatives(chi, dx: float, sg_window: int = 7, polyorder: int = 3):
    """Savitzky-Golay smoothing and derivatives along the last axis of chi [..., C] on a uniform
    grid of spacing dx -> (smoothed, d chi/dx, d^2 chi/dx^2), each [..., C]."""
    chi = np.asarray(chi, float)
    _check_sg(chi.shape[-1], sg_window, polyorder)
    check_positive(dx, "dx")
    check(bool(np.all(np.isfinite(chi))), "chi", "finite values (drop diverged c first)", "NaN/inf")
    kw = dict(window_length=sg_window, polyorder=polyorder, axis=-1, mode="interp")
    return (savgol_filter(chi, deriv=0, **kw), savgol_filter(chi, deriv=1, delta=dx, **kw),
            savgol_filter(chi, deriv=2, delta=dx, **kw))


def x_crit(x, chi, sg_window: int = 7, polyorder: int = 3, exclude_edges: bool = True) -> float:
    """argmin_x chi''(x) for chi [C] on the uniform grid x [C]. With exclude_edges the first and
    last sg_window // 2 points (where the filter extrapolates) are not candidates."""
    x = np.asarray(x, float)
    dx = float(np.diff(x).mean())
    check(bool(np.allclose(np.diff(x), dx, rtol=1e-6, atol=1e-9)), "x", "a uniform grid", x)
    _, _, d2 = sg_derivatives(chi, dx, sg_window, polyorder)
    h = sg_window // 2 if exclude_edges else 0
    check(len(x) > 2 * h, "sg_window", f"smaller than half the grid ({len(x)} points)", sg_window)
    return float(x[h + int(np.argmin(d2[h: len(x) - h]))])


def analyse(ds: xr.Dataset, sg_window: int = 7, polyorder: int = 3) -> xr.Dataset:
    """From saturation_sweep output to the seed-mean chi, its quartiles, chi', chi'' over
    (depth, width, c) and, over (depth, width): c_crit, x_crit (argmin chi''), c_steep (argmin
    chi', the middle of the drop) and crit_at_edge (x_crit is the first or last candidate point,
    a sign that the grid is too short). Both argmins exclude the sg_window // 2 points at each end
    where the filter extrapolates.

    The curves of a (depth, width) are cut before the first c where any initialisation
    diverged (derivatives need a finite, uniform grid); c values past it are NaN.
    """
    _check_sg(ds.sizes["c"], sg_window, polyorder)
    x = ds["x"].values
    dx = float(np.diff(x).mean())
    mean = ds.chi.mean("seed", skipna=False)
    out = xr.Dataset({"chi": mean, "chi_q25": ds.chi.quantile(0.25, "seed").drop_vars("quantile"),
                      "chi_q75": ds.chi.quantile(0.75, "seed").drop_vars("quantile")})
    d1 = xr.full_like(mean, np.nan)
    d2 = xr.full_like(mean, np.nan)
    xc = xr.full_like(mean.isel(c=0, drop=True), np.nan)
    xs = xc.copy()
    edge = xr.zeros_like(xc, dtype=bool)
    h = sg_window // 2
    for d in ds.depth.values:
        for w in ds.width.values:
            m = mean.sel(depth=d, width=w).values
            n = int(np.argmin(np.isfinite(m))) if not np.all(np.isfinite(m)) else len(m)
            if n < max(sg_window, 2 * (sg_window // 2) + 1):
                continue
            _, a, b = sg_derivatives(m[:n], dx, sg_window, polyorder)
            d1.loc[dict(depth=d, width=w)] = np.concatenate([a, np.full(len(m) - n, np.nan)])
            d2.loc[dict(depth=d, width=w)] = np.concatenate([b, np.full(len(m) - n, np.nan)])
            at = dict(depth=d, width=w)
            xc.loc[at] = x_crit(x[:n], m[:n], sg_window, polyorder)
            xs.loc[at] = x[h + int(np.argmin(a[h: n - h]))]
            edge.loc[at] = bool(np.isclose(float(xc.loc[at]), x[[h, n - h - 1]]).any())
    out["d1"], out["d2"] = d1, d2
    out["x_crit"] = xc
    out["c_crit"] = 2.0 ** xc
    out["c_steep"] = 2.0 ** xs
    out["crit_at_edge"] = edge
    out = out.assign_coords(x=("c", x))
    return out


def min_d2_per_init(ds: xr.Dataset, depth: int, sg_window: int = 7, polyorder: int = 3) -> xr.DataArray:
    """The minimum over c of chi'' of each initialisation's own chi at ``depth`` -> DataArray
    (width, seed), with ds's width and seed coordinates.

    ``analyse`` applied to one initialisation at a time (so the same Savitzky-Golay filter, the
    same cut at a diverged c), then chi'' minimised over c: how deep the peak of chi'' is for each
    initialisation, so that its spread over initialisations can be judged (the mean over
    initialisations of chi'' is not the same number). NaN where an initialisation's curve is too
    short for the filter (it diverged too early)."""
    parts = [analyse(ds.isel(seed=[i]), sg_window, polyorder).d2.sel(depth=depth).min("c")
             for i in range(ds.sizes["seed"])]
    return xr.concat(parts, dim="seed").assign_coords(seed=ds.seed.values).transpose("width", "seed")


def chi_at_smallest_c(ds: xr.Dataset, depth: int) -> xr.DataArray:
    """chi of each initialisation at the smallest c of the grid, at ``depth`` -> DataArray (width,
    seed): the level of stage (1), below c_crit, before the drop (NaN where that run diverged)."""
    return ds.chi.sel(depth=depth).isel(c=int(np.argmin(ds.c.values))).transpose("width", "seed")


def c_crit_by_filter(ds: xr.Dataset, settings=((5, 2), (7, 3), (9, 3))) -> xr.DataArray:
    """c_crit of ``analyse`` for several Savitzky-Golay (window, order) settings [I], to show how
    much the estimate depends on them (analysis only, no runs) -> DataArray (filter, depth,
    width), filter labelled "(window, order)". Settings whose window exceeds the grid's length
    minus 2 are skipped."""
    keep = [(sw, po) for sw, po in settings if sw <= ds.sizes["c"] - 2]
    check(len(keep) > 0, "settings", f"at least one (window, order) with window <= {ds.sizes['c'] - 2}",
          settings)
    parts = [analyse(ds, sw, po).c_crit for sw, po in keep]
    return xr.concat(parts, dim="filter").assign_coords(filter=[f"({sw}, {po})" for sw, po in keep])


# "Within one grid step" means |steps| <= ONE_STEP: one step plus a 1 % margin, so that an estimate
# exactly one step away still counts when the grid's x values carry rounding errors.
ONE_STEP = 1.01
C_MSE = 2.0         # c_crit with MSE (paper, Sec. 3; chapter 5)
C_XENT_DROP = 4.0   # where chi drops with cross-entropy, recalled [I] (App. F, I)


def grid_steps(c, c_ref: float, x_step: float):
    """Signed distance of c from c_ref in steps of the c grid: (log2 c - log2 c_ref) / x_step.

    c: float, array [...] or DataArray [...] (> 0; NaN stays NaN) -> the same shape and type.
    The grid is uniform in x = log2 c, so c = 2^(x_ref + k x_step) is k steps from c_ref = 2^x_ref:
    an estimate that is an argmin over the grid is a whole number of steps from a grid point.
    """
    check_positive(c_ref, "c_ref")
    check_positive(x_step, "x_step")
    return (np.log2(c) - np.log2(c_ref)) / x_step


def within_one_step(steps):
    """|steps| <= ONE_STEP, elementwise: steps [...] (from grid_steps) -> bool [...]; NaN -> False."""
    return np.abs(steps) <= ONE_STEP


def onset_verdict(c_crit, x_step: float) -> str:
    """Where the onset c_crit sits relative to the MSE value c = 2, read over every estimate in
    c_crit [...] (e.g. ``c_crit_by_filter``'s (filter, width)): all more than one grid step above
    2, all within one step of it, or else the range the estimates span, in which case the onset
    cannot be told apart from 2. A NaN estimate (a curve too short for a filter) is neither above
    nor within, so it gives the range, which leaves the NaNs out."""
    c = np.asarray(c_crit, float)
    dx = grid_steps(c, C_MSE, x_step)
    if np.all(dx > ONE_STEP):
        return "every setting puts the onset more than one grid step above the MSE value 2"
    if np.all(within_one_step(dx)):
        return "every setting puts the onset within one grid step of the MSE value 2"
    lo, hi = np.nanmin(c), np.nanmax(c)
    return (f"the settings move it from {lo:.2f} to {hi:.2f}, so at this scale the onset cannot be told apart "
            "from the MSE value 2 with confidence")


def steep_verdict(c_steep, x_step: float) -> str:
    """Whether the steepest fall of chi, c_steep [width] (``analyse``'s argmin chi', the middle of
    the drop), is within one grid step of the recalled cross-entropy value c ~ 4 [I]: at every
    width, or else more than one step from it at every width or at some widths (NaN: not within)."""
    near = within_one_step(np.asarray(grid_steps(c_steep, C_XENT_DROP, x_step), float))
    if near.all():
        return "within one grid step of the recalled c ~ 4 at every width"
    return "more than one grid step from the recalled c ~ 4 at " + ("some widths" if near.any() else "every width")


def trajectory_config(cfg: SaturationConfig, width: int, seed: int, num_steps: int,
                      sharpness_every: int | None = None, sharpness_per_decade: int = 0) -> SweepConfig:
    """The SweepConfig of a single long run (one width, one seed) for ``sweep.trajectory_sweep``,
    with the sharpness every ``sharpness_every`` steps and/or at ``sharpness_per_decade``
    log-spaced steps per decade (``train.sharpness_steps``; give at least one of them)."""
    check_int(num_steps, "num_steps", minimum=1)
    check(sharpness_every is not None or sharpness_per_decade, "sharpness_every",
          "an integer >= 1 (or sharpness_per_decade > 0)", sharpness_every)
    every = num_steps if sharpness_every is None else sharpness_every
    check_int(every, "sharpness_every", minimum=1)
    check_int(sharpness_per_decade, "sharpness_per_decade", minimum=0)
    s = cfg.sweep
    return s.replace(widths=(width,), seeds=(seed,), depths=s.depths[:1], T1=1,
                     train=s.train.replace(num_steps=num_steps, sharpness_every=every,
                                           sharpness_per_decade=sharpness_per_decade))


def from_params(K_tau: float = 100.0, window: float = 0.2, n_window: int = 3, bin_ratio: float = 1.5,
                chunk: int = 8, **flat) -> SaturationConfig:
    """A SaturationConfig from a chapter's flat parameters (the rest go to ``sweep.from_params``)."""
    return SaturationConfig(sweep=sweep.from_params(**flat), K_tau=K_tau, window=window,
                            n_window=n_window, bin_ratio=bin_ratio, chunk=chunk)
