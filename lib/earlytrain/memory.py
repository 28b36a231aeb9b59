"""Memory check before compute: estimate the peak memory of one (depth, width) point of a sweep and
reject what cannot fit with a ConfigError naming the parameters to lower.

The estimate (bytes of the float dtype, x4 for float32) is the sum of
  * data:        the SGD pool, n_train x input size (held on the device for the whole point);
  * parameters:  S initialisations of P parameters (``jax.eval_shape`` of the model's init: no
                 allocation, so a width of 10^7 is measured, not built);
  * lambda_0:    S vmapped measurements, each with a Lanczos basis of 2 x sharpness_iters vectors
                 of size P plus a few work vectors, and the activations of n_measure examples;
  * runs:        the runs evaluated at once (1 with the sequential "map" batching of the CPU;
                 S x c_chunk, or the whole c grid for the loss runs of search="grid", with "vmap"),
                 each with params, gradient, updated params and the warm-start vector, a Lanczos
                 basis of sharpness_iters vectors and the activations of batch_size + n_measure
                 examples (x4: forward, backward, forward-over-reverse for Hessian products).
Activations per example are width x depth for an FCN and H x W x width x depth for a CNN: a
rough upper figure; the check is meant to stop gross mistakes (31 GB on a 24 GB machine), not to
size a run to the last megabyte.

The limit is ``EARLYTRAIN_MEMORY_LIMIT`` (bytes, or with a suffix K, M, G, T) if set, else the
memory available now (the device's ``bytes_limit`` on an accelerator, MemAvailable on the CPU).
"""
from __future__ import annotations

import functools
import math
import os

from .errors import ConfigError

_SUFFIX = {"": 1, "K": 2**10, "M": 2**20, "G": 2**30, "T": 2**40}


def limit_bytes() -> float:
    """The memory a point may use (see the module docstring); inf when it cannot be told."""
    env = os.environ.get("EARLYTRAIN_MEMORY_LIMIT", "").strip().upper().removesuffix("B")
    if env:
        num, suf = (env[:-1], env[-1]) if env[-1] in _SUFFIX and env[-1].isalpha() else (env, "")
        try:
            return float(num) * _SUFFIX[suf]
        except ValueError:
            raise ConfigError(f"EARLYTRAIN_MEMORY_LIMIT: expected a number of bytes, optionally with "
                              f"a suffix K, M, G or T (e.g. 8G), got {os.environ['EARLYTRAIN_MEMORY_LIMIT']!r}")
    import jax
    dev = jax.devices()[0]
    if dev.platform != "cpu":
        stats = dev.memory_stats() or {}
        if "bytes_limit" in stats:
            return float(stats["bytes_limit"]) - float(stats.get("bytes_in_use", 0))
    try:
        import psutil
        return float(psutil.virtual_memory().available)
    except ImportError:
        return math.inf


@functools.lru_cache(maxsize=64)
def _param_count(model_cfg, input_shape: tuple) -> int:
    import jax
    import jax.numpy as jnp
    from . import models
    model = models.build(model_cfg)
    params, _ = jax.eval_shape(model.init, jax.random.PRNGKey(0),
                               jax.ShapeDtypeStruct((1,) + input_shape, jnp.float32))
    return sum(math.prod(p.shape) for p in jax.tree_util.tree_leaves(params))


def point_bytes(cfg, depth: int, width: int) -> dict[str, float]:
    """Estimated bytes of each term of the peak memory of the point (depth, width) of ``cfg``
    (a SweepConfig): {"data", "parameters", "lambda_0", "runs"}."""
    import jax.numpy as jnp
    from . import data, search, train
    shape = data.SHAPES[cfg.dataset]
    item = jnp.dtype(jnp.result_type(float)).itemsize
    P = _param_count(cfg.model.replace(depth=depth, width=width), shape)
    S, n, k = len(cfg.seeds), len(cfg.c_grid), cfg.train.sharpness_iters
    hw = shape[0] * shape[1] if cfg.model.arch != "fcn" else 1
    act = 4 * (hw * width * depth + cfg.model.n_out)  # per example, forward + backward + HVP
    B = cfg.n_train if cfg.train.optimizer == "gd" else cfg.train.batch_size
    M = cfg.n_measure
    if train.default_batching() == "map":
        at_once = 1
    else:
        loss_k = {"grid": n, "coarse_to_fine": math.ceil(n / cfg.stride)}.get(cfg.search, 1)
        at_once = S * max(min(cfg.c_chunk, n), loss_k)
    assert cfg.search in search.STRATEGIES
    return {"data": item * cfg.n_train * (math.prod(shape) + cfg.model.n_out),
            "parameters": item * S * P,
            "lambda_0": item * S * ((2 * k + 4) * P + M * act),
            "runs": item * at_once * ((k + 4) * P + (B + M) * act)}


# the parameters that shrink each term, named in the error
_LOWER = {"data": "n_train", "parameters": "widths / depths, seeds",
          "lambda_0": "widths / depths, sharpness_iters, seeds, n_measure",
          "runs": "widths / depths, sharpness_iters, c_chunk, batch_size, n_measure"}


def check_point(cfg, depth: int, width: int) -> None:
    """ConfigError if the point (depth, width) of ``cfg`` needs more memory than ``limit_bytes()``."""
    parts = point_bytes(cfg, depth, width)
    need = parts["data"] + parts["parameters"] + max(parts["lambda_0"], parts["runs"])
    have = limit_bytes()
    if need > have:
        gb = lambda b: f"{b / 2**30:.3g} GB"
        terms = sorted(parts.items(), key=lambda kv: -kv[1])
        raise ConfigError(
            f"memory: the point depth {depth}, width {width} needs about {gb(need)} "
            f"({', '.join(f'{k} {gb(v)}' for k, v in terms)}), more than the {gb(have)} available "
            f"(EARLYTRAIN_MEMORY_LIMIT or free memory); lower {_LOWER[terms[0][0]]} "
            f"(the largest term: {terms[0][0]}), or raise EARLYTRAIN_MEMORY_LIMIT if the estimate is too high")


def check_sweep(cfg) -> None:
    """``check_point`` for every (depth, width) of ``cfg`` (before the first is computed)."""
    for d in cfg.depths:
        for w in cfg.widths:
            check_point(cfg, d, w)
