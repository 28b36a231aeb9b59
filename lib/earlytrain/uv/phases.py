"""Sweeps and critical constants of the uv model (``earlytrain.uv.model``), as xarray Datasets.

Every sweep takes a frozen, validated config dataclass (bad values raise ConfigError before any
compute) and returns an ``xarray.Dataset``; wrap it in ``cache.cached`` to compute it once.
All sweeps iterate the exact function-space map (``uv.fn_map``), whose cost does not depend on
the width; the initial states (Delta f_0, lambda_0) are drawn from the parameter-space
initialisation, so the statistics over initialisations are exact. ``uv.gd_params`` gives the
same numbers to round-off (tests/test_uv.py).

Critical constants (Kalra & Barkeshli 2023, Definition 1, with the trace or the Frobenius norm in
place of the top eigenvalue where the paper does so in Sec. 5):
    c_loss  = min{c : max_{1<=t<=T1} L_t/L_0 > 1 + eps_loss}      (diverged runs count as risen)
    c_sharp = min{c : max_{1<=t<=T1} s_t/s_0 > 1 + eps_sharp}      s = lambda^H, tr H or ||H||_F
    c_max   = the grid value just below the first c whose run diverges (the paper's sweep stops there)
on the grid c = 2^x, x = x_min, x_min + x_step, ... <= x_max. NaN means "not reached on the grid".
With ``refine > 0`` each constant is then bisected (geometrically, ``refine`` times) inside the grid
cell that brackets it, so it is resolved far below the grid step; the uv model is cheap enough
that this costs nothing, and k_loss - 2 ~ 1/w is otherwise lost under the grid step at large w.
"""
from __future__ import annotations

import dataclasses
import numbers
from dataclasses import dataclass
from functools import partial

import jax
import jax.numpy as jnp
import numpy as np
import xarray as xr

from .. import cluster
from . import model as uv
from ..errors import as_tuple, check, check_choice, check_int, check_positive, check_real, is_real, strict_init
from ..grid import MAX_POINTS_UV, check_grid, x_grid


def _tuple_of_widths(widths) -> tuple:
    widths = as_tuple(widths, "widths")
    ok = len(widths) > 0 and all(isinstance(w, numbers.Integral) and not isinstance(w, bool) and w >= 1
                                 for w in widths)
    check(ok, "widths", "a non-empty list of integers >= 1", widths)
    return tuple(sorted(set(widths)))


def _init_states(width, cfg, seed_offset=0):
    """(Delta f_0, lambda_0, gamma) for cfg.n_init initialisations at this width: [S], [S], float."""
    key = jax.random.fold_in(jax.random.PRNGKey(cfg.seed + seed_offset), width)
    u, v = uv.init(key, width, cfg.parameterization, cfg.varw, n=cfg.n_init)
    gamma = uv.output_multiplier(width, cfg.parameterization)
    df0, lam0 = uv.initial_state(u, v, cfg.y, gamma)
    return df0, lam0, gamma


_runs = jax.vmap(jax.vmap(uv.fn_map, in_axes=(None, None, None, None, 0, None, None)),
                 in_axes=(0, 0, None, None, 0, None, None))  # [S] states x [S, X] lrs -> [S, X, T+1]


def _measure(which: str, df, lam, y, gamma, width: int):
    """The quantity whose rise defines a constant: loss (as Delta f^2), trace, top eigenvalue, Frobenius."""
    if which == "loss":
        return df ** 2
    if which == "trace":
        return lam
    if which == "top":
        return uv.hessian_top(df, lam, y, gamma, width)
    return uv.hessian_frobenius(df, lam, y, gamma, width)


