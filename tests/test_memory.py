"""The memory guard: the estimate of any model from jax.eval_shape / its jaxpr (no allocation), the
accelerator's limit read from its allocator with XLA's preallocation in mind, and the per-batch
size (c_chunk=None) following the device's memory. Accelerator numbers are injected, so this runs
on the CPU."""
from __future__ import annotations

import math

import flax.linen as nn
import jax
import jax.numpy as jnp
import pytest

from earlytrain import memory, models, sweep, train
from earlytrain.errors import ConfigError

GB = 2**30


class Wide(nn.Module):
    width: int

    @nn.compact
    def __call__(self, x):
        h = nn.LayerNorm()(nn.relu(nn.Dense(self.width)(x.reshape(x.shape[0], -1))))
        return nn.Dense(10)(h)


def test_user_model_shapes_from_eval_shape_without_allocating():
    spec = models.network(Wide(width=64))
    P, act, out = memory.model_shapes(spec, (28, 28, 1))
    params, _ = models.build(spec).init(jax.random.PRNGKey(0), jnp.zeros((2, 28, 28, 1)))
    assert P == models.num_params(params) == 784 * 64 + 64 + 2 * 64 + 64 * 10 + 10
    assert out == (10,)
    # activations per example: affine in the width, with at least the dense layer's output and
    # its ReLU per hidden unit, and at least the flattened input besides
    act2 = memory.model_shapes(models.network(Wide(width=128)), (28, 28, 1))[1]
    act4 = memory.model_shapes(models.network(Wide(width=256)), (28, 28, 1))[1]
    slope = (act2 - act) / 64
    assert act4 - act2 == 2 * (act2 - act) and slope >= 2
    assert act - 64 * slope >= 784 + 10
    # a width whose parameters would take 4e14 bytes is measured, not built
    huge = models.network(Wide(width=10**8))
    assert memory.model_shapes(huge, (28, 28, 1))[0] > 7.8e10


def test_book_models_and_user_models_share_the_estimate():
    fcn = models.ModelConfig(depth=3, width=32)
    as_user = models.network(models.FCN(depth=3, width=32))
    assert memory.model_shapes(fcn, (28, 28, 1)) == memory.model_shapes(as_user, (28, 28, 1))


@pytest.mark.parametrize("stats,expected", [
    # preallocation on (default): the pool (75 % of 141 GB) is reserved up front, barely used
    ({"bytes_limit": int(0.75 * 141e9), "bytes_in_use": 2**20, "bytes_reserved": int(0.75 * 141e9)},
     0.75 * 141e9 - 2**20),
    # XLA_PYTHON_CLIENT_MEM_FRACTION=0.5, arrays of another sweep still alive
    ({"bytes_limit": int(0.5 * 80e9), "bytes_in_use": int(10e9)}, 0.5 * 80e9 - 10e9),
    # the platform allocator reports no limit: unknown
    ({"bytes_in_use": 5}, math.inf),
    (None, math.inf),
])
def test_device_limit_reads_the_allocator_not_the_system(stats, expected):
    assert memory.device_limit(stats) == pytest.approx(expected, rel=1e-12)


class FakeGPU:
    platform = "gpu"

    def __init__(self, stats):
        self.stats = stats

    def memory_stats(self):
        return self.stats


def test_limit_bytes_on_an_accelerator(monkeypatch):
    monkeypatch.delenv("EARLYTRAIN_MEMORY_LIMIT", raising=False)
    monkeypatch.setattr(jax, "devices", lambda: [FakeGPU({"bytes_limit": 60 * GB, "bytes_in_use": 4 * GB})])
    assert memory.limit_bytes() == 56 * GB
    monkeypatch.setenv("EARLYTRAIN_MEMORY_LIMIT", "3G")  # the user's setting wins
    assert memory.limit_bytes() == 3 * GB


CFG = sweep.from_params(dataset="mnist", depths=[4], widths=[512], seeds=[1, 2, 3, 4], x_min=0.0, x_max=12.0,
                        x_step=0.1, c_chunk=None)


def test_batch_size_follows_device_memory(monkeypatch):
    monkeypatch.setattr(train, "default_batching", lambda: "vmap")
    n = len(CFG.c_grid)
    sizes = [memory.auto_c_chunk(CFG, 4, 512, have) for have in (0.05 * GB, 0.5 * GB, 4 * GB, 1000 * GB)]
    assert sizes == sorted(sizes) and sizes[0] < sizes[-1] == n, sizes
    for have, k in zip((0.05 * GB, 0.5 * GB, 4 * GB), sizes):
        need = lambda c: memory._need(memory.point_bytes(CFG, 4, 512, c))
        assert k == 1 or need(k) <= memory.FILL * have  # the chosen chunk fits ...
        assert k == n or need(k + 1) > memory.FILL * have  # ... and the next one does not
    # with the sequential "map" batching (the CPU) a chunk costs no memory: the fixed default
    monkeypatch.setattr(train, "default_batching", lambda: "map")
    assert memory.auto_c_chunk(CFG, 4, 512, 0.05 * GB) == memory.AUTO_CHUNK_CPU


