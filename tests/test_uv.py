"""Tests of the uv model (earlytrain.uv.model, earlytrain.uv.phases) against exact answers.

Float64 is switched on only inside the ``x64`` fixture (jax.enable_x64 context), never globally.
"""
from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from earlytrain.uv import model as uv, phases as uv_phases
from earlytrain.errors import ConfigError


def _weights(key, width, parameterization, y):
    u, v = uv.init(jax.random.PRNGKey(key), width, parameterization)
    if parameterization == "zero":  # v = 0 has a degenerate Hessian; move off it to test the general case
        v = v + 0.3 * jax.random.normal(jax.random.PRNGKey(key + 100), v.shape, v.dtype)
    return u, v, uv.output_multiplier(width, parameterization)


@pytest.mark.parametrize("parameterization", uv.PARAMETERIZATIONS)
@pytest.mark.parametrize("width,y", [(1, 0.0), (2, 0.0), (3, 1.3), (7, -0.4), (16, 2.0)])
def test_closed_forms_match_dense_hessian(x64, parameterization, width, y):
    for key in range(3):
        u, v, gamma = _weights(key, width, parameterization, y)
        H = uv.dense_hessian(u, v, gamma, y)
        ev = np.linalg.eigvalsh(np.asarray(H))
        df, lam = uv.initial_state(u, v, y, gamma)
        scale = max(1.0, float(np.abs(ev).max()))
        assert abs(float(uv.hessian_trace(df, lam)) - float(jnp.trace(H))) < 1e-12 * scale * width
        assert abs(float(uv.hessian_frobenius(df, lam, y, gamma, width)) - np.linalg.norm(H)) < 1e-12 * scale * width
        assert abs(float(uv.hessian_top(df, lam, y, gamma, width)) - ev.max()) < 1e-12 * scale * width


@pytest.mark.parametrize("parameterization,y,k", [("ntp", 0.0, 1.5), ("ntp", 0.0, 3.0), ("ntp", 0.7, 2.5),
                                                  ("mup", 1.0, 1.9), ("zero", 1.0, 3.0)])
def test_parameter_gd_equals_function_map(x64, parameterization, y, k):
    width = 32
    u, v = uv.init(jax.random.PRNGKey(3), width, parameterization)
    gamma = uv.output_multiplier(width, parameterization)
    df0, lam0 = uv.initial_state(u, v, y, gamma)
    lr = k / lam0
    a = uv.gd_params(u, v, y, gamma, lr, 40)
    b = uv.fn_map(df0, lam0, y, gamma, lr, 40)
    assert not bool(a.diverged.any()) and not bool(b.diverged.any())
    scale = float(jnp.max(jnp.abs(a.df))) + 1.0
    np.testing.assert_allclose(a.df, b.df, rtol=0, atol=1e-12 * scale)
    np.testing.assert_allclose(a.lam, b.lam, rtol=1e-12, atol=0)


def test_vmap_over_inits_and_lrs_equals_single_runs(x64):
    width, n = 8, 5
    u, v = uv.init(jax.random.PRNGKey(0), width, "ntp", n=n)
    gamma = uv.output_multiplier(width, "ntp")
    lrs = jnp.asarray([0.3, 1.1, 1.7])
    batched = jax.vmap(jax.vmap(uv.gd_params, in_axes=(None, None, None, None, 0, None)),
                       in_axes=(0, 0, None, None, None, None))(u, v, 0.0, gamma, lrs, 12)
    df0, lam0 = uv.initial_state(u, v, 0.0, gamma)
    batched_fn = jax.vmap(jax.vmap(uv.fn_map, in_axes=(None, None, None, None, 0, None)),
                          in_axes=(0, 0, None, None, None, None))(df0, lam0, 0.0, gamma, lrs, 12)
    for i in range(n):
        for j in range(len(lrs)):
            single = uv.gd_params(u[i], v[i], 0.0, gamma, lrs[j], 12)
            for a, b in zip(single, jax.tree_util.tree_map(lambda z: z[i, j], batched)):
                np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
            single_fn = uv.fn_map(df0[i], lam0[i], 0.0, gamma, lrs[j], 12)
            for a, b in zip(single_fn, jax.tree_util.tree_map(lambda z: z[i, j], batched_fn)):
                # XLA may fuse the batched scalar map differently: equal to a few ulp, not bitwise
                np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=1e-13, atol=1e-15)
            np.testing.assert_allclose(single.lam, single_fn.lam, rtol=1e-12)


def test_divergence_flag_freezes_without_nan_in_state():
    u, v = uv.init(jax.random.PRNGKey(1), 16, "ntp")
    gamma = uv.output_multiplier(16, "ntp")
    lam0 = uv.ntk(u, v, gamma)
    tr = uv.gd_params(u, v, 0.0, gamma, 6.0 / lam0, 60)
    div = np.asarray(tr.diverged)
    assert div[-1] and not div[0]
    first = int(np.argmax(div))
    assert np.all(div[first:])                          # the flag is carried
    assert np.all(np.isnan(np.asarray(tr.lam)[first:]))  # metrics are NaN markers from then on
    assert np.all(np.isfinite(np.asarray(tr.lam)[:first]))