@partial(jax.jit, static_argnames=("which", "steps", "n_iter"))
def _bisect(df0, lam0, y, gamma, norm, lo, hi, which, width, steps, threshold, eps, n_iter):
    """Bisect (geometrically) the boundary in [lo, hi] of the indicator 'rises' (which in loss/top/
    trace/frob: max_{t>=1} s_t/s_0 > 1 + eps, or diverged) or 'diverges' (which == 'div') for one
    initialisation, at eta = c / norm. Invariant: indicator(lo) False, indicator(hi) True."""
    def indicator(c):
        tr = uv.fn_map(df0, lam0, y, gamma, c / norm, steps, threshold)
        div = tr.diverged.any()
        if which == "div":
            return div
        s = _measure(which, tr.df, tr.lam, y, gamma, width)
        ratio = s[1:] / s[0]
        return (jnp.max(jnp.where(jnp.isnan(ratio), -jnp.inf, ratio)) > 1 + eps) | div

    def body(_, b):
        lo, hi = b
        mid = jnp.sqrt(lo * hi)
        up = indicator(mid)
        return jnp.where(up, lo, mid), jnp.where(up, mid, hi)

    return jax.lax.fori_loop(0, n_iter, body, (lo, hi))


_bisect_many = jax.vmap(_bisect, in_axes=(0, 0, None, None, 0, 0, 0) + (None,) * 6)


def refine_constants(mask: np.ndarray, grid: np.ndarray, df0, lam0, y, gamma, norm, which: str,
                     width: int, steps: int, threshold: float, eps: float, n_iter: int) -> np.ndarray:
    """Per initialisation, the first-True boundary of ``mask`` [S, X] on ``grid`` [X], bisected
    ``n_iter`` times in its grid cell. Rise constants return the upper end (the smallest value seen
    to rise); which='div' returns the lower end (the largest value seen not to diverge). NaN where
    the grid has no boundary; the grid value itself where the boundary is the first grid point."""
    any_, idx = mask.any(-1), mask.argmax(-1)
    ok = any_ & (idx > 0)
    lo = np.where(ok, grid[np.maximum(idx - 1, 0)], 1.0)
    hi = np.where(ok, grid[idx], 2.0)
    if n_iter > 0 and ok.any():
        lo, hi = map(np.asarray, _bisect_many(df0, lam0, y, gamma, norm, jnp.asarray(lo), jnp.asarray(hi),
                                             which, width, steps, threshold, eps, n_iter))
    if which == "div":
        return np.where(ok, lo, np.nan)
    return np.where(ok, hi, np.where(any_, grid[0], np.nan))


def _per_width(fn, cfg, desc: str, scheduler) -> list:
    """``[fn(w, cfg) for w in cfg.widths]``, in this process or on the configured cluster
    (``cluster.run_points``; a progress bar only on a cluster)."""
    return cluster.run_points(fn, [(w, cfg) for w in cfg.widths], [f"width {w}" for w in cfg.widths], desc,
                              None, scheduler)


def _check_common(cfg) -> None:
    """Checks shared by the uv sweep configs (widths, initialisations, parameterisation, label);
    normalises ``widths`` to a tuple."""
    object.__setattr__(cfg, "widths", _tuple_of_widths(cfg.widths))
    check_int(cfg.n_init, "n_init", minimum=1)
    check_int(cfg.seed, "seed", minimum=0)
    check_choice(cfg.parameterization, "parameterization", uv.PARAMETERIZATIONS)
    check_positive(cfg.varw, "varw")
    check_real(cfg.y, "y")


