"""The weight initializers of the book's architectures: JAX's own (``jax.nn.initializers``), with
the same draws, bit for bit, whether they run eagerly or inside a compiled program.

Why this module: ``models.init_many`` initialises the networks of a sweep point by one compiled
program (compiling the eager ops of a Flax ``init`` one at a time cost 0.4 s per point on this
CPU). Compiled, JAX's ``normal(std)`` returns other bits than eagerly: XLA folds the scaling into
the sampler's own constants ((sqrt(2) erfinv(u)) * std becomes erfinv(u) * (sqrt(2) std)), one
rounding apart in about half of the weights. A run from those weights differs in the last bits,
and a chaotic run visibly after a few steps. Here the sample is put behind an optimization
barrier before it is scaled, so the scaling is the separate multiplication the eager code does
(tests/test_models.py: each initializer against JAX's, and compiled against eager, for every
architecture).

Every initializer has JAX's signature ``init(key, shape, dtype=None)`` (dtype None: the default
float type, float64 under x64) and JAX's arithmetic for the scale.
"""
from __future__ import annotations

import math

import jax
import jax.numpy as jnp

from .errors import check_choice

TRUNCATED_STD = 0.87962566103423978  # std of a standard normal truncated to (-2, 2) (JAX's constant)
DISTRIBUTIONS = ("normal", "truncated_normal")


def _dtype(dtype):
    return jnp.result_type(float) if dtype is None else dtype


def _sample(sample: jax.Array) -> jax.Array:
    """``sample`` unchanged, opaque to XLA's optimiser: what multiplies it afterwards is not
    folded into the sampler's arithmetic (see the module docstring)."""
    return jax.lax.optimization_barrier(sample)


def normal(stddev: float):
    """``jax.nn.initializers.normal(stddev)``: N(0, stddev^2)."""
    def init(key, shape, dtype=None):
        dtype = _dtype(dtype)
        return _sample(jax.random.normal(key, shape, dtype)) * jnp.array(stddev, dtype)
    return init


def fan_in_scaling(scale: float, distribution: str):
    """``jax.nn.initializers.variance_scaling(scale, "fan_in", distribution)`` for a kernel whose
    last axis is the output and second-to-last the input (Dense [in, out], Conv [kh, kw, in, out]):
    variance scale / fan_in, fan_in = the product of all axes but the last. ``distribution``:
    "normal" or "truncated_normal" (at two standard deviations, rescaled to that variance)."""
    check_choice(distribution, "distribution", DISTRIBUTIONS)

    def init(key, shape, dtype=None):
        dtype = _dtype(dtype)
        receptive = math.prod(shape) / shape[-2] / shape[-1]  # JAX's arithmetic, in this order
        variance = jnp.array(scale / (shape[-2] * receptive), dtype=dtype)
        if distribution == "truncated_normal":
            stddev = jnp.sqrt(variance) / jnp.array(TRUNCATED_STD, dtype)
            return _sample(jax.random.truncated_normal(key, -2, 2, shape, dtype)) * stddev
        return _sample(jax.random.normal(key, shape, dtype)) * jnp.sqrt(variance)
    return init


def lecun_normal():
    """``jax.nn.initializers.lecun_normal()`` (Flax's default kernel init): truncated normal of
    variance 1 / fan_in."""
    return fan_in_scaling(1.0, "truncated_normal")
