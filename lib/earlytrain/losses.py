"""Losses, normalised as in the paper's code (SPEC 2).

MSE is ``0.5 * mean((f - y)**2)`` over examples *and* the k = 10 outputs, so that with a
critical initialisation L_0 = O(1) (and L_0 = 0.05 exactly when the output is zero).
"""
from __future__ import annotations

from typing import Callable

import jax.numpy as jnp
import optax

from .errors import check_choice


def mse(f: jnp.ndarray, y: jnp.ndarray) -> jnp.ndarray:
    """f, y: [B, k] -> scalar 0.5 * mean((f - y)^2)."""
    return 0.5 * jnp.mean((f - y) ** 2)


def xent(f: jnp.ndarray, y: jnp.ndarray) -> jnp.ndarray:
    """f: logits [B, k], y: one-hot [B, k] -> mean softmax cross-entropy."""
    return jnp.mean(optax.softmax_cross_entropy(f, y))


def accuracy(f: jnp.ndarray, y: jnp.ndarray) -> jnp.ndarray:
    return jnp.mean(jnp.argmax(f, -1) == jnp.argmax(y, -1))


LOSSES: dict[str, Callable] = {"mse": mse, "xent": xent}


def get(name: str) -> Callable[[jnp.ndarray, jnp.ndarray], jnp.ndarray]:
    check_choice(name, "loss", LOSSES)
    return LOSSES[name]
