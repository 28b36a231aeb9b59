"""Memory check before compute: estimate the peak memory of one (depth, width) point of a sweep and
reject what cannot fit with a ConfigError naming the parameters to lower.

The estimate (bytes of the float dtype, x4 for float32) is the sum of
  * data:        the SGD pool, n_train x input size (held on the device for the whole point);
  * parameters:  S initialisations of P parameters;
  * lambda_0:    S vmapped measurements (under the CPU's "map" batching, ``train.cpu_threads()``
                 at a time), each with a Lanczos basis of 2 x sharpness_iters vectors
                 of size P plus a few work vectors, and the activations of the examples of one
                 Hessian-vector product (n_measure, or hvp_chunk of them);
  * runs:        the runs evaluated at once (``train.cpu_threads()`` with the "map" batching of the CPU;
                 S x c_chunk, or the whole c grid for the loss runs of search="grid", with "vmap"),
                 each with params, gradient, updated params and the warm-start vector, a Lanczos
                 basis of sharpness_iters vectors and the activations of batch_size + n_measure
                 (or hvp_chunk) examples (x4: forward, backward, forward-over-reverse for Hessian products).

P and the activations are read from the model itself, whatever it is (the book's FCN or CNNs, or
a network of one's own), without allocating anything: P from ``jax.eval_shape`` of its init, the
activations per example as the difference between the values its forward pass creates for a batch
of two examples and for one (``jax.make_jaxpr``: every intermediate array, nested calls
included). A width of 10^7 is measured, not built. The check is meant to stop gross mistakes
(31 GB on a 24 GB machine), not to size a run to the last megabyte.

The limit (``limit_bytes``) is ``EARLYTRAIN_MEMORY_LIMIT`` (bytes, or with a suffix K, M, G, T)
if set, else the memory available now: on an accelerator, the device's own allocator statistics
(``device_limit``), on the CPU, MemAvailable.

Accelerators and XLA's preallocation. By default JAX's GPU client reserves
``XLA_PYTHON_CLIENT_MEM_FRACTION`` (0.75) of the device's memory at its first allocation
(``XLA_PYTHON_CLIENT_PREALLOCATE``, default true) and serves every array from that pool. The
system's view of free memory (nvidia-smi) then says the device is nearly full before the first
sweep, while the pool is almost empty. So the limit is read from the allocator, never from the
system: ``bytes_limit`` (the pool, the fraction of the device it may use, preallocated or not)
minus ``bytes_in_use`` (the live arrays of this process). Without preallocation the pool's
limit is the same fraction; the memory another process holds is not seen (it fails at
allocation, as it would anyway).

Per-batch sizes. With ``c_chunk=None`` in a SweepConfig, the runs vmapped together when measuring
sharpness follow the device's memory: ``auto_c_chunk`` picks the largest chunk (up to the c grid)
whose point fits in ``FILL`` of the limit, so a paper-preset point on a large GPU runs in large
batches instead of 8 at a time. With the sequential "map" batching of the CPU a chunk costs no
memory and the default of 8 is kept. With ``TrainConfig.hvp_chunk=None`` the examples of one
Hessian-vector product likewise follow the memory (``auto_hvp_chunk``, resolved first): all of
n_measure when they fit, else the largest divisor of it that fits.
"""
from __future__ import annotations

import functools
import math
import os

import jax
import jax.numpy as jnp

try:
    import psutil  # optional: without it the CPU's limit is unknown
except ImportError:  # pragma: no cover
    psutil = None

from . import data, models, search, train
from .errors import ConfigError, check

_SUFFIX = {"": 1, "K": 2**10, "M": 2**20, "G": 2**30, "T": 2**40}
FILL = 0.8          # share of the limit an automatically sized point may fill
AUTO_CHUNK_CPU = 8  # c_chunk=None under the "map" batching (CPU): runs one at a time anyway