# --------------------------------------------------------------------------- early phase diagram
@strict_init
@dataclass(frozen=True)
class EarlyConfig:
    """Early-time sweep of the uv model (paper Fig. 7, App. B, G.3)."""
    widths: tuple = (2, 4, 8, 16, 32, 64, 128, 256, 512, 1024)  # network widths w
    n_init: int = 256               # initialisations per width [I: paper count not known]
    seed: int = 0                   # base PRNG seed (folded with the width)
    parameterization: str = "ntp"   # "ntp", "mup" or "zero" (see uv.init)
    varw: float = 1.0               # weight variance scale
    y: float = 0.0                  # the label (paper Sec. 5: y = 0)
    x_min: float = 0.0              # grid c = 2^x starts here
    x_max: float = 3.0              # ... and ends here
    x_step: float = 0.005           # [I] finer than the paper's 0.1 because the uv model is cheap
    steps: int = 10                 # T1 early steps [C: 10]
    threshold: float = 1e5          # K, divergence threshold on the loss [C]
    eps_loss: float = 0.0           # L_t/L_0 > 1 + eps_loss counts as a rise
    eps_sharp: float = 0.0          # s_t/s_0 > 1 + eps_sharp counts as a rise
    refine: int = 40                # bisection steps inside the bracketing grid cell (0: grid only)

    def __post_init__(self):
        _check_common(self)
        check(not (self.parameterization == "zero" and self.y == 0), "y",
              "y != 0 with parameterization='zero' (f_0 = y = 0 starts at a minimum)", self.y)
        check_grid(self.x_min, self.x_max, self.x_step, MAX_POINTS_UV)
        check_int(self.steps, "steps", minimum=1)
        check_positive(self.threshold, "threshold")
        check_int(self.refine, "refine", minimum=0, maximum=60)
        for name in ("eps_loss", "eps_sharp"):
            val = getattr(self, name)
            check(is_real(val) and 0 <= val < 1, name, "a number in [0, 1)", val)

    def replace(self, **kw) -> "EarlyConfig":
        return dataclasses.replace(self, **kw)


def _early_one_width(width: int, cfg: EarlyConfig) -> dict:
    df0, lam0, gamma = _init_states(width, cfg)
    top0 = uv.hessian_top(df0, lam0, cfg.y, gamma, width)
    frob0 = uv.hessian_frobenius(df0, lam0, cfg.y, gamma, width)
    grid = 2.0 ** x_grid(cfg.x_min, cfg.x_max, cfg.x_step)
    out = {"lam0": np.asarray(lam0), "top0": np.asarray(top0), "frob0": np.asarray(frob0),
           "r0": np.asarray((gamma * (cfg.y + df0) / lam0) ** 2)}
    # (constant name, eta normaliser, measured quantity, threshold eps)
    plan = {"c": (top0, [("c_loss", "loss", cfg.eps_loss), ("c_sharp", "top", cfg.eps_sharp), ("c_max", "div", 0.0)]),
            "k": (lam0, [("k_loss", "loss", cfg.eps_loss), ("k_sharp", "trace", cfg.eps_sharp),
                         ("k_frob", "frob", cfg.eps_sharp), ("k_max", "div", 0.0)])}
    for scaling, (norm, constants) in plan.items():
        lr = jnp.asarray(grid)[None, :] / norm[:, None]                          # [S, X]
        tr = _runs(df0, lam0, cfg.y, gamma, lr, cfg.steps, cfg.threshold)       # leaves [S, X, T+1]
        div = np.asarray(tr.diverged.any(-1))
        for name, which, eps in constants:
            if which == "div":
                mask = div
            else:
                s = _measure(which, tr.df, tr.lam, cfg.y, gamma, width)
                ratio = np.asarray(s[..., 1:] / s[..., :1])
                mask = (np.max(np.where(np.isnan(ratio), -np.inf, ratio), -1) > 1 + eps) | div
            out[name] = refine_constants(mask, grid, df0, lam0, cfg.y, gamma, norm, which, width,
                                         cfg.steps, cfg.threshold, eps, cfg.refine)
        # first-step relative trace change (App. G.3: > 0 at every k for zero init), mean over inits
        out[f"trace_step1_{scaling}"] = np.nanmean(np.asarray(tr.lam[..., 1] / lam0[:, None] - 1), 0)
    return out


