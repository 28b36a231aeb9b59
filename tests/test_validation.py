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
    for mod, name in ((train, "run_grid"), (train, "initial_sharpness"), (sweep, "_train_data"),
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
    if param == "parameters":
        assert "learning_rate" in msg  # the unknown name itself is reported


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
            sweep.trajectories(cfg, c, progress=False)


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
    assert issubclass(ConfigError, ValueError)
