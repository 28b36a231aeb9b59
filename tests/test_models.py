"""Tests of earlytrain.models: initialisation statistics and output variants, against exact
answers (exact identities, or Monte-Carlo estimates with their own standard error).

Float64 only inside the ``x64`` fixture (``jax.enable_x64`` context), never globally.
"""
from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from earlytrain import hessian, initializers, losses, models
from earlytrain.models import ModelConfig

# Monte-Carlo checks pass within Z_MAX standard errors (two-sided p ~ 6e-5 per check for a
# normal estimate); the seeds are fixed, so the tests are deterministic.
Z_MAX = 4.0


def _images(n=8, side=8, seed=0, dtype=np.float32):
    """Random images standardized per sample (mean 0, population std 1): |x|^2 / n0 = 1."""
    x = np.random.default_rng(seed).normal(size=(n, side, side, 1))
    flat = x.reshape(n, -1)
    flat = (flat - flat.mean(1, keepdims=True)) / flat.std(1, keepdims=True)
    return jnp.asarray(flat.reshape(x.shape), dtype)


def _onehot(n, k=10, seed=1, dtype=np.float32):
    return jnp.asarray(np.eye(k)[np.random.default_rng(seed).integers(0, k, n)], dtype)


@pytest.mark.parametrize("parameterization", ["sp", "ntp"])
def test_output_variance_at_init(parameterization):
    """At ReLU criticality E[f_j(x)^2] = sigma_last^2 |x|^2 / n0 exactly at every width (each
    layer's conditional second moment is preserved in expectation: E[relu(h)^2] = q / 2 and
    sigma^2 = 2). With standardized inputs that is 1. Estimated over S seeds: each seed's mean
    over outputs and examples is one i.i.d. sample, so the seed-to-seed spread is the SE."""
    x = _images(n=8)
    S = 400
    model = models.build(ModelConfig(depth=3, width=16, parameterization=parameterization))
    params, aux = models.init_many(model, models.seed_keys(range(S)), x)
    f = jax.vmap(model.apply, in_axes=(0, 0, None))(params, aux, x)  # [S, B, 10]
    assert f.shape == (S, 8, 10)
    per_seed = (np.asarray(f, np.float64) ** 2).mean(axis=(1, 2))
    expect = float(jnp.mean(jnp.sum(x.reshape(8, -1) ** 2, -1) / 64))
    assert abs(expect - 1.0) < 1e-5  # standardized inputs (float32 round-off)
    se = per_seed.std(ddof=1) / np.sqrt(S)
    assert abs(per_seed.mean() - expect) < Z_MAX * se
    assert se < 0.1  # the test has power: it would see a factor-of-2 error in the variance
    # the mean output is zero (symmetric last layer); SE from the seed-to-seed spread
    mean_per_seed = np.asarray(jnp.mean(f, axis=(1, 2)))
    assert abs(mean_per_seed.mean()) < Z_MAX * mean_per_seed.std(ddof=1) / np.sqrt(S)


@pytest.mark.parametrize("parameterization", ["sp", "ntp"])
def test_weight_variances(parameterization):
    """SP: Var W = 2 / fan_in (hidden), 1 / fan_in (readout); NTP: Var W = 1 everywhere.
    Entries are i.i.d. normal, so the sample variance of N entries has SE var * sqrt(2 / N)."""
    x = _images(n=2)
    S, width = 20, 12
    model = models.build(ModelConfig(depth=3, width=width, parameterization=parameterization))
    params, _ = models.init_many(model, models.seed_keys(range(S)), x)
    names = sorted(params)
    assert len(names) == 3
    fan_ins = [64, width, width]
    sig2 = [2.0, 2.0, 1.0]
    for name, fan_in, s2 in zip(names, fan_ins, sig2):
        w = np.asarray(params[name]["kernel"], np.float64)
        assert w.shape[1] == fan_in
        want = 1.0 if parameterization == "ntp" else s2 / fan_in
        var = w.var()
        assert abs(var / want - 1) < Z_MAX * np.sqrt(2 / w.size)
        assert abs(w.mean()) < Z_MAX * np.sqrt(want / w.size)
        assert "bias" not in params[name]  # no bias by default