def early_sweep(cfg: EarlyConfig, scheduler=None) -> xr.Dataset:
    """Critical constants per (width, seed) for the three sharpness measures.

    Returns a Dataset with dims (width, seed) and variables
      c_loss, c_sharp, c_max   -- eta = c / lambda^H_0, sharpness = top Hessian eigenvalue
      k_loss, k_sharp, k_frob, k_max -- eta = k / tr H_0, k_sharp from the trace, k_frob from ||H||_F
      lam0, top0, frob0, r0    -- initial trace, top eigenvalue, Frobenius norm, r = gamma^2 f^2/lambda^2
    and, over (width, x), trace_step1_k: mean over inits of lambda_1/lambda_0 - 1 at eta = k/tr H_0.
    Each width is a point: ``scheduler`` as in ``sweep.phase_sweep``.
    """
    if not isinstance(cfg, EarlyConfig):
        cfg = EarlyConfig(**cfg)
    x = x_grid(cfg.x_min, cfg.x_max, cfg.x_step)
    rows = _per_width(_early_one_width, cfg, "uv early sweep", scheduler)
    names = ["c_loss", "c_sharp", "c_max", "k_loss", "k_sharp", "k_frob", "k_max", "lam0", "top0", "frob0", "r0"]
    data = {n: (("width", "seed"), np.stack([r[n] for r in rows])) for n in names}
    for n in ("trace_step1_c", "trace_step1_k"):
        data[n] = (("width", "x"), np.stack([r[n] for r in rows]))
    return xr.Dataset(data, coords={"width": list(cfg.widths), "seed": np.arange(cfg.n_init),
                                    "x": x, "grid": ("x", 2.0 ** x)})


def summarize(values: xr.DataArray, q=(0.25, 0.75)) -> xr.Dataset:
    """Mean and quantiles over ``seed`` (NaNs skipped): variables mean, lo, hi, n (finite count).
    Quantile levels are [I] 25/75 (SPEC 4.4)."""
    return xr.Dataset({"mean": values.mean("seed", skipna=True),
                       "lo": values.quantile(q[0], "seed", skipna=True).drop_vars("quantile"),
                       "hi": values.quantile(q[1], "seed", skipna=True).drop_vars("quantile"),
                       "n": np.isfinite(values).sum("seed")})


# --------------------------------------------------------------------------- intermediate saturation
@strict_init
@dataclass(frozen=True)
class UVSaturationConfig:
    """Late-time sharpness of the uv model against k (paper Fig. 10, App. B.2): the uv model's
    counterpart of the networks' ``saturation.SaturationConfig``."""
    widths: tuple = (4, 16, 64, 256, 1024)  # network widths w
    n_init: int = 128               # initialisations per width [I]
    seed: int = 0                   # base PRNG seed
    parameterization: str = "ntp"   # see uv.init
    varw: float = 1.0               # weight variance scale
    y: float = 0.0                  # label
    x_min: float = -1.0             # log2 k grid start [I]: below k = 2
    x_max: float = 1.7              # log2 k grid end [I]: k = 3.25, past the drop, before k_max = 4
    x_step: float = 0.025           # [I]
    steps: int = 1000               # training steps T [I: the paper's count is not known]
    window: int = 50                # chi averages lambda_t / lambda_0 over the last `window` steps [I]
    threshold: float = 1e5          # divergence threshold K

    def __post_init__(self):
        _check_common(self)
        check_grid(self.x_min, self.x_max, self.x_step, MAX_POINTS_UV)
        check_int(self.steps, "steps", minimum=1)
        check_int(self.window, "window", minimum=1, maximum=self.steps)
        check_positive(self.threshold, "threshold")


