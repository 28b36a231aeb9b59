"""earlytrain.analyses.robustness: comparing two phase diagrams (App. C, J, K) on synthetic sweeps."""
from __future__ import annotations

import numpy as np
import pytest
import xarray as xr

from earlytrain.analyses import robustness


def sweep_ds(widths=(32, 64, 128), seeds=(1, 2, 3), depth=4, scale=1.0, censored_width=None):
    """A phase-sweep-like Dataset over (depth, width, seed); every constant multiplied by ``scale``;
    c_max censored (the top of the grid, 64) at ``censored_width`` for every seed."""
    w = np.asarray(widths, float)[None, :, None]
    s = np.arange(1, len(seeds) + 1, dtype=float)[None, None, :]
    c_loss = (2 + 64 / w) * (1 + 0.1 * s) * scale
    c_sharp, c_max = 1.5 * c_loss, 4 * c_loss
    cens = np.zeros(c_loss.shape, bool)
    if censored_width is not None:
        i = list(widths).index(censored_width)
        cens[:, i, :] = True
        c_max[:, i, :] = 64.0
    dims = ("depth", "width", "seed")
    return xr.Dataset({"c_loss": (dims, c_loss), "c_sharp": (dims, c_sharp), "c_max": (dims, c_max),
                       "c_max_censored": (dims, cens)},
                      coords={"depth": [depth], "width": list(widths), "seed": list(seeds)})


def test_shift_is_log2_ratio_of_means():
    base, var = sweep_ds(), sweep_ds(scale=2.0)
    s = robustness.shift(var, base)
    for n in ("c_loss", "c_sharp", "c_max"):
        np.testing.assert_allclose(s[n].values, 1.0)
    assert robustness.max_abs_shift(s) == pytest.approx(1.0)
    np.testing.assert_allclose(robustness.shift(base, base).c_loss.values, 0.0, atol=1e-12)


def test_censored_c_max_is_not_compared():
    base, var = sweep_ds(), sweep_ds(scale=2.0, censored_width=32)
    s = robustness.shift(var, base)
    assert np.isnan(float(s.c_max.sel(width=32, depth=4)))       # a lower bound is not a value
    assert float(s.c_max.sel(width=64, depth=4)) == pytest.approx(1.0)
    assert float(s.c_loss.sel(width=32, depth=4)) == pytest.approx(1.0)
    sp = robustness.paired_spread(var, base)
    assert np.isnan(float(sp.c_max.sel(width=32, depth=4)))
    np.testing.assert_allclose(sp.c_loss.values, 0.0, atol=1e-12)  # the same ratio at every seed


def test_shift_needs_the_same_points():
    with pytest.raises(ValueError, match="width"):
        robustness.shift(sweep_ds(widths=(32, 64)), sweep_ds())


def test_regime_and_table():
    base = sweep_ds()
    reg = robustness.in_regime(base)                               # d = 4: d/w = 1/8, 1/16, 1/32
    assert reg.sel(depth=4).values.tolist() == [False, True, True]
    var = base.copy()
    var["c_loss"] = base.c_loss * xr.DataArray([4.0, 1.0, 1.5], dims="width", coords={"width": base.width})
    s = robustness.shift(var, base)
    assert robustness.max_abs_shift(s) == pytest.approx(2.0)      # at w = 32, outside the regime
    assert robustness.max_abs_shift(s, where=reg) == pytest.approx(np.log2(1.5))
    t = robustness.shift_table(s, where=reg)
    assert set(t) == {f"{n} w={w}" for n in ("c_loss", "c_sharp", "c_max") for w in (64, 128)}
    assert t["c_loss w=128"] == pytest.approx(np.log2(1.5))
    key, value = robustness.largest_shift(robustness.shift_table(s))
    assert (key, value) == ("c_loss w=32", pytest.approx(2.0))        # the entry, not only |value|
    assert robustness.largest_shift({"c_max w=64": 0.5, "c_loss w=64": -0.9}) == ("c_loss w=64", -0.9)
    assert robustness.largest_shift({}) is None
    none = robustness.in_regime(sweep_ds(widths=(8, 16)))
    assert robustness.shift_table(robustness.shift(var.sel(width=[32]), base.sel(width=[32])),
                                  where=robustness.in_regime(base.sel(width=[32]))) == {}
    assert not bool(none.any())
    assert np.isnan(robustness.max_abs_shift(s, where=xr.zeros_like(reg)))


