"""The phase diagram of the critical constants (Fig. 3: ``phase_diagram`` and the table, fits and
censoring it is drawn from) and the per-initialisation order of the constants (Fig. 4:
``constant_order``). Each builder returns a Figure: no show(), no file writes, no titles."""
from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import xarray as xr
from matplotlib import colors

from .style import CONSTANT_COLORS, CONSTANT_LABELS, PHASE_COLORS, Y_LABELS, detach


def y_values(ds: xr.Dataset, y: str) -> xr.DataArray:
    """The y axis of a phase diagram over (depth, width): 1/w (``y="inv_width"``) or d/w
    (``"depth_over_width"``, the keys of ``Y_LABELS``)."""
    if y == "inv_width":
        return 1.0 / ds.width
    return ds.depth / ds.width


def constants_table(ds: xr.Dataset, y: str = "inv_width",
                    names=("c_loss", "c_sharp", "c_max"), q=(0.25, 0.75)):
    """Per (depth, width) point: y, and mean / low / high quantile of each constant over seeds.
    Returns a dict name -> (y [P], mean [P], lo [P], hi [P]) and the raw (y, c) pairs. The raw
    c_max of a point with a censored seed (``c_max_censored``: nothing diverged on the grid, so
    c_max is only a lower bound) is NaN for *every* seed of that point: it is kept out of fits,
    and so are the seeds of that point that did diverge, which alone would be a sample biased
    low (the initialisations that diverge earliest)."""
    yv = y_values(ds, y).broadcast_like(ds[names[0]].isel(seed=0, drop=True))
    out = {}
    for name in names:
        if name not in ds or bool(ds[name].isnull().all()):
            continue
        c = ds[name]
        stats = (yv.values.ravel(), c.mean("seed").values.ravel(),
                 c.quantile(q[0], "seed").values.ravel(), c.quantile(q[1], "seed").values.ravel())
        raw = c.where(~censored(ds).broadcast_like(c).any("seed")) if name == "c_max" else c
        raw_y = np.broadcast_to(yv.values[..., None], c.transpose(..., "seed").shape).ravel()
        raw_c = raw.transpose(*yv.dims, "seed").values.ravel()
        out[name] = stats + (raw_y, raw_c)
    return out


def censored(ds: xr.Dataset) -> xr.DataArray:
    """Per (.., seed): True where c_max is only a lower bound (no run diverged within the grid)."""
    if "c_max_censored" in ds:
        return ds.c_max_censored.astype(bool)
    return xr.zeros_like(ds["c_max"], dtype=bool) if "c_max" in ds else xr.DataArray(False)


def censored_points(ds: xr.Dataset) -> np.ndarray:
    """Per (depth, width) point (raveled as in ``constants_table``): any seed's c_max censored,
    so the mean c_max drawn there is a lower bound."""
    ref = ds["c_max"].isel(seed=0, drop=True)
    return censored(ds).broadcast_like(ds["c_max"]).any("seed").broadcast_like(ref).values.ravel()


def _limit(cfg: dict, key: str):
    """``key`` in a (nested) config dict, or None."""
    if key in cfg:
        return cfg[key]
    for v in cfg.values():
        if isinstance(v, dict):
            found = _limit(v, key)
            if found is not None:
                return found
    return None


def skipped_sharp(ds: xr.Dataset) -> list:
    """The (depth, width) points whose c_sharp was skipped (not searched: ``c_sharp_max_width``),
    as opposed to searched and not found. From the runs spent on it (``n_sharpness_runs`` = 0)
    or, failing that, the configuration's limit."""
    if "c_sharp" not in ds:
        return []
    pts = [(int(d), int(w)) for d in np.atleast_1d(ds.depth.values) for w in np.atleast_1d(ds.width.values)]
    if "n_sharpness_runs" in ds:
        n = ds.n_sharpness_runs.broadcast_like(ds.c_sharp.isel(seed=0, drop=True))
        return [(d, w) for d, w in pts if int(n.sel(depth=d, width=w)) == 0]
    import json
    try:
        limit = _limit(json.loads(ds.attrs.get("config", "{}")), "c_sharp_max_width")
    except ValueError:
        limit = None
    return [(d, w) for d, w in pts if limit is not None and w > limit]


