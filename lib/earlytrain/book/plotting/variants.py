"""Phase diagrams of network variants side by side (App. C, G, H, J, K: the output scale at
initialisation, NTP, biases, a smaller batch): ``variant_diagrams``, ``constants_by_variant``,
``sharpness_by_variant``. Each builder returns a Figure: no show(), no file writes, no titles."""
from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
from matplotlib import cm, colors

from .diagram import phase_diagram, y_values
from .style import CONSTANT_LABELS, Y_LABELS, detach


def variant_diagrams(datasets: dict, y: str = "inv_width") -> plt.Figure:
    """One phase diagram (``diagram.phase_diagram``) per variant, side by side, shared axes.

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
            yy = y_values(ds, y).broadcast_like(c.isel(seed=0, drop=True)).values.ravel()
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
