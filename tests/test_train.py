"""Tests of earlytrain.train: vmapped runs equal single runs, one compile per shape, divergence
isolation, GD / SGD against hand-written loops, the batch schedule, sparse sharpness.

Small synthetic data (random standardized 8x8 images, random one-hot labels) and a tiny FCN,
all float32 (the library's default), so every comparison is to float32 round-off.
"""
from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from earlytrain import losses, models, phases, train
from earlytrain.errors import ConfigError
from earlytrain.models import ModelConfig
from earlytrain.train import TrainConfig
from tracing import traces

N, N_MEAS, B, T = 256, 64, 32, 4
SEEDS = [1, 2]
# float32 comparisons between two evaluations of the same arithmetic in a different batching
# (vmapped vs single, a batch of 3 runs vs 2): XLA may fuse / order the sums differently, so
# agreement is to a few float32 ulps, amplified over T = 4 steps of (at most catapult-rate)
# dynamics. 1e-5 relative is ~100 ulps.
RTOL = 1e-5


def _data(n=N, side=8, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, side * side))
    x = (x - x.mean(1, keepdims=True)) / x.std(1, keepdims=True)
    y = np.eye(10)[rng.integers(0, 10, n)]
    x = jnp.asarray(x.reshape(n, side, side, 1), jnp.float32)
    y = jnp.asarray(y, jnp.float32)
    return train.TrainData(x, y, x[:N_MEAS], y[:N_MEAS])


CFG = TrainConfig(batch_size=B, num_steps=T, sharpness_iters=8)


@pytest.fixture(scope="module")
def setup():
    data = _data()
    model = models.build(ModelConfig(depth=2, width=8))
    params, aux = models.init_many(model, models.seed_keys(SEEDS), data.x_meas)
    lam0 = train.initial_sharpness(model, params, aux, data, CFG)
    batches = jnp.asarray(train.batch_schedule(N, B, T, CFG.sgd_seed))
    return model, params, aux, lam0, data, batches


def _seed(tree, s):
    return jax.tree.map(lambda a: a[s], tree)


def _c(values):
    return jnp.asarray(np.tile(np.asarray(values, np.float32), (len(SEEDS), 1)))


def test_run_grid_slice_equals_single_run(setup):
    model, params, aux, lam0, data, batches = setup
    assert np.all(np.asarray(lam0.value) > 0) and lam0.value.shape == (2,)
    c = _c([0.5, 2.0, 6.0])
    tr = train.run_grid(model, params, aux, lam0, c, data, batches, CFG)
    assert tr.loss.shape == (2, 3, T + 1) and tr.diverged.dtype == jnp.bool_
    single = jax.jit(lambda p, a, lr, l0: train.run(model, p, a, lr, data, batches, CFG, l0))
    for s in range(2):
        for k in range(3):
            lr = c[s, k] / lam0.value[s]  # eta = c / lambda_0
            one = single(_seed(params, s), _seed(aux, s), lr, _seed(lam0, s))
            for name in ("loss", "accuracy", "sharpness"):
                np.testing.assert_allclose(np.asarray(getattr(tr, name)[s, k]), np.asarray(getattr(one, name)),
                                           rtol=RTOL, err_msg=name)
            np.testing.assert_array_equal(np.asarray(tr.diverged[s, k]), np.asarray(one.diverged))
    # step 0 is the initialisation: L_0 and lambda_0 for every c
    np.testing.assert_allclose(np.asarray(tr.sharpness[:, :, 0]), np.tile(np.asarray(lam0.value)[:, None], 3))
    assert np.all(np.asarray(tr.loss[:, 0, 0]) == np.asarray(tr.loss[:, 2, 0]))


def test_one_compile_per_shape(setup):
    model, params, aux, lam0, data, batches = setup
    train.run_grid(model, params, aux, lam0, _c([1.0, 2.0, 3.0]), data, batches, CFG)
    with traces() as n:
        for vals in ([0.1, 0.2, 0.3], [5.0, 7.0, 11.0], [1.0, 1.0, 1.0]):
            train.run_grid(model, params, aux, lam0, _c(vals), data, batches, CFG)
        assert n["run_grid"] == 0  # new c VALUES: no retrace
        train.run_grid(model, params, aux, lam0, _c([1.0, 2.0]), data, batches, CFG)
        assert n["run_grid"] == 1  # a new SHAPE: one trace
        train.run_grid(model, params, aux, lam0, _c([3.0, 4.0]), data, batches, CFG)
        assert n["run_grid"] == 1
        train.run_grid(model, params, aux, lam0, _c([1.0, 2.0]), data, batches, CFG.replace(sharpness_iters=7))
        assert n["run_grid"] == 2  # a new static configuration: one trace (the counter sees traces)


