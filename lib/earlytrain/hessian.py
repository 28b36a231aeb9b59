"""Top Hessian eigenvalue (the sharpness lambda^H) from Hessian-vector products, with a
stopping rule that certifies the accuracy it claims.

All estimators take a ``matvec`` v [n] -> H v [n] on a flat parameter vector, are pure JAX (a
``lax.while_loop`` over a static buffer) and so work inside ``jit``, ``vmap``, ``lax.map`` and
``lax.scan``. Each returns an ``Eig``: the estimate, its unit eigenvector, the relative residual
|Hv - lambda v| / |lambda|, a bound on the relative error of the estimate, the number of
products actually spent and whether the bound met the requested ``tol``.

* ``lanczos`` (full re-orthogonalisation) returns the largest *algebraic* Ritz value and stops
  at the first step whose error bound (below) is <= tol * |value|; ``order`` is a cap.
* ``power_iteration`` is the estimator of the authors' code (20 iterations from PRNGKey(24)):
  the eigenvalue of largest *magnitude*, converging like (lambda_2 / lambda_1)^k; it stops when
  its residual bound is <= tol * |value|; ``num_iters`` is a cap.
* ``linearized_hvp`` computes the primal (forward and backward pass) once per measurement and
  then only tangents; ``chunked_hvp`` sums the product over chunks of examples, so that only one
  chunk's activations are live at a time (memory; ``hvp_chunk``).
* ``dense_hessian`` is the exact reference for tests on tiny networks (float64).

**The error bounds.** Let theta_1 >= theta_2 be the top two Ritz values of the Lanczos matrix T_k,
y the unit Ritz vector of theta_1 and r = |H y - theta_1 y| = beta_k |s_k| (the last entry of
T_k's eigenvector times the next Lanczos coefficient: free, no extra product). Ritz values never
exceed lambda_1 (interlacing), so the error lambda_1 - theta_1 is >= 0, and

1. *residual bound* (Krylov-Weinstein / Bauer-Fike): some eigenvalue of H lies within r of
   theta_1; it is lambda_1 whenever theta_1 approximates the top eigenvalue (see the caveats), so
   lambda_1 - theta_1 <= r. Rigorous, but pessimistic: the error is really O(r^2).
2. *gap bound* (Kato-Temple), used once k >= ``GAP_MIN_K``: if lambda_2 <= a < theta_1 then
   lambda_1 - theta_1 <= r^2 / (theta_1 - a), with ``a`` = theta_2 + r_2 (the second Ritz value
   plus its own residual). That is a gap *estimate*: rigorous only when the eigenvalue within r_2
   of theta_2 is lambda_2. At k = 2 the second Ritz vector is just the start vector's residual
   direction, which says little about lambda_2, hence k >= 3.

``gap_bound=False`` (the default, and ``TrainConfig.sharpness_gap_bound``'s) keeps to bound 1: a
lagging theta_2 makes the gap estimate claim accuracy that is not there, which happened on the
book's own runs (near-degenerate top eigenvalues; figures in bench/README.md). The bound reported
(``Eig.bound``, relative to |theta_1|) is min(1, 2), never below the rounding floor of the
computation (FLOOR x the working precision's epsilon x |T|), so a tolerance the arithmetic cannot
certify is never reported as met. Power iteration has only the residual bound.

Caveats shared by every method that only sees products: an eigenvalue whose eigenvector is
orthogonal to the Krylov space cannot be seen. A random start makes that an event of probability
zero; a warm start keeps it so while the top eigenvector moves continuously (tested through a
crossing of the top two eigenvalues), but not after a jump, which is why ``train.warm_start``
mixes a fixed random vector into every warm start. When the top two eigenvalues are nearly equal
(a relative gap below ~sqrt(tol)) the top Ritz value can settle on the pair before the Krylov
space resolves it, and the gap bound is then too small (tests/test_hessian.py shows it with
lambda_2 = 0.99 lambda_1); bound 1 still holds for *an* eigenvalue. tol = 0 with a fixed
``order`` is the fully conservative choice.

**Precision.** The k x k tridiagonal eigenproblem is solved in float64 when x64 is enabled, and
is otherwise *guarded*: T is divided by its scale |T| (the largest |alpha|, |beta| so far)
before ``eigh``, so the result is independent of the scale of H (tested from 1e-8 to 1e8), and
the rounding floor above is added to the bound. A breakdown (beta ~ 0: the Krylov space is
invariant) is detected relative to that same scale, stops the iteration, and leaves an exact (to
rounding) Ritz value.
"""
from __future__ import annotations

