"""Fixed-order Lanczos recurrences for the benchmarks' references (run as scripts, so this
directory is on sys.path): one long run whose prefixes give the Ritz value of every smaller order."""
from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np


def tridiag(mv, v0, order):
    """(alphas [order], betas [order]) of ``order`` Lanczos steps with full re-orthogonalisation
    (tol = 0: no stopping rule), jitted; betas[j] couples steps j and j + 1."""
    def run(v):
        n, m = v.shape[0], order
        basis = jnp.zeros((m + 1, n), v.dtype).at[0].set(v / jnp.linalg.norm(v))

        def step(basis, j):
            w = mv(basis[j])
            alpha = jnp.vdot(basis[j], w)
            for _ in range(2):
                w = w - basis.T @ (basis @ w)
            beta = jnp.linalg.norm(w)
            return basis.at[j + 1].set(w / beta), (alpha, beta)
        _, (a, b) = jax.lax.scan(step, basis, jnp.arange(m))
        return a, b
    return jax.jit(run)(v0)


def ritz_top(alphas, betas, k):
    """Top Ritz value after k steps, from the prefix of a longer run (float64 eigvalsh)."""
    a, b = np.asarray(alphas[:k], float), np.asarray(betas[: k - 1], float)
    return np.linalg.eigvalsh(np.diag(a) + np.diag(b, 1) + np.diag(b, -1))[-1]
