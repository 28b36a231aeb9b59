"""Every bad input raises ConfigError before any compute, with a message naming the parameter."""
from __future__ import annotations

import jax.numpy as jnp
import numpy as np
import pytest

from earlytrain import data, hessian, losses, models, search, sweep, train
from earlytrain.errors import ConfigError


@pytest.fixture
def no_compute(monkeypatch):
    """Make every compute entry point fail loudly: a ConfigError must come first."""
    def forbidden(*a, **k):
        raise AssertionError("computation started before validation")
    for mod, name in ((train, "run_grid"), (train, "initial_sharpness"), (sweep, "train_data"),
                      (sweep, "critical_point"), (sweep, "trajectory_point"), (data, "_load_raw")):
        monkeypatch.setattr(mod, name, forbidden)


OK = dict(dataset="mnist", n_train=256, n_measure=64, depths=(2,), widths=(4,), seeds=(1, 2),
          x_min=0.0, x_max=2.0, x_step=0.5, batch_size=64, num_steps=4, T1=4)

BAD = [
    # (overrides, parameter the message must name)
    (dict(dataset="imagenet"), "dataset"),
    (dict(width=0), "width"),
    (dict(widths=(8, 0)), "widths"),
    (dict(depth=1), "depth"),
    (dict(depths=(1,)), "depths"),
    (dict(depths=()), "depths"),
    (dict(x_max=-1.0), "x_max"),
    (dict(x_step=0.0), "x_step"),
    (dict(x_step=-0.1), "x_step"),
    (dict(batch_size=512), "batch_size"),
    (dict(n_measure=300), "n_measure"),
    (dict(T1=5), "T1"),
    (dict(seeds=()), "seeds"),
    (dict(seeds=(1, 1)), "seeds"),
    (dict(loss="hinge"), "loss"),
    (dict(optimizer="adam"), "optimizer"),
    (dict(search="golden"), "search"),
    (dict(sharpness_method="arnoldi"), "sharpness_method"),
    (dict(parameterization="mup"), "parameterization"),
    (dict(out_alpha=0.0), "out_alpha"),
    (dict(out_alpha=-1.0), "out_alpha"),
    (dict(learning_rate=0.1), "parameters"),
    (dict(n_train=0), "n_train"),
    (dict(sharpness_iters=0), "sharpness_iters"),
    (dict(sharpness_every=0), "sharpness_every"),
    (dict(sharpness_per_decade=-1), "sharpness_per_decade"),
    (dict(num_steps=0), "num_steps"),
    (dict(last_layer="ones"), "last_layer"),
    (dict(stride=1), "stride"),
    # issue 10: non-finite floats, limits known before the data are read, types
    (dict(x_max=float("inf")), "x_max"),
    (dict(x_min=float("nan")), "x_min"),
    (dict(x_min=-2000.0), "x_min"),
    (dict(x_step=1e-9), "x_step"),
    (dict(n_train=10**6), "n_train"),
    (dict(n_train=True), "n_train"),
    (dict(data_seed=-1), "data_seed"),
    (dict(data_seed=1.5), "data_seed"),
    (dict(c_sharp_max_width="abc"), "c_sharp_max_width"),
    (dict(c_sharp_max_width=-1), "c_sharp_max_width"),
    (dict(decimals=True), "decimals"),
    (dict(decimals=1.0), "decimals"),
    (dict(sharp_eps=float("nan")), "sharp_eps"),
    (dict(sharp_eps="0.1"), "sharp_eps"),
    (dict(seeds=np.array([1, 1])), "seeds"),
    (dict(widths=np.array([[4, 8]])), "widths"),
    (dict(widths=np.array([4.5])), "widths"),
    (dict(num_steps=True, T1=1), "num_steps"),
    (dict(batch_size=np.float64(64.0)), "batch_size"),
    (dict(measure_sharpness="no"), "measure_sharpness"),
    (dict(bias=1), "bias"),
    (dict(centered="yes"), "centered"),
    (dict(out_exp=float("inf")), "out_exp"),
    (dict(div_threshold=np.inf), "div_threshold"),
    (dict(widht=4), "parameters"),
]


@pytest.mark.parametrize("override,param", BAD, ids=[f"{p}-{i}" for i, (_, p) in enumerate(BAD)])
def test_bad_sweep_parameters(no_compute, override, param):
    params = {k: v for k, v in OK.items() if not (k == "depths" and "depth" in override)}
    params.update(override)
    if "width" in override:
        params.pop("widths")
    with pytest.raises(ConfigError) as err:
        cfg = sweep.from_params(**params)
        sweep.phase_sweep(cfg, progress=False)
    msg = str(err.value)
    assert msg.startswith(param + ":"), msg
    if param == "parameters":  # the unknown name itself is reported
        assert ("learning_rate" in msg) or ("'widht' (did you mean 'width'" in msg), msg


def test_good_parameters_pass_validation(no_compute):
    cfg = sweep.from_params(**OK)
    assert cfg.train.batch_size == 64 and cfg.model.depth == 4 and cfg.depths == (2,)
    np.testing.assert_allclose(cfg.x_grid, [0.0, 0.5, 1.0, 1.5, 2.0])
    # with GD the pool is the batch: batch_size is not compared with n_train
    sweep.from_params(**dict(OK, optimizer="gd", batch_size=512))
    # the validation passes; the (forbidden) compute is what stops here
    with pytest.raises(AssertionError, match="computation started"):
        sweep.phase_sweep(cfg, progress=False)


def test_trajectories_constants(no_compute):
    cfg = sweep.from_params(**OK)
    for c in ([], [1.0, -2.0], [0.0]):
        with pytest.raises(ConfigError, match="^c:"):
            sweep.trajectory_sweep(cfg, c, progress=False)


