"""Tests of earlytrain.hessian against exact answers (dense float64 Hessians, closed forms).

Float64 is switched on only inside the ``x64`` fixture (``jax.enable_x64`` context), never
globally, so it does not leak into other test files. All problems are tiny FCNs (n <= ~100
parameters) so the dense Hessian and its ``eigvalsh`` are exact references.
"""
from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from earlytrain import hessian, losses, models

# Round-off scale for float64 arithmetic on these tiny problems: a few hundred ulps of the
# spectral norm covers every reordering of sums (jvp-of-grad vs jax.hessian, eigh of T vs of H).
F64_TOL = 1e-10


@pytest.fixture
def x64():
    with jax.enable_x64(True):
        yield


# (depth, width, parameterization, loss): SP and NTP, MSE and xent, depth 2-3, width 4-8
CONFIGS = [(2, 4, "sp", "mse"), (3, 4, "ntp", "mse"), (2, 8, "sp", "xent"), (3, 4, "ntp", "xent")]


def _problem(depth, width, parameterization, loss, n=12, d_in=4, k=3, seed=0):
    """A tiny FCN on random standardized data, in float64: (flat params, L(flat), dense H, ...)."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, d_in))
    x = (x - x.mean(1, keepdims=True)) / x.std(1, keepdims=True)
    y = np.eye(k)[rng.integers(0, k, n)]
    x, y = jnp.asarray(x, jnp.float64), jnp.asarray(y, jnp.float64)
    model = models.build(models.ModelConfig(depth=depth, width=width, parameterization=parameterization,
                                            n_out=k))
    params, aux = model.init(jax.random.PRNGKey(seed + 1), x)
    params = jax.tree.map(lambda a: jnp.asarray(a, jnp.float64), params)
    lossf = losses.get(loss)
    loss_of_params = lambda p: lossf(model.apply(p, aux, x), y)
    flat, f = hessian.flat_loss(loss_of_params, params)
    H = np.asarray(jax.jit(lambda p: hessian.dense_hessian(loss_of_params, p))(params))
    assert flat.dtype == jnp.float64 and H.dtype == np.float64
    return flat, f, H, loss_of_params, params


def _lanczos(matvec, v0, order, tol=1e-2):
    return jax.jit(lambda v: hessian.lanczos(matvec, v, order, tol))(v0)


def _power(matvec, v0, iters, tol=1e-2):
    return jax.jit(lambda v: hessian.power_iteration(matvec, v, iters, tol))(v0)


def _power_reference(H, v0, k):
    """The power-iteration estimate in closed form: the Rayleigh quotient of H^k v0, i.e.
    sum c_i^2 l_i^(2k+1) / sum c_i^2 l_i^(2k) with c = Q^T v0 (exact, from eigh)."""
    ev, Q = np.linalg.eigh(H)
    c2 = (Q.T @ v0) ** 2
    w = c2 * (ev / np.abs(ev).max()) ** (2 * k)  # scaled to avoid overflow; ratio unchanged
    return float((w * ev).sum() / w.sum())


@pytest.mark.parametrize("cfg", CONFIGS)
def test_estimators_on_tiny_fcn(x64, cfg):
    flat, f, H, loss_of_params, params = _problem(*cfg)
    n = flat.shape[0]
    ev = np.linalg.eigvalsh(H)
    scale = np.abs(ev).max()
    np.testing.assert_allclose(H, H.T, atol=F64_TOL * scale)  # the reference is symmetric
    mv = hessian.hvp(f, flat)
    v0 = hessian.start_vector(n, jnp.float64)

    # 1. hvp == dense H @ v
    mv_jit = jax.jit(mv)
    for s in range(3):
        v = jax.random.normal(jax.random.PRNGKey(100 + s), flat.shape, jnp.float64)
        err = np.linalg.norm(np.asarray(mv_jit(v)) - H @ np.asarray(v))
        assert err <= F64_TOL * scale * float(jnp.linalg.norm(v))

    # 2. Lanczos of order >= n spans R^n: the top Ritz value is exactly lambda_max
    for order in (n, n + 3):
        eig = _lanczos(mv, v0, order)
        assert abs(float(eig.value) - ev[-1]) <= F64_TOL * scale
        assert float(eig.residual) <= 1e-8  # an exact eigenpair: relative residual at round-off
        assert bool(eig.converged)
        assert int(eig.n_matvec) == order + 1
        vec = np.asarray(eig.vector)
        assert abs(np.linalg.norm(vec) - 1) < 1e-12
        assert abs(vec @ H @ vec - ev[-1]) <= F64_TOL * scale  # the top eigenvector

    # 3. Lanczos of order < n: for a unit v and theta = <v, Hv>, some eigenvalue lies within
    # |Hv - theta v| of theta (Bauer-Fike, symmetric H), so the reported residual bounds the
    # true error; Ritz values never exceed lambda_max (interlacing) and grow with the order.
    prev = -np.inf
    for order in (3, 8):
        eig = _lanczos(mv, v0, order, tol=1e-2)
        value, resid = float(eig.value), float(eig.residual)
        assert value <= ev[-1] + F64_TOL * scale
        assert value >= prev - F64_TOL * scale
        prev = value
        assert np.abs(ev - value).min() <= resid * abs(value) + F64_TOL * scale
        vec = np.asarray(eig.vector)
        true_resid = np.linalg.norm(H @ vec - value * vec) / abs(value)  # from the dense H
        assert abs(true_resid - resid) <= F64_TOL * scale / abs(value)
        assert bool(eig.converged) == (resid < 1e-2)
        assert int(eig.n_matvec) == order + 1

    # 4. power iteration equals its closed form (Rayleigh quotient of H^k v0)
    for iters in (3, 20):
        eig = _power(mv, v0, iters)
        ref = _power_reference(H, np.asarray(v0), iters)
        assert abs(float(eig.value) - ref) <= F64_TOL * scale
        assert int(eig.n_matvec) == iters + 1
        value = float(eig.value)
        assert np.abs(ev - value).min() <= float(eig.residual) * abs(value) + F64_TOL * scale
        assert bool(eig.converged) == (float(eig.residual) < 1e-2)
    # ... and with many iterations it reaches the eigenvalue of largest magnitude whenever the
    # closed form says it must (error ~ (|l_2| / |l_1|)^(2k) in exact arithmetic)
    iters = 400
    eig = _power(mv, v0, iters)
    assert abs(float(eig.value) - _power_reference(H, np.asarray(v0), iters)) <= F64_TOL * scale
    ratio = np.sort(np.abs(ev))[-2] / scale
    if ratio ** (2 * iters) < 1e-12:
        assert abs(float(eig.value) - ev[np.argmax(np.abs(ev))]) <= 1e-9 * scale

    # 5. the pytree entry point and the dispatcher give the same numbers
    a = jax.jit(lambda p: hessian.loss_sharpness(loss_of_params, p, method="lanczos", num_iters=n))(params)
    assert abs(float(a.value) - ev[-1]) <= F64_TOL * scale
    b = jax.jit(lambda v: hessian.top_eigenvalue(mv, v, "power", 20))(v0)
    assert abs(float(b.value) - _power_reference(H, np.asarray(v0), 20)) <= F64_TOL * scale


def _counting(matvec):
    """Wrap a matvec so that every *executed* product (not every trace) is counted."""
    count = [0]

    def mv(v):
        jax.debug.callback(lambda: count.__setitem__(0, count[0] + 1))
        return matvec(v)
    return mv, count


def test_n_matvec_counts_executed_products(x64):
    H, _ = _matrix(np.linspace(-1.0, 3.0, 7))
    Hj = jnp.asarray(H)
    v0 = hessian.start_vector(7, jnp.float64)
    for order in (2, 9):
        mv, count = _counting(lambda v: Hj @ v)
        eig = hessian.lanczos(mv, v0, order)
        jax.block_until_ready(eig)
        jax.effects_barrier()
        assert count[0] == int(eig.n_matvec) == order + 1
    for iters in (1, 20):
        mv, count = _counting(lambda v: Hj @ v)
        eig = hessian.power_iteration(mv, v0, iters)
        jax.block_until_ready(eig)
        jax.effects_barrier()
        assert count[0] == int(eig.n_matvec) == iters + 1


def _matrix(eigenvalues, seed=0):
    rng = np.random.default_rng(seed)
    Q, _ = np.linalg.qr(rng.normal(size=(len(eigenvalues),) * 2))
    return Q @ np.diag(eigenvalues) @ Q.T, Q


def test_dominant_negative_eigenvalue_power_vs_lanczos(x64):
    """CAVEAT (documented): power iteration finds the eigenvalue of largest MAGNITUDE, Lanczos
    the largest ALGEBRAIC one. Where the most negative eigenvalue dominates (possible away from
    a minimum), the paper's power iteration reports a negative "sharpness"."""
    ev = np.array([-5.0, 3.0, 2.0, 1.0, 0.5, -1.0, 0.1, -0.2])
    H, _ = _matrix(ev)
    Hj = jnp.asarray(H)
    mv = lambda v: Hj @ v
    v0 = hessian.start_vector(len(ev), jnp.float64)
    power = hessian.power_iteration(mv, v0, num_iters=200)
    # (3/5)^(2*200) ~ 1e-89: converged in exact arithmetic, so round-off is all that is left
    assert abs(float(power.value) - (-5.0)) < 1e-12
    assert abs(float(power.value) - _power_reference(H, np.asarray(v0), 200)) < 1e-12
    lanc = hessian.lanczos(mv, v0, order=len(ev))
    assert abs(float(lanc.value) - 3.0) < 1e-12
    assert bool(lanc.converged) and bool(power.converged)