def test_tiny_c_leaves_loss_flat(setup):
    model, params, aux, lam0, data, batches = setup
    tr = train.run_grid(model, params, aux, lam0, _c([1e-7, 1e-7, 1e-7]), data, batches, CFG)
    loss = np.asarray(tr.loss, np.float64)
    # the first-order change is eta |g|^2 ~ 1e-7 * O(1) relative; float32 round-off of a mean of
    # 640 squares is ~1e-6 relative: 1e-5 covers both
    np.testing.assert_allclose(loss, np.repeat(loss[..., :1], T + 1, -1), rtol=1e-5)
    assert not np.asarray(tr.diverged).any()


def test_no_spurious_sharpness_rise_as_c_goes_to_zero(setup):
    """At c -> 0 the parameters do not move, so lambda_t = lambda_0 and, at the DEFAULT estimator
    settings, the measured ratio lambda_t / lambda_0 is 1 to within the stated accuracies of the two
    estimates (sharpness_tol for lambda_t, lambda0_tol for lambda_0), far inside the 5e-3 that
    rounding to 2 decimals forgives: no sharpness rise, so c_sharp is never the smallest c.
    Catches: lambda_0 estimated less accurately than lambda_t (a cold start at a low order is
    biased low, which read as a ~2.5 % rise here before the adaptive estimator), or either
    estimate stopping before its bound is met."""
    model, params, aux, _, data, batches = setup
    cfg = TrainConfig(batch_size=B, num_steps=T)  # the defaults, as the book uses them
    lam0 = train.initial_sharpness(model, params, aux, data, cfg)
    assert np.all(np.asarray(lam0.converged))
    tr = train.run_grid(model, params, aux, lam0, _c([1e-7, 1e-6, 1e-5]), data, batches, cfg)
    assert np.all(np.asarray(tr.sharpness_converged)[..., 1:])
    ratio = np.asarray(tr.sharpness, np.float64)[..., 1:] / np.asarray(lam0.value, np.float64)[:, None, None]
    # the parameters move by eta |g| ~ 1e-5 relative at most, changing lambda by as much; float32
    # round-off of an eigenvalue estimate is ~1e-6 relative: 2e-5 covers both
    bound = cfg.sharpness_tol + cfg.lambda0_tol + 2e-5
    assert np.all(np.abs(ratio - 1) <= bound), np.abs(ratio - 1).max()
    assert not phases.sharpness_rises(tr.sharpness, tr.diverged, T1=T).any()
    assert not phases.sharpness_rises(tr.sharpness, tr.diverged, T1=T, decimals=None, eps=bound).any()


def test_divergence_is_isolated(setup):
    model, params, aux, lam0, data, batches = setup
    c_all = _c([1.0, 1e5, 2.0])
    tr, pT = train.run_grid(model, params, aux, lam0, c_all, data, batches, CFG, return_params=True)
    div = np.asarray(tr.diverged)
    for s in range(2):
        d = div[s, 1]
        assert d.any() and not d[0]
        t0 = int(np.argmax(d))
        assert d[t0:].all()  # stays True from the divergence step on
        for name in ("loss", "accuracy", "sharpness", "sharpness_residual"):
            v = np.asarray(getattr(tr, name)[s, 1])
            assert np.all(np.isnan(v[t0:])), name          # NaN markers after divergence
            assert np.all(np.isfinite(v[:t0])), name       # finite before
    # parameters frozen at the last finite values: finite, and their loss is finite
    for leaf in jax.tree.leaves(pT):
        assert np.all(np.isfinite(np.asarray(leaf)))
    # the other runs of the same vmapped batch are finite and equal to running them alone
    ok = train.run_grid(model, params, aux, lam0, _c([1.0, 2.0]), data, batches, CFG)
    assert not div[:, [0, 2]].any()
    for name in ("loss", "accuracy", "sharpness"):
        got = np.asarray(getattr(tr, name))[:, [0, 2]]
        assert np.all(np.isfinite(got))
        np.testing.assert_allclose(got, np.asarray(getattr(ok, name)), rtol=RTOL, err_msg=name)


