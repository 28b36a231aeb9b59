"""The trajectories of the early transient (Fig. 2): loss and sharpness over the first steps,
normalised by their values at initialisation, one curve per c. Returns a Figure: no show(), no
file writes, no titles."""
from __future__ import annotations

import matplotlib.pyplot as plt
import xarray as xr
from matplotlib import cm, colors

from .style import detach


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
