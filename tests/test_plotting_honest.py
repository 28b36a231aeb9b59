"""Honest figures (earlytrain.book.plotting): a censored c_max is drawn as a lower bound and kept out
of fits, a skipped c_sharp is named, and a fit is drawn only where it has enough points for its
order (else the means are joined or shown alone, and the legend says which). Synthetic sweeps."""
from __future__ import annotations

import matplotlib

matplotlib.use("Agg")
import numpy as np  # noqa: E402
import pytest  # noqa: E402
import xarray as xr  # noqa: E402

from earlytrain.book.plotting import connectivity, diagram, variants  # noqa: E402


def sweep_ds(widths=(32, 64, 128), seeds=(1, 2, 3), censored_width=None, skip_sharp_above=None, depths=(4,)):
    """A phase-sweep-like Dataset over (depth, width, seed): c_loss falls with w, c_max = 64 (the top
    of the grid, censored) at ``censored_width``, c_sharp skipped (NaN, no runs) above a width."""
    D, W, S = len(depths), len(widths), len(seeds)
    w = np.asarray(widths, float)[None, :, None]
    rng = np.random.default_rng(0)
    c_loss = 2 + 64 / w + 0.1 * rng.random((D, W, S))
    c_sharp = c_loss * 1.5
    c_max = c_loss * 4
    cens = np.zeros((D, W, S), bool)
    runs = np.full((D, W), 10)
    if censored_width is not None:
        i = list(widths).index(censored_width)
        cens[:, i, :] = True
        c_max[:, i, :] = 64.0
    if skip_sharp_above is not None:
        skip = np.asarray(widths) > skip_sharp_above
        c_sharp[:, skip, :] = np.nan
        runs[:, skip] = 0
    dims = ("depth", "width", "seed")
    return xr.Dataset({"c_loss": (dims, c_loss), "c_sharp": (dims, c_sharp), "c_max": (dims, c_max),
                       "c_max_censored": (dims, cens), "n_sharpness_runs": (("depth", "width"), runs)},
                      coords={"depth": list(depths), "width": list(widths), "seed": list(seeds)})


def legend_texts(ax):
    leg = ax.get_legend() or ax.figure.legends[0]
    return [t.get_text() for t in leg.get_texts()]


def test_fit_plan():
    y = np.repeat([1 / 32, 1 / 64, 1 / 128], 2)
    c = np.arange(6.0)
    assert diagram.fit_plan(y, c, 2) == "fit"
    assert diagram.fit_plan(y[:4], c[:4], 2) == "joined"     # 2 distinct widths: no quadratic
    assert diagram.fit_plan(y[:4], c[:4], 1) == "fit"
    assert diagram.fit_plan(y[:2], c[:2], 1) == "points"
    c_nan = c.copy()
    c_nan[2:] = np.nan                                     # only one width finite
    assert diagram.fit_plan(y, c_nan, 1) == "points"
    assert diagram.fit_plan(y, np.full(6, np.nan), 1) == "none"


def test_censored_cmax_is_a_lower_bound_out_of_the_fit():
    ds = sweep_ds(censored_width=128)
    assert list(diagram.censored_points(ds)) == [False, False, True]
    table = diagram.constants_table(ds)
    raw_y, raw_c = table["c_max"][4], table["c_max"][5]
    assert np.isnan(raw_c[np.isclose(raw_y, 1 / 128)]).all(), "censored seeds are out of the fit"
    # two uncensored widths left: no quadratic fit of c_max, the means are joined instead
    assert diagram.fit_plan(raw_y, raw_c, 2) == "joined"
    fig = diagram.phase_diagram(ds)
    ax = fig.axes[0]
    texts = legend_texts(ax)
    assert any("lower bound" in t for t in texts)
    assert any(t.startswith("$c_{max}$ (means joined") for t in texts)
    assert any(t.startswith("$c_{loss}$ (quadratic fit)") for t in texts)
    open_markers = [l for l in ax.get_lines() if l.get_marker() == "o" and l.get_markerfacecolor() == "none"]
    assert open_markers, "the bound is an open marker"
    arrows = [a for a in ax.texts if getattr(a, "arrow_patch", None) is not None]
    assert len(arrows) == 1 and arrows[0].xy[0] > arrows[0].xyann[0], "one arrow towards larger c"