def test_return_params_reproduce_last_loss(setup):
    model, params, aux, lam0, data, batches = setup
    # c = 8 diverges at step 3 for both seeds (a catapult that escapes), c = 1e5 at step 1
    c = _c([0.5, 8.0, 3.0, 1e5])
    tr, pT = train.run_grid(model, params, aux, lam0, c, data, batches, CFG, return_params=True)
    for s in range(2):
        for k in (0, 2):
            p = jax.tree.map(lambda a: a[s, k], pT)
            loss = losses.mse(model.apply(p, _seed(aux, s), data.x_meas), data.y_meas)
            # the same forward pass outside the scan: float32 round-off only
            np.testing.assert_allclose(float(loss), float(tr.loss[s, k, -1]), rtol=RTOL)
        # a diverged run's parameters are those of its last finite step: t0 - 1 >= 1 (the frozen-
        # parameters path after real updates) for c = 8, the initial parameters for c = 1e5
        for k, late in ((1, True), (3, False)):
            d = np.asarray(tr.diverged[s, k])
            assert d.any()
            t0 = int(np.argmax(d))
            assert (t0 >= 2) == late, t0
            p = jax.tree.map(lambda a: a[s, k], pT)
            loss = losses.mse(model.apply(p, _seed(aux, s), data.x_meas), data.y_meas)
            np.testing.assert_allclose(float(loss), float(tr.loss[s, k, t0 - 1]), rtol=RTOL)
            if late:  # and not the initial ones: the frozen weights moved
                assert abs(float(loss) - float(tr.loss[s, k, 0])) > 1e-3 * float(tr.loss[s, k, 0])


@pytest.mark.parametrize("schedule", [dict(), dict(sharpness_every=3, sharpness_per_decade=1)])
def test_vmap_batching_equals_map(setup, schedule):
    """run_grid(batching="vmap") (the accelerator path) = "map" (the CPU default) run by run, with a
    run diverging at step 1 and one at step 3 in the same batch and a sparse sharpness schedule
    (lax.cond inside the vmapped scan). Catches: a divergence or NaN leaking across vmapped runs,
    a cond that under vmap measures (or skips) the wrong steps, vmapped while_loops whose lanes
    keep iterating and spend (or record) products for runs already converged."""
    model, params, aux, lam0, data, batches = setup
    cfg = CFG.replace(**schedule)
    c = _c([1.0, 1e5, 8.0, 3.0])
    out = {b: train.run_grid(model, params, aux, lam0, c, data, batches, cfg, return_params=True, batching=b)
           for b in ("map", "vmap")}
    (tm, pm), (tv, pv) = out["map"], out["vmap"]
    div = np.asarray(tm.diverged)
    assert div[:, 1, 1].all() and div[:, 2, -1].all() and not div[:, 2, 2].any() and not div[:, [0, 3]].any()
    for name in ("diverged", "sharpness_matvecs", "sharpness_converged"):
        np.testing.assert_array_equal(np.asarray(getattr(tv, name)), np.asarray(getattr(tm, name)), err_msg=name)
    for name in ("loss", "accuracy", "sharpness", "sharpness_residual"):
        a, b = np.asarray(getattr(tv, name)), np.asarray(getattr(tm, name))
        np.testing.assert_array_equal(np.isnan(a), np.isnan(b), err_msg=name)
        # residuals are ~1e-4 of lambda and carry its absolute round-off: compare in lambda's units
        scale = np.abs(np.asarray(tm.sharpness)[..., :1]) if name == "sharpness_residual" else np.abs(b)
        ok = ~np.isnan(b)
        assert np.all(np.abs(a - b)[ok] <= np.broadcast_to(RTOL * scale + 1e-7, b.shape)[ok]), name
    measured = np.concatenate([[True], train.sharpness_steps(cfg)])
    assert np.all(np.isnan(np.asarray(tv.sharpness)[..., ~measured]))
    for a, b in zip(jax.tree.leaves(pv), jax.tree.leaves(pm)):
        np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=RTOL, atol=RTOL * np.abs(np.asarray(b)).max())


