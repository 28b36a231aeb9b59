"""The matmul precision (``TrainConfig.matmul_precision``) reaches every dot and convolution of
a training run, of its Hessian-vector products and of lambda_0, checked on the lowered programs.

On recent NVIDIA GPUs JAX's "default" float32 precision may run products in TF32 (~1e-3 relative
error: the size of the sharpness tolerance). This CPU computes float32 products in full precision
whatever the setting, so the test reads the precision each operation carries in the lowered
StableHLO, which is what an accelerator's compiler receives: every ``dot_general`` and every
``convolution`` must carry the configured precision for both operands.
"""
from __future__ import annotations

import re

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from earlytrain import cache, cnn, hessian, models, train
from earlytrain.errors import ConfigError
from earlytrain.models import ModelConfig
from earlytrain.train import TrainConfig

N, B, T = 16, 8, 2
NAMES = {"highest": "HIGHEST", "high": "HIGH", "default": "DEFAULT"}
OPS = re.compile(r"stablehlo\.(dot_general|convolution)\b")


def _ops(text: str) -> list[tuple[str, str]]:
    """(op name, its line) of every dot_general / convolution of a lowered module."""
    return [(m.group(1), line) for line in text.splitlines() for m in [OPS.search(line)] if m]


def _precision_of(line: str) -> list[str]:
    """The precision names an op's line carries (dot_general: ``precision = [A, B]``;
    convolution: ``precision_config = [#stablehlo<precision A>, ...]``); [] when absent."""
    m = re.search(r"precision(?:_config)? = \[([^\]]*)\]", line)
    if not m:
        return []
    return re.findall(r"(DEFAULT|HIGHEST|HIGH)", m.group(1))


def _data(side=8, channels=1):
    rng = np.random.default_rng(0)
    x = jnp.asarray(rng.normal(size=(N, side, side, channels)), jnp.float32)
    y = jax.nn.one_hot(jnp.arange(N) % 10, 10)
    return train.TrainData(x, y, x[:B], y[:B])


def _models():
    """An FCN (dots only), a Myrtle with XLA's convolutions (the accelerators' default) and one
    with the patches-matmul convolutions (this CPU's default)."""
    fcn = models.build(ModelConfig(depth=3, width=8))
    out = {"fcn": fcn}
    for impl in ("xla", "patches"):
        m = models.build(ModelConfig(arch="myrtle", depth=5, width=2))
        net = cnn.Myrtle(depth=5, width=2, conv_impl=impl)
        out[f"myrtle-{impl}"] = m._replace(apply=lambda p, a, xx, net=net: net.apply({"params": p}, xx))
    return out


def _lowered(model, cfg: TrainConfig, decide=None) -> dict[str, str]:
    data = _data()
    params, aux = models.init_many(model, models.seed_keys([1]), data.x_meas)
    lam0 = train.initial_sharpness(model, params, aux, data, cfg)
    batches = jnp.asarray(train.batch_schedule(N, B, T, 1))
    c = jnp.full((1, 2), 2.0)
    p1, a1 = jax.tree.map(lambda a: a[0], params), jax.tree.map(lambda a: a[0], aux)
    hvp = jax.jit(lambda p, v: train.measure_sharpness(model, p, a1, data.x_meas, data.y_meas, cfg, v))
    return {
        "lambda_0": train.initial_sharpness_batch.lower(model, params, aux, data, cfg).as_text(),
        "run (training steps and HVPs)": train.run_grid.lower(
            model, params, aux, lam0, c, data, batches, cfg, decide=decide).as_text(),
        "run (training steps only)": train.run_grid.lower(
            model, params, aux, lam0, c, data, batches, cfg.replace(measure_sharpness=False)).as_text(),
        "measure_sharpness": hvp.lower(p1, lam0.vector[0]).as_text(),
    }


@pytest.mark.parametrize("precision", ["highest", "default"])
@pytest.mark.parametrize("arch", ["fcn", "myrtle-xla", "myrtle-patches"])
def test_every_dot_and_convolution_carries_the_precision(arch, precision):
    """Both settings, so the check cannot pass by a coincidence of defaults: "highest" (the
    library's default) and "default" (what JAX would do without the setting) each appear on every
    dot and convolution of the programs. Catches a matmul traced outside the precision context (a
    helper, the Lanczos vector products, the loss of a training step, the early exit's branch)."""
    cfg = TrainConfig(batch_size=B, num_steps=T, sharpness_iters=4, matmul_precision=precision)
    decide = train.Decide(T1=T, boundary=1.005)
    for name, text in _lowered(_models()[arch], cfg, decide).items():
        ops = _ops(text)
        kinds = {k for k, _ in ops}
        assert "dot_general" in kinds, f"{arch} {name}: no dot_general lowered (the check would be empty)"
        if arch == "myrtle-xla":
            assert "convolution" in kinds, f"{arch} {name}: no convolution lowered"
        for kind, line in ops:
            assert _precision_of(line) == [NAMES[precision]] * 2, f"{arch} {name}: {kind} without " \
                f"precision {precision}: {line.strip()[:300]}"


def test_without_the_setting_products_carry_no_precision():
    """The negative control: the same HVP traced outside ``train.matmul_precision`` lowers with
    JAX's default precision (DEFAULT, or none: the backend's choice, TF32 on recent NVIDIA GPUs),
    so the check above detects a product the setting does not reach."""
    model = _models()["fcn"]
    data = _data()
    params, aux = model.init(jax.random.PRNGKey(1), data.x_meas)
    lf = train.loss_fn(model, "mse")
    f = jax.jit(lambda p: hessian.loss_sharpness(lambda q: lf(q, aux, data.x_meas, data.y_meas), p,
                                                 None, "lanczos", 4, 1e-3).value)
    ops = _ops(f.lower(params).as_text())
    assert ops and all(_precision_of(line) in ([], ["DEFAULT"] * 2) for _, line in ops)


def test_precision_is_validated_recorded_and_keyed():
    assert TrainConfig().matmul_precision == "highest"
    for bad in ("tf32", "HIGHEST", None, 3):
        with pytest.raises(ConfigError, match="matmul_precision"):
            TrainConfig(matmul_precision=bad)
    # the config (the provenance of every cached result: its sidecar and the Dataset's
    # ``config`` attribute) carries it, and so does the cache key
    assert '"matmul_precision":"highest"' in cache.canonical_json(TrainConfig())
    keys = {p: cache.cache_key("f", TrainConfig(matmul_precision=p)) for p in train.MATMUL_PRECISIONS}
    assert len(set(keys.values())) == len(keys)
