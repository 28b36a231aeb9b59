"""The four regimes of training in one long run (Fig. 1) and the edge of stability up close; the
rule that places the regime boundaries is ``earlytrain.analyses.regimes``. Each builder returns a Figure:
no show(), no file writes, no titles."""
from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import xarray as xr

from ...analyses.regimes import REGIME_NAMES, Regimes
from .style import detach

REGIME_COLORS = ("#c6dbef", "#d9d9d9", "#fdd0a2", "#fcbba1")


def four_regimes(ds: xr.Dataset, lr: float, regimes: Regimes) -> plt.Figure:
    """Fig. 1: sharpness (top) and loss (bottom) against step t + 1 on a log axis, with the
    edge-of-stability line 2 / eta and the regimes of ``earlytrain.analyses.regimes.regime_boundaries`` as shaded spans.

    ds: one trajectory over (step,) with variables sharpness (NaN where not measured) and loss.
    """
    fig, (ax, axl) = plt.subplots(2, 1, figsize=(7.2, 6.0), sharex=True, height_ratios=(2, 1))
    s = ds.sharpness.dropna("step")
    t_end = float(ds.step.max()) + 1
    edges = [1.0] + [t + 1 for t in regimes[:3]] + [t_end]   # NaN = regime not reached
    numerals = ("i", "ii", "iii", "iv")
    for k, name in enumerate(REGIME_NAMES):
        nxt = [e for e in edges[k + 1:] if np.isfinite(e)]
        a, b = edges[k], nxt[0]
        if np.isfinite(a) and b > a:
            ax.axvspan(a, b, color=REGIME_COLORS[k], alpha=0.7, lw=0, label=f"({numerals[k]}) {name}")
            axl.axvspan(a, b, color=REGIME_COLORS[k], alpha=0.7, lw=0)
    ax.plot(s.step + 1, s, color="k", marker=".", ms=3, lw=1.2, label=r"$\lambda^H_t$")
    ax.axhline(regimes.lam_eos, color="#cb181d", ls="--", lw=1.2, label=r"$2/\eta$")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_ylabel(r"sharpness $\lambda^H_t$")
    ax.legend(loc="center left", bbox_to_anchor=(1.01, 0.5), fontsize=8)
    axl.plot(ds.step + 1, ds.loss, color="#2171b5", lw=1.2)
    axl.set_yscale("log")
    axl.set_xlabel("step $t + 1$")
    axl.set_ylabel(r"loss $L_t$")
    return detach(fig)


def eos_zoom(ds: xr.Dataset, lr: float, t_eos: float, last: int = 60) -> plt.Figure:
    """The edge of stability up close, on linear axes. Left: eta * lambda_t / 2 at every
    measured step from t_eos on (1 = the stability threshold 2 / eta). Right: the loss over the
    last ``last`` steps, with the steps at which it rose marked.

    ds: one trajectory over (step,) with sharpness (NaN where not measured) and loss.
    """
    fig, (ax, axl) = plt.subplots(1, 2, figsize=(9.6, 3.4))
    s = ds.sharpness.dropna("step")
    if np.isfinite(t_eos):
        s = s.sel(step=slice(t_eos, None))
    ax.plot(s.step + 1, lr * s / 2, ".-", color="k", ms=3, lw=0.8)
    ax.axhline(1.0, color="#cb181d", ls="--", lw=1.2, label=r"$\lambda^H_t = 2/\eta$")
    ax.set_xlabel("step $t + 1$")
    ax.set_ylabel(r"$\eta\,\lambda^H_t / 2$")
    ax.legend(fontsize=8, loc="lower right")
    tail = ds.loss.isel(step=slice(-last, None))
    up = np.concatenate([[False], np.diff(tail.values) > 0])
    axl.plot(tail.step + 1, tail, "-", color="#2171b5", lw=1.0)
    axl.plot((tail.step + 1)[up], tail[up], "^", color="#cb181d", ms=4, lw=0, label="loss rose")
    axl.set_xlabel("step $t + 1$")
    axl.set_ylabel(r"loss $L_t$")
    axl.legend(fontsize=8)
    axl.ticklabel_format(axis="y", style="sci", scilimits=(-2, 2))
    fig.tight_layout()
    return detach(fig)
