"""Figures of the output-at-initialisation chapter (App. G, H) and of the four regimes of
training (Fig. 1); the rule that places the regime boundaries is ``earlytrain.regimes``."""
from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import xarray as xr
from matplotlib import cm, colors

from ..regimes import REGIME_NAMES, Regimes
from .phase import CONSTANT_LABELS, Y_LABELS, _y_values, phase_diagram
from .style import CONSTANT_COLORS, detach

REGIME_COLORS = ("#c6dbef", "#d9d9d9", "#fdd0a2", "#fcbba1")


# ----------------------------------------------------------------------------- App. G, H
def variant_diagrams(datasets: dict, y: str = "inv_width") -> plt.Figure:
    """One phase diagram (``phase.phase_diagram``) per variant, side by side, shared axes.

    datasets: {label: phase-sweep Dataset over (depth, width, seed)}. The legend is drawn once.
    """
    n = len(datasets)
    fig, axes = plt.subplots(1, n, figsize=(3.9 * n + 1.8, 4.0), sharey=True, squeeze=False)
    for i, (label, ds) in enumerate(datasets.items()):
        phase_diagram(ds, y=y, ax=axes[0, i], legend=(i == n - 1))
        axes[0, i].set_title(label, fontsize=10, loc="left")
        if i:
            axes[0, i].set_ylabel("")
    lo = min(ax.get_xlim()[0] for ax in axes[0])
    hi = max(ax.get_xlim()[1] for ax in axes[0])
    for ax in axes[0]:
        ax.set_xlim(lo, hi)
    return detach(fig)


def constants_by_variant(datasets: dict, names=("c_loss", "c_max"), y: str = "inv_width",
                         q=(0.25, 0.75)) -> plt.Figure:
    """Critical constants against 1/w (or d/w), one panel per constant, one line per variant.

    datasets: {label: phase-sweep Dataset over (depth, width, seed)}. Markers are means over seeds,
    bars the q[0]-q[1] quantiles; the dashed line is c = 2. A mean c_max with a censored seed is a
    lower bound: open marker with an arrow up.
    """
    fig, axes = plt.subplots(1, len(names), figsize=(4.6 * len(names) + 1.6, 3.8), squeeze=False)
    cmap = lambda i: cm.viridis(i / max(len(datasets) - 1, 1) * 0.85)
    for j, name in enumerate(names):
        ax = axes[0, j]
        for i, (label, ds) in enumerate(datasets.items()):
            c = ds[name]
            yy = _y_values(ds, y).broadcast_like(c.isel(seed=0, drop=True)).values.ravel()
            mean = c.mean("seed").values.ravel()
            lo, hi = (c.quantile(qq, "seed").values.ravel() for qq in q)
            order = np.argsort(yy)
            ax.errorbar(yy[order], mean[order], yerr=[mean[order] - lo[order], hi[order] - mean[order]],
                        marker="o", ms=4, capsize=3, color=cmap(i), label=label)
            if name == "c_max" and "c_max_censored" in ds:  # a lower bound: open marker, arrow up
                low = ds.c_max_censored.astype(bool).broadcast_like(c).any("seed").values.ravel()
                if low.any():
                    ax.plot(yy[low], mean[low], "o", mfc="white", mec=cmap(i), ms=6, ls="none", zorder=3,
                            label=f"{label}: lower bound (no divergence on the grid)")
                    for yv, m in zip(yy[low], mean[low]):
                        ax.annotate("", xy=(yv, m * 1.35), xytext=(yv, m),
                                    arrowprops=dict(arrowstyle="->", color=cmap(i), lw=1.2))
                    top = float(np.nanmax(mean[low])) * 1.6  # room for the arrows (not clipped)
                    if top > ax.get_ylim()[1]:
                        ax.set_ylim(top=top)
        ax.axhline(2.0, color="k", ls="--", lw=1)
        ax.set_xscale("log", base=2)
        ax.set_yscale("log", base=2)
        ax.set_xlabel(Y_LABELS[y])
        ax.set_ylabel(CONSTANT_LABELS[name])
    axes[0, -1].legend(loc="center left", bbox_to_anchor=(1.01, 0.5), fontsize=8)
    return detach(fig)


def sharpness_by_variant(datasets: dict, seed=None) -> plt.Figure:
    """lambda_t / lambda_0 over the early steps, one panel per variant, one curve per c.

    datasets: {label: trajectory Dataset over (c, step) (one depth and width selected; a seed dim
    is reduced to ``seed`` or its first seed)}. Log y axis; dotted line at 1.
    """
    n = len(datasets)
    fig, axes = plt.subplots(1, n, figsize=(3.6 * n + 1.4, 3.6), sharey=True, squeeze=False)
    cs = np.concatenate([ds.c.values for ds in datasets.values()])
    norm = colors.LogNorm(cs.min(), cs.max())
    for ax, (label, ds) in zip(axes[0], datasets.items()):
        if "seed" in ds.dims:
            ds = ds.sel(seed=seed if seed is not None else ds.seed.values[0])
        for c in ds.c.values:
            tr = ds.sharpness.sel(c=c)
            ax.plot(ds.step, tr / tr.isel(step=0), color=cm.viridis(norm(c)), marker=".", ms=3)
        ax.axhline(1.0, color="k", lw=0.8, ls=":")
        ax.set_yscale("log")
        ax.set_xlabel("step $t$")
        ax.set_title(label, fontsize=10, loc="left")
    axes[0, 0].set_ylabel(r"$\lambda^H_t / \lambda^H_0$")
    fig.colorbar(cm.ScalarMappable(norm, cm.viridis), ax=axes[0].tolist(), label=r"$c = \eta\,\lambda^H_0$")
    return detach(fig)


# ----------------------------------------------------------------------------- Fig. 1
def four_regimes(ds: xr.Dataset, lr: float, regimes: Regimes) -> plt.Figure:
    """Fig. 1: sharpness (top) and loss (bottom) against step t + 1 on a log axis, with the
    edge-of-stability line 2 / eta and the regimes of ``earlytrain.regimes.regime_boundaries`` as shaded spans.

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
