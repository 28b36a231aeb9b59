"""Tests of earlytrain.analyses.saturation: tau and windows, the grouping plan, the Savitzky-Golay
c_crit pipeline on a synthetic step, and one small end-to-end run against an uninterrupted one."""
from __future__ import annotations

import jax.numpy as jnp
import numpy as np
import pytest

from earlytrain.analyses import saturation
from earlytrain import sweep, train
from earlytrain.errors import ConfigError

# chi(x) = 1 - 0.8 sigmoid((x - 1) / s): chi'' = -0.8 sigma''(u) / s^2 is most negative where
# sigma'' = sigma (1 - sigma)(1 - 2 sigma) peaks, u = -ln(2 + sqrt 3)
S_WIDTH = 0.15
X_TRUE = 1 - S_WIDTH * np.log(2 + np.sqrt(3))


def _step(x):
    return 1 - 0.8 / (1 + np.exp(-(x - 1) / S_WIDTH))


@pytest.mark.parametrize("dx,sg_window,polyorder", [(0.05, 7, 3), (0.05, 9, 3), (0.025, 11, 3), (0.05, 5, 2)])
def test_sg_finds_c_crit_of_a_smooth_step(dx, sg_window, polyorder):
    x = np.round(np.arange(-1, 4 + 1e-9, dx), 10)
    xc = saturation.x_crit(x, _step(x), sg_window, polyorder)
    assert abs(xc - X_TRUE) <= dx + 1e-12


def test_sg_derivatives_match_analytic_where_resolved():
    dx = 0.02
    x = np.arange(-1, 4 + 1e-9, dx)
    _, d1, d2 = saturation.sg_derivatives(_step(x), dx, 9, 4)
    sig = 1 / (1 + np.exp(-(x - 1) / S_WIDTH))
    d1_true = -0.8 * sig * (1 - sig) / S_WIDTH
    d2_true = -0.8 * sig * (1 - sig) * (1 - 2 * sig) / S_WIDTH ** 2
    np.testing.assert_allclose(d1, d1_true, atol=0.01 * np.abs(d1_true).max())
    np.testing.assert_allclose(d2, d2_true, atol=0.03 * np.abs(d2_true).max())


def test_analyse_on_synthetic_sweep():
    import xarray as xr
    x = np.round(np.arange(-1, 4 + 1e-9, 0.05), 10)
    chi = np.stack([_step(x) + 0.0 * s for s in range(3)])[None, None]
    ds = xr.Dataset({"chi": (("depth", "width", "seed", "c"), chi)},
                    coords={"depth": [4], "width": [64], "seed": [1, 2, 3], "c": 2.0 ** x, "x": ("c", x)})
    out = saturation.analyse(ds, 7, 3)
    assert abs(float(out.x_crit.squeeze()) - X_TRUE) <= 0.05
    assert float(out.c_crit.squeeze()) == pytest.approx(2 ** float(out.x_crit.squeeze()))
    # the steepest fall of a sigmoid is its centre, x = 1; the onset is not at a grid end
    assert abs(np.log2(float(out.c_steep.squeeze())) - 1.0) <= 0.05
    assert not bool(out.crit_at_edge.squeeze())
    # a grid that ends before the onset puts argmin chi'' on its last candidate point
    cut = ds.isel(c=np.nonzero(x <= X_TRUE - 0.2)[0])
    assert bool(saturation.analyse(cut, 7, 3).crit_at_edge.squeeze())
    # other filter settings, one c_crit each, all near the true onset
    by = saturation.c_crit_by_filter(ds)
    assert list(by["filter"].values) == ["(5, 2)", "(7, 3)", "(9, 3)"]
    np.testing.assert_allclose(np.log2(by.values.ravel()), X_TRUE, atol=0.1)
    assert float(by.sel(filter="(7, 3)").squeeze()) == float(out.c_crit.squeeze())
    with pytest.raises(ConfigError, match="settings"):
        saturation.c_crit_by_filter(ds.isel(c=slice(0, 6)), ((7, 3),))
    # a diverged c cuts the curve there
    chi2 = chi.copy()
    chi2[..., -3:] = np.nan
    out2 = saturation.analyse(ds.assign(chi=(ds.chi.dims, chi2)), 7, 3)
    assert np.all(np.isnan(out2.d2.values[..., -3:])) and np.isfinite(out2.d2.values[..., :-3]).all()
    assert abs(float(out2.x_crit.squeeze()) - X_TRUE) <= 0.05