def device_limit(stats: dict | None) -> float:
    """Bytes this process may still allocate on an accelerator, from its ``memory_stats()``:
    ``bytes_limit - bytes_in_use`` (see the module docstring on preallocation); inf when the
    allocator does not report a limit (e.g. ``XLA_PYTHON_CLIENT_ALLOCATOR=platform``)."""
    stats = stats or {}
    if "bytes_limit" not in stats:
        return math.inf
    return max(0.0, float(stats["bytes_limit"]) - float(stats.get("bytes_in_use", 0)))


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
    dev = jax.devices()[0]
    if dev.platform != "cpu":
        return device_limit(dev.memory_stats())
    return math.inf if psutil is None else float(psutil.virtual_memory().available)


def _jaxpr_floats(jaxpr) -> int:
    """Elements of every value a jaxpr creates. A call with a jaxpr of its own (pjit, custom_jvp:
    jax.nn.relu is one) counts the values its body creates, not its outputs again."""
    total = 0
    for eqn in jaxpr.eqns:
        inner = [getattr(sub, "jaxpr", sub) for p in eqn.params.values()
                 for sub in (p if isinstance(p, (list, tuple)) else (p,))]
        inner = [j for j in inner if hasattr(j, "eqns")]
        if inner:
            total += max(_jaxpr_floats(j) for j in inner)  # custom_jvp: the primal and its rule
        else:
            total += sum(math.prod(v.aval.shape) for v in eqn.outvars if hasattr(v.aval, "shape"))
    return total


@functools.lru_cache(maxsize=64)
def model_shapes(spec, input_shape: tuple) -> tuple[int, int, tuple]:
    """(P parameters, activations per example, output shape per example) of the model of ``spec``
    (a ModelConfig or a Network at its point) on inputs of ``input_shape``, without allocating."""
    model = models.build(spec)
    key = jax.random.PRNGKey(0)
    x1 = jax.ShapeDtypeStruct((1,) + tuple(input_shape), jnp.float32)
    x2 = jax.ShapeDtypeStruct((2,) + tuple(input_shape), jnp.float32)
    params, aux = jax.eval_shape(model.init, key, x1)
    P = sum(math.prod(p.shape) for p in jax.tree_util.tree_leaves(params))
    out = jax.eval_shape(model.apply, params, aux, x1)
    a1, a2 = (_jaxpr_floats(jax.make_jaxpr(model.apply)(params, aux, x).jaxpr) for x in (x1, x2))
    return P, max(a2 - a1, 1), tuple(out.shape[1:])


def check_output(cfg, depth: int, width: int) -> None:
    """ConfigError if the model's output per example is not the data's targets [k]."""
    _, _, out = model_shapes(cfg.model.at(depth, width), data.example_shape(cfg.dataset))
    k = data.n_targets(cfg.dataset)
    check(out == (k,), "model", f"outputs of shape [B, {k}] (the targets y of {cfg.dataset} have {k} "
          "values per example; a ModelConfig sets them with n_out)", f"[B, {', '.join(map(str, out))}]")


def point_bytes(cfg, depth: int, width: int, c_chunk: int | None = None,
                hvp_chunk: int | None = None) -> dict[str, float]:
    """Estimated bytes of each term of the peak memory of the point (depth, width) of ``cfg``
    (a SweepConfig): {"data", "parameters", "lambda_0", "runs"}. ``c_chunk`` and ``hvp_chunk``
    override the config's (None there: ``auto_c_chunk``, ``auto_hvp_chunk``; the smallest, 1,
    when neither says). A Hessian-vector product holds the activations of ``hvp_chunk`` of the
    n_measure examples at a time (all of them without chunking)."""
    shape = data.example_shape(cfg.dataset)
    item = jnp.dtype(jnp.result_type(float)).itemsize
    P, act1, out = model_shapes(cfg.model.at(depth, width), shape)
    S, n, k = len(cfg.seeds), len(cfg.c_grid), cfg.train.sharpness_iters
    act = 4 * act1  # per example: forward + backward + forward-over-reverse for HVPs
    B = cfg.n_train if cfg.train.optimizer == "gd" else cfg.train.batch_size
    M = cfg.n_measure
    h = min(M, hvp_chunk or cfg.train.hvp_chunk or 1)
    chunk = c_chunk or cfg.c_chunk or 1
    if train.default_batching() == "map":  # one run per call, train.cpu_threads() calls at once
        threads = train.cpu_threads()
        at_once, lam0_at_once = min(threads, S * n), min(threads, S)
    else:
        lam0_at_once = S
        loss_k = {"grid": n, "coarse_to_fine": math.ceil(n / cfg.stride)}.get(cfg.search, 1)
        at_once = S * max(min(chunk, n), loss_k)
    assert cfg.search in search.STRATEGIES
    return {"data": item * cfg.n_train * (math.prod(shape) + math.prod(out)),
            "parameters": item * S * P,
            "lambda_0": item * lam0_at_once * ((2 * k + 4) * P + h * act),
            # a step's batch, the forward pass of the loss measurement, a product's chunk
            "runs": item * at_once * ((k + 4) * P + B * act + M * act1 + h * act)}