def test_lanczos_breakdown_positive_invariant_subspace(x64):
    """A start vector inside an invariant subspace makes beta = 0 (breakdown) early. No NaN;
    the value is the top eigenvalue of H on the Krylov space, an exact eigenvalue of H."""
    ev = np.array([3.0, 2.0, 1.0, 0.5, -1.0, -5.0])
    H, Q = _matrix(ev, seed=1)
    Hj = jnp.asarray(H)
    mv = lambda v: Hj @ v
    # an eigenvector: the Krylov space is 1-dimensional
    for col, lam in ((0, 3.0), (1, 2.0)):
        for order in (2, 9):
            eig = hessian.lanczos(mv, jnp.asarray(Q[:, col]), order)
            assert np.all(np.isfinite(np.asarray(eig.vector)))
            assert abs(float(eig.value) - lam) < 1e-12
            assert bool(eig.converged)
    # a 2-dimensional invariant subspace span(q_1, q_2), eigenvalues {2, 1}
    v0 = jnp.asarray((Q[:, 1] + Q[:, 2]) / np.sqrt(2))
    eig = hessian.lanczos(mv, v0, 2)
    assert abs(float(eig.value) - 2.0) < 1e-12
    for order in (3, 9):  # past the breakdown: finite, and an eigenvalue of H
        eig = hessian.lanczos(mv, v0, order)
        assert np.isfinite(float(eig.value)) and np.all(np.isfinite(np.asarray(eig.vector)))
        assert np.abs(ev - float(eig.value)).min() < 1e-10
        assert bool(eig.converged)


