"""Figures of loss connectivity (App. D): the loss along the straight line from initialisation
(``interpolation``) and the phase diagram with c_barrier (``barrier_diagram``). Each builder
returns a Figure: no show(), no file writes, no titles."""
from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import xarray as xr

from .style import CONSTANT_COLORS, CONSTANT_LABELS, detach, log2_c_axis


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
    log2_c_axis(b)
    b.set_yscale("symlog", linthresh=1e-2)
    b.set_xlabel("c")
    b.set_ylabel(r"$U(c) = \max_\tau L_{int}(\tau)$")
    b.legend()
    return detach(fig)


def barrier_diagram(ds: xr.Dataset, depth=None):
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
                    label=CONSTANT_LABELS[name], capsize=3, ms=5)
        if name == "c_max" and "c_max_censored" in d:  # a lower bound: open marker, arrow to larger c
            low = d.c_max_censored.astype(bool).any("seed").values
            if low.any():
                yy = (y * offsets[name])[low]
                ax.plot(mean[low], yy, "o", mfc="white", mec=CONSTANT_COLORS[name], ms=7, ls="none", zorder=3,
                        label=CONSTANT_LABELS[name] + " lower bound (no divergence on the grid)")
                for m, yv in zip(mean[low], yy):
                    ax.annotate("", xy=(m * 1.35, yv), xytext=(m, yv),
                                arrowprops=dict(arrowstyle="->", color=CONSTANT_COLORS[name], lw=1.2))
    log2_c_axis(ax)
    ax.set_yscale("log", base=2)
    ax.set_xlabel("c")
    ax.set_ylabel("1 / w")
    ax.legend(loc="best")
    return detach(fig)
