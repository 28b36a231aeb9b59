"""Myrtle CNNs and ResNet-18/34 without normalisation (lib/earlytrain/cnn.py, SPEC 1.2-1.3)."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from earlytrain import cnn, models, train
from earlytrain.errors import ConfigError

MNIST_X = (28, 28, 1)
CIFAR_X = (32, 32, 3)


# Compiles dominate the cost here: the tests share one batch size N and one width W wherever the
# property does not depend on them, so XLA compiles each primitive shape once per session.
N, W = 2, 4


def _x(shape, n=N, seed=0):
    return jax.random.normal(jax.random.PRNGKey(seed), (n, *shape))


def _build(arch, depth, width, **kw):
    return models.build(models.ModelConfig(arch=arch, depth=depth, width=width, **kw))


def _kernels(params, kind, lead=1):
    """(path, kernel) of every conv (4-d) or dense (2-d) kernel, after ``lead`` batch axes."""
    flat = jax.tree_util.tree_flatten_with_path(params)[0]
    ndim = (4 if kind == "conv" else 2) + lead
    return [(jax.tree_util.keystr(p), v) for p, v in flat if p[-1].key == "kernel" and v.ndim == ndim]


def test_registered():
    assert set(models.ARCHITECTURES) == {"fcn", "myrtle", "resnet"}
    with pytest.raises(TypeError):  # a table, not a registry to mutate
        models.ARCHITECTURES["mine"] = models.Architecture(lambda cfg: None, 1)


@pytest.mark.parametrize("shape", [MNIST_X, CIFAR_X])
@pytest.mark.parametrize("arch,depth", [("myrtle", 5), ("myrtle", 7), ("myrtle", 10), ("resnet", 18), ("resnet", 34)])
def test_output_shape(arch, depth, shape):
    m = _build(arch, depth, W)
    x = _x(shape)
    params, aux = m.init(jax.random.PRNGKey(0), x)
    f = m.apply(params, aux, x)
    assert f.shape == (N, 10)
    assert np.all(np.isfinite(f))


@pytest.mark.parametrize("shape", [MNIST_X, CIFAR_X])
@pytest.mark.parametrize("depth", [5, 7, 10])
def test_myrtle_reaches_1x1_before_flatten(depth, shape):
    """The readout sees exactly `width` features: the map is 1x1 after the pools, for 28 px
    (one extra pool: 28 -> 14 -> 7 -> 3 -> 1) as for 32 px (two: 32 -> ... -> 4 -> 2 -> 1)."""
    width = W
    net = cnn.Myrtle(depth=depth, width=width)
    x = _x(shape)
    _, state = net.init_with_output(jax.random.PRNGKey(0), x, capture_intermediates=True)
    assert state["params"]["Dense_0"]["kernel"].shape == (width, 10)
    convs = [k for k in state["params"] if k.startswith("Conv_")]
    assert len(convs) == depth - 1
    # the spatial size after each conv block halves exactly after the listed blocks
    sizes = [state["intermediates"][f"Conv_{i}"]["__call__"][0].shape[1] for i in range(depth - 1)]
    expected, s = [], shape[0]
    for i in range(depth - 1):
        expected.append(s)
        if i in cnn.POOL_LIST[depth]:
            s //= 2
    assert sizes == expected
    assert s == (3 if shape[0] == 28 else 4)


def test_myrtle_init_statistics():
    """Convs: untruncated N(0, 2 / (9 C_in)); readout: Var = 1 / fan_in (lecun_normal).
    Pooled over 16 seeds; tolerances are 5 standard errors of the sample variance."""
    width, seeds = 8, 32
    m = _build("myrtle", 5, width)
    params, _ = models.init_many(m, models.seed_keys(range(seeds)), _x(CIFAR_X))
    convs = _kernels(params, "conv")
    assert len(convs) == 4
    for name, k in convs:
        c_in = k.shape[-2]
        var = 2.0 / (9 * c_in)
        v = np.asarray(k, np.float64).ravel()
        se = var * np.sqrt(2.0 / v.size)
        assert abs(v.var() - var) < 5 * se, (name, v.var(), var)
        assert abs(v.mean()) < 5 * np.sqrt(var / v.size), name
        # untruncated: a Gaussian has ~4.6% of its mass beyond 2 sigma; truncation would give 0
        assert np.mean(np.abs(v) > 2 * np.sqrt(var)) > 0.03, name
    (_, dense), = _kernels(params, "dense")
    assert dense.shape == (seeds, width, 10)
    v = np.asarray(dense, np.float64).ravel()
    var = 1.0 / width
    assert abs(v.var() - var) < 5 * var * np.sqrt(2.0 / v.size)


RESNET_SEEDS = list(range(1, 9))


@pytest.fixture(scope="module")
def resnet_many():
    """ResNet-18 (width W) initialised for 8 seeds with one vmapped init."""
    m = _build("resnet", 18, W)
    x = _x(CIFAR_X)
    return m, x, models.init_many(m, models.seed_keys(RESNET_SEEDS), x)[0]


def test_resnet_init_statistics(resnet_many):
    """Every ResNet conv and the readout: Var = 1 / fan_in (flax lecun_normal, not He);
    the readout bias starts at zero. Pooled over 8 seeds."""
    _, _, params = resnet_many
    kernels = _kernels(params, "conv") + _kernels(params, "dense")
    assert len(kernels) == 1 + 8 * 2 + 3 + 1  # stem, 8 blocks x 2 convs, 3 projections, readout
    for name, k in kernels:
        fan_in = int(np.prod(k.shape[1:-1]))  # leading axis = seeds
        var = 1.0 / fan_in
        v = np.asarray(k, np.float64).ravel()
        assert abs(v.var() - var) < 5 * var * np.sqrt(2.0 / v.size), (name, v.var(), var)
    assert np.all(params["Dense_0"]["bias"] == 0)
    assert set(params["Dense_0"]) == {"kernel", "bias"}
    conv_leaves = [p for p, _ in jax.tree_util.tree_flatten_with_path(params)[0]
                   if "Dense_0" not in jax.tree_util.keystr(p)]
    assert all(p[-1].key == "kernel" for p in conv_leaves)  # no conv biases


def _resnet_count(width, stages, n_in=3, n_out=10):
    """Weights of a BN-free ResNet v1 with basic blocks, counted by hand."""
    n = 7 * 7 * n_in * width
    f_prev = width
    for i, blocks in enumerate(stages):
        f = width * 2 ** i
        for j in range(blocks):
            n += 9 * f_prev * f + 9 * f * f + (f_prev * f if f_prev != f or (i > 0 and j == 0) else 0)
            f_prev = f
    return n + f_prev * n_out + n_out


@pytest.mark.parametrize("depth,width", [(18, 64), (18, 5), (34, 3)])
def test_resnet_parameter_count(depth, width):
    m = _build("resnet", depth, width)
    shapes = jax.eval_shape(lambda k: m.init(k, jnp.zeros((1, *CIFAR_X)))[0], jax.random.PRNGKey(0))
    count = sum(int(np.prod(s.shape)) for s in jax.tree_util.tree_leaves(shapes))
    assert count == _resnet_count(width, cnn.RESNET_STAGES[depth])
    if (depth, width) == (18, 64):
        # torchvision resnet18 with a 10-class head (11,181,642) minus its 9,600 BatchNorm
        # parameters (2 per channel of its 20 norms: 4,800 channels)
        assert count == 11_181_642 - 9_600


@pytest.mark.parametrize("arch,depth", [("myrtle", 5), ("resnet", 18)])
def test_variant_zero_last_layer(arch, depth):
    m = _build(arch, depth, W, last_layer="zero")
    x = _x(CIFAR_X)
    params, aux = m.init(jax.random.PRNGKey(1), x)
    assert np.all(np.asarray(m.apply(params, aux, x)) == 0)
    # the readout gradient is not zero, so lambda_0 > 0 (SPEC 5)
    y = jax.nn.one_hot(jnp.arange(N), 10)
    g = jax.grad(lambda p: 0.5 * jnp.mean((m.apply(p, aux, x) - y) ** 2))(params)
    assert float(jnp.abs(g["Dense_0"]["kernel"]).max()) > 0


@pytest.mark.parametrize("arch,depth", [("myrtle", 5), ("resnet", 18)])
def test_variant_centered(arch, depth):
    m = _build(arch, depth, W, centered=True)
    x = _x(CIFAR_X)
    params, aux = m.init(jax.random.PRNGKey(2), x)
    assert np.all(np.asarray(m.apply(params, aux, x)) == 0)
    moved = jax.tree.map(lambda p: p * 1.1, params)
    assert float(jnp.abs(m.apply(moved, aux, x)).max()) > 0


@pytest.mark.parametrize("arch,depth", [("myrtle", 5), ("resnet", 18)])
def test_variant_out_alpha(arch, depth):
    alpha = 3.5
    m = _build(arch, depth, W, out_alpha=alpha)
    x = _x(CIFAR_X)
    params, aux = m.init(jax.random.PRNGKey(3), x)
    norm = float(jnp.mean(jnp.linalg.norm(m.apply(params, aux, x), axis=-1)))
    assert norm == pytest.approx(alpha, rel=1e-5)


def test_variant_out_exp():
    x = _x(CIFAR_X)
    plain, scaled = _build("myrtle", 5, W), _build("myrtle", 5, W, out_exp=0.5)
    p, a = plain.init(jax.random.PRNGKey(4), x)
    np.testing.assert_allclose(scaled.apply(p, a, x), plain.apply(p, a, x) / W ** 0.5, rtol=1e-6)


def _check_vmapped(m, x, params, seeds):
    for i, s in enumerate(seeds):
        single, _ = m.init(jax.random.PRNGKey(s), x)
        jax.tree.map(lambda a, b: np.testing.assert_allclose(a[i], b, rtol=1e-6, atol=1e-7), params, single)
    k = params["Dense_0"]["kernel"]
    assert not np.allclose(k[0], k[1])


def test_vmapped_init_matches_single_myrtle():
    m = _build("myrtle", 5, W)
    x = _x(CIFAR_X)
    seeds = [1, 2, 3]
    _check_vmapped(m, x, models.init_many(m, models.seed_keys(seeds), x)[0], seeds)


def test_vmapped_init_matches_single_resnet(resnet_many):
    m, x, params = resnet_many
    _check_vmapped(m, x, jax.tree.map(lambda a: a[:2], params), RESNET_SEEDS[:2])


@pytest.mark.parametrize("kw,param", [
    (dict(arch="myrtle", depth=6), "depth"),
    (dict(arch="myrtle", depth=18), "depth"),
    (dict(arch="resnet", depth=5), "depth"),
    (dict(arch="resnet", depth=50), "depth"),
    (dict(arch="myrtle", depth=5, parameterization="ntp"), "parameterization"),
    (dict(arch="resnet", depth=18, sigma_w2=1.0), "sigma_w2"),
    (dict(arch="resnet", depth=18, sigma_last2=2.0), "sigma_last2"),
    (dict(arch="resnet", depth=18, bias=True), "bias"),
])
def test_bad_config_raises_before_compute(kw, param):
    with pytest.raises(ConfigError, match=f"^{param}:"):
        models.build(models.ModelConfig(width=4, **kw))


def test_myrtle_trains_at_small_c():
    """One vmapped early run on a tiny Myrtle: c = 0.5 lowers the loss and the sharpness
    estimate at init is converged."""
    m = _build("myrtle", 5, W)
    x = _x(MNIST_X, n=16)
    y = jax.nn.one_hot(jnp.arange(16) % 10, 10)
    data = train.TrainData(x, y, x, y)
    # sharpness only at init (lambda_0 sets the learning rate); the run itself measures losses
    cfg = train.TrainConfig(optimizer="gd", num_steps=5, measure_sharpness=False)
    params, aux = models.init_many(m, models.seed_keys([1, 2]), x)
    lam0 = train.initial_sharpness(m, params, aux, data, cfg)
    assert np.all(np.asarray(lam0.value) > 0)
    assert np.all(np.asarray(lam0.converged)) and np.all(np.asarray(lam0.bound) <= cfg.lambda0_tol)
    batches = jnp.zeros((5, 0), jnp.int32)
    tr = train.run_grid(m, params, aux, lam0, jnp.full((2, 1), 0.5), data, batches, cfg)
    loss = np.asarray(tr.loss)[:, 0]
    assert np.all(np.diff(loss, axis=-1) < 0)


# ---- convolution implementations (cnn.conv_patches vs XLA's convolution) -------------------------

@pytest.mark.parametrize("ksize,strides,padding,hw", [
    ((3, 3), (1, 1), "SAME", (7, 7)),
    ((3, 3), (2, 2), "SAME", (8, 8)),          # ResNet's strided 3x3: SAME pads (0, 1)
    ((3, 3), (2, 2), "SAME", (7, 9)),          # odd sizes: SAME pads (1, 1)
    ((1, 1), (2, 2), "SAME", (8, 8)),          # ResNet's projection
    ((7, 7), (2, 2), ((3, 3), (3, 3)), (9, 8)),  # ResNet's stem
    ((3, 3), (1, 1), "VALID", (6, 5)),
])
def test_conv_patches_matches_lax(x64, ksize, strides, padding, hw):
    """The patch formulation is the same cross-correlation as lax.conv_general_dilated in nn.Conv's
    layout, to float64 rounding, for every kernel, stride and padding the CNNs use."""
    x = jax.random.normal(jax.random.PRNGKey(0), (3, *hw, 2), jnp.float64)
    k = jax.random.normal(jax.random.PRNGKey(1), (*ksize, 2, 3), jnp.float64)
    dn = ("NHWC", "HWIO", "NHWC")
    ref = jax.lax.conv_general_dilated(x, k, strides, padding, dimension_numbers=dn)
    got = cnn.conv_patches(x, k, strides, padding, dimension_numbers=dn)
    assert got.shape == ref.shape
    np.testing.assert_allclose(got, ref, rtol=1e-12, atol=1e-12)


def _nets(arch, width, **kw):
    if arch == "myrtle":
        return {impl: cnn.Myrtle(depth=5, width=width, conv_impl=impl, **kw) for impl in cnn.CONV_IMPLS}
    return {impl: cnn.ResNet(stage_sizes=cnn.RESNET_STAGES[18], width=width, conv_impl=impl, **kw)
            for impl in cnn.CONV_IMPLS}


@pytest.mark.parametrize("arch,shape", [("myrtle", MNIST_X), ("resnet", CIFAR_X)])
def test_conv_impls_give_the_same_network(arch, shape):
    """Both implementations have nn.Conv's parameters (same tree, names and init values) and the
    same outputs to float32 rounding."""
    x = _x(shape)
    nets = _nets(arch, W)
    params = {i: n.init(jax.random.PRNGKey(5), x)["params"] for i, n in nets.items()}
    a, b = params["xla"], params["patches"]
    assert jax.tree.structure(a) == jax.tree.structure(b)
    jax.tree.map(lambda u, v: np.testing.assert_array_equal(u, v), a, b)
    fa, fb = (nets[i].apply({"params": a}, x) for i in ("xla", "patches"))
    np.testing.assert_allclose(fb, fa, rtol=1e-5, atol=1e-6 * float(jnp.abs(fa).max()))


def test_default_conv_impl_is_patches_on_cpu():
    assert cnn.default_conv_impl() == ("patches" if jax.default_backend() == "cpu" else "xla")


def test_tiny_cnn_hessian_dense_vs_estimator(x64):
    """Myrtle-5, 2 channels (146 parameters), MSE on 6 images in float64: the dense Hessian is the
    same with both convolutions, the HVP of the patch network is H v, and Lanczos (the estimator
    of every sharpness measurement) finds the top eigenvalue of the dense Hessian."""
    from earlytrain import hessian, losses
    x = jax.random.normal(jax.random.PRNGKey(0), (6, 28, 28, 1), jnp.float64)
    y = jax.nn.one_hot(jnp.arange(6) % 10, 10, dtype=jnp.float64)
    nets = _nets("myrtle", 2)
    params = nets["xla"].init(jax.random.PRNGKey(3), x[:1])["params"]
    params = jax.tree.map(lambda a: a.astype(jnp.float64), params)
    H, f = {}, {}
    for impl, net in nets.items():
        loss = lambda p, net=net: losses.mse(net.apply({"params": p}, x), y)  # noqa: E731
        H[impl] = np.asarray(jax.jit(lambda p, loss=loss: hessian.dense_hessian(loss, p))(params))
        f[impl] = hessian.flat_loss(loss, params)
    n = H["xla"].shape[0]
    assert n == 9 * 2 + 3 * 9 * 2 * 2 + 2 * 10
    scale = np.abs(H["xla"]).max()
    np.testing.assert_allclose(H["patches"], H["xla"], atol=1e-10 * scale)
    flat, fp = f["patches"]
    v = jax.random.normal(jax.random.PRNGKey(9), (n,), jnp.float64)
    np.testing.assert_allclose(jax.jit(hessian.hvp(fp, flat))(v), H["xla"] @ np.asarray(v),
                               atol=1e-10 * scale * n ** 0.5)
    lam = np.linalg.eigvalsh(H["xla"])[-1]
    eig = jax.jit(lambda p: hessian.lanczos(hessian.hvp(fp, p), hessian.start_vector(n, jnp.float64), 40, 0.0))(flat)
    assert float(eig.value) == pytest.approx(lam, rel=1e-8)
    assert float(eig.residual) < 1e-6


def test_run_with_sharpness_same_for_both_convs():
    """A 3-step SGD run of a tiny Myrtle with the sharpness after every step (train.run_grid, what
    the c_sharp search runs) gives the same losses and sharpness with either convolution."""
    x = _x(MNIST_X, n=16)
    y = jax.nn.one_hot(jnp.arange(16) % 10, 10)
    data = train.TrainData(x, y, x[:8], y[:8])
    cfg = train.TrainConfig(batch_size=8, num_steps=3, sharpness_iters=10, sharpness_tol=0.0, lambda0_tol=0.0)
    batches = jnp.asarray(train.batch_schedule(16, 8, 3, 1))
    out = {}
    for impl in cnn.CONV_IMPLS:
        m = models.build(models.ModelConfig(arch="myrtle", depth=5, width=2))
        m = m._replace(apply=(lambda net: lambda p, a, xx: net.apply({"params": p}, xx))(
            cnn.Myrtle(depth=5, width=2, conv_impl=impl)))
        params, aux = models.init_many(m, models.seed_keys([1]), x)
        lam0 = train.initial_sharpness(m, params, aux, data, cfg)
        out[impl] = train.run_grid(m, params, aux, lam0, jnp.full((1, 1), 4.0), data, batches, cfg)
    for name in ("loss", "sharpness"):
        np.testing.assert_allclose(out["patches"]._asdict()[name], out["xla"]._asdict()[name], rtol=1e-4)


@pytest.mark.parametrize("call,param", [
    (lambda x, k: cnn.conv_module("fft"), "conv_impl"),
    (lambda x, k: cnn.conv_patches(x, k, (1, 1), "SAME", rhs_dilation=(2, 2)), "dilation"),
    (lambda x, k: cnn.conv_patches(x, k, (1, 1), "SAME", feature_group_count=2), "feature_group_count"),
    (lambda x, k: cnn.conv_patches(x, k, (1, 1), "SAME", dimension_numbers=("NCHW", "OIHW", "NCHW")),
     "dimension_numbers"),
    (lambda x, k: cnn.conv_patches(x[..., :1], k, (1, 1), "SAME"), "conv"),
    (lambda x, k: cnn.conv_patches(x[0], k, (1, 1), "SAME"), "conv"),
])
def test_conv_patches_bad_input(call, param):
    x, k = jnp.zeros((1, 4, 4, 2)), jnp.zeros((3, 3, 2, 2))
    with pytest.raises(ConfigError, match=f"^{param}:"):
        call(x, k)


def test_unknown_conv_impl_raises_before_compute():
    with pytest.raises(ConfigError, match="^conv_impl:"):
        cnn.Myrtle(depth=5, width=2, conv_impl="fft").init(jax.random.PRNGKey(0), _x(MNIST_X))


@pytest.mark.parametrize("hw", [(28, 28), (7, 7), (3, 4), (32, 32)])
def test_avg_pool_2x2_matches_flax(hw):
    """The reshape-mean pool of conv_impl="patches" is nn.avg_pool 2x2 / stride 2 (VALID: an odd
    last row or column is dropped)."""
    x = jax.random.normal(jax.random.PRNGKey(0), (2, *hw, 3))
    ref = flax_avg_pool(x)
    got = cnn.avg_pool_2x2(x)
    assert got.shape == ref.shape == (2, hw[0] // 2, hw[1] // 2, 3)
    np.testing.assert_allclose(got, ref, rtol=1e-6, atol=1e-7)


def flax_avg_pool(x):
    import flax.linen as nn
    return nn.avg_pool(x, (2, 2), strides=(2, 2))