def _manual(model, p, aux, lr, data, batch_idx):
    """Hand-written SGD / GD: p <- p - lr * grad(mean MSE on the batch); loss on x_meas."""
    step = jax.jit(lambda p, xb, yb: jax.tree.map(
        lambda a, g: a - lr * g, p, jax.grad(lambda q: losses.mse(model.apply(q, aux, xb), yb))(p)))
    meas = jax.jit(lambda p: losses.mse(model.apply(p, aux, data.x_meas), data.y_meas))
    out = [float(meas(p))]
    for idx in batch_idx:
        xb, yb = (data.x, data.y) if idx is None else (data.x[idx], data.y[idx])
        p = step(p, xb, yb)
        out.append(float(meas(p)))
    return np.array(out)


@pytest.mark.parametrize("optimizer", ["sgd", "gd"])
def test_sgd_and_gd_against_hand_written_loop(setup, optimizer):
    model, params, aux, lam0, data, batches = setup
    cfg = CFG.replace(optimizer=optimizer, measure_sharpness=False)
    p0, a0 = _seed(params, 0), _seed(aux, 0)
    lr = jnp.float32(1.5 / float(lam0.value[0]))
    tr = jax.jit(lambda p, a, lr: train.run(model, p, a, lr, data, batches, cfg, _seed(lam0, 0)))(p0, a0, lr)
    idx = [None] * T if optimizer == "gd" else list(np.asarray(batches))
    ref = _manual(model, p0, a0, lr, data, idx)
    np.testing.assert_allclose(np.asarray(tr.loss), ref, rtol=RTOL)
    assert np.all(np.isnan(np.asarray(tr.sharpness)))  # not measured
    # and the other optimizer's path gives a different trajectory (the batches matter)
    other = [None] * T if optimizer == "sgd" else list(np.asarray(batches))
    assert np.abs(_manual(model, p0, a0, lr, data, other)[1:] - ref[1:]).max() > 1e-4


def test_batch_schedule():
    n, bs, steps = 100, 30, 10       # 3 full batches per epoch, the last 10 examples dropped
    a = train.batch_schedule(n, bs, steps, seed=3)
    assert a.shape == (steps, bs) and a.dtype == np.int32
    np.testing.assert_array_equal(a, train.batch_schedule(n, bs, steps, seed=3))  # deterministic
    assert not np.array_equal(a, train.batch_schedule(n, bs, steps, seed=4))
    rng = np.random.RandomState(3)   # the paper's data_stream: a fresh permutation every epoch
    for epoch in range(4):
        perm = rng.permutation(n)
        for i in range(3):
            t = 3 * epoch + i
            if t < steps:
                np.testing.assert_array_equal(a[t], perm[i * bs:(i + 1) * bs])
    for epoch in range(3):
        block = a[3 * epoch:3 * epoch + 3].ravel()
        assert len(np.unique(block)) == 90  # no repeats within an epoch
    assert not np.array_equal(a[0], a[3])   # a new permutation each epoch
    assert train.batch_schedule(64, 64, 3, 0).shape == (3, 64)  # one batch per epoch


def test_sharpness_every_k():
    """Measured exactly every k-th step (NaN in between), equal to every-step measurements there.
    A full-order Lanczos (order = number of parameters) is exact, so the warm start cannot matter."""
    data = _data(n=128, side=2)
    model = models.build(ModelConfig(depth=2, width=4))
    params, aux = models.init_many(model, models.seed_keys([1]), data.x_meas)
    n_par = models.num_params(_seed(params, 0))
    assert n_par == 4 * 4 + 4 * 10
    cfg1 = TrainConfig(batch_size=32, num_steps=6, sharpness_iters=n_par, sharpness_tol=0.0, lambda0_tol=0.0)
    cfg3 = cfg1.replace(sharpness_every=3)
    lam0 = train.initial_sharpness(model, params, aux, data, cfg1)
    batches = jnp.asarray(train.batch_schedule(128, 32, 6, 1))
    c = jnp.asarray([[1.0, 3.0]], jnp.float32)
    every = train.run_grid(model, params, aux, lam0, c, data, batches, cfg1)
    sparse = train.run_grid(model, params, aux, lam0, c, data, batches, cfg3)
    s1, s3 = np.asarray(every.sharpness), np.asarray(sparse.sharpness)
    measured = np.array([t == 0 or t % 3 == 0 for t in range(7)])  # steps 0 (lambda_0), 3, 6
    assert np.all(np.isfinite(s1))
    assert np.all(np.isfinite(s3[..., measured])) and np.all(np.isnan(s3[..., ~measured]))
    # two exact (full-order) float32 eigen-solves from different start vectors: agreement to
    # float32 round-off of the eigenvalue, ~1e-6 |H| amplified by the Lanczos recurrence
    np.testing.assert_allclose(s3[..., measured], s1[..., measured], rtol=1e-4)
    # the loss does not depend on when the sharpness is measured: bit-identical
    np.testing.assert_array_equal(np.asarray(sparse.loss), np.asarray(every.loss))
    assert np.all(np.asarray(sparse.sharpness_matvecs)[..., ~measured] == 0)
    # the adaptive default (sharpness_tol 1e-3, warm starts) meets its claim against the exact
    # full-order values at every step, and spends far fewer products
    adaptive = train.run_grid(model, params, aux, lam0, c, data, batches, cfg1.replace(sharpness_tol=1e-3))
    sa = np.asarray(adaptive.sharpness)
    assert np.all(np.asarray(adaptive.sharpness_converged)[..., 1:])
    assert np.all(np.abs(sa[..., 1:] - s1[..., 1:]) <= 1e-3 * np.abs(s1[..., 1:]) + 1e-6)
    spent = np.asarray(adaptive.sharpness_matvecs)[..., 1:]
    assert np.all(spent >= 1) and np.median(spent) < np.median(np.asarray(every.sharpness_matvecs)[..., 1:])