ORDER_NAMES = {1: "linear", 2: "quadratic", 3: "cubic"}


def fit_plan(raw_y, raw_c, order: int) -> str:
    """How a constant's line is drawn: "fit" (a polynomial of ``order`` needs order + 1 distinct y
    with a finite c), else "joined" (the means joined, at least 2 distinct y), "points" (1) or
    "none" (no finite value)."""
    ok = np.isfinite(np.asarray(raw_c, float))
    n = len(np.unique(np.asarray(raw_y)[ok]))
    return "fit" if n > order else "joined" if n >= 2 else "points" if n == 1 else "none"


def _fit(raw_y, raw_c, order, y_new):
    """The fit on y_new, NaN outside the range of y with a finite c (no extrapolation: e.g. not
    past the widths whose c_max was censored)."""
    if fit_plan(raw_y, raw_c, order) != "fit":
        return None
    ok = np.isfinite(raw_c)
    lo, hi = raw_y[ok].min() * 2 ** -0.1, raw_y[ok].max() * 2 ** 0.1
    return np.where((y_new >= lo) & (y_new <= hi), np.polyval(np.polyfit(raw_y[ok], raw_c[ok], order), y_new), np.nan)


def line_label(name: str, plan: str, order: int) -> str:
    """The legend entry of a constant, saying how its line was drawn."""
    kind = ORDER_NAMES.get(order, f"order-{order}")
    return CONSTANT_LABELS[name] + {
        "fit": f" ({kind} fit)",
        "joined": f" (means joined: too few widths for a {kind} fit)",
        "points": " (one point: no line)",
        "none": " (none finite)"}[plan]


def phase_diagram(ds: xr.Dataset, y: str = "inv_width", ax=None, fit_order: int = 2,
                  names=("c_loss", "c_sharp", "c_max"), q=(0.25, 0.75), shade: bool = True,
                  legend: bool = True) -> plt.Figure:
    """Fig. 3: mean critical constants over initialisations against 1/w or d/w.

    Markers: means; horizontal bars: the q[0]-q[1] quantiles over seeds; lines: polynomial fits of
    order ``fit_order`` to the raw per-seed points (c as a function of y) where there are enough
    distinct y for that order, else the means joined (or a lone point), as the legend says; dashed
    line: c = 2; shading: the four phases between the fitted curves (c_sharp missing -> one
    catapult band; no shading without fits of c_loss and c_max). A fit is drawn only over the range
    of y where its constant is finite (no extrapolation).

    Honest about what was not measured: a mean c_max with a censored seed (nothing diverged on the
    grid) is a lower bound, drawn as an open marker with an arrow towards larger c, and censored
    seeds are left out of the c_max fit; widths whose c_sharp was skipped are named in the legend.
    """
    fig = ax.figure if ax is not None else plt.figure(figsize=(6.4, 4.6))
    ax = ax or fig.add_subplot()
    table = constants_table(ds, y, names, q)
    ys = np.concatenate([t[0] for t in table.values()])
    y_new = 2.0 ** np.arange(np.log2(ys.min()) - 0.1, np.log2(ys.max()) + 0.1, 0.05)
    fits = {n: _fit(t[4], t[5], fit_order, y_new) for n, t in table.items()}
    cens = censored_points(ds) if "c_max" in ds else np.zeros(0, bool)
    for name, (yy, mean, lo, hi, raw_y, raw_c) in table.items():
        col = CONSTANT_COLORS[name]
        plan = fit_plan(raw_y, raw_c, fit_order)
        bound = cens if name == "c_max" else np.zeros_like(yy, bool)
        ax.errorbar(mean[~bound], yy[~bound], xerr=[(mean - lo)[~bound], (hi - mean)[~bound]], fmt="o",
                    color=col, ms=5, capsize=3, label=line_label(name, plan, fit_order))
        if bound.any():
            ax.errorbar(mean[bound], yy[bound], xerr=[(mean - lo)[bound], (hi - mean)[bound]], fmt="o",
                        mfc="none", color=col, ms=6, capsize=3,
                        label=CONSTANT_LABELS[name] + " lower bound (no divergence on the grid)")
            for m, yv in zip(mean[bound], yy[bound]):
                ax.annotate("", xy=(m * 1.35, yv), xytext=(m, yv),
                            arrowprops=dict(arrowstyle="->", color=col, lw=1.2))
        if fits[name] is not None:
            ax.plot(fits[name], y_new, color=col, lw=1.2)
        elif plan == "joined":
            fin = np.isfinite(mean) & ~bound
            o = np.argsort(yy[fin])
            ax.plot(mean[fin][o], yy[fin][o], color=col, lw=0.9, ls=":")
    skipped = skipped_sharp(ds) if "c_sharp" in names else []
    if skipped:
        where = ", ".join(f"w = {w}" for w in sorted({w for _, w in skipped}))
        ax.plot([], [], ls="none", label=f"{CONSTANT_LABELS['c_sharp']} skipped at {where}")
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
        for left, right, phase in bands:  # NaN (outside a fit's range): not shaded
            ok = np.isfinite(left) & np.isfinite(right)
            ax.fill_betweenx(y_new, left, np.maximum(left, right), where=ok, color=PHASE_COLORS[phase],
                             alpha=0.6, lw=0, label=phase)
    ax.axvline(2.0, color="k", ls="--", lw=1, label="$c = 2$")
    ax.set_xscale("log", base=2)
    ax.set_yscale("log", base=2)
    all_c = np.concatenate([t[1][np.isfinite(t[1])] for t in table.values()]
                           + [t[5][np.isfinite(t[5])] for t in table.values()])
    ax.set_xlim(min(1.0, all_c.min() / 1.2), all_c.max() * (1.6 if cens.any() else 1.3))
    ax.set_ylim(y_new.min(), y_new.max())
    ax.set_xlabel(r"$c = \eta\,\lambda^H_0$")
    ax.set_ylabel(Y_LABELS[y])
    if legend:
        ax.legend(loc="center left", bbox_to_anchor=(1.01, 0.5), fontsize=8)
    return detach(fig)


