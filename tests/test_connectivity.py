"""Tests of earlytrain.analyses.connectivity: the interpolation line, the barrier and c_barrier."""
from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from earlytrain.analyses import connectivity
from earlytrain import models, train
from earlytrain.errors import ConfigError


def _tiny_model(width=8, depth=2):
    return models.build(models.ModelConfig(depth=depth, width=width, n_out=3))


def _tiny_data(n=32, dim=5, seed=0):
    rng = np.random.RandomState(seed)
    x = rng.randn(n, dim).astype(np.float32)
    y = np.eye(3, dtype=np.float32)[rng.randint(0, 3, n)]
    return jnp.asarray(x), jnp.asarray(y)


def test_taus_are_the_papers_grid():
    t = connectivity.taus(101)
    assert t.shape == (101,) and t[0] == 0.0 and t[-1] == 1.0
    np.testing.assert_allclose(np.diff(t), 0.01, atol=1e-12)


def test_endpoints_equal_losses_at_theta0_and_thetaT():
    model = _tiny_model()
    x, y = _tiny_data()
    keys = models.seed_keys([1, 2])
    params, aux = models.init_many(model, keys, x)
    data = train.TrainData(x, y, x, y)
    cfg = train.TrainConfig(optimizer="gd", num_steps=5, measure_sharpness=True)
    lam0 = train.initial_sharpness(model, params, aux, data, cfg)
    c = jnp.asarray([[0.5, 1.5, 3.0]] * 2)
    tr, pT = train.run_grid(model, params, aux, lam0, c, data, jnp.zeros((5, 0), jnp.int32),
                            cfg.replace(measure_sharpness=False), return_params=True)
    line = np.asarray(connectivity.interpolation_grid(model, "mse", params, pT, aux, x, y,
                                                      jnp.asarray(connectivity.taus(11), x.dtype)))
    assert line.shape == (2, 3, 11)
    # tau = 0 is theta_0 exactly (the measured L_0); tau = 1 is theta_T (the measured L_T)
    np.testing.assert_array_equal(line[..., 0], np.broadcast_to(np.asarray(tr.loss[:, :, 0]), (2, 3)))
    np.testing.assert_allclose(line[..., -1], np.asarray(tr.loss[:, :, -1]), rtol=1e-6)


def test_convex_quadratic_has_no_barrier():
    rng = np.random.RandomState(0)
    a = rng.randn(6, 6)
    A = jnp.asarray(a @ a.T + 0.1 * np.eye(6))
    b = jnp.asarray(rng.randn(6))
    loss = lambda p: 0.5 * p["w"] @ A @ p["w"] - b @ p["w"]
    tau = jnp.asarray(connectivity.taus(101))
    w_star = jnp.linalg.solve(A, b)
    for seed in range(20):
        r = np.random.RandomState(seed)
        p0 = {"w": jnp.asarray(3 * r.randn(6))}
        # any end point with L(theta_T) <= L(theta_0): a move towards (or past) the minimum
        pT = {"w": p0["w"] + r.uniform(0.1, 1.9) * (w_star - p0["w"])}
        line = np.asarray(connectivity.line_losses(loss, p0, pT, tau))
        assert line[-1] <= line[0]
        assert connectivity.barrier(line, line[0]) <= 0.0  # convexity: max on the segment at tau = 0
        # whereas an end point beyond the far side of the bowl does have one
        pT_far = {"w": p0["w"] + 2.5 * (w_star - p0["w"])}
        line = np.asarray(connectivity.line_losses(loss, p0, pT_far, tau))
        assert connectivity.barrier(line, line[0]) > 0.0


