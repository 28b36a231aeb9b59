"""Figures of the early-transient chapter: trajectories (Fig. 2), phase diagrams (Fig. 3) and
the per-initialisation ordering of the critical constants (Fig. 4)."""
from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import xarray as xr
from matplotlib import cm, colors

from .style import CONSTANT_COLORS, PHASE_COLORS, detach

CONSTANT_LABELS = {"c_loss": r"$c_{loss}$", "c_sharp": r"$c_{sharp}$",
                   "c_barrier": r"$c_{barrier}$", "c_max": r"$c_{max}$"}
Y_LABELS = {"inv_width": r"$1/w$", "depth_over_width": r"$d/w$"}


def transient(panels: list[tuple[str, xr.Dataset]], seed=None) -> plt.Figure:
    """Fig. 2 (a, b, d, e): L_t/L_0 and lambda_t/lambda_0 over the first steps, one curve per c.

    panels: [(label, ds)] with ds over (c, step) (one depth, width and seed selected; if ds still
    has a seed dim, ``seed`` or the first seed is used). Rows = networks, columns = loss, sharpness.
    """
    fig, axes = plt.subplots(len(panels), 2, figsize=(10, 3.6 * len(panels)), squeeze=False)
    for row, (label, ds) in enumerate(panels):
        if "seed" in ds.dims:
            ds = ds.sel(seed=seed if seed is not None else ds.seed.values[0])
        cs = ds.c.values
        norm = colors.LogNorm(cs.min(), cs.max())
        for col, (var, sym) in enumerate([("loss", "L"), ("sharpness", r"\lambda^H")]):
            ax = axes[row, col]
            for c in cs:
                tr = ds[var].sel(c=c)
                ax.plot(ds.step, tr / tr.isel(step=0), color=cm.viridis(norm(c)), marker=".", ms=3)
            ax.axhline(1.0, color="k", lw=0.8, ls=":")
            ax.set_yscale("log")
            ax.set_xlabel("step $t$")
            ax.set_ylabel(rf"${sym}_t / {sym}_0$")
            ax.set_title(f"{label}", fontsize=10, loc="left")
        fig.colorbar(cm.ScalarMappable(norm, cm.viridis), ax=axes[row, :].tolist(),
                     label=r"$c = \eta\,\lambda^H_0$")
    return detach(fig)


def _y_values(ds: xr.Dataset, y: str) -> xr.DataArray:
    if y == "inv_width":
        return 1.0 / ds.width
    return ds.depth / ds.width


def constants_table(ds: xr.Dataset, y: str = "inv_width",
                    names=("c_loss", "c_sharp", "c_max"), q=(0.25, 0.75)):
    """Per (depth, width) point: y, and mean / low / high quantile of each constant over seeds.
    Returns a dict name -> (y [P], mean [P], lo [P], hi [P]) and the raw (y, c) pairs."""
    yv = _y_values(ds, y).broadcast_like(ds[names[0]].isel(seed=0, drop=True))
    out = {}
    for name in names:
        if name not in ds or bool(ds[name].isnull().all()):
            continue
        c = ds[name]
        stats = (yv.values.ravel(), c.mean("seed").values.ravel(),
                 c.quantile(q[0], "seed").values.ravel(), c.quantile(q[1], "seed").values.ravel())
        raw_y = np.broadcast_to(yv.values[..., None], c.transpose(..., "seed").shape).ravel()
        raw_c = c.transpose(*yv.dims, "seed").values.ravel()
        out[name] = stats + (raw_y, raw_c)
    return out


def _fit(raw_y, raw_c, order, y_new):
    ok = np.isfinite(raw_c)
    if ok.sum() <= order or len(np.unique(raw_y[ok])) <= order:
        return None
    return np.polyval(np.polyfit(raw_y[ok], raw_c[ok], order), y_new)