def _saturation_one_width(w: int, cfg: UVSaturationConfig) -> tuple:
    """(chi, chi_lo, chi_hi, diverged_frac), each [X], at this width."""
    grid = 2.0 ** jnp.asarray(x_grid(cfg.x_min, cfg.x_max, cfg.x_step))
    df0, lam0, gamma = _init_states(w, cfg)
    tr = _runs(df0, lam0, cfg.y, gamma, grid[None, :] / lam0[:, None], cfg.steps, cfg.threshold)
    ratio = np.asarray(tr.lam[..., -cfg.window:]).mean(-1) / np.asarray(lam0)[:, None]  # [S, X]
    return (np.nanmean(ratio, 0), np.nanquantile(ratio, 0.25, 0), np.nanquantile(ratio, 0.75, 0),
            np.asarray(tr.diverged[..., -1]).mean(0))


def uv_saturation_sweep(cfg: UVSaturationConfig, scheduler=None) -> xr.Dataset:
    """chi(w, x) = < mean over the last `window` steps of lambda_t / lambda_0 > over inits, at
    eta = k / tr H_0, k = 2^x. Variables chi, chi_lo, chi_hi (25/75 quantiles), diverged_frac.
    Each width is a point: ``scheduler`` as in ``sweep.phase_sweep``."""
    if not isinstance(cfg, UVSaturationConfig):
        cfg = UVSaturationConfig(**cfg)
    x = x_grid(cfg.x_min, cfg.x_max, cfg.x_step)
    chi, lo, hi, dfrac = zip(*_per_width(_saturation_one_width, cfg, "uv saturation sweep", scheduler))
    dims = ("width", "x")
    return xr.Dataset({"chi": (dims, np.stack(chi)), "chi_lo": (dims, np.stack(lo)),
                       "chi_hi": (dims, np.stack(hi)), "diverged_frac": (dims, np.stack(dfrac))},
                      coords={"width": list(cfg.widths), "x": x, "k": ("x", 2.0 ** x)})


def savgol_critical(chi: xr.DataArray, window: int = 11, polyorder: int = 3) -> xr.Dataset:
    """Savitzky-Golay first and second derivatives of chi in x = log2 k, and
    k_crit = 2^(argmin_x chi''(x)) per width (Definition 4). ``window`` odd > polyorder [I].

    The onset of the drop (most negative chi'') precedes its steepest point (most negative chi'), so
    the argmin of chi'' is taken over x <= argmin chi'; this keeps edge effects of the filter and
    the structure of chi far beyond the drop from being mistaken for the onset."""
    from scipy.signal import savgol_filter
    check_int(polyorder, "polyorder", minimum=1)
    check_int(window, "window", minimum=polyorder + 1)
    check(window % 2 == 1, "window", "an odd integer", window)
    x = chi["x"].values
    check(len(x) >= window, "window", f"at most the number of grid points ({len(x)})", window)
    dx = float(x[1] - x[0])
    d1 = savgol_filter(chi.values, window, polyorder, deriv=1, delta=dx, axis=-1)
    d2 = savgol_filter(chi.values, window, polyorder, deriv=2, delta=dx, axis=-1)
    steepest = np.argmin(d1, axis=-1)                                   # [width]
    before = np.arange(len(x))[None, :] <= np.atleast_1d(steepest)[:, None]
    x_crit = x[np.argmin(np.where(before, np.atleast_2d(d2), np.inf), axis=-1)]
    x_crit = x_crit if d2.ndim > 1 else x_crit[0]
    return xr.Dataset({"chi": chi, "d1": (chi.dims, d1), "d2": (chi.dims, d2),
                       "k_crit": (("width",), 2.0 ** x_crit)}, coords=chi.coords)


