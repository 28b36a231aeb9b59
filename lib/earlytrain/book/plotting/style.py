"""One look for every figure in the book: colours and labels of the phases and the critical
constants, rcParams, and ``detach``."""
from __future__ import annotations

import matplotlib as mpl

PHASE_COLORS = {
    "sharpness reduction": "#c6dbef",
    "loss catapult": "#fdd0a2",
    "loss and sharpness catapult": "#fcbba1",
    "divergent": "#d9d9d9",
}
CONSTANT_COLORS = {"c_loss": "#2171b5", "c_sharp": "#d94801", "c_barrier": "#6a51a3", "c_max": "#252525"}
CONSTANT_LABELS = {"c_loss": r"$c_{loss}$", "c_sharp": r"$c_{sharp}$",
                   "c_barrier": r"$c_{barrier}$", "c_max": r"$c_{max}$"}
Y_LABELS = {"inv_width": r"$1/w$", "depth_over_width": r"$d/w$"}  # the y axes of a phase diagram


def use_style() -> None:
    """Readable defaults for figures embedded in the HTML book."""
    mpl.rcParams.update({
        "figure.dpi": 110, "savefig.dpi": 110, "figure.figsize": (6.4, 4.2),
        "font.size": 11, "axes.labelsize": 12, "axes.titlesize": 12, "legend.fontsize": 9,
        "axes.spines.top": False, "axes.spines.right": False, "axes.grid": True,
        "grid.alpha": 0.3, "lines.linewidth": 1.6, "figure.constrained_layout.use": True,
    })


def log2_c_axis(ax) -> None:
    """A log2 axis of c with the quadratic value c = 2 dashed."""
    ax.set_xscale("log", base=2)
    ax.axvline(2.0, color="0.4", ls="--", lw=1)


def detach(fig):
    """Remove ``fig`` from pyplot's registry and return it. The book shows a figure where it is
    glued; a figure still open at the end of a cell would be shown a second time by the inline
    backend. A closed figure still renders (glue, display, savefig)."""
    import matplotlib.pyplot as plt
    plt.close(fig)
    return fig


def not_run(why: str):
    """A small figure that says a section did not run, and why (a preset set its size to 0): the
    page keeps its figure slot, and the reader sees the reason instead of a missing image."""
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 1.5))
    ax.text(0.5, 0.5, why, ha="center", va="center")
    ax.axis("off")
    return fig