def phase_diagram(ds: xr.Dataset, y: str = "inv_width", ax=None, fit_order: int = 2,
                  names=("c_loss", "c_sharp", "c_max"), q=(0.25, 0.75), shade: bool = True,
                  legend: bool = True) -> plt.Figure:
    """Fig. 3: mean critical constants over initialisations against 1/w or d/w.

    Markers: means; horizontal bars: the q[0]-q[1] quantiles over seeds; lines: polynomial fits of
    order ``fit_order`` to the raw per-seed points (c as a function of y); dashed line: c = 2;
    shading: the four phases between the fitted curves (c_sharp missing -> one catapult band).
    """
    fig = ax.figure if ax is not None else plt.figure(figsize=(6.4, 4.6))
    ax = ax or fig.add_subplot()
    table = constants_table(ds, y, names, q)
    ys = np.concatenate([t[0] for t in table.values()])
    y_new = 2.0 ** np.arange(np.log2(ys.min()) - 0.1, np.log2(ys.max()) + 0.1, 0.05)
    fits = {n: _fit(t[4], t[5], fit_order, y_new) for n, t in table.items()}
    for name, (yy, mean, lo, hi, _, _) in table.items():
        col = CONSTANT_COLORS[name]
        ax.errorbar(mean, yy, xerr=[mean - lo, hi - mean], fmt="o", color=col, ms=5, capsize=3,
                    label=CONSTANT_LABELS[name])
        if fits[name] is not None:
            ax.plot(fits[name], y_new, color=col, lw=1.2)
    if shade and fits.get("c_loss") is not None and fits.get("c_max") is not None:
        c_lo = np.full_like(y_new, 2.0 ** -0.5)
        c_hi = np.full_like(y_new, 2.0 ** 7)
        bands = [(c_lo, fits["c_loss"], "sharpness reduction")]
        if fits.get("c_sharp") is not None:
            bands += [(fits["c_loss"], fits["c_sharp"], "loss catapult"),
                      (fits["c_sharp"], fits["c_max"], "loss and sharpness catapult")]
        else:
            bands += [(fits["c_loss"], fits["c_max"], "loss catapult")]
        bands += [(fits["c_max"], c_hi, "divergent")]
        for left, right, phase in bands:
            ax.fill_betweenx(y_new, left, np.maximum(left, right), color=PHASE_COLORS[phase],
                             alpha=0.6, lw=0, label=phase)
    ax.axvline(2.0, color="k", ls="--", lw=1, label="$c = 2$")
    ax.set_xscale("log", base=2)
    ax.set_yscale("log", base=2)
    all_c = np.concatenate([t[5][np.isfinite(t[5])] for t in table.values()])
    ax.set_xlim(min(1.0, all_c.min() / 1.2), all_c.max() * 1.3)
    ax.set_ylim(y_new.min(), y_new.max())
    ax.set_xlabel(r"$c = \eta\,\lambda^H_0$")
    ax.set_ylabel(Y_LABELS[y])
    if legend:
        ax.legend(loc="center left", bbox_to_anchor=(1.01, 0.5), fontsize=8)
    return detach(fig)


def ordering(datasets) -> plt.Figure:
    """Fig. 4: per initialisation, c_sharp against c_loss and c_max against c_sharp, with y = x.

    datasets: one phase-sweep Dataset (depth, width, seed) or a list of them (e.g. the width and
    the depth diagrams). Points on or above the diagonal satisfy c_loss <= c_sharp <= c_max.
    """
    datasets = [datasets] if isinstance(datasets, xr.Dataset) else list(datasets)
    flat = lambda ds, v: ds[v].transpose("depth", "width", "seed").values.ravel()
    cols = {v: np.concatenate([flat(ds, v) for ds in datasets]) for v in ("c_loss", "c_sharp", "c_max")}
    d_over_w = np.concatenate([(ds.depth / ds.width).broadcast_like(ds.c_loss)
                               .transpose("depth", "width", "seed").values.ravel() for ds in datasets])
    fig, axes = plt.subplots(1, 2, figsize=(9.5, 4.2))
    norm = colors.LogNorm(d_over_w.min(), d_over_w.max() * 1.0001)
    for ax, (a, b) in zip(axes, [("c_loss", "c_sharp"), ("c_sharp", "c_max")]):
        xa, xb = cols[a], cols[b]
        sc = ax.scatter(xa, xb, c=d_over_w, cmap="plasma", norm=norm, s=22, edgecolor="k", lw=0.3)
        ok = np.isfinite(xa) & np.isfinite(xb)
        if ok.any():
            lim = [min(xa[ok].min(), xb[ok].min()) / 1.2, max(xa[ok].max(), xb[ok].max()) * 1.2]
            ax.plot(lim, lim, "k--", lw=1)
        ax.set_xscale("log", base=2)
        ax.set_yscale("log", base=2)
        ax.set_xlabel(CONSTANT_LABELS[a])
        ax.set_ylabel(CONSTANT_LABELS[b])
    fig.colorbar(sc, ax=axes.tolist(), label="$d/w$")
    return detach(fig)