def test_double_well_has_a_barrier():
    # L(w) = (w^2 - 1)^2: from w = -1.1 to the other well at w = +0.95 the line crosses w = 0, L = 1
    loss = lambda p: (p ** 2 - 1.0) ** 2
    tau = jnp.asarray(connectivity.taus(101))
    line = np.asarray(connectivity.line_losses(loss, jnp.asarray(-1.1), jnp.asarray(0.95), tau))
    L0 = float(loss(-1.1))
    U = float(connectivity.barrier(line, L0))
    assert float(loss(0.95)) < L0  # the end point is lower than the start...
    assert U == pytest.approx(1.0 - L0, abs=1e-3)  # ...but the line climbs over the hump at 0
    # within one well there is no barrier
    line = np.asarray(connectivity.line_losses(loss, jnp.asarray(-1.1), jnp.asarray(-1.02), tau))
    assert connectivity.barrier(line, line[0]) <= 0.0  # L_0 in the precision of the line, as in the library


def test_barrier_nan_propagates():
    assert np.isnan(connectivity.barrier(np.array([0.0, np.nan]), 0.0))


def test_c_barrier_on_synthetic_data(tmp_path, monkeypatch):
    """Small FCN on synthetic data, full grid: c_barrier is the first c with U > 0 (checked
    against an independent evaluation of U on every grid point below c_max), and the ordering
    c_barrier <= c_max holds."""
    monkeypatch.setenv("EARLYTRAIN_RESULTS", str(tmp_path))
    from earlytrain import sweep
    from earlytrain.data import Data

    rng = np.random.RandomState(0)
    x = rng.randn(128, 4, 4, 1).astype(np.float32)
    x = (x - x.mean((1, 2, 3), keepdims=True)) / x.std((1, 2, 3), keepdims=True)
    y = np.eye(10, dtype=np.float32)[rng.randint(0, 10, 128)]
    synthetic = train.TrainData(jnp.asarray(x), jnp.asarray(y), jnp.asarray(x[:64]), jnp.asarray(y[:64]))
    monkeypatch.setattr(sweep, "train_data", lambda *a: synthetic)
    cfg = connectivity.from_params(widths=[16], depths=[3], seeds=[1, 2], n_train=128, n_measure=64,
                                   batch_size=32, x_min=0.0, x_max=4.0, x_step=0.25, search="grid")
    ds = connectivity.barrier_sweep(cfg, progress=False).isel(depth=0, width=0)
    curves = connectivity.interpolation_curves(cfg, cfg.sweep.c_grid, progress=False).isel(depth=0, width=0)
    c = cfg.sweep.c_grid
    for s in ds.seed.values:
        c_max = float(ds.c_max.sel(seed=s))
        U = curves.U.sel(seed=s).values
        below = c <= c_max
        has = below & (U > 0)
        expected = c[np.argmax(has)] if has.any() else c_max
        assert float(ds.c_barrier.sel(seed=s)) == pytest.approx(expected)
        assert bool(ds.barrier_censored.sel(seed=s)) == (not has.any())
        assert float(ds.c_barrier.sel(seed=s)) <= c_max
    # runs that diverge within T1 have no interpolation curve
    assert np.all(np.isnan(curves.U.values[curves.diverged.values]))
    # at the smallest c the line goes downhill
    assert np.all(curves.U.isel(c=0).values <= 0)


def test_ordering_flags():
    import xarray as xr
    ds = xr.Dataset({k: ("seed", np.asarray(v, float)) for k, v in
                     dict(c_loss=[2, 2, 3], c_sharp=[3, 2, 2], c_barrier=[4, 5, 4], c_max=[8, 4, 8]).items()})
    o = connectivity.order_with_barrier(ds)
    assert o["all"].values.tolist() == [True, False, False]
    assert o.barrier_le_max.values.tolist() == [True, False, True]
    assert o.loss_le_sharp.values.tolist() == [True, True, False]


def test_validation():
    with pytest.raises(ConfigError, match="n_tau"):
        connectivity.from_params(n_tau=1)
    with pytest.raises(ConfigError, match="barrier_tol"):
        connectivity.from_params(barrier_tol=-1.0)
    with pytest.raises(ConfigError, match="T1"):
        connectivity.from_params(T1=5, num_steps=10)
    with pytest.raises(ConfigError, match="c"):
        connectivity.interpolation_curves(connectivity.from_params(), [])