def test_tau_and_window_bounds():
    np.testing.assert_allclose(saturation.tau_of([0.5, 1.0, 2.0, 8.0], 100.0), [200, 100, 50, 12.5])
    lo, hi = saturation.window_bounds(np.array([200.0, 12.5, 1.0, 0.5]), 0.2)
    assert lo.tolist() == [160, 10, 1, 1]
    assert hi.tolist() == [240, 15, 2, 1]
    assert np.all(lo >= 1) and np.all(hi >= lo)


def test_plan_covers_every_window():
    cfg = saturation.from_params(x_min=-1.0, x_max=3.5, x_step=0.1, K_tau=80.0, window=0.15, n_window=3)
    groups = saturation.plan(cfg)
    idx = np.concatenate([g["idx"] for g in groups])
    assert sorted(idx.tolist()) == list(range(len(cfg.sweep.c_grid)))  # each c exactly once
    lo, hi = saturation.window_bounds(saturation.tau_of(cfg.sweep.c_grid, cfg.K_tau), cfg.window)
    for g in groups:
        tau = saturation.tau_of(cfg.sweep.c_grid[g["idx"]], cfg.K_tau)
        assert tau.max() <= cfg.bin_ratio * tau.min() + 1e-9
        assert np.all(np.diff(g["steps"]) > 0) and g["steps"][0] >= 1
        for i in g["idx"]:
            n_in = ((g["steps"] >= lo[i]) & (g["steps"] <= hi[i])).sum()
            assert n_in >= min(cfg.n_window, hi[i] - lo[i] + 1)


def test_validation():
    with pytest.raises(ConfigError, match="K_tau"):
        saturation.from_params(K_tau=0.0)
    with pytest.raises(ConfigError, match="K_tau"):
        saturation.from_params(K_tau=4.0, x_min=-1.0, x_max=3.0)  # tau < 1 step at c = 8
    with pytest.raises(ConfigError, match="window"):
        saturation.from_params(window=1.0)
    with pytest.raises(ConfigError, match="n_window"):
        saturation.from_params(n_window=0)
    with pytest.raises(ConfigError, match="x_min"):
        saturation.from_params(x_min=1.0)
    with pytest.raises(ConfigError, match="sg_window"):
        saturation.x_crit(np.arange(20) * 0.1, np.ones(20), 6, 3)
    with pytest.raises(ConfigError, match="polyorder"):
        saturation.x_crit(np.arange(20) * 0.1, np.ones(20), 7, 1)
    with pytest.raises(ConfigError, match="sg_window"):
        saturation.x_crit(np.arange(5) * 0.1, np.ones(5), 7, 3)
    with pytest.raises(ConfigError, match="x"):
        saturation.x_crit(np.array([0, 0.1, 0.3, 0.4, 0.5, 0.6, 0.7]), np.ones(7), 5, 2)


def test_chunked_runs_equal_one_uninterrupted_run(tmp_path, monkeypatch):
    """The grouped, chunked runner reproduces the sharpness of one plain run_grid call."""
    monkeypatch.setenv("EARLYTRAIN_RESULTS", str(tmp_path))
    rng = np.random.RandomState(0)
    x = rng.randn(64, 3, 3, 1).astype(np.float32)
    y = np.eye(10, dtype=np.float32)[rng.randint(0, 10, 64)]
    data = train.TrainData(jnp.asarray(x), jnp.asarray(y), jnp.asarray(x[:32]), jnp.asarray(y[:32]))
    monkeypatch.setattr(sweep, "train_data", lambda *a: data)
    cfg = saturation.from_params(widths=[8], depths=[3], seeds=[1, 2], n_train=64, n_measure=32,
                                 batch_size=16, x_min=-1.0, x_max=1.0, x_step=0.5, K_tau=6.0,
                                 window=0.3, n_window=2, chunk=3, bin_ratio=1.5)
    out = saturation.saturation_point(cfg)
    T = int(max(g["steps"][-1] for g in saturation.plan(cfg)))
    pt = sweep.Point(cfg.sweep.replace(T1=1, train=cfg.sweep.train.replace(num_steps=T)), 3, 8)
    c = np.broadcast_to(cfg.sweep.c_grid, (2, len(cfg.sweep.c_grid)))
    tr = train.run_grid(pt.model, pt.params, pt.aux, pt.lam0, jnp.asarray(c), pt.data, pt.batches,
                        cfg.sweep.train.replace(num_steps=T))
    sharp = np.asarray(tr.sharpness, float) / np.asarray(pt.lam0.value, float)[:, None, None]
    for g in saturation.plan(cfg):
        for i in g["idx"]:
            lo, hi = int(out.window_lo[i]), int(out.window_hi[i])
            steps = g["steps"][(g["steps"] >= lo) & (g["steps"] <= hi)]
            expected = sharp[:, i, steps].mean(-1)
            # same trajectory; the Lanczos estimates differ only by their warm start (lambda_0's
            # vector vs the previous step's), i.e. within the eigen-solver's accuracy
            np.testing.assert_allclose(out.chi.values[:, i], expected, rtol=2e-3)
            assert int(out.n_measured[0, i]) == len(steps) >= 2