# --------------------------------------------------------------------------- catapult timing
@strict_init
@dataclass(frozen=True)
class CatapultConfig:
    """Duration of the catapult against width (Lewkowycz et al. 2020)."""
    widths: tuple = (16, 64, 256, 1024, 4096, 16384, 65536)  # network widths n
    ks: tuple = (2.5, 3.0, 3.5)     # k = eta tr H_0 in the catapult window (2, 4)
    n_init: int = 256               # initialisations per width
    seed: int = 0                   # base PRNG seed
    varw: float = 1.0               # weight variance scale
    steps: int = 400                # steps per run
    threshold: float = 1e12         # K: catapult peaks reach L ~ w, so K must exceed the widest w

    def __post_init__(self):
        object.__setattr__(self, "widths", _tuple_of_widths(self.widths))
        ks = as_tuple(self.ks, "ks")
        check(len(ks) > 0 and all(is_real(k) and 2 < k < 4 for k in ks),
              "ks", "a non-empty list of numbers in (2, 4)", self.ks)
        object.__setattr__(self, "ks", ks)
        check_int(self.n_init, "n_init", minimum=1)
        check_int(self.seed, "seed", minimum=0)
        check_positive(self.varw, "varw")
        check_int(self.steps, "steps", minimum=2)
        check_positive(self.threshold, "threshold")

    # the sweeps share _init_states, which reads these
    parameterization = "ntp"
    y = 0.0


def _catapult_one_width(w: int, cfg: CatapultConfig) -> dict:
    """t_peak, peak, final, diverged, each [K, S], at this width."""
    df0, lam0, gamma = _init_states(w, cfg)
    lr = jnp.asarray(cfg.ks)[None, :] / lam0[:, None]                          # [S, K]
    tr = _runs(df0, lam0, 0.0, gamma, lr, cfg.steps, cfg.threshold)
    loss = np.asarray(tr.df) ** 2
    return {"t_peak": np.nanargmax(np.where(np.isnan(loss), -np.inf, loss), -1).T,
            "peak": (np.nanmax(loss, -1) / np.asarray(df0)[:, None] ** 2).T,
            "final": (np.asarray(lr) * np.asarray(tr.lam[..., -1])).T,
            "diverged": np.asarray(tr.diverged[..., -1]).T}


def catapult_sweep(cfg: CatapultConfig, scheduler=None) -> xr.Dataset:
    """Per (width, k, seed): t_peak = argmax_t L_t (steps to the top of the catapult),
    peak = max_t L_t / L_0, final = eta lambda_T (< 2 after a catapult), diverged.
    Each width is a point: ``scheduler`` as in ``sweep.phase_sweep``."""
    if not isinstance(cfg, CatapultConfig):
        cfg = CatapultConfig(**cfg)
    rows = _per_width(_catapult_one_width, cfg, "uv catapult sweep", scheduler)
    dims = ("width", "k", "seed")
    return xr.Dataset({k: (dims, np.stack([r[k] for r in rows])) for k in rows[0]},
                      coords={"width": list(cfg.widths), "k": list(cfg.ks), "seed": np.arange(cfg.n_init)})


def trajectories_at_k(width: int, ks, steps: int, y: float = 0.0, parameterization: str = "ntp",
                 varw: float = 1.0, seed: int = 0, threshold: float = uv.DIV_THRESHOLD) -> xr.Dataset:
    """Trajectories of the uv model from one initialisation at several k = eta tr H_0: loss,
    eta*lambda, eta * top eigenvalue over steps -> Dataset dims (k, step); NaN after divergence.
    (The networks' per-step records are ``sweep.trajectory_sweep``.)"""
    check_int(width, "width", minimum=1)
    check_int(steps, "steps", minimum=1)
    ks = list(ks)
    check(len(ks) > 0 and all(isinstance(k, (int, float)) and k > 0 for k in ks), "ks",
          "a non-empty list of positive numbers", ks)
    u, v = uv.init(jax.random.PRNGKey(seed), width, parameterization, varw)
    gamma = uv.output_multiplier(width, parameterization)
    df0, lam0 = uv.initial_state(u, v, y, gamma)
    lr = jnp.asarray(ks) / lam0
    tr = jax.vmap(uv.fn_map, in_axes=(None, None, None, None, 0, None, None))(df0, lam0, y, gamma, lr,
                                                                               steps, threshold)
    top = uv.hessian_top(tr.df, tr.lam, y, gamma, width)
    dims = ("k", "step")
    return xr.Dataset({"loss": (dims, np.asarray(0.5 * tr.df ** 2)),
                       "lr_lam": (dims, np.asarray(lr[:, None] * tr.lam)),
                       "lr_top": (dims, np.asarray(lr[:, None] * top)),
                       "diverged": (dims, np.asarray(tr.diverged))},
                      coords={"k": ks, "step": np.arange(steps + 1), "lr": ("k", np.asarray(lr))},
                      attrs={"width": width, "lam0": float(lam0), "y": y, "gamma": gamma})