def test_sharpness_steps_schedule():
    """The measurement mask: every k-th step, plus log-spaced steps round(10^(j/n))."""
    every3 = train.sharpness_steps(TrainConfig(num_steps=10, sharpness_every=3))
    np.testing.assert_array_equal(np.nonzero(every3)[0] + 1, [3, 6, 9])
    log = train.sharpness_steps(TrainConfig(num_steps=1000, sharpness_every=1000, sharpness_per_decade=4))
    # 10^(j/4): 1, 1.78, 3.16, 5.62, 10, 17.8, 31.6, 56.2, 100, ..., 1000
    np.testing.assert_array_equal(np.nonzero(log)[0] + 1,
                                  [1, 2, 3, 6, 10, 18, 32, 56, 100, 178, 316, 562, 1000])
    both = train.sharpness_steps(TrainConfig(num_steps=20, sharpness_every=7, sharpness_per_decade=2))
    np.testing.assert_array_equal(np.nonzero(both)[0] + 1, [1, 3, 7, 10, 14])
    assert train.sharpness_steps(TrainConfig(num_steps=5)).all()


def test_log_spaced_sharpness_in_a_run():
    """A log-spaced schedule measures exactly at its steps, with the values of every-step
    measurement there (full-order Lanczos is exact), and leaves the loss bit-identical."""
    data = _data(n=128, side=2)
    model = models.build(ModelConfig(depth=2, width=4))
    params, aux = models.init_many(model, models.seed_keys([1]), data.x_meas)
    n_par = models.num_params(_seed(params, 0))
    cfg1 = TrainConfig(batch_size=32, num_steps=12, sharpness_iters=n_par, sharpness_tol=0.0, lambda0_tol=0.0)
    cfgl = cfg1.replace(sharpness_every=12, sharpness_per_decade=3)
    lam0 = train.initial_sharpness(model, params, aux, data, cfg1)
    batches = jnp.asarray(train.batch_schedule(128, 32, 12, 1))
    c = jnp.asarray([[1.0, 3.0]], jnp.float32)
    every = train.run_grid(model, params, aux, lam0, c, data, batches, cfg1)
    logs = train.run_grid(model, params, aux, lam0, c, data, batches, cfgl)
    measured = np.concatenate([[True], train.sharpness_steps(cfgl)])  # record 0 is lambda_0
    np.testing.assert_array_equal(np.nonzero(measured)[0], [0, 1, 2, 5, 10, 12])
    s1, sl = np.asarray(every.sharpness), np.asarray(logs.sharpness)
    assert np.all(np.isfinite(sl[..., measured])) and np.all(np.isnan(sl[..., ~measured]))
    np.testing.assert_allclose(sl[..., measured], s1[..., measured], rtol=1e-4)
    np.testing.assert_array_equal(np.asarray(logs.loss), np.asarray(every.loss))