from typing import Callable, NamedTuple

import jax
import jax.numpy as jnp
from jax.flatten_util import ravel_pytree

from .errors import ConfigError, check, check_choice, check_int, is_real  # noqa: F401 (re-exported)

POWER_KEY = 24  # the paper's fixed start vector key
BREAKDOWN = 100  # beta <= BREAKDOWN * eps * |T| counts as a breakdown (invariant Krylov space)
FLOOR = 16       # rounding floor of a Ritz value: FLOOR * eps * |T| (eps of the vectors' dtype)
GAP_MIN_K = 3    # the gap bound needs a Krylov space of dimension >= 3 (see the module docstring)
REORTH_BLOCK = 8  # re-orthogonalise against the live rows of the basis, this many at a time


class Eig(NamedTuple):
    value: jax.Array        # [] estimate of the top eigenvalue
    vector: jax.Array       # [n] unit eigenvector estimate
    residual: jax.Array     # [] |H v - value v| / |value|
    n_matvec: jax.Array     # [] Hessian-vector products spent (int32)
    converged: jax.Array    # [] bound <= tol
    bound: jax.Array        # [] bound on the relative error |lambda_top - value| / |value|


def flat_loss(loss_of_params: Callable, params):
    """(flat0 [n], L(flat) -> scalar): the loss as a function of the raveled parameters."""
    flat0, unravel = ravel_pytree(params)
    return flat0, lambda p: loss_of_params(unravel(p))


def hvp(f_flat: Callable, p: jax.Array) -> Callable[[jax.Array], jax.Array]:
    """v -> H(p) v by forward-over-reverse differentiation (no Hessian is ever formed).
    Every call re-runs the primal; ``linearized_hvp`` shares it between calls."""
    grad = jax.grad(f_flat)
    return lambda v: jax.jvp(grad, (p,), (v,))[1]


def linearized_hvp(f_flat: Callable, p: jax.Array) -> Callable[[jax.Array], jax.Array]:
    """v -> H(p) v, the same products as ``hvp`` with the primal computed once.

    ``jax.linearize`` of the gradient runs the forward and backward pass at p once, keeps the
    intermediates, and returns the linear map v -> d(grad)(p) v, which evaluates tangents only:
    all the products of one estimate (inside its while_loop) share that primal."""
    return jax.linearize(jax.grad(f_flat), p)[1]


def chunked_hvp(loss_on: Callable, p: jax.Array, data, chunk: int) -> Callable[[jax.Array], jax.Array]:
    """v -> H(p) v of the mean loss over M examples, summed over chunks of ``chunk`` examples, so
    that only one chunk's activations are live at a time (the memory a product needs follows
    ``chunk``, not M).

    loss_on(p [n], data_c) -> the mean loss over the examples of ``data_c``; data: a pytree of
    arrays with a leading axis of M examples; chunk: a divisor of M. Then the mean over all M is
    the mean of the M / chunk chunk means, so H v = (chunk / M) sum_c H_c v: the same product up
    to the order of the sums. Each product re-runs each chunk's primal (forward-over-reverse per
    chunk, a ``lax.scan`` over the chunks): more work than ``linearized_hvp``, which keeps the
    intermediates of all M examples. With chunk = M it is ``hvp`` on the whole data."""
    M = jax.tree.leaves(data)[0].shape[0]
    check(isinstance(chunk, int) and 1 <= chunk <= M and M % chunk == 0, "hvp_chunk",
          f"a divisor of the {M} examples of the measurement", chunk)
    n_chunks = M // chunk
    parts = jax.tree.map(lambda a: a.reshape((n_chunks, chunk) + a.shape[1:]), data)

    def matvec(v):
        def add(acc, part):
            grad = jax.grad(lambda q: loss_on(q, part))
            return acc + jax.jvp(grad, (p,), (v,))[1], None
        total, _ = jax.lax.scan(add, jnp.zeros_like(v), parts)
        return total / n_chunks
    return matvec


