"""Figures of intermediate saturation (App. I): chi(c) and its derivatives with c_crit
(``saturation_curves``) and the sharpness trajectories with their measurement windows
(``saturation_trajectory``). Each builder returns a Figure: no show(), no file writes, no titles."""
from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import xarray as xr

from .style import detach, log2_c_axis


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
        log2_c_axis(ax)
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