def test_trajectory_config_schedules():
    cfg = saturation.from_params(widths=[8, 16], seeds=[1, 2], n_train=64, n_measure=32, batch_size=32,
                                 x_min=-1.0, x_max=1.0, x_step=0.5, K_tau=10.0)
    t = saturation.trajectory_config(cfg, 16, 2, 100, sharpness_per_decade=4)
    assert t.widths == (16,) and t.seeds == (2,) and t.train.num_steps == 100
    np.testing.assert_array_equal(np.nonzero(train.sharpness_steps(t.train))[0] + 1,
                                  [1, 2, 3, 6, 10, 18, 32, 56, 100])
    e = saturation.trajectory_config(cfg, 8, 1, 10, sharpness_every=5)
    np.testing.assert_array_equal(np.nonzero(train.sharpness_steps(e.train))[0] + 1, [5, 10])
    with pytest.raises(ConfigError, match="sharpness_every"):
        saturation.trajectory_config(cfg, 8, 1, 10)
    with pytest.raises(ConfigError, match="sharpness_per_decade"):
        saturation.trajectory_config(cfg, 8, 1, 10, sharpness_per_decade=-2)


def test_grid_steps_counts_steps_of_the_c_grid():
    import xarray as xr
    x_step = 0.25
    # c_crit exactly one grid step above 2, one below, on 2, and two steps above 4
    c = 2.0 ** np.array([1 + x_step, 1 - x_step, 1.0, 2 + 2 * x_step])
    np.testing.assert_allclose(saturation.grid_steps(c, 2.0, x_step), [1, -1, 0, 6])
    np.testing.assert_allclose(saturation.grid_steps(c, 4.0, x_step), [-3, -5, -4, 2])
    assert saturation.grid_steps(2.0 ** 1.5, saturation.C_MSE, 0.5) == pytest.approx(1.0)
    # a DataArray stays one, with its coordinates; NaN stays NaN
    da = xr.DataArray([2.0 ** (1 + x_step), np.nan], coords={"width": [8, 16]}, dims="width")
    out = saturation.grid_steps(da, 2.0, x_step)
    assert isinstance(out, xr.DataArray) and out.width.values.tolist() == [8, 16]
    assert float(out.sel(width=8)) == pytest.approx(1.0) and np.isnan(float(out.sel(width=16)))
    with pytest.raises(ConfigError, match="x_step"):
        saturation.grid_steps(c, 2.0, 0.0)
    with pytest.raises(ConfigError, match="c_ref"):
        saturation.grid_steps(c, -2.0, x_step)


def test_within_one_step_has_a_margin_for_float_grids():
    # one step on a grid rounded to 10 digits is within; a step and a half, two steps and NaN are not
    assert saturation.within_one_step(saturation.grid_steps(2.0 ** np.round(1 + 0.1, 10), 2.0, 0.1))
    np.testing.assert_array_equal(saturation.within_one_step(np.array([0.0, -1.0, 1.0, 1.5, -2.0, np.nan])),
                                  [True, True, True, False, False, False])


def test_onset_verdict_every_branch():
    x_step = 0.25
    c = lambda *steps: 2.0 ** (1 + x_step * np.array(steps))  # c_crit the given grid steps from c = 2
    assert saturation.onset_verdict(c(2, 3, 4), x_step) == (
        "every setting puts the onset more than one grid step above the MSE value 2")
    assert saturation.onset_verdict(c([-1, 0], [1, 0]), x_step) == (  # (filter, width), exactly one step counts
        "every setting puts the onset within one grid step of the MSE value 2")
    spread = ("the settings move it from 1.68 to 2.83, so at this scale the onset cannot be told apart from "
              "the MSE value 2 with confidence")
    assert saturation.onset_verdict(c(-1, 0, 2), x_step) == spread
    assert saturation.onset_verdict(c(-1, np.nan, 2), x_step) == spread  # a NaN estimate is left out of the range
    assert saturation.onset_verdict(c(-2, -3), x_step).startswith("the settings move it from 1.19 to 1.41")