def test_sp_equals_ntp_with_rescaled_weights(x64):
    """NTP with W_ntp = W_sp / sqrt(sigma^2 / fan_in) computes the same function as SP."""
    x = _images(n=6, dtype=np.float64)
    for depth, width in ((2, 5), (4, 7)):
        sp = models.build(ModelConfig(depth=depth, width=width, parameterization="sp"))
        ntp = models.build(ModelConfig(depth=depth, width=width, parameterization="ntp"))
        p_sp, aux = sp.init(jax.random.PRNGKey(3), x)
        names = sorted(p_sp)
        fan_ins = [64] + [width] * (depth - 1)
        sig2 = [2.0] * (depth - 1) + [1.0]
        p_ntp = {n: {"kernel": p_sp[n]["kernel"] / np.sqrt(s / fi)} for n, fi, s in zip(names, fan_ins, sig2)}
        f_sp, f_ntp = sp.apply(p_sp, aux, x), ntp.apply(p_ntp, aux, x)
        assert f_sp.dtype == jnp.float64
        # the same products, multiplied in a different place: float64 round-off only
        np.testing.assert_allclose(np.asarray(f_ntp), np.asarray(f_sp), rtol=1e-12, atol=1e-12)
        # and the SP parameters themselves are NTP-distributed parameters times the std
        assert np.abs(np.asarray(f_sp)).max() > 0.1


def test_zero_last_layer():
    x = _images(n=16)
    y = _onehot(16)
    for param in ("sp", "ntp"):
        model = models.build(ModelConfig(depth=3, width=8, parameterization=param, last_layer="zero"))
        params, aux = model.init(jax.random.PRNGKey(0), x)
        readout = params[sorted(params)[-1]]["kernel"]
        assert np.all(np.asarray(readout) == 0)
        f = model.apply(params, aux, x)
        assert np.all(np.asarray(f) == 0)
        # 0.5 * mean(y^2) = 0.5 * (1/10): exact in binary floating point (1/10 rounded once, halved)
        loss = losses.mse(f, y)
        assert float(loss) == float(np.float32(0.05))
        # lambda_0 > 0: the readout gradient is nonzero, the Gauss-Newton term is not zero
        lam = jax.jit(lambda p: hessian.loss_sharpness(
            lambda q: losses.mse(model.apply(q, aux, x), y), p, num_iters=10))(params)
        assert float(lam.value) > 0
        g = jax.grad(lambda p: losses.mse(model.apply(p, aux, x), y))(params)
        assert float(jnp.abs(g[sorted(params)[-1]]["kernel"]).max()) > 0


def test_centered():
    x = _images(n=16)
    y = _onehot(16)
    model = models.build(ModelConfig(depth=3, width=8, centered=True))
    params, aux = model.init(jax.random.PRNGKey(0), x)
    f = model.apply(params, aux, x)
    assert np.all(np.asarray(f) == 0)  # f(theta_0) - f(theta_0): the same computation twice
    g = jax.grad(lambda p: losses.mse(model.apply(p, aux, x), y))(params)
    for leaf in jax.tree.leaves(g):
        assert float(jnp.abs(leaf).max()) > 0
    # after a parameter change the output is f(theta) - f(theta_0) of the plain network
    plain = models.build(ModelConfig(depth=3, width=8))
    p2 = jax.tree.map(lambda a: a * 1.1, params)
    np.testing.assert_allclose(np.asarray(model.apply(p2, aux, x)),
                               np.asarray(plain.apply(p2, {}, x) - plain.apply(params, {}, x)),
                               rtol=1e-5, atol=1e-6)  # float32: identical ops, exact in practice


@pytest.mark.parametrize("alpha", [0.1, 1.0, 7.5])
def test_out_alpha_fixes_initial_output_norm(alpha):
    x = _images(n=16)
    for centered in (False, True):
        model = models.build(ModelConfig(depth=3, width=8, out_alpha=alpha, centered=centered))
        params, aux = model.init(jax.random.PRNGKey(2), x)
        f = model.apply(params, aux, x)
        if centered:
            assert np.all(np.asarray(f) == 0)
        else:
            norm = float(jnp.mean(jnp.linalg.norm(f, axis=-1)))
            # float32: a norm, a mean and a division, each ~1 ulp
            assert norm == pytest.approx(alpha, rel=1e-5)
            plain = models.build(ModelConfig(depth=3, width=8))
            f_plain = plain.apply(params, {}, x)
            ratio = float(alpha / jnp.mean(jnp.linalg.norm(f_plain, axis=-1)))
            np.testing.assert_allclose(np.asarray(f), ratio * np.asarray(f_plain), rtol=1e-5, atol=1e-7)


@pytest.mark.parametrize("s", [-0.5, 0.5, 1.0])
def test_out_exp_scales_output(s):
    x = _images(n=8)
    width = 16
    base = models.build(ModelConfig(depth=3, width=width))
    scaled = models.build(ModelConfig(depth=3, width=width, out_exp=s))
    p, aux = base.init(jax.random.PRNGKey(5), x)
    p2, aux2 = scaled.init(jax.random.PRNGKey(5), x)
    jax.tree.map(lambda a, b: np.testing.assert_array_equal(np.asarray(a), np.asarray(b)), p, p2)
    # one float32 multiplication by width^-s
    np.testing.assert_allclose(np.asarray(scaled.apply(p2, aux2, x)),
                               width ** (-s) * np.asarray(base.apply(p, aux, x)), rtol=1e-6, atol=1e-8)


