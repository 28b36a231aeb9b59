"""Top Hessian eigenvalue (the sharpness lambda^H) from Hessian-vector products.

All estimators take a ``matvec`` v [n] -> H v [n] on a flat parameter vector, are pure JAX
(``lax.fori_loop`` / ``lax.scan``) and so vmap over seeds and learning rates. Each returns an
``Eig`` with the estimate, its unit eigenvector, the residual |Hv - lambda v| / |lambda| (an
a-posteriori check that costs one extra product), the number of products and a converged flag.

* ``power_iteration`` is what the paper's code does (20 iterations from PRNGKey(24)). It finds
  the eigenvalue of largest *magnitude* and converges like (lambda_2 / lambda_1)^k, slowly when
  the spectral gap is small.
* ``lanczos`` (full re-orthogonalisation) builds an order-m Krylov basis and returns the largest
  *algebraic* Ritz value; for the same number of products it is far more accurate, which matters
  because c_sharp compares lambda_t / lambda_0 with 1 to two decimals.
* ``dense_hessian`` is the exact reference for tests on tiny networks (float64).
"""
from __future__ import annotations

from typing import Callable, NamedTuple

import jax
import jax.numpy as jnp
from jax.flatten_util import ravel_pytree

from .errors import check_choice, check_int

POWER_KEY = 24  # the paper's fixed start vector key


class Eig(NamedTuple):
    value: jax.Array        # [] estimate of the top eigenvalue
    vector: jax.Array       # [n] unit eigenvector estimate
    residual: jax.Array     # [] |H v - value v| / |value|
    n_matvec: jax.Array     # [] Hessian-vector products spent
    converged: jax.Array    # [] residual < tol


def flat_loss(loss_of_params: Callable, params):
    """(flat0 [n], L(flat) -> scalar): the loss as a function of the raveled parameters."""
    flat0, unravel = ravel_pytree(params)
    return flat0, lambda p: loss_of_params(unravel(p))


def hvp(f_flat: Callable, p: jax.Array) -> Callable[[jax.Array], jax.Array]:
    """v -> H(p) v by forward-over-reverse differentiation (no Hessian is ever formed)."""
    grad = jax.grad(f_flat)
    return lambda v: jax.jvp(grad, (p,), (v,))[1]


def _normalize(v: jax.Array, fallback: jax.Array) -> jax.Array:
    """v / |v|, or ``fallback`` (a unit vector) when |v| = 0: a zero Hessian (e.g. every ReLU
    dead) must give a finite estimate, not a NaN vector that would warm-start later ones."""
    norm = jnp.linalg.norm(v)
    ok = norm > jnp.finfo(v.dtype).tiny
    return jnp.where(ok, v / jnp.where(ok, norm, 1.0), fallback)


def start_vector(n: int, dtype=jnp.float32, key: int = POWER_KEY) -> jax.Array:
    v = jax.random.normal(jax.random.PRNGKey(key), (n,), dtype=dtype)
    return v / jnp.linalg.norm(v)


def _residual(hv, value, vector):
    """|Hv - value v| / |value| (guarded against value = 0)."""
    return jnp.linalg.norm(hv - value * vector) / jnp.maximum(jnp.abs(value), jnp.finfo(vector.dtype).tiny)


def _finish(matvec, value, vector, n, tol) -> Eig:
    residual = _residual(matvec(vector), value, vector)
    return Eig(value, vector, residual, jnp.asarray(n + 1), residual < tol)


def power_iteration(matvec: Callable, v0: jax.Array, num_iters: int = 20, tol: float = 1e-2) -> Eig:
    """The paper's estimator: v <- H v / |v| repeated, lambda = <v, Hv> at the end.

    Returns the eigenvalue of largest magnitude (if the most negative eigenvalue dominates,
    that is what it finds: see the tests). Costs num_iters + 1 products (+1 for the residual).
    """
    v0 = _normalize(v0, v0)

    def body(_, v):
        return matvec(_normalize(v, v0))
    v = jax.lax.fori_loop(0, num_iters, body, v0)
    v = _normalize(v, v0)
    hv = matvec(v)
    value = jnp.vdot(v, hv)
    residual = _residual(hv, value, v)
    return Eig(value, v, residual, jnp.asarray(num_iters + 1), residual < tol)