# --------------------------------------------------------------------------- bifurcation diagram
@strict_init
@dataclass(frozen=True)
class BifurcationConfig:
    """Late-time sharpness against eta from one initial state (Kalra, He & Barkeshli 2023)."""
    y: float = 1.0                  # label (y != 0: the minima sit at f = y)
    gamma: float = 1.0              # output multiplier (muP-like: 1)
    f0: float = 0.01                # initial output (small: muP-like, progressive sharpening)
    lam0: float = 0.5               # initial trace lambda_0 = tr H_0
    lr_min: float = 0.5             # eta grid start
    lr_max: float = 1.8             # eta grid end
    n_lr: int = 1200                # eta grid points
    steps: int = 4000               # steps per run
    keep: int = 256                 # late-time steps kept per eta (transient discarded)
    threshold: float = 1e5          # divergence threshold on the loss

    def __post_init__(self):
        for name in ("y", "f0"):
            val = getattr(self, name)
            check_real(val, name)
        check(self.y != 0, "y", "a nonzero number (y = 0 has no EoS: eta_c is infinite)", self.y)
        for name in ("gamma", "lam0", "lr_min", "lr_max", "threshold"):
            check_positive(getattr(self, name), name)
        check(self.lr_max > self.lr_min, "lr_max", f"a number > lr_min = {self.lr_min}", self.lr_max)
        check(self.lam0 >= 2 * self.gamma * abs(self.f0), "lam0",
              f"a value >= 2 gamma |f0| = {2 * self.gamma * abs(self.f0)} (lambda >= 2 gamma |f| always)",
              self.lam0)
        check_int(self.n_lr, "n_lr", minimum=2)
        check_int(self.steps, "steps", minimum=2)
        check_int(self.keep, "keep", minimum=1, maximum=self.steps)


def bifurcation(cfg: BifurcationConfig) -> xr.Dataset:
    """eta * lambda_t for the last ``keep`` steps at each eta: Dataset dims (lr, sample), NaN where
    the run diverged; also the final |Delta f| per eta (0 on a minimum)."""
    if not isinstance(cfg, BifurcationConfig):
        cfg = BifurcationConfig(**cfg)
    # float64: in the chaotic band float32 round-off can push an orbit off the reachable set
    # lambda >= 2 gamma |f| (which the exact map preserves), after which it escapes spuriously
    with jax.enable_x64(True):
        lrs = jnp.linspace(cfg.lr_min, cfg.lr_max, cfg.n_lr)
        run = jax.vmap(uv.fn_map, in_axes=(None, None, None, None, 0, None, None))
        tr = run(jnp.float64(cfg.f0 - cfg.y), jnp.float64(cfg.lam0), jnp.float64(cfg.y), jnp.float64(cfg.gamma),
                 lrs, cfg.steps, cfg.threshold)
        late = np.asarray(lrs[:, None] * tr.lam[:, -cfg.keep:])
        tr = jax.tree_util.tree_map(np.asarray, tr)
        lrs = np.asarray(lrs)
    return xr.Dataset({"lr_lam": (("lr", "sample"), late),
                       "abs_df": (("lr",), np.abs(np.asarray(tr.df[:, -1]))),
                       "diverged": (("lr",), np.asarray(tr.diverged[:, -1]))},
                      coords={"lr": np.asarray(lrs), "sample": np.arange(cfg.keep)},
                      attrs={"lr_c": 1.0 / (cfg.gamma * abs(cfg.y))})