@pytest.mark.parametrize("parameterization", ["sp", "ntp"])
def test_bias_is_zero_initialised(parameterization):
    x = _images(n=8)
    y = _onehot(8)
    nob = models.build(ModelConfig(depth=3, width=8, parameterization=parameterization))
    wb = models.build(ModelConfig(depth=3, width=8, parameterization=parameterization, bias=True))
    p0, _ = nob.init(jax.random.PRNGKey(4), x)
    p1, aux = wb.init(jax.random.PRNGKey(4), x)
    assert sorted(p0) == sorted(p1)
    for name in p1:
        assert set(p1[name]) == {"kernel", "bias"}
        assert np.all(np.asarray(p1[name]["bias"]) == 0)
        assert p1[name]["bias"].shape == (p1[name]["kernel"].shape[1],)
        np.testing.assert_array_equal(np.asarray(p1[name]["kernel"]), np.asarray(p0[name]["kernel"]))
    # zero biases do not change the function at init (adding 0.0 is exact) ...
    np.testing.assert_array_equal(np.asarray(wb.apply(p1, aux, x)), np.asarray(nob.apply(p0, {}, x)))
    # ... but they are trainable, and a bias shifts the output
    g = jax.grad(lambda p: losses.mse(wb.apply(p, aux, x), y))(p1)
    last = sorted(p1)[-1]
    assert float(jnp.abs(g[last]["bias"]).max()) > 0
    p2 = jax.tree.map(lambda a: a, p1)
    p2[last] = dict(p1[last], bias=jnp.ones(10))
    np.testing.assert_allclose(np.asarray(wb.apply(p2, aux, x)), np.asarray(nob.apply(p0, {}, x)) + 1.0,
                               rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("kw", [{}, {"parameterization": "ntp"}, {"centered": True},
                                {"out_alpha": 2.0}, {"last_layer": "zero"}, {"bias": True}])
def test_vmapped_init_equals_separate_inits(kw):
    x = _images(n=8)
    model = models.build(ModelConfig(depth=3, width=8, **kw))
    seeds = [1, 2, 7]
    params, aux = models.init_many(model, models.seed_keys(seeds), x)
    f_all = jax.vmap(model.apply, in_axes=(0, 0, None))(params, aux, x)
    for i, s in enumerate(seeds):
        p, a = model.init(jax.random.PRNGKey(s), x)
        # the random draws are bit-identical (threefry is deterministic under vmap)
        jax.tree.map(lambda u, v: np.testing.assert_array_equal(np.asarray(u[i]), np.asarray(v)), params, p)
        # aux (e.g. the out_alpha constant, a reduction) may differ by float32 round-off
        jax.tree.map(lambda u, v: np.testing.assert_allclose(np.asarray(u[i]), np.asarray(v), rtol=1e-6),
                     aux, a)
        np.testing.assert_allclose(np.asarray(f_all[i]), np.asarray(model.apply(p, a, x)), rtol=1e-5, atol=1e-6)
    # distinct seeds give distinct networks
    k = params[sorted(params)[0]]["kernel"]
    assert not np.array_equal(np.asarray(k[0]), np.asarray(k[1]))


@pytest.mark.parametrize("ours, jaxs", [
    (lambda: initializers.normal(0.05), lambda: jax.nn.initializers.normal(0.05)),
    (lambda: initializers.normal(1.0), lambda: jax.nn.initializers.normal(1.0)),
    (lambda: initializers.fan_in_scaling(2.0, "normal"),
     lambda: jax.nn.initializers.variance_scaling(2.0, "fan_in", "normal")),
    (lambda: initializers.fan_in_scaling(0.7, "truncated_normal"),
     lambda: jax.nn.initializers.variance_scaling(0.7, "fan_in", "truncated_normal")),
    (initializers.lecun_normal, jax.nn.initializers.lecun_normal)])
@pytest.mark.parametrize("shape", [(784, 256), (3, 3, 16, 24), (7, 7, 3, 5)])
def test_initializers_draw_jax_s_bits_eagerly_and_compiled(ours, jaxs, shape):
    """Each initializer is JAX's, bit for bit, eagerly and inside a compiled program: the book's
    networks keep their weights when ``init_many`` compiles their initialisation."""
    key = jax.random.PRNGKey(3)
    reference = np.asarray(jaxs()(key, shape))  # JAX's, eagerly: what the book's networks had
    np.testing.assert_array_equal(np.asarray(ours()(key, shape)), reference)
    np.testing.assert_array_equal(np.asarray(jax.jit(lambda k: ours()(k, shape))(k=key)), reference)
    with jax.enable_x64(True):  # the default dtype follows x64, as JAX's does
        np.testing.assert_array_equal(np.asarray(ours()(key, shape)), np.asarray(jaxs()(key, shape)))
        assert ours()(key, shape).dtype == jnp.float64


def test_initializers_reject_an_unknown_distribution():
    with pytest.raises(ValueError, match="distribution"):
        initializers.fan_in_scaling(1.0, "uniform")


@pytest.mark.parametrize("cfg, shape", [(ModelConfig(depth=4, width=64), (28, 28, 1)),
                                        (ModelConfig(depth=3, width=16, parameterization="ntp", bias=True), (28, 28, 1)),
                                        (ModelConfig(arch="myrtle", depth=5, width=8, sigma_last2=0.5), (32, 32, 3)),
                                        (ModelConfig(arch="resnet", depth=18, width=4), (32, 32, 3))])
def test_compiled_init_many_equals_eager_init(cfg, shape):
    """``init_many`` compiles the initialisation of the book's architectures: the parameters are
    bit for bit those of the eager ``model.init`` of each seed."""
    x = jnp.asarray(np.random.default_rng(0).normal(size=(4, *shape)), jnp.float32)
    model = models.build(cfg)
    params, aux = models.init_many(model, models.seed_keys([1, 5]), x)
    for i, s in enumerate([1, 5]):
        p, _ = model.init(jax.random.PRNGKey(s), x)
        jax.tree.map(lambda u, v: np.testing.assert_array_equal(np.asarray(u[i]), np.asarray(v)), params, p)


@pytest.mark.parametrize("cfg", [ModelConfig(depth=3, width=32, out_alpha=0.5),
                                 ModelConfig(depth=3, width=32, centered=True),
                                 ModelConfig(depth=2, width=16, out_alpha=2.0, centered=True, parameterization="ntp"),
                                 ModelConfig(arch="myrtle", depth=5, width=8, out_alpha=1.0)])
def test_init_many_of_output_variants_equals_the_eager_vmapped_init(cfg):
    """With ``out_alpha`` or ``centered``, ``init_many`` compiles the parameters' draw and keeps
    ``init_aux`` eager: parameters and aux (the scale alpha / N_0, the copy params0) are bit for bit
    those of the eager, vmapped ``model.init`` that initialised these models before."""
    shape = (32, 32, 3) if cfg.arch == "myrtle" else (28, 28, 1)
    x = jnp.asarray(np.random.default_rng(1).normal(size=(6, *shape)), jnp.float32)
    model = models.build(cfg)
    keys = models.seed_keys([1, 4, 9])
    got = models.init_many(model, keys, x)
    want = jax.vmap(model.init, in_axes=(0, None))(keys, x)  # eager: the code before
    assert jax.tree.structure(got) == jax.tree.structure(want)
    assert set(got[1]) == {k for k, on in [("scale", cfg.out_alpha is not None), ("params0", cfg.centered)] if on}
    jax.tree.map(lambda u, v: np.testing.assert_array_equal(np.asarray(u), np.asarray(v)), got, want)
    if cfg.out_alpha is not None:  # the scale is alpha / N_0, N_0 the mean output norm at init
        f = jax.vmap(lambda p: model.apply(p, {}, x))(got[0])
        norm0 = np.linalg.norm(np.asarray(f, np.float64), axis=-1).mean(axis=-1)
        np.testing.assert_allclose(np.asarray(got[1]["scale"]), cfg.out_alpha / norm0, rtol=1e-5)


def test_one_compiled_draw_serves_every_output_variant_of_a_network():
    """The compiled draw is keyed by the network's value (``ModuleParams``): the output variants of
    one network, and each ``build`` of it, reuse it; another network compiles its own."""
    x = jnp.ones((3, 28, 28, 1))
    keys = models.seed_keys([1, 2])
    base = ModelConfig(depth=2, width=24)
    before = models._draw_compiled._cache_size()
    variants = [base, base.replace(out_alpha=0.5), base.replace(centered=True), base.replace(out_exp=0.5)]
    draws = [models.init_many(models.build(c), keys, x)[0] for c in variants]
    assert models._draw_compiled._cache_size() == before + 1
    for d in draws[1:]:
        jax.tree.map(lambda u, v: np.testing.assert_array_equal(np.asarray(u), np.asarray(v)), d, draws[0])
    models.init_many(models.build(base.replace(width=25)), keys, x)
    assert models._draw_compiled._cache_size() == before + 2


def test_seed_keys_are_prngkey_of_seed():
    keys = models.seed_keys([1, 2, 3])
    for i, s in enumerate([1, 2, 3]):
        np.testing.assert_array_equal(np.asarray(keys[i]), np.asarray(jax.random.PRNGKey(s)))
    model = models.build(ModelConfig(depth=2, width=3, n_out=4))
    params, _ = model.init(jax.random.PRNGKey(0), _images(n=1))
    assert models.num_params(params) == 64 * 3 + 3 * 4