@pytest.mark.parametrize("batching", ["map", "vmap"])
def test_early_exit_decides_the_same_indicator_with_fewer_products(setup, batching):
    """``run_grid(decide=...)`` (a search run's early exit) against full measurements on the same
    runs: c from sharpness reduction to divergence, T1 < T. The c_sharp indicator is identical run by
    run, and so are the losses, divergence flags and (for undecided runs) the loss indicators up to
    each run's decision; a run whose indicator is False is measured at every
    step 1..T1 exactly as before; a run decided True has the same records up to its decision
    step, there a Ritz value above the threshold and at most the full estimate (a lower bound),
    and no product after it; no step after T1 is computed. Catches: a decision against the wrong
    threshold (a ratio just below it), a decided run still spending products (under vmap: lanes
    that keep iterating), a skipped step in an undecided run, values recorded for skipped steps, a
    decided run that goes on training (its losses after the decision are NaN, not computed)."""
    model, params, aux, lam0, data, batches = setup
    T1 = T - 1
    c = _c([0.5, 1.5, 2.0, 2.5, 3.0, 4.0, 6.0, 1e5])
    decide = train.Decide(T1, phases.rise_boundary(2, 0.0))
    full = train.run_grid(model, params, aux, lam0, c, data, batches, CFG, batching=batching)
    early = train.run_grid(model, params, aux, lam0, c, data, batches, CFG, batching=batching, decide=decide)
    full, early = (jax.tree.map(np.asarray, t) for t in (full, early))
    ind = {k: phases.sharpness_rises(t.sharpness, t.diverged, T1) for k, t in (("full", full), ("early", early))}
    np.testing.assert_array_equal(ind["early"], ind["full"])
    dec = early.sharpness_decided
    steps = np.arange(T + 1)
    t_dec = np.where(dec.any(-1), np.argmax(dec, -1), T + 1)
    # a decided run computes nothing after its decision, and no search run anything after T1
    trained = (steps <= t_dec[..., None]) & (steps <= T1)
    np.testing.assert_array_equal(np.where(trained, early.diverged, False), np.where(trained, full.diverged, False))
    np.testing.assert_allclose(np.where(trained, early.loss, 0.0), np.where(trained, full.loss, 0.0), rtol=RTOL)
    assert np.all(np.isnan(early.loss[~trained])) and np.all(np.isnan(early.accuracy[~trained]))
    at_decision = np.take_along_axis(early.diverged, np.minimum(t_dec, T1)[..., None], -1)
    assert (~trained).any(), "the test needs runs decided before their last step"
    assert np.all(early.diverged[~trained] == np.broadcast_to(at_decision, early.diverged.shape)[~trained])
    undecided = ~dec.any(-1)  # their loss and divergence indicators are those of the full runs
    np.testing.assert_array_equal(phases.loss_rises(early.loss, early.diverged, T1)[undecided],
                                  phases.loss_rises(full.loss, full.diverged, T1)[undecided])
    assert dec.sum(-1).max() <= 1 and not full.sharpness_decided.any()
    decided_runs = dec.any(-1)
    # the test covers both kinds: runs decided by a measurement, and runs that stay False
    assert decided_runs.any() and (~ind["full"]).any(), (decided_runs, ind["full"])
    thr = np.asarray(train.decide_threshold(lam0, decide))[:, None]
    for name in ("sharpness", "sharpness_matvecs", "sharpness_converged"):
        a, b = getattr(early, name), getattr(full, name)
        before = (steps <= T1) & (steps < t_dec[..., None])  # records before any decision: identical
        np.testing.assert_allclose(np.where(before, a, 0).astype(float), np.where(before, b, 0).astype(float),
                                   rtol=RTOL, err_msg=name)
    at = dec
    assert np.all(early.sharpness[at] > np.broadcast_to(thr, dec.shape[:-1])[decided_runs])
    assert np.all(early.sharpness[at] <= full.sharpness[at] * (1 + 1e-6))
    assert np.all(early.sharpness_matvecs[at] <= full.sharpness_matvecs[at])
    after = (steps > t_dec[..., None]) | (steps > T1)
    assert np.all(early.sharpness_matvecs[after] == 0) and np.all(np.isnan(early.sharpness[after]))
    assert np.all(ind["full"][decided_runs])
    saved = full.sharpness_matvecs[..., 1:].sum() - early.sharpness_matvecs[..., 1:].sum()
    assert saved > 0
    # a diverged step is never measured, with or without decide (its record is NaN either way)
    assert np.all(full.sharpness_matvecs[full.diverged] == 0)