def constant_order(datasets) -> plt.Figure:
    """Fig. 4: per initialisation, c_sharp against c_loss and c_max against c_sharp, with y = x.

    datasets: one phase-sweep Dataset (depth, width, seed) or a list of them (e.g. the width and
    the depth diagrams). Points on or above the diagonal satisfy c_loss <= c_sharp <= c_max. A
    censored c_max (a lower bound) is an open upward triangle.
    """
    datasets = [datasets] if isinstance(datasets, xr.Dataset) else list(datasets)
    flat = lambda ds, v: ds[v].transpose("depth", "width", "seed").values.ravel()
    cols = {v: np.concatenate([flat(ds, v) for ds in datasets]) for v in ("c_loss", "c_sharp", "c_max")}
    d_over_w = np.concatenate([(ds.depth / ds.width).broadcast_like(ds.c_loss)
                               .transpose("depth", "width", "seed").values.ravel() for ds in datasets])
    cens = np.concatenate([censored(ds).broadcast_like(ds.c_max).transpose("depth", "width", "seed").values.ravel()
                           for ds in datasets])
    fig, axes = plt.subplots(1, 2, figsize=(9.5, 4.2))
    norm = colors.LogNorm(d_over_w.min(), d_over_w.max() * 1.0001)
    for ax, (a, b) in zip(axes, [("c_loss", "c_sharp"), ("c_sharp", "c_max")]):
        xa, xb = cols[a], cols[b]
        low = cens if b == "c_max" else np.zeros_like(cens)
        sc = ax.scatter(xa[~low], xb[~low], c=d_over_w[~low], cmap="plasma", norm=norm, s=22, edgecolor="k", lw=0.3)
        if low.any():  # c_max only a lower bound: an open upward triangle
            ax.scatter(xa[low], xb[low], marker="^", facecolor="none", edgecolor="k", s=30, lw=0.8,
                       label=r"$c_{max}$ lower bound (no divergence on the grid)")
            ax.legend(fontsize=8, loc="lower right")
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
