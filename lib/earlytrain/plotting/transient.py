"""Figures of the loss-connectivity and intermediate-saturation chapters. Each builder returns
a Figure: no show(), no file writes, no titles."""
from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import xarray as xr

from .style import CONSTANT_COLORS, detach

LABELS = {"c_loss": r"$c_{loss}$", "c_sharp": r"$c_{sharp}$", "c_barrier": r"$c_{barrier}$",
          "c_max": r"$c_{max}$"}


def _log2_c(ax):
    ax.set_xscale("log", base=2)
    ax.axvline(2.0, color="0.4", ls="--", lw=1)


def interpolation(curves: xr.Dataset, seed=None):
    """curves: (seed, c, tau) of one (depth, width). Left: L_int(tau) of one seed for every c;
    right: U(c) per seed and its mean, with the zero line."""
    seed = curves.seed.values[0] if seed is None else seed
    fig, (a, b) = plt.subplots(1, 2, figsize=(10, 3.9))
    cmap = plt.get_cmap("viridis")
    cs = curves.c.values
    for i, c in enumerate(cs):
        li = curves.L_int.sel(seed=seed, c=c)
        if np.all(np.isnan(li)):
            continue
        a.plot(curves.tau, li, color=cmap(i / max(1, len(cs) - 1)), label=f"c = {c:g}")
    a.axhline(0, color="k", lw=0.8)
    a.set_xlabel(r"$\tau$")
    a.set_ylabel(r"$L_{int}(\tau) = L(\theta(\tau)) - L(\theta_0)$")
    a.set_yscale("symlog", linthresh=1e-2)
    a.legend(ncol=2, fontsize=8)
    for s in curves.seed.values:
        b.plot(cs, curves.U.sel(seed=s), "o-", color="0.7", ms=3, lw=0.8)
    b.plot(cs, curves.U.mean("seed"), "o-", color=CONSTANT_COLORS["c_barrier"], label="mean over inits")
    b.axhline(0, color="k", lw=0.8)
    _log2_c(b)
    b.set_yscale("symlog", linthresh=1e-2)
    b.set_xlabel("c")
    b.set_ylabel(r"$U(c) = \max_\tau L_{int}(\tau)$")
    b.legend()
    return detach(fig)


def phase_diagram(ds: xr.Dataset, depth=None):
    """c_loss, c_sharp, c_barrier, c_max (mean over seeds, 25-75% bars) against 1/w (log2 axes).
    A mean c_max with a censored seed (nothing diverged on the grid) is a lower bound: open marker
    with an arrow towards larger c."""
    depth = ds.depth.values[0] if depth is None else depth
    d = ds.sel(depth=depth)
    y = 1.0 / d.width.values
    fig, ax = plt.subplots(figsize=(6.4, 4.4))
    offsets = {"c_loss": 0.97, "c_sharp": 0.99, "c_barrier": 1.01, "c_max": 1.03}
    for name in ("c_loss", "c_sharp", "c_barrier", "c_max"):
        v = d[name]
        mean = v.mean("seed").values
        q = v.quantile([0.25, 0.75], "seed").values
        err = np.abs(np.stack([mean - q[0], q[1] - mean]))
        ax.errorbar(mean, y * offsets[name], xerr=err, fmt="o-", color=CONSTANT_COLORS[name],
                    label=LABELS[name], capsize=3, ms=5)
        if name == "c_max" and "c_max_censored" in d:  # a lower bound: open marker, arrow to larger c
            low = d.c_max_censored.astype(bool).any("seed").values
            if low.any():
                yy = (y * offsets[name])[low]
                ax.plot(mean[low], yy, "o", mfc="white", mec=CONSTANT_COLORS[name], ms=7, ls="none", zorder=3,
                        label=LABELS[name] + " lower bound (no divergence on the grid)")
                for m, yv in zip(mean[low], yy):
                    ax.annotate("", xy=(m * 1.35, yv), xytext=(m, yv),
                                arrowprops=dict(arrowstyle="->", color=CONSTANT_COLORS[name], lw=1.2))
    _log2_c(ax)
    ax.set_yscale("log", base=2)
    ax.set_xlabel("c")
    ax.set_ylabel("1 / w")
    ax.legend(loc="best")
    return detach(fig)


def saturation_curves(an: xr.Dataset, depth=None):
    """chi (with 25-75% band), chi' and chi'' against c for every width; c_crit marked."""
    depth = an.depth.values[0] if depth is None else depth
    a = an.sel(depth=depth)
    fig, axes = plt.subplots(1, 3, figsize=(12, 3.8))
    cmap = plt.get_cmap("plasma")
    ws = a.width.values
    for i, w in enumerate(ws):
        col = cmap(0.1 + 0.75 * i / max(1, len(ws) - 1))
        aw = a.sel(width=w)
        axes[0].fill_between(aw.c, aw.chi_q25, aw.chi_q75, color=col, alpha=0.2, lw=0)
        axes[0].plot(aw.c, aw.chi, "o-", ms=3, color=col, label=f"w = {w}")
        axes[1].plot(aw.c, aw.d1, color=col)
        axes[2].plot(aw.c, aw.d2, color=col)
        cc = float(aw.c_crit)
        if np.isfinite(cc):
            for ax in axes:
                ax.axvline(cc, color=col, ls=":", lw=1.2)
    for ax, lab in zip(axes, (r"$\chi = \langle\lambda_\tau/\lambda_0\rangle$", r"$d\chi/d\log_2 c$",
                              r"$d^2\chi/d(\log_2 c)^2$")):
        _log2_c(ax)
        ax.set_xlabel("c")
        ax.set_ylabel(lab)
    axes[0].legend()
    return detach(fig)


def saturation_trajectory(traj: xr.Dataset, windows: dict):
    """lambda_t / lambda_0 against step (log axis) for each c of ``traj`` (seed, c, step of one
    network); windows: {c: (lo, hi)} shaded in the colour of the run."""
    fig, ax = plt.subplots(figsize=(6.6, 4.2))
    cmap = plt.get_cmap("viridis")
    cs = traj.c.values
    for i, c in enumerate(cs):
        col = cmap(i / max(1, len(cs) - 1))
        r = (traj.sharpness.sel(c=c) / traj.sharpness.sel(c=c).isel(step=0)).isel(seed=0)
        ok = np.isfinite(r.values) & (r.step.values > 0)
        ax.plot(r.step.values[ok], r.values[ok], ".-", ms=3, color=col, label=f"c = {c:g}")
        lo, hi = windows[float(c)]
        ax.axvspan(lo, hi, color=col, alpha=0.18, lw=0)
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("step t")
    ax.set_ylabel(r"$\lambda_t / \lambda_0$")
    ax.legend()
    return detach(fig)