def test_lower_level_entry_points():
    with pytest.raises(ConfigError, match="^name:"):  # data.load's argument is called name
        data.load("imagenet", n=10)
    with pytest.raises(ConfigError, match="^n:"):
        data.load("mnist", n=0)
    with pytest.raises(ConfigError, match="^batch_size:"):
        train.batch_schedule(100, 101, 3, 0)
    with pytest.raises(ConfigError, match="^loss:"):
        losses.get("l1")
    with pytest.raises(ConfigError, match="^sharpness_method:"):
        hessian.top_eigenvalue(lambda v: v, jnp.ones(3), method="arnoldi")
    with pytest.raises(ConfigError, match="^sharpness_iters:"):
        hessian.top_eigenvalue(lambda v: v, jnp.ones(3), num_iters=0)
    with pytest.raises(ConfigError, match="^search:"):
        search.first_true(lambda i: i > 0, 5, 1, strategy="ternary")
    with pytest.raises(ConfigError, match="^out_alpha:"):
        models.ModelConfig(out_alpha=float("inf"))
    with pytest.raises(ConfigError, match="^last_layer:"):
        models.ModelConfig(last_layer="zero", centered=True)
    with pytest.raises(ConfigError, match="^width:"):
        models.ModelConfig(width=2.5)
    with pytest.raises(ConfigError, match="^div_threshold:"):
        train.TrainConfig(div_threshold=float("nan"))
    for bad in (-0.1, float("inf"), True, "0.1"):
        with pytest.raises(ConfigError, match="^sharpness_warm_mix:"):
            train.TrainConfig(sharpness_warm_mix=bad)
    assert issubclass(ConfigError, ValueError)


def test_numpy_values_are_accepted_and_normalised(no_compute):
    """numpy arrays and scalars where lists and numbers are expected: same config, same key."""
    from earlytrain import cache
    plain = sweep.from_params(**OK)
    np_cfg = sweep.from_params(**dict(OK, seeds=np.array([1, 2]), widths=np.array([4]), depths=np.int64(2),
                                      x_max=np.float64(2.0), x_step=np.float32(0.5), n_train=np.int64(256),
                                      batch_size=np.int32(64)))
    assert np_cfg.seeds == (1, 2) and type(np_cfg.seeds[0]) is int and np_cfg.widths == (4,)
    assert cache.cache_key("f", np_cfg) == cache.cache_key("f", plain)


def test_unknown_names_anywhere_are_config_errors_with_close_matches(no_compute):
    from earlytrain.analyses import connectivity, saturation
    from earlytrain.uv import phases as uv_phases
    cases = [
        (lambda: sweep.from_params(**dict(OK, widht=4)), "parameters", "'width'"),
        (lambda: sweep.SweepConfig(train={"sharpness_iter": 5}), "train", "'sharpness_iters'"),
        (lambda: sweep.SweepConfig(model={"widht": 8}), "model", "'width'"),
        (lambda: sweep.SweepConfig(widht=8), "SweepConfig", "'widths'"),
        (lambda: sweep.SweepConfig().replace(seed=3), "SweepConfig", "'seeds'"),
        (lambda: train.TrainConfig(num_step=3), "TrainConfig", "'num_steps'"),
        (lambda: models.ModelConfig(depht=3), "ModelConfig", "'depth'"),
        (lambda: uv_phases.EarlyConfig(widht=4), "EarlyConfig", "'width"),
        (lambda: uv_phases.UVSaturationConfig(window_=4), "UVSaturationConfig", "'window'"),
        (lambda: uv_phases.CatapultConfig(k=(3.0,)), "CatapultConfig", "'ks'"),
        (lambda: uv_phases.BifurcationConfig(lr_mx=1.0), "BifurcationConfig", "'lr_max'"),
        (lambda: connectivity.ConnectivityConfig(sweep={"x_mx": 1.0}), "sweep", "'x_max'"),
        (lambda: connectivity.ConnectivityConfig(ntau=11), "ConnectivityConfig", "'n_tau'"),
        (lambda: saturation.SaturationConfig(sweep={"n_trian": 64}), "sweep", "'n_train'"),
        (lambda: saturation.SaturationConfig(Ktau=100.0), "SaturationConfig", "'K_tau'"),
    ]
    for make, param, near in cases:
        with pytest.raises(ConfigError) as err:
            make()
        msg = str(err.value)
        assert msg.startswith(param + ":") and "unknown name" in msg and near in msg, msg


def test_nested_config_of_the_wrong_type():
    with pytest.raises(ConfigError, match="^train: expected a TrainConfig or a dict"):
        sweep.SweepConfig(train=5)


def test_uv_configs_check_values():
    from earlytrain.uv import phases as uv_phases
    ok = uv_phases.EarlyConfig(widths=np.array([2, 4]), y=np.float32(0.5), x_max=np.float64(1.0))
    assert ok.widths == (2, 4)
    assert uv_phases.CatapultConfig(ks=np.array([2.5, 3.0])).ks == (2.5, 3.0)
    for make, param in [(lambda: uv_phases.EarlyConfig(x_max=np.inf), "x_max"),
                        (lambda: uv_phases.EarlyConfig(x_min=np.nan), "x_min"),
                        (lambda: uv_phases.EarlyConfig(widths=[True]), "widths"),
                        (lambda: uv_phases.EarlyConfig(eps_loss=np.nan), "eps_loss"),
                        (lambda: uv_phases.UVSaturationConfig(y=float("inf")), "y"),
                        (lambda: uv_phases.CatapultConfig(ks=[True]), "ks"),
                        (lambda: uv_phases.BifurcationConfig(f0=np.nan), "f0")]:
        with pytest.raises(ConfigError, match=f"^{param}:"):
            make()