@pytest.mark.parametrize("rise_stop", [True, False])
def test_loss_runs_stop_once_their_indicator_is_decided(setup, rise_stop):
    """A loss run of a search (``Decide(..., "loss")``, with ``loss_rise_stop`` for the c_loss
    search and without for the c_max one) against the full run: c from a flat loss through a
    catapult to divergence at step 1, T1 < T. The loss indicator is identical run by run, and
    without the rise stop the divergence indicator too; the recorded losses are the full run's
    up to the last computed step, NaN after it; a run stops at its first loss above
    ``loss_threshold`` (with the rise stop), at divergence, and after T1. Catches: a decision
    against the wrong threshold (a ratio just below the boundary counted as a rise), a run that
    goes on computing after its decision, a skipped step before it, a c_max run cut at a loss rise."""
    model, params, aux, lam0, data, batches = setup
    T1 = T - 1
    cfg = CFG.replace(measure_sharpness=False)
    c = _c([0.1, 1.5, 2.5, 3.5, 5.0, 8.0, 1e5])
    decide = train.Decide(T1, phases.rise_boundary(2, 0.0), "loss")
    full = jax.tree.map(np.asarray, train.run_grid(model, params, aux, lam0, c, data, batches, cfg))
    early = jax.tree.map(np.asarray, train.run_grid(model, params, aux, lam0, c, data, batches, cfg,
                                                    decide=decide, loss_rise_stop=rise_stop))
    rise = {k: phases.loss_rises(t.loss, t.diverged, T1) for k, t in (("full", full), ("early", early))}
    div = {k: phases.runs_diverge(t.diverged, T1) for k, t in (("full", full), ("early", early))}
    np.testing.assert_array_equal(rise["early"], rise["full"])
    assert rise["full"].any() and (~rise["full"]).any() and div["full"].any(), "the test needs both outcomes"
    steps = np.arange(T + 1)
    computed = ~np.isnan(early.loss)
    # the last computed step: the first loss above the threshold ("loss_rise"), else the diverging
    # step or T1 (a diverged step records NaN, and the run stops there)
    thr = np.asarray(train.loss_threshold(jnp.asarray(full.loss[..., 0]), decide))[..., None]
    above = (full.loss > thr) & (steps >= 1) & (steps <= T1)
    first_div = np.where(full.diverged.any(-1), np.argmax(full.diverged, -1), T + 1)
    stop = np.minimum(first_div - 1, T1)
    if rise_stop:
        stop = np.where(above.any(-1), np.minimum(np.argmax(above, -1), stop), stop)
        assert (above.any(-1) & (np.argmax(above, -1) < T1)).any(), "the test needs a run decided before T1"
    else:
        np.testing.assert_array_equal(div["early"], div["full"])
    np.testing.assert_array_equal(computed, steps <= stop[..., None])
    np.testing.assert_array_equal(np.where(computed, early.loss, 0.0), np.where(computed, full.loss, 0.0))
    np.testing.assert_array_equal(early.diverged[..., : T1 + 1] | ~computed[..., : T1 + 1],
                                  full.diverged[..., : T1 + 1] | ~computed[..., : T1 + 1])


def test_decide_rejects_what_a_run_cannot_answer(setup):
    model, params, aux, lam0, data, batches = setup
    c = _c([1.0])
    with pytest.raises(ConfigError, match="decide.indicator"):
        train.run_grid(model, params, aux, lam0, c, data, batches, CFG, decide=train.Decide(T, 1.005, "diverge"))
    with pytest.raises(ConfigError, match="decide.indicator"):
        train.run_grid(model, params, aux, lam0, c, data, batches, CFG.replace(measure_sharpness=False),
                       decide=train.Decide(T, 1.005, "sharp_rise"))


def test_both_loss_searches_share_one_program(setup):
    """The c_max and c_loss searches' runs (``loss_rise_stop`` False / True) are one compiled
    program: a cold book build compiles each kind of run once per network (a ResNet's run takes
    seconds to compile)."""
    model, params, aux, lam0, data, batches = setup
    cfg, c = CFG.replace(measure_sharpness=False, num_steps=T), _c([3.5, 5.0, 8.0])
    decide = train.Decide(T - 1, 1.007, "loss")  # a boundary no other test compiles with
    before = train.run_grid._cache_size()
    out = [jax.tree.map(np.asarray, train.run_grid(model, params, aux, lam0, c, data, batches, cfg, decide=decide,
                                                   loss_rise_stop=stop)) for stop in (False, True)]
    assert train.run_grid._cache_size() == before + 1
    assert not np.array_equal(np.isnan(out[0].loss), np.isnan(out[1].loss)), "the flag must change the runs"