def test_lanczos_breakdown_negative_invariant_subspace_is_flagged(x64):
    """Breakdown inside an invariant subspace whose eigenvalues are all negative: no NaN, and
    whatever value comes out, ``converged`` is False unless it is a true eigenvalue."""
    ev = np.array([3.0, 2.0, 1.0, 0.5, -1.0, -5.0])
    H, Q = _matrix(ev, seed=1)
    Hj = jnp.asarray(H)
    mv = lambda v: Hj @ v
    for order in (2, 6):
        eig = hessian.lanczos(mv, jnp.asarray(Q[:, 5]), order)
        assert np.isfinite(float(eig.value)) and np.all(np.isfinite(np.asarray(eig.vector)))
        is_eigenvalue = np.abs(ev - float(eig.value)).min() < 1e-10
        assert is_eigenvalue or not bool(eig.converged)


def test_lanczos_breakdown_negative_invariant_subspace_value(x64):
    """Regression: the empty steps after a breakdown used to add spurious zero Ritz values."""
    ev = np.array([3.0, 2.0, 1.0, 0.5, -1.0, -5.0])
    H, Q = _matrix(ev, seed=1)
    Hj = jnp.asarray(H)
    eig = hessian.lanczos(lambda v: Hj @ v, jnp.asarray(Q[:, 5]), 4)
    # exact Lanczos: the Krylov space is span(q_-5), so the top Ritz value is -5
    assert abs(float(eig.value) - (-5.0)) < 1e-10


def test_vmap_over_parameter_sets_equals_one_by_one(x64):
    rng = np.random.default_rng(3)
    x = jnp.asarray(rng.normal(size=(10, 4)))
    y = jnp.asarray(np.eye(3)[rng.integers(0, 3, 10)])
    model = models.build(models.ModelConfig(depth=3, width=5, n_out=3))
    params, aux = models.init_many(model, models.seed_keys([1, 2, 3]), x)
    assert jax.tree.leaves(params)[0].dtype == jnp.float64

    for method in hessian.METHODS:
        def sharp(p, a):
            return hessian.loss_sharpness(lambda q: losses.mse(model.apply(q, a, x), y), p,
                                          method=method, num_iters=8)
        batched = jax.jit(jax.vmap(sharp))(params, aux)
        one_jit = jax.jit(sharp)
        for s in range(3):
            one = one_jit(jax.tree.map(lambda a: a[s], params), jax.tree.map(lambda a: a[s], aux))
            # batched vs unbatched matmuls may sum in a different order: float64 round-off
            assert abs(float(batched.value[s]) - float(one.value)) <= F64_TOL * abs(float(one.value))
            np.testing.assert_allclose(np.asarray(batched.vector[s]), np.asarray(one.vector), atol=1e-8)
            assert float(batched.residual[s]) == pytest.approx(float(one.residual), rel=1e-6, abs=1e-12)
            assert int(batched.n_matvec[s]) == int(one.n_matvec)


def test_zero_hessian_gives_finite_estimates():
    """Regression: a zero Hessian (every ReLU dead) used to give a NaN eigenvector (0/0), which
    train.run fed back as the next warm start, so later sharpness values were NaN."""
    v0 = hessian.start_vector(5)
    for eig in (hessian.lanczos(lambda v: 0 * v, v0, 3), hessian.power_iteration(lambda v: 0 * v, v0, 3)):
        assert float(eig.value) == 0.0  # the exact answer
        assert np.all(np.isfinite(np.asarray(eig.vector)))