def test_skipped_csharp_is_named():
    ds = sweep_ds(widths=(32, 64, 128, 1024), skip_sharp_above=256)
    assert diagram.skipped_sharp(ds) == [(4, 1024)]
    texts = legend_texts(diagram.phase_diagram(ds).axes[0])
    assert any("skipped at w = 1024" in t for t in texts)
    # without the runs variable, the configuration's limit decides
    ds2 = ds.drop_vars("n_sharpness_runs")
    ds2.attrs["config"] = '{"c_sharp_max_width": 256, "dataset": "mnist"}'
    assert diagram.skipped_sharp(ds2) == [(4, 1024)]
    ds3 = ds.drop_vars("n_sharpness_runs")   # no information: nothing claimed skipped
    assert diagram.skipped_sharp(ds3) == []


def test_no_fit_with_too_few_widths():
    ds = sweep_ds(widths=(2, 4))
    texts = legend_texts(diagram.phase_diagram(ds, fit_order=2).axes[0])
    assert all("(quadratic fit)" not in t for t in texts)
    assert sum("means joined" in t for t in texts) == 3
    assert not any(t == "sharpness reduction" for t in texts), "no phase shading without fits"
    texts = legend_texts(diagram.phase_diagram(ds, fit_order=1).axes[0])
    assert sum("(linear fit)" in t for t in texts) == 3
    one = sweep_ds(widths=(8,))
    texts = legend_texts(diagram.phase_diagram(one, fit_order=1).axes[0])
    assert sum("one point" in t for t in texts) == 3


def test_partly_censored_point_leaves_the_cmax_fit():
    """One seed of the widest point never diverged: that point's diverged seeds are not fitted
    either (alone they would be biased low), so the c_max line rests on the other widths only."""
    ds = sweep_ds()
    ds["c_max_censored"][0, 2, 0] = True
    ds["c_max"][0, 2, 0] = 64.0
    assert list(diagram.censored_points(ds)) == [False, False, True]
    raw_y, raw_c = diagram.constants_table(ds)["c_max"][4:]
    assert np.isnan(raw_c[np.isclose(raw_y, 1 / 128)]).all()
    assert np.isfinite(raw_c[~np.isclose(raw_y, 1 / 128)]).all()


def test_ordering_marks_censored():
    fig = diagram.constant_order(sweep_ds(censored_width=64))
    assert any("lower bound" in t for t in legend_texts(fig.axes[1]))


def test_connectivity_and_variant_figures_mark_censored():
    ds = sweep_ds(censored_width=128)
    ds["c_barrier"] = ds.c_sharp * 1.2
    ax = connectivity.barrier_diagram(ds).axes[0]
    assert any("lower bound" in t for t in legend_texts(ax))
    fig = variants.constants_by_variant({"alpha = 1": ds, "alpha = 3": sweep_ds()})
    texts = legend_texts(fig.axes[1])
    assert any(t.startswith("alpha = 1: lower bound") for t in texts)
    assert not any(t.startswith("alpha = 3: lower bound") for t in texts)


def test_shared_helpers_are_public_and_in_one_place():
    """The y axis of a diagram and the labels live in one module each, used by every figure that
    needs them (no private name imported across plotting modules)."""
    import ast
    from pathlib import Path

    from earlytrain.book import plotting
    from earlytrain.book.plotting import style
    ds = sweep_ds(widths=(32, 64), depths=(4, 8))
    np.testing.assert_allclose(diagram.y_values(ds, "inv_width").values, [1 / 32, 1 / 64])
    np.testing.assert_allclose(diagram.y_values(ds, "depth_over_width").transpose("depth", "width").values,
                               [[4 / 32, 4 / 64], [8 / 32, 8 / 64]])
    assert set(style.Y_LABELS) == {"inv_width", "depth_over_width"}
    assert set(style.CONSTANT_LABELS) == set(style.CONSTANT_COLORS)
    for path in Path(plotting.__file__).parent.glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom):
                assert not [a.name for a in node.names if a.name.startswith("_")], path.name


def test_not_run_figure_says_why():
    from earlytrain.book.plotting import style

    fig = style.not_run("not run (depth_extra = 0)")
    texts = [t.get_text() for t in fig.axes[0].texts]
    assert texts == ["not run (depth_extra = 0)"] and not fig.axes[0].axison