def test_steep_verdict_every_branch():
    x_step = 0.5
    c = lambda *steps: 2.0 ** (2 + x_step * np.array(steps))  # c_steep the given grid steps from c = 4
    assert saturation.steep_verdict(c(0, 1, -1), x_step) == "within one grid step of the recalled c ~ 4 at every width"
    assert saturation.steep_verdict(c(0, 2), x_step) == "more than one grid step from the recalled c ~ 4 at some widths"
    assert saturation.steep_verdict(c(-2, 3), x_step) == "more than one grid step from the recalled c ~ 4 at every width"
    assert saturation.steep_verdict(c(np.nan), x_step) == "more than one grid step from the recalled c ~ 4 at every width"


def _per_init_sweep():
    """A synthetic sweep (depth, width, seed, c) = (1, 2, 3, 41) whose initialisations differ in the
    sharpness of their step (so their chi'' minima differ), with seed 2 of width 32 diverged at
    the last three c and seed 3 of width 64 diverged from the fifth c on."""
    import xarray as xr
    x = np.round(np.arange(-1, 1 + 1e-9, 0.05), 10)
    s = np.array([0.1, 0.15, 0.2])
    chi = np.stack([1 - 0.8 / (1 + np.exp(-(x - 0.2) / s[:, None])) * f for f in (1.0, 0.5)])[None]
    chi[0, 0, 1, -3:] = np.nan
    chi[0, 1, 2, 4:] = np.nan
    return xr.Dataset({"chi": (("depth", "width", "seed", "c"), chi)},
                      coords={"depth": [4], "width": [32, 64], "seed": [7, 8, 9], "c": 2.0 ** x, "x": ("c", x)})


def test_min_d2_per_init_is_each_initialisations_own_minimum():
    ds = _per_init_sweep()
    out = saturation.min_d2_per_init(ds, 4, 7, 3)
    assert out.dims == ("width", "seed")
    assert list(out.width.values) == [32, 64] and list(out.seed.values) == [7, 8, 9]
    # independently: the Savitzky-Golay chi'' of each initialisation's raw curve, cut before its
    # first NaN, minimised over c
    dx = 0.05
    for iw, w in enumerate([32, 64]):
        for i in range(3):
            curve = ds.chi.values[0, iw, i]
            n = int(np.isfinite(curve).sum())
            if n < 7:  # too short for the filter: NaN
                assert np.isnan(out.values[iw, i]), (w, i)
                continue
            _, _, d2 = saturation.sg_derivatives(curve[:n], dx, 7, 3)
            assert out.values[iw, i] == pytest.approx(d2.min(), rel=1e-12, abs=0), (w, i)
    # the steeper the step, the deeper the minimum (a per-initialisation quantity, not the mean's)
    assert out.values[0, 0] < out.values[0, 1] < out.values[0, 2] < 0
    # the same as analyse applied seed by seed
    for i in range(3):
        ref = saturation.analyse(ds.isel(seed=[i]), 7, 3).d2.sel(depth=4).min("c").values
        np.testing.assert_array_equal(out.isel(seed=i).values, ref)
    # a diverged tail cuts only that initialisation's curve
    assert np.isnan(out.values[1, 2]) and np.isfinite(out.values).sum() == 5


def test_chi_at_smallest_c_per_initialisation():
    ds = _per_init_sweep()
    out = saturation.chi_at_smallest_c(ds, 4)
    assert out.dims == ("width", "seed") and out.shape == (2, 3)
    np.testing.assert_array_equal(out.values, ds.chi.values[0, :, :, 0])
    # the smallest c, whatever the order of the grid and of the dimensions
    flipped = ds.isel(c=slice(None, None, -1)).transpose("seed", "c", "width", "depth")
    np.testing.assert_array_equal(saturation.chi_at_smallest_c(flipped, 4).values, ds.chi.values[0, :, :, 0])
    # a run diverged at the smallest c gives NaN there
    chi = ds.chi.values.copy()
    chi[0, 1, 0, 0] = np.nan
    nan_out = saturation.chi_at_smallest_c(ds.assign(chi=(ds.chi.dims, chi)), 4).values
    assert np.isnan(nan_out[1, 0]) and np.isfinite(np.delete(nan_out.ravel(), 3)).all()