@pytest.mark.parametrize("decide,stop", [(None, False), (train.Decide(T - 1, 1.005, "sharp_rise"), False),
                                         (train.Decide(T, 1.005, "loss"), True)])
def test_run_each_equals_run_grid_whatever_the_threads(setup, decide, stop):
    """``run_each`` (the CPU's batching: one call per run, ``threads`` at a time) against
    ``run_grid(batching="map")`` on the same [S, C] runs, with runs diverging at step 1: the same
    records in the same (seed, c) order, whatever the number of threads (to float32 rounding:
    concurrent XLA kernels may round differently, ``train.cpu_threads``), one at a time
    bit-identical to ``run_grid``'s loop. Catches: runs stacked in the wrong order, a thread
    computing with another run's seed or c."""
    model, params, aux, lam0, data, batches = setup
    cfg = CFG.replace(measure_sharpness=decide is None or decide.indicator == "sharp_rise")
    c = np.array(_c([1.0, 1e5, 3.0]))
    c[1] = [5.0, 0.5, 2.0]  # each seed its own constants, as in a bisection
    ref = jax.tree.map(np.asarray, train.run_grid(model, params, aux, lam0, jnp.asarray(c), data, batches, cfg,
                                                  batching="map", decide=decide, loss_rise_stop=stop))
    out = {n: train.run_each(model, params, aux, lam0, c, data, batches, cfg, decide=decide, loss_rise_stop=stop,
                             threads=n) for n in (1, 2, 3)}
    for name, a in ref._asdict().items():
        for n in (1, 2, 3):
            b = getattr(out[n], name)
            assert b.shape == a.shape, name
            if a.dtype == bool or np.issubdtype(a.dtype, np.integer):
                np.testing.assert_array_equal(b, a, err_msg=f"{name}, {n} threads")
            elif n == 1:
                np.testing.assert_array_equal(b, a, err_msg=name)
            else:
                np.testing.assert_allclose(b, a, rtol=RTOL, atol=1e-7, err_msg=f"{name}, {n} threads")


def test_initial_sharpness_per_seed_equals_vmapped(setup):
    """lambda_0 under the CPU's "map" batching (one call per seed, in threads) = the vmapped
    batch, seed by seed, and the same for a seed measured alone; float64 inside a caller's
    ``jax.enable_x64`` context reaches the worker threads."""
    model, params, aux, lam0, data, batches = setup
    m = train.initial_sharpness(model, params, aux, data, CFG, batching="map")
    v = train.initial_sharpness(model, params, aux, data, CFG, batching="vmap")
    np.testing.assert_allclose(np.asarray(m.value), np.asarray(v.value), rtol=RTOL)
    np.testing.assert_array_equal(np.asarray(m.n_matvec), np.asarray(v.n_matvec))
    alone = train.initial_sharpness(model, jax.tree.map(lambda a: a[1:], params), jax.tree.map(lambda a: a[1:], aux),
                                    data, CFG, batching="map")
    np.testing.assert_array_equal(np.asarray(alone.value), np.asarray(m.value)[1:])
    with jax.enable_x64(True):
        p64 = jax.tree.map(lambda a: jnp.asarray(a, jnp.float64), params)
        d64 = jax.tree.map(lambda a: jnp.asarray(a, jnp.float64), data)
        e = train.initial_sharpness(model, p64, aux, d64, CFG, batching="map")
        assert e.value.dtype == jnp.float64 and e.vector.dtype == jnp.float64


def test_cpu_threads_setting(monkeypatch):
    monkeypatch.delenv("EARLYTRAIN_CPU_THREADS", raising=False)
    assert train.cpu_threads() == 1  # the default: bit-reproducible runs
    monkeypatch.setenv("EARLYTRAIN_CPU_THREADS", "3")
    assert train.cpu_threads() == 3
    for bad in ("0", "two", "-1", ""):
        monkeypatch.setenv("EARLYTRAIN_CPU_THREADS", bad)
        with pytest.raises(ConfigError, match="EARLYTRAIN_CPU_THREADS"):
            train.cpu_threads()