def test_c_chunk_none_is_checked_at_one_run(monkeypatch):
    """c_chunk=None cannot make a point fail the check: the smallest batch is the one checked."""
    monkeypatch.setattr(train, "default_batching", lambda: "vmap")
    one = memory._need(memory.point_bytes(CFG, 4, 512, 1))
    monkeypatch.setenv("EARLYTRAIN_MEMORY_LIMIT", str(int(one * 1.01)))
    memory.check_point(CFG, 4, 512)
    with pytest.raises(ConfigError, match="^memory:"):
        memory.check_point(CFG.replace(c_chunk=64), 4, 512)


def test_point_takes_its_batch_size_from_the_device(monkeypatch):
    """A Point of a sweep with c_chunk=None runs with the chunk ``auto_c_chunk`` gives for it,
    while the configuration (hence the cache key) keeps None."""
    import numpy as np
    from earlytrain import data
    rng = np.random.RandomState(0)
    arrays = data.arrays(rng.randn(32, 4).astype(np.float32), rng.randint(0, 3, 32))
    cfg = sweep.SweepConfig(dataset=arrays, n_train=32, n_measure=16, seeds=(1,), depths=(1,), widths=(1,),
                            x_max=2.0, x_step=1.0, T1=2, c_chunk=None, model=models.network(nn.Dense(3)),
                            train=train.TrainConfig(batch_size=8, num_steps=2, sharpness_iters=5))
    asked = []
    monkeypatch.setattr(memory, "auto_c_chunk", lambda c, d, w: asked.append((c.c_chunk, d, w)) or 3)
    pt = sweep.Point(cfg, 1, 1)
    assert asked == [(None, 1, 1)] and pt.cfg.c_chunk == 3 and cfg.c_chunk is None
    tr = pt.run(np.array([[1.0, 2.0, 4.0, 2.0]]), True, pt.cfg.c_chunk)  # two padded chunks of 3
    assert tr.loss.shape == (1, 4, 3) and np.isfinite(tr.loss).all()


def test_examples_per_hvp_chunk_follow_device_memory():
    """hvp_chunk=None: all n_measure examples in one product when the point fits, else the largest
    divisor of n_measure that fits the given budget (the next larger divisor does not), smaller
    for a smaller budget; the check of a point with hvp_chunk=None is made at a chunk of 1."""
    cfg = CFG.replace(c_chunk=1, n_measure=1024)
    need = lambda h: memory._need(memory.point_bytes(cfg, 4, 512, 1, h))
    divisors = [d for d in range(1, 1025) if 1024 % d == 0]
    assert need(1024) > need(64) > need(1)  # the activations of a product follow the chunk
    sizes = []
    for have in (need(1024) / memory.FILL * 1.001, need(256) / memory.FILL * 1.001, need(8) / memory.FILL * 1.001):
        h = memory.auto_hvp_chunk(cfg, 4, 512, have)
        sizes.append(h)
        assert 1024 % h == 0 and need(h) <= memory.FILL * have
        larger = [d for d in divisors if d > h]
        assert not larger or need(larger[0]) > memory.FILL * have
    assert sizes == [1024, 256, 8]
    assert memory.auto_hvp_chunk(cfg, 4, 512, 1.0) == 1  # nothing fits: check_point reports it


def test_point_records_the_chunks_it_runs_with(monkeypatch):
    """A Point with hvp_chunk=None takes it from the device's memory (here a limit that fits 4 of
    the 16 measurement examples per product), runs with it (the estimate equal to the unchunked
    one to float32 rounding), and records it (``Point.chunks``, critical_point's attributes)."""
    import numpy as np
    from earlytrain import data
    rng = np.random.RandomState(0)
    arrays = data.arrays(rng.randn(32, 4).astype(np.float32), rng.randint(0, 3, 32))
    cfg = sweep.SweepConfig(dataset=arrays, n_train=32, n_measure=16, seeds=(1, 2), depths=(2,), widths=(8,),
                            x_max=2.0, x_step=1.0, T1=2, c_chunk=None, model=models.ModelConfig(n_out=3),
                            train=train.TrainConfig(batch_size=8, num_steps=2, sharpness_iters=5, hvp_chunk=None))
    fits = memory._need(memory.point_bytes(cfg, 2, 8, 1, 4))
    monkeypatch.setenv("EARLYTRAIN_MEMORY_LIMIT", str(int(fits / memory.FILL) + 1))
    pt = sweep.Point(cfg, 2, 8)
    assert pt.chunks["hvp_chunk"] == 4 and cfg.train.hvp_chunk is None
    monkeypatch.delenv("EARLYTRAIN_MEMORY_LIMIT")
    whole = sweep.Point(cfg.replace(train=cfg.train.replace(hvp_chunk=16)), 2, 8)
    assert whole.chunks["hvp_chunk"] == 16
    np.testing.assert_allclose(np.asarray(pt.lam0.value), np.asarray(whole.lam0.value), rtol=1e-5)
    with pytest.raises(ConfigError, match="^hvp_chunk: expected a divisor of n_measure = 16"):
        cfg.replace(train=cfg.train.replace(hvp_chunk=5))
    with pytest.raises(ConfigError, match="^hvp_chunk:"):
        train.TrainConfig(hvp_chunk=0)