@pytest.mark.parametrize("width", [2, 8, 64, 1024])
def test_eta_max_is_four_over_lambda0_for_y0(x64, width):
    """k = eta tr H_0: for k < 4 the trace only falls and |f| <= lambda/(2 gamma), so no run diverges;
    for k > 4 the trace grows and every run diverges."""
    u, v = uv.init(jax.random.PRNGKey(width), width, "ntp", n=64)
    gamma = uv.output_multiplier(width, "ntp")
    df0, lam0 = uv.initial_state(u, v, 0.0, gamma)
    run = jax.vmap(uv.fn_map, in_axes=(0, 0, None, None, 0, None))
    below = run(df0, lam0, 0.0, gamma, 3.98 / lam0, 3000)
    above = run(df0, lam0, 0.0, gamma, 4.02 / lam0, 3000)
    assert not bool(below.diverged.any())
    assert bool(above.diverged[:, -1].all())
    assert np.all(np.diff(np.asarray(below.lam), axis=1) <= 1e-12)   # trace never increases for k < 4


@pytest.mark.parametrize("width", [1, 4, 256])
def test_zero_init_loss_rises_iff_k_above_2_and_trace_always_rises(x64, width):
    y = 1.5
    u, v = uv.init(jax.random.PRNGKey(0), width, "zero", n=32)
    gamma = uv.output_multiplier(width, "zero")
    df0, lam0 = uv.initial_state(u, v, y, gamma)
    assert np.all(np.asarray(df0) == -y)
    for k in (0.5, 1.9, 2.1, 3.5):
        tr = jax.vmap(uv.fn_map, in_axes=(0, 0, None, None, 0, None))(df0, lam0, y, gamma, k / lam0, 1)
        rises = np.asarray(tr.df[:, 1] ** 2 > tr.df[:, 0] ** 2)
        assert np.all(rises == (k > 2))
        expected = np.asarray(lam0) * (1 + (k / np.asarray(lam0)) ** 2 * gamma ** 2 * y ** 2)
        np.testing.assert_allclose(np.asarray(tr.lam[:, 1]), expected, rtol=1e-13)


def test_r_moments_against_monte_carlo(x64):
    """<r>, <r^2> vs the sample mean of 200k draws; tolerance 5 standard errors of the mean."""
    for width in (1, 3, 10, 50):
        u, v = uv.init(jax.random.PRNGKey(width), width, "ntp", n=200_000)
        r = np.asarray((jnp.sum(u * v, -1) / jnp.sum(u * u + v * v, -1)) ** 2)
        m1, m2 = map(float, uv.r_moments(width))
        for sample, exact in ((r, m1), (r ** 2, m2)):
            se = sample.std(ddof=1) / np.sqrt(sample.size)
            assert abs(sample.mean() - exact) < 5 * se, (width, sample.mean(), exact, se)


def test_first_step_thresholds(x64):
    # per init: the loss factor at k_loss(r) is exactly -1
    for r in (1e-6, 0.01, 0.1, 0.124):
        k = float(uv.k_loss_first_step(r))
        assert abs((1 - k + k ** 2 * r) + 1) < 1e-12
    assert float(uv.k_loss_first_step(0.2)) == pytest.approx(5.0)  # r > 1/8: k r = 1
    # averaged condition: the quartic is exactly 1 at k_loss_averaged, above it just beyond
    for w in (1, 4, 64, 4096):
        a, b = map(float, uv.r_moments(w))
        k = float(uv.k_loss_averaged(w))
        g = lambda k: (1 - k) ** 2 + 2 * (1 - k) * k ** 2 * a + k ** 4 * b
        assert abs(g(k) - 1) < 1e-10 and g(k * 1.001) > 1 and g(k * 0.999) < 1 and 2 < k < 4
    # large-width expansion 2 + 4<r> + O(1/w^2)
    assert float(uv.k_loss_averaged(4096)) - 2 == pytest.approx(1 / 4097, rel=0.01)