def lanczos_tridiag(matvec: Callable, v0: jax.Array, order: int):
    """Order-m Lanczos with full re-orthogonalisation.

    Returns (alphas [m], betas [m-1], basis V [m, n]) with V orthonormal and
    T = tridiag(betas, alphas, betas) = V H V^T. A breakdown (beta ~ 0, an invariant subspace)
    leaves zero rows in V, which only adds zero Ritz values.
    """
    n = v0.shape[0]
    dtype = v0.dtype
    tiny = jnp.finfo(dtype).eps * 10
    basis = jnp.zeros((order, n), dtype).at[0].set(v0 / jnp.linalg.norm(v0))

    def step(carry, j):
        basis, beta_prev = carry
        v = basis[j]
        w = matvec(v)
        alpha = jnp.vdot(v, w)
        w = w - alpha * v - beta_prev * jnp.where(j > 0, basis[jnp.maximum(j - 1, 0)], 0.0)
        for _ in range(2):  # twice is enough (Kahan / Parlett)
            w = w - basis.T @ (basis @ w)
        beta = jnp.linalg.norm(w)
        nxt = jnp.where(beta > tiny, w / jnp.where(beta > tiny, beta, 1.0), 0.0)
        # update one row in place (a where over the whole basis would copy it every step)
        last = jnp.minimum(j + 1, order - 1)
        basis = basis.at[last].set(jnp.where(j + 1 < order, nxt, basis[last]))
        return (basis, beta), (alpha, beta)

    (basis, _), (alphas, betas) = jax.lax.scan(step, (basis, jnp.zeros((), dtype)), jnp.arange(order))
    return alphas, betas[:-1], basis


def lanczos(matvec: Callable, v0: jax.Array, order: int = 20, tol: float = 1e-2) -> Eig:
    """Largest algebraic eigenvalue from an order-m Lanczos run (m + 1 products with the residual)."""
    alphas, betas, basis = lanczos_tridiag(matvec, v0, order)
    # After a breakdown (beta ~ 0) the Krylov space is invariant and the remaining steps are
    # empty: move their diagonal entries below every live Ritz value (Rayleigh quotients lie in
    # [min alpha_live, max alpha_live] ... within the live block's spectrum), so they can never
    # be returned as the top eigenvalue.
    tiny = jnp.finfo(alphas.dtype).eps * 10
    alive = jnp.concatenate([jnp.ones(1, bool), jnp.cumprod(betas > tiny).astype(bool)])
    live_min = jnp.min(jnp.where(alive, alphas, jnp.inf))
    live_max = jnp.max(jnp.where(alive, alphas, -jnp.inf))
    alphas = jnp.where(alive, alphas, live_min - (live_max - live_min) - 1.0)
    betas = jnp.where(alive[1:], betas, 0.0)
    tri = jnp.diag(alphas) + jnp.diag(betas, 1) + jnp.diag(betas, -1)
    theta, s = jnp.linalg.eigh(tri)
    value = theta[-1]
    v0n = _normalize(v0, v0)
    vector = _normalize(basis.T @ s[:, -1], v0n)
    return _finish(matvec, value, vector, order, tol)


METHODS = ("lanczos", "power")


def top_eigenvalue(matvec: Callable, v0: jax.Array, method: str = "lanczos", num_iters: int = 20,
                   tol: float = 1e-2) -> Eig:
    """Dispatch: ``num_iters`` is the Lanczos order or the number of power iterations."""
    check_choice(method, "sharpness_method", METHODS)
    check_int(num_iters, "sharpness_iters", minimum=2)
    if method == "lanczos":
        return lanczos(matvec, v0, num_iters, tol)
    return power_iteration(matvec, v0, num_iters, tol)


def loss_sharpness(loss_of_params: Callable, params, v0=None, method: str = "lanczos",
                   num_iters: int = 20, tol: float = 1e-2) -> Eig:
    """Top Hessian eigenvalue of ``loss_of_params`` at ``params`` (any pytree)."""
    flat, f = flat_loss(loss_of_params, params)
    if v0 is None:
        v0 = start_vector(flat.shape[0], flat.dtype)
    return top_eigenvalue(hvp(f, flat), v0, method, num_iters, tol)


def dense_hessian(loss_of_params: Callable, params) -> jax.Array:
    """The full [n, n] Hessian in raveled coordinates (tests and tiny models only)."""
    flat, f = flat_loss(loss_of_params, params)
    return jax.hessian(f)(flat)