def period(late: np.ndarray, tol: float = 1e-6, max_period: int = 64) -> int:
    """Smallest p <= max_period with late[t + p] == late[t] (to ``tol``) over the kept samples;
    0 if none (chaotic or not yet converged), -1 if NaN (diverged). late [keep]."""
    late = np.asarray(late)
    if np.isnan(late).any():
        return -1
    scale = max(np.abs(late).max(), 1.0)
    for p in range(1, min(max_period, len(late) // 2) + 1):
        if np.max(np.abs(late[p:] - late[:-p])) < tol * scale:
            return p
    return 0


# --------------------------------------------------------------------------- landscape paths
def landscape_paths(width: int, ks, steps: int, y: float = 0.0, seed: int = 0, varw: float = 1.0,
                    n_tau: int = 101) -> xr.Dataset:
    """GD paths in the (lambda, rho) plane (paper Fig. 8) and the straight line theta_0 -> theta_T.

    rho = 2 u.v/(|u|^2+|v|^2) (``uv.balanced_correlation``), on which the loss is an exact function
    ``uv.loss_on_plane``; ``cos`` is the plain cosine u.v/(|u||v|) for comparison. For each
    k = eta tr H_0: dims (k, step) lam, rho, cos, loss; dims (k, tau) the same along the straight
    line in parameter space, and barrier U = max_tau L_int(tau) (Definition 2; > 0: a barrier)."""
    check_int(width, "width", minimum=1)
    check_int(steps, "steps", minimum=1)
    check_int(n_tau, "n_tau", minimum=2)
    ks = list(ks)
    check(len(ks) > 0 and all(isinstance(k, (int, float)) and 0 < k < 4 for k in ks), "ks",
          "a non-empty list of numbers in (0, 4)", ks)
    gamma = uv.output_multiplier(width, "ntp")
    u0, v0 = uv.init(jax.random.PRNGKey(seed), width, "ntp", varw)
    lam0 = uv.ntk(u0, v0, gamma)
    taus = jnp.linspace(0.0, 1.0, n_tau)
    out = {n: [] for n in ("lam", "rho", "cos", "loss", "lam_line", "rho_line", "loss_line")}
    for k in ks:
        us, vs = uv.gd_params_path(u0, v0, y, gamma, k / lam0, steps)
        df, lam = uv.initial_state(us, vs, y, gamma)
        out["lam"].append(lam), out["rho"].append(uv.balanced_correlation(df, lam, y, gamma))
        out["cos"].append(uv.cosine(us, vs)), out["loss"].append(0.5 * df ** 2)
        ul = (1 - taus)[:, None] * u0 + taus[:, None] * us[-1]
        vl = (1 - taus)[:, None] * v0 + taus[:, None] * vs[-1]
        dfl, laml = uv.initial_state(ul, vl, y, gamma)
        out["lam_line"].append(laml), out["rho_line"].append(uv.balanced_correlation(dfl, laml, y, gamma))
        out["loss_line"].append(0.5 * dfl ** 2)
    data = {n: (("k", "step") if "line" not in n else ("k", "tau"), np.stack([np.asarray(a) for a in v]))
            for n, v in out.items()}
    ds = xr.Dataset(data, coords={"k": ks, "step": np.arange(steps + 1), "tau": np.asarray(taus)},
                    attrs={"width": width, "gamma": gamma, "y": y, "lam0": float(lam0)})
    ds["barrier"] = ds.loss_line.max("tau") - ds.loss_line.isel(tau=0)
    ds["rises"] = ds.loss.isel(step=slice(1, None)).max("step") > ds.loss.isel(step=0)
    return ds