def test_fixed_points_and_stability(x64):
    y, gamma = 1.0, 1.0
    for lr, lam in ((0.5, 2.5), (0.9, 2.1), (1.2, 2.2)):
        J = np.asarray(uv.map_jacobian(0.0, lam, y, gamma, lr))
        assert uv.map_step(0.0, lam, y, gamma, lr) == (0.0, lam)          # Delta f = 0 is a fixed point
        np.testing.assert_allclose(np.sort(np.linalg.eigvals(J).real),
                                   np.sort(np.asarray(uv.minima_jacobian_eigenvalues(lam, lr))), atol=1e-14)
        np.testing.assert_allclose(J, [[1 - lr * lam, 0], [-4 * lr * gamma ** 2 * y, 1]], atol=1e-14)
    # stable (eta lambda < 2): a small perturbation decays; unstable (eta lambda > 2): it grows
    tr = uv.fn_map(1e-6, 2.5, y, gamma, 0.5, 200)       # eta lambda = 1.25
    assert abs(float(tr.df[-1])) < 1e-12
    tr = uv.fn_map(1e-6, 2.5, y, gamma, 0.9, 10)        # eta lambda = 2.25: |Delta f| grows like 1.25^t
    np.testing.assert_allclose(np.abs(np.asarray(tr.df)), 1e-6 * 1.25 ** np.arange(11), rtol=1e-4)
    assert float(uv.critical_lr(2.0, 0.5)) == 1.0 and np.isinf(float(uv.critical_lr(0.0, 0.5)))


def test_bifurcation_period_doubling():
    """Below eta_c = 1/(gamma|y|) GD ends on a minimum (period 1), just above it on a period-2 orbit
    around eta lambda = 2 (edge of stability), then period 4, then no short period (chaos)."""
    cfg = uv_phases.BifurcationConfig(lr_min=0.9, lr_max=1.4, n_lr=11, steps=6000, keep=128)
    with jax.enable_x64(True):
        ds = uv_phases.bifurcation(cfg)
    assert ds.attrs["lr_c"] == 1.0
    periods = [uv_phases.period(ds.lr_lam.isel(lr=i).values) for i in range(11)]  # eta = 0.9, 0.95, ..., 1.4
    assert [periods[i] for i in (0, 1, 3, 4, 7, 10)] == [1, 1, 2, 2, 4, 0], periods
    assert float(ds.abs_df.isel(lr=0)) < 1e-12          # below eta_c: on a minimum
    late = ds.lr_lam.isel(lr=3).values                  # eta = 1.05: period 2 about eta lambda = 2
    assert abs(late.mean() - 2) < 0.1 and late.min() < 2 < late.max()


def test_early_sweep_constants_small():
    cfg = uv_phases.EarlyConfig(widths=[4, 256], n_init=32, x_step=0.05, refine=30)
    ds = uv_phases.early_sweep(cfg)
    kl = ds.k_loss.values
    # refined per-init k_loss vs the exact first-step threshold (the loss can only rise later at
    # k below it, so the simulated value is <= the first-step one, and equal at large width)
    k1 = np.asarray(uv.k_loss_first_step(ds.r0.values))
    assert np.all(kl <= k1 * (1 + 1e-5))
    np.testing.assert_allclose(kl[1], k1[1], rtol=1e-4)
    assert np.all(np.abs(ds.k_sharp.values - 4) < 0.05)             # trace rises only past k = 4
    assert np.all(ds.k_frob.values >= ds.k_loss.values * (1 - 1e-6))
    # no run with k < 4 ever diverges (exact); with T1 = 10 steps, k slightly above 4 may not yet
    # have diverged, so k_max(T1) >= 4 and approaches 4 as T1 grows
    assert np.all(ds.k_max.values >= 4 * (1 - 1e-6))
    long = uv_phases.early_sweep(cfg.replace(steps=400))
    assert np.all((long.k_max.values >= 4 * (1 - 1e-6)) & (long.k_max.values < 4.02))


def test_saturation_kcrit_near_two():
    cfg = uv_phases.UVSaturationConfig(widths=[256], n_init=16, x_step=0.05, steps=600)
    sat = uv_phases.savgol_critical(uv_phases.uv_saturation_sweep(cfg).chi, window=7, polyorder=3)
    assert abs(float(sat.k_crit.values[0]) - 2) < 0.15


def test_bad_input_raises_config_error():
    with pytest.raises(ConfigError, match="parameterization"):
        uv.init(jax.random.PRNGKey(0), 4, "sp")
    with pytest.raises(ConfigError, match="width"):
        uv.output_multiplier(0)
    with pytest.raises(ConfigError, match="widths"):
        uv_phases.EarlyConfig(widths=[])
    with pytest.raises(ConfigError, match="x_max"):
        uv_phases.EarlyConfig(x_min=1.0, x_max=0.5)
    with pytest.raises(ConfigError, match="y"):
        uv_phases.EarlyConfig(parameterization="zero", y=0.0)
    with pytest.raises(ConfigError, match="ks"):
        uv_phases.CatapultConfig(ks=[1.5])
    with pytest.raises(ConfigError, match="window"):
        uv_phases.savgol_critical(uv_phases.uv_saturation_sweep(
            uv_phases.UVSaturationConfig(widths=[4], n_init=2, x_step=0.5, steps=5, window=2)).chi, window=8)
    with pytest.raises(ConfigError, match="lam0"):
        uv_phases.BifurcationConfig(lam0=0.01, f0=0.5)