def normalize(v: jax.Array, fallback: jax.Array) -> jax.Array:
    """v / |v|, or ``fallback`` (a unit vector) when |v| = 0: a zero Hessian (e.g. every ReLU
    dead) must give a finite estimate, not a NaN vector that would warm-start later ones."""
    norm = jnp.linalg.norm(v)
    ok = norm > jnp.finfo(v.dtype).tiny
    return jnp.where(ok, v / jnp.where(ok, norm, 1.0), fallback)


def start_vector(n: int, dtype=jnp.float32, key: int = POWER_KEY) -> jax.Array:
    v = jax.random.normal(jax.random.PRNGKey(key), (n,), dtype=dtype)
    return v / jnp.linalg.norm(v)


def _relative(err, value):
    """err / |value|, 0 where err = 0 (an exact answer, even value = 0), inf where value = 0."""
    safe = jnp.where(value == 0, 1.0, jnp.abs(value))
    return jnp.where(err == 0, 0.0, jnp.where(value == 0, jnp.inf, err / safe))


def _check_args(num_iters, tol, param="sharpness_iters"):
    if not isinstance(num_iters, jax.core.Tracer):  # power iteration's cap may be traced
        check_int(num_iters, param, minimum=1)
    check(is_real(tol) and 0 <= tol < float("inf"),
          "sharpness_tol", "a finite number >= 0 (0: always run to the cap)", tol)


def power_iteration(matvec: Callable, v0: jax.Array, num_iters: int = 20, tol: float = 1e-2,
                    active=True) -> Eig:
    """The paper's estimator: v <- H v / |H v|; value = <v, H v> (largest *magnitude*).

    Stops at the first product where the residual bound |Hv - value v| / |value| <= tol;
    ``num_iters`` caps the products (the paper's 20 iterations: tol = 0, num_iters = 20).
    Each product yields the value, its vector and its residual: n_matvec products in all.
    ``active`` False: no product (as ``lanczos``).
    """
    _check_args(num_iters, tol)
    dtype = v0.dtype
    v0 = normalize(v0, start_vector(v0.shape[0], dtype))
    floor = FLOOR * jnp.finfo(dtype).eps

    def cond(s):
        return (s[0] < num_iters) & ~s[-1] & active

    def body(s):
        i, v = s[0], s[1]
        w = matvec(v)
        value = jnp.vdot(v, w)
        r = jnp.linalg.norm(w - value * v)
        err = jnp.where(r == 0, 0.0, jnp.maximum(r, floor * jnp.linalg.norm(w)))
        bound = _relative(err, value)
        return i + 1, normalize(w, v), v, value, _relative(r, value), bound, bound <= tol

    zero, inf = jnp.zeros((), dtype), jnp.asarray(jnp.inf, dtype)
    i, _, vec, value, resid, bound, done = jax.lax.while_loop(
        cond, body, (jnp.int32(0), v0, v0, zero, inf, inf, jnp.asarray(False)))
    return Eig(value, vec, resid, i, done, bound)


def _tridiag_eig(alphas, betas, k, scale):
    """Eigen-decomposition of the leading k x k block of T = tridiag(betas, alphas, betas),
    divided by ``scale``: (theta [m] ascending, S [m, m]) in units of ``scale``.

    alphas, betas [m]; betas[j] couples j and j + 1. Entries past k are decoupled and placed at
    -4, below every eigenvalue of the live block (its entries are <= 1 in these units, so its
    eigenvalues lie in [-3, 3], Gershgorin). float64 when x64 is enabled."""
    m = alphas.shape[0]
    idx = jnp.arange(m)
    dt = jnp.float64 if jax.config.jax_enable_x64 else alphas.dtype
    s = jnp.where(scale > 0, scale, 1.0)
    a = jnp.where(idx < k, alphas / s, -4.0).astype(dt)
    b = jnp.where(idx[:-1] < k - 1, betas[:-1] / s, 0.0).astype(dt)
    T = jnp.diag(a) + jnp.diag(b, 1) + jnp.diag(b, -1)
    theta, S = jnp.linalg.eigh(T)
    S = jnp.where((idx < k)[:, None], S, 0.0)  # exact zeros outside the live block
    return theta.astype(alphas.dtype), S.astype(alphas.dtype)