def _need(parts: dict) -> float:
    return parts["data"] + parts["parameters"] + max(parts["lambda_0"], parts["runs"])


def auto_c_chunk(cfg, depth: int, width: int, have: float | None = None) -> int:
    """Runs per vmapped batch for ``c_chunk=None``: the largest (up to the c grid) whose point
    needs at most ``FILL`` x ``have`` (default ``limit_bytes()``) with the config's ``hvp_chunk``
    (resolve that first: ``auto_hvp_chunk``); 1 if even one run does not fit (``check_point``
    then reports it); ``AUTO_CHUNK_CPU`` under the sequential "map" batching."""
    if train.default_batching() == "map":
        return AUTO_CHUNK_CPU
    have = limit_bytes() if have is None else have
    n = len(cfg.c_grid)
    if _need(point_bytes(cfg, depth, width, n)) <= FILL * have:
        return n
    lo, hi = 1, n  # need(lo) fits or lo = 1; need(hi) does not fit
    while hi - lo > 1:
        mid = (lo + hi) // 2
        lo, hi = (mid, hi) if _need(point_bytes(cfg, depth, width, mid)) <= FILL * have else (lo, mid)
    return lo


def auto_hvp_chunk(cfg, depth: int, width: int, have: float | None = None) -> int:
    """Examples per Hessian-vector-product chunk for ``TrainConfig.hvp_chunk=None`` in a sweep:
    n_measure (no chunking: one linearization shared by a measurement's products, the fastest)
    if the point fits in ``FILL`` x ``have`` (default ``limit_bytes()``) that way, else the
    largest divisor of n_measure that fits (each product then re-runs the chunks' passes), with
    the config's ``c_chunk`` runs at once (1 when it is None: the runs per batch are sized after
    this, ``auto_c_chunk``); 1 if nothing fits (``check_point`` then reports it). The shapes come
    from ``model_shapes`` (``jax.eval_shape``: nothing is allocated)."""
    have = limit_bytes() if have is None else have
    M = cfg.n_measure
    for h in sorted((d for d in range(1, M + 1) if M % d == 0), reverse=True):
        if _need(point_bytes(cfg, depth, width, cfg.c_chunk or 1, h)) <= FILL * have:
            return h
    return 1


# the parameters that shrink each term, named in the error
_LOWER = {"data": "n_train", "parameters": "widths / depths, seeds",
          "lambda_0": "widths / depths, sharpness_iters, seeds, hvp_chunk",
          "runs": "widths / depths, sharpness_iters, c_chunk, batch_size, hvp_chunk"}


def check_point(cfg, depth: int, width: int) -> None:
    """ConfigError if the model's output does not match the data's targets, or if the point
    (depth, width) of ``cfg`` needs more memory than ``limit_bytes()``."""
    check_output(cfg, depth, width)
    parts = point_bytes(cfg, depth, width, 1 if cfg.c_chunk is None else None,
                        1 if cfg.train.hvp_chunk is None else None)
    need = _need(parts)
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