def test_order_mask():
    ds = sweep_ds(seeds=(1, 2))
    ds["c_sharp"][0, 0, 0] = 0.5 * float(ds.c_loss[0, 0, 0])      # c_sharp < c_loss: out of order
    ds["c_sharp"][0, 1, 1] = np.nan                                # not measured: not judged
    ordered, valid = robustness.order_mask(ds)
    assert valid.sum() == 5 and ordered.sum() == 4
    assert not ordered[0] and not valid[3]
    both, judged, regime = robustness.pooled_order_mask([ds, sweep_ds(seeds=(1, 2))])   # over several sweeps
    assert both.tolist() == ordered.tolist() + [True] * 6 and judged.sum() == 11
    assert regime.tolist() == [False, False, True, True, True, True] * 2     # d/w = 1/8, 1/16, 1/32


def test_csharp_shift_widest_pairs_seeds_at_the_widest_width_measured_in_both():
    base, var = sweep_ds(), sweep_ds(scale=0.5)
    var["c_sharp"] = var.c_sharp.where(var.width < 128)  # the widest width lacks c_sharp in the variant
    w, lr = robustness.csharp_shift_widest(var, base)
    assert w == 64 and np.allclose(lr, -1.0) and lr.shape == (3,)
    var["c_sharp"] = var.c_sharp.where(var.width < 0)  # none measured: no width
    w, lr = robustness.csharp_shift_widest(var, base)
    assert w is None and lr.shape == (1,) and np.isnan(lr).all()



def test_order_count_rows_are_points_columns_seeds():
    ds = sweep_ds(seeds=(1, 2))
    ds["c_sharp"][0, 0, 0] = 0.5 * float(ds.c_loss[0, 0, 0])      # out of order at w = 32 (d/w = 1/8)
    ds["c_sharp"][0, 2, 1] = 2.0 * float(ds.c_max[0, 2, 1])       # out of order at w = 128 (d/w = 1/32)
    ds["c_sharp"][0, 1, 1] = np.nan                                # not judged
    n = robustness.order_count([ds, sweep_ds(seeds=(1, 2))])
    assert n.ordered.shape == n.valid.shape == n.in_regime.shape == (6, 2)
    assert n.n_valid == 11 and n.n_bad == 2 and n.n_bad_in_regime == 1
    assert n.fraction == pytest.approx(9 / 11)
    assert not n.ordered[0, 0] and not n.valid[1, 1] and n.in_regime[1].all() and not n.in_regime[3].any()
    none = sweep_ds(seeds=(1, 2))
    none["c_sharp"][:] = np.nan
    assert np.isnan(robustness.order_count([none]).fraction) and robustness.order_count([none]).n_valid == 0
    with pytest.raises(ValueError, match="number of seeds"):
        robustness.order_count([ds, sweep_ds(seeds=(1, 2, 3))])


def test_by_width_is_mean_spread_and_values_per_width():
    ds = sweep_ds(widths=(32, 64), seeds=(1, 2))
    t = robustness.by_width(ds.c_loss)
    assert list(t["measured"]) == list(t["spread"]) == list(t["per_init"]) == ["w=32", "w=64"]
    v = ds.c_loss.values[0, 0]  # (2 + 64/32) * (1.1, 1.2)
    assert t["measured"]["w=32"] == pytest.approx(v.mean()) and t["spread"]["w=32"] == pytest.approx(v.std())
    np.testing.assert_array_equal(t["per_init"]["w=32"], v)


def test_same_diagram_within_the_regime_and_without_ignored_constants():
    base, var = sweep_ds(), sweep_ds(scale=2.0)  # widths 32, 64, 128 at d = 4: d/w <= 1/16 at 64, 128
    measured, spread = robustness.same_diagram(var, base)
    assert sorted(measured) == sorted(f"{n} w={w}" for n in ("c_loss", "c_sharp", "c_max") for w in (64, 128))
    assert all(v == pytest.approx(1.0) for v in measured.values())
    assert all(v == pytest.approx(0.0, abs=1e-12) for v in spread.values())  # every seed doubled
    measured, spread = robustness.same_diagram(var, base, ignore=("c_sharp",))
    assert not any(k.startswith("c_sharp") for k in list(measured) + list(spread)) and len(measured) == 4
    narrow = robustness.in_regime(base) & (base.width < 0)  # nowhere
    measured, spread = robustness.same_diagram(var, base, where=narrow)
    assert np.isnan(measured) and spread is None


def test_largest_factor_text():
    base, var = sweep_ds(), sweep_ds(scale=2.0)
    var["c_loss"] = var.c_loss * xr.DataArray([1.0, 1.0, 2.0], dims="width", coords={"width": var.width})
    assert robustness.largest_factor_text(robustness.shift(var, base)) == "4.00 (c_loss, w = 128)"
    wide = robustness.shift(sweep_ds(widths=(8, 16)), sweep_ds(widths=(8, 16)))  # d/w >= 1/4
    assert robustness.largest_factor_text(wide) == "n/a (no width with d/w <= 1/16)"