def _ritz_bound(alphas, betas, k, scale, floor, gap_bound=False):
    """Relative error bound of the top Ritz value of T_k (k = products so far) and that value.

    Returns (theta_1 in absolute units, relative residual r / |theta_1|, relative bound)."""
    theta, S = _tridiag_eig(alphas, betas, k, scale)
    beta = betas[k - 1] / jnp.where(scale > 0, scale, 1.0)  # couples T_k to the next vector
    t1, t2 = theta[-1], theta[-2]
    r1 = beta * jnp.abs(S[k - 1, -1])
    r2 = beta * jnp.abs(S[k - 1, -2])
    delta = t1 - t2 - r2
    gap_ok = (k >= GAP_MIN_K) & (delta > 0) & gap_bound
    gap_bound = jnp.where(gap_ok, r1 ** 2 / jnp.where(gap_ok, delta, 1.0), jnp.inf)
    err = jnp.maximum(jnp.minimum(r1, gap_bound), floor)
    err = jnp.where(scale > 0, err, 0.0)  # H v = 0 on the whole Krylov space: exact
    value = t1 * scale
    return value, _relative(r1 * scale, value), _relative(err * scale, value)


def lanczos(matvec: Callable, v0: jax.Array, order: int = 20, tol: float = 1e-2,
            gap_bound: bool = False, active=True, above=None) -> Eig:
    """Largest algebraic eigenvalue by Lanczos with full re-orthogonalisation, stopped at the
    first step k whose bound (module docstring) is <= tol, or at k = ``order`` (the cap).
    By default it stops by the residual bound alone (rigorous); gap_bound=True also by the
    Kato-Temple gap estimate (about half the products on warm starts, not rigorous).

    n_matvec = k products: the residual comes from the recurrence, not from an extra product.
    tol = 0 runs to the cap (a fixed-order Lanczos). Works under jit / vmap / lax.map / scan:
    the basis is a static [order, n] buffer (padded to whole re-orthogonalisation blocks) and
    the steps a while_loop.

    Deciding instead of estimating (``train``'s early exit): ``above`` (a traced scalar) also stops
    the iteration at the first Ritz value > above. Ritz values never exceed lambda_1 and grow with
    k, so "lambda_1 > above" is then decided, with no error, whatever more products would give;
    that estimate is a lower bound, not one to ``tol`` (``converged`` says which). ``active``
    (traced bool) False: no product at all (n_matvec 0, value 0, bound inf, vector v0); under
    vmap the loop runs as long as its longest active lane, so inactive lanes cost nothing."""
    _check_args(order, tol)
    n, dtype = v0.shape[0], v0.dtype
    m = order
    eps = jnp.finfo(dtype).eps
    v0 = normalize(v0, start_vector(n, dtype))
    m_pad = -(-m // REORTH_BLOCK) * REORTH_BLOCK  # rows past m stay zero
    basis = jnp.zeros((m_pad, n), dtype).at[0].set(v0)
    zeros = jnp.zeros(m, dtype)

    def project_out(basis, w, live):
        """(w minus its components along the first ``live`` rows, basis): a block of rows at a
        time, so the cost follows the Krylov dimension reached, not the cap (rows past it are
        zero). The basis is carried through the loop and returned, not closed over: a loop that
        closes over it gets its own copy of the [cap, n] buffer, at every call (the outer loop
        then updates it), which cost more than a product at the book's sizes (bench/README.md)."""
        def block(i, wb):
            w, basis = wb
            V = jax.lax.dynamic_slice_in_dim(basis, i * REORTH_BLOCK, REORTH_BLOCK, axis=0)
            return w - (V @ w) @ V, basis  # not V.T @ (V @ w): XLA would materialise the transpose
        return jax.lax.fori_loop(0, (live + REORTH_BLOCK - 1) // REORTH_BLOCK, block, (w, basis))

    def cond(s):
        return (s["k"] < m) & ~s["done"] & active

    def body(s):
        j, basis = s["k"], s["basis"]
        v = basis[j]
        w = matvec(v)
        alpha = jnp.vdot(v, w)
        beta_prev = jnp.where(j > 0, s["betas"][jnp.maximum(j - 1, 0)], 0.0)
        w = w - alpha * v - beta_prev * basis[jnp.maximum(j - 1, 0)]
        for _ in range(2):  # full re-orthogonalisation, twice is enough (Kahan / Parlett)
            w, basis = project_out(basis, w, j + 1)
        beta = jnp.linalg.norm(w)
        scale = jnp.maximum(s["scale"], jnp.maximum(jnp.abs(alpha), beta))
        broke = beta <= BREAKDOWN * eps * scale
        alphas, betas = s["alphas"].at[j].set(alpha), s["betas"].at[j].set(beta)
        value, resid, bound = _ritz_bound(alphas, betas, j + 1, scale, FLOOR * eps, gap_bound)
        nxt = jnp.where(broke, 0.0, w / jnp.where(broke, 1.0, beta))
        basis = basis.at[jnp.minimum(j + 1, m - 1)].set(jnp.where(j + 1 < m, nxt, basis[m - 1]))
        return dict(k=j + 1, basis=basis, alphas=alphas, betas=betas, scale=scale,
                    done=(bound <= tol) | broke | (value > above), value=value, resid=resid,
                    bound=bound)

    inf = jnp.asarray(jnp.inf, dtype)
    above = inf if above is None else above
    s = jax.lax.while_loop(cond, body, dict(
        k=jnp.int32(0), basis=basis, alphas=zeros, betas=zeros, scale=jnp.zeros((), dtype),
        done=jnp.asarray(False), value=jnp.zeros((), dtype), resid=inf, bound=inf))
    _, S = _tridiag_eig(s["alphas"], s["betas"], s["k"], s["scale"])
    vector = normalize(jnp.pad(S[:, -1], (0, m_pad - m)) @ s["basis"], v0)  # no [:m] copy of the basis
    return Eig(s["value"], vector, s["resid"], s["k"], s["bound"] <= tol, s["bound"])


METHODS = ("lanczos", "power")


def top_eigenvalue(matvec: Callable, v0: jax.Array, method: str = "lanczos", num_iters: int = 20,
                   tol: float = 1e-2, gap_bound: bool = False, above=None, active=True) -> Eig:
    """Dispatch. ``num_iters`` caps the products (Lanczos order / power iterations); ``tol`` is
    the relative accuracy at which the estimate stops (0: always run to the cap); ``above``:
    Lanczos also stops once a Ritz value exceeds it (``lanczos``; power iteration ignores it);
    ``active`` False: no product."""
    check_choice(method, "sharpness_method", METHODS)
    if method == "lanczos":
        return lanczos(matvec, v0, num_iters, tol, gap_bound, active, above)
    return power_iteration(matvec, v0, num_iters, tol, active)


def loss_sharpness(loss_of_params: Callable, params, v0=None, method: str = "lanczos",
                   num_iters: int = 20, tol: float = 1e-2, gap_bound: bool = False,
                   above=None, active=True) -> Eig:
    """Top Hessian eigenvalue of ``loss_of_params`` at ``params`` (any pytree); the products
    share one linearization of the gradient (``linearized_hvp``)."""
    flat, f = flat_loss(loss_of_params, params)
    if v0 is None:
        v0 = start_vector(flat.shape[0], flat.dtype)
    return top_eigenvalue(linearized_hvp(f, flat), v0, method, num_iters, tol, gap_bound, above,
                          active)


def dense_hessian(loss_of_params: Callable, params) -> jax.Array:
    """The full [n, n] Hessian in raveled coordinates (tests and tiny models only)."""
    flat, f = flat_loss(loss_of_params, params)
    return jax.hessian(f)(flat)
