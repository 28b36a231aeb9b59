"""The public API (earlytrain.api) with models of one's own: a Flax module, an (init, apply) pair
and a family through the same path as the book's FCN (identical numbers for the same network);
arrays (x, y) as data; the results cache keyed on the user's source (an edit recomputes, a re-run
does not, version= replaces the hash); errors that name the parameter before any compute. Tiny
synthetic data: no data set needed."""
from __future__ import annotations

import importlib
import json
import linecache
import sys

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest
import xarray as xr

import earlytrain
from earlytrain import api, cache, data, models, sweep
from earlytrain.errors import ConfigError

RNG = np.random.RandomState(0)
X = RNG.randn(64, 4, 4, 1).astype(np.float32)
LABELS = RNG.randint(0, 3, 64)
SET = dict(n_train=64, n_measure=32, seeds=(1, 2), x_min=0.0, x_max=4.0, x_step=1.0, T1=3, num_steps=3,
           batch_size=16, sharpness_iters=10, search="grid")


class LNMLP(nn.Module):
    """An MLP with LayerNorm: a network the paper does not have."""
    width: int
    n_out: int = 3

    @nn.compact
    def __call__(self, x):
        h = x.reshape(x.shape[0], -1)
        h = nn.relu(nn.LayerNorm()(nn.Dense(self.width)(h)))
        return nn.Dense(self.n_out)(h)


def pair(width=8, n_out=3):
    """The same kind of network as a plain (init, apply) pair."""
    def init(key, x):
        k1, k2 = jax.random.split(key)
        d = x[0].size
        return {"w1": jax.random.normal(k1, (d, width)) / jnp.sqrt(d),
                "w2": jax.random.normal(k2, (width, n_out)) / jnp.sqrt(width)}

    def apply(params, x):
        return jnp.tanh(x.reshape(x.shape[0], -1) @ params["w1"]) @ params["w2"]
    return init, apply


@pytest.fixture
def results(tmp_path, monkeypatch):
    monkeypatch.setenv("EARLYTRAIN_RESULTS", str(tmp_path))
    monkeypatch.delenv("EARLYTRAIN_REFRESH", raising=False)
    monkeypatch.delenv("EARLYTRAIN_SCHEDULER", raising=False)
    return tmp_path


def _entries(root):
    return sorted(p.name for p in root.rglob("*.nc"))


def test_flax_module_through_the_api(results):
    xy = (X, LABELS)
    lam = api.lambda_0(LNMLP(width=8), xy, **SET)
    assert lam.lambda0.dims == ("seed",) and list(lam.seed.values) == [1, 2]
    assert np.all(np.isfinite(lam.lambda0)) and np.all(lam.lambda0 > 0) and bool(lam.lambda0_converged.all())
    ds = api.critical_constants(LNMLP(width=8), xy, **SET)
    assert set(ds.data_vars) >= {"c_loss", "c_sharp", "c_max", "c_max_censored", "lambda0"}
    assert ds.c_loss.dims == ("seed",)
    # lambda_0 is the same measurement in both (the same point, the same initialisations)
    np.testing.assert_array_equal(ds.lambda0.values, lam.lambda0.values)
    c_grid = 2.0 ** np.arange(0, 5)
    for name in ("c_loss", "c_sharp"):
        v = ds[name].values
        assert np.all(np.isnan(v) | np.isin(v, c_grid)), (name, v)
    tr = api.trajectories(LNMLP(width=8), xy, [1.0, 4.0], **SET)
    assert tr.loss.dims == ("seed", "c", "step") and tr.loss.shape == (2, 2, 4)
    np.testing.assert_array_equal(tr.sharpness.isel(step=0).values[:, 0], lam.lambda0.values)
    # step 0 is the initialisation: eta does not enter; a larger c moves the loss more at step 1
    np.testing.assert_array_equal(tr.loss.isel(step=0, c=0).values, tr.loss.isel(step=0, c=1).values)


def test_init_apply_pair_and_family_sweep(results):
    init, apply = pair()
    ds = api.critical_constants((init, apply), (X, LABELS), **SET)
    assert np.all(np.isfinite(ds.lambda0)) and ds.c_max.dims == ("seed",)
    fam = api.phase_diagram(lambda width: LNMLP(width=width), (X, LABELS), widths=[4, 8], progress=False, **SET)
    # the Dataset of sweep.phase_sweep: what the book's plotting and claims read
    ref_dims = ("depth", "width", "seed")
    assert fam.c_loss.dims == ref_dims and list(fam.width.values) == [4, 8] and list(fam.depth.values) == [1]
    assert set(fam.data_vars) >= set(sweep.COST_ATTRS) | {"c_loss", "c_sharp", "c_max", "c_max_censored"}
    np.testing.assert_array_equal(fam.c.values, 2.0 ** np.arange(0, 5))
    one = api.critical_constants(LNMLP(width=8), (X, LABELS), **SET)
    for name in ("c_loss", "c_sharp", "c_max", "lambda0"):  # the family's width 8 is that model
        np.testing.assert_array_equal(fam[name].sel(depth=1, width=8).values, one[name].values)


def test_book_fcn_and_the_same_module_as_a_user_model_agree(results):
    """The book's FCN (ModelConfig) and its Flax module handed in as one's own model take one
    path: the same numbers, bit for bit."""
    book = api.critical_constants(models.ModelConfig(depth=2, width=8, n_out=3), (X, LABELS), **SET)
    mine = api.critical_constants(models.FCN(depth=2, width=8, n_out=3), (X, LABELS), **SET)
    for name in ("c_loss", "c_sharp", "c_max", "lambda0", "c_max_censored"):
        np.testing.assert_array_equal(book[name].values, mine[name].values)


def test_arrays_are_keyed_by_content():
    a, b = data.arrays(X, LABELS), data.arrays(X.copy(), LABELS.copy())
    assert a == b and hash(a) == hash(b) and a.y.shape == (64, 3)
    c = data.arrays(X + 1e-3, LABELS)
    assert c != a
    cfg = lambda d: api.config(LNMLP(width=8), d, **SET)
    assert cache.cache_key("k", cfg(a)) == cache.cache_key("k", cfg(b)) != cache.cache_key("k", cfg(c))
    assert cache.canonical_json(cfg(a)).count(a.digest) == 1


MODULE_V1 = '''
import flax.linen as nn


def act(h):
    return nn.relu(h)


class Mine(nn.Module):
    width: int

    @nn.compact
    def __call__(self, x):
        return nn.Dense(3)(act(nn.Dense(self.width)(x.reshape(x.shape[0], -1))))
'''


def _load(tmp_path, name, text):
    path = tmp_path / f"{name}.py"
    path.write_text(text)
    linecache.checkcache(str(path))
    sys.path.insert(0, str(tmp_path))
    try:
        sys.modules.pop(name, None)
        return importlib.import_module(name)
    finally:
        sys.path.remove(str(tmp_path))


def test_cache_key_follows_the_users_source(results, tmp_path):
    mod = _load(tmp_path, "user_model_v", MODULE_V1)
    v1 = models.network(mod.Mine(width=8)).version
    assert v1.startswith("source:")
    assert models.network(_load(tmp_path, "user_model_v", MODULE_V1).Mine(width=8)).version == v1  # re-run
    assert models.network(mod.Mine(width=16)).version != v1  # another attribute value
    # an edit to the class body, and to a helper it calls, each change the key
    edit_body = MODULE_V1.replace("nn.Dense(3)", "nn.Dense(3, use_bias=False)")
    edit_helper = MODULE_V1.replace("return nn.relu(h)", "return nn.tanh(h)")
    versions = {models.network(_load(tmp_path, "user_model_v", t).Mine(width=8)).version
                for t in (edit_body, edit_helper)}
    assert len(versions | {v1}) == 3
    # a family: the lambda's source and the class it names
    fam1 = models.network(lambda width: mod.Mine(width=width))
    assert fam1.axes == ("width",)
    # explicit version= replaces the hash
    pinned = models.network(mod.Mine(width=8), version="v1")
    assert pinned.version == "user:v1" and models.network(mod.Mine(width=8), version="v2").version == "user:v2"
    # through the cache: an edit recomputes, a re-run reads
    m1 = _load(tmp_path, "user_model_v", MODULE_V1)
    api.critical_constants(m1.Mine(width=8), (X, LABELS), **SET)
    first = _entries(results)
    api.critical_constants(_load(tmp_path, "user_model_v", MODULE_V1).Mine(width=8), (X, LABELS), **SET)
    assert _entries(results) == first  # the re-run is a cache hit
    api.critical_constants(_load(tmp_path, "user_model_v", edit_helper).Mine(width=8), (X, LABELS), **SET)
    assert len(_entries(results)) == len(first) + 1  # the edit recomputed
    api.critical_constants(m1.Mine(width=8), (X, LABELS), version="v1", **SET)
    api.critical_constants(m1.Mine(width=8), (X, LABELS), version="v1", **SET)
    assert len(_entries(results)) == len(first) + 2  # version= is its own key, and read back
    sidecars = [json.loads(p.read_text()) for p in results.rglob("*.json")]
    assert any(s["config"]["model"].get("version") == "user:v1" for s in sidecars)


def test_source_that_cannot_be_read_asks_for_version():
    ns = {"nn": nn}
    exec("class Typed(nn.Module):\n    @nn.compact\n    def __call__(self, x):\n        return nn.Dense(3)(x)\n", ns)
    with pytest.raises(ConfigError, match=r"^model: the source of .* cannot be read .*give version="):
        models.network(ns["Typed"]())
    assert models.network(ns["Typed"](), version="1").version == "user:1"


@pytest.mark.parametrize("call,match", [
    (lambda: api.critical_constants(LNMLP(width=8), (X, LABELS), lr=0.1, **SET), r"^settings: unknown name 'lr'"),
    (lambda: api.critical_constants(LNMLP(width=8, n_out=10), (X, LABELS), **SET),
     r"^model: expected outputs of shape \[B, 3\]"),
    (lambda: api.critical_constants(LNMLP(width=8), (X, LABELS[:10]), **SET), r"^y: expected 64 targets"),
    (lambda: api.critical_constants(LNMLP(width=8), (X, LABELS), **{**SET, "n_train": 65}), r"^n_train:"),
    (lambda: api.critical_constants("not a model", (X, LABELS), **SET), r"^model:"),
    (lambda: api.phase_diagram(lambda width: LNMLP(width=width), (X, LABELS), **SET), r"^widths: expected the widths"),
    (lambda: api.phase_diagram(lambda width: LNMLP(width=width), (X, LABELS), widths=[4], depths=[2], **SET),
     r"^depths: expected None"),
    (lambda: api.critical_constants(LNMLP(width=8), "imagenet", **SET), r"^dataset:"),
])
def test_errors_name_the_parameter_before_compute(call, match, results, monkeypatch):
    def no_compute(*a, **k):
        raise AssertionError("computation started before the check")
    monkeypatch.setattr(sweep.train, "initial_sharpness", no_compute)
    with pytest.raises(ConfigError, match=match):
        call()
    assert _entries(results) == []


def test_batch_state_is_refused():
    class WithBN(nn.Module):
        @nn.compact
        def __call__(self, x):
            return nn.BatchNorm(use_running_average=False)(nn.Dense(3)(x.reshape(x.shape[0], -1)))
    model = models.build(models.network(WithBN(), version="1"))
    with pytest.raises(ConfigError, match=r"^model: a Flax module with only 'params'.*batch_stats"):
        model.init(jax.random.PRNGKey(0), jnp.asarray(X[:2]))


def test_top_level_exports():
    for name in ("lambda_0", "trajectories", "critical_constants", "phase_diagram", "network"):
        assert getattr(earlytrain, name) is getattr(api, name)
    assert isinstance(api.phase_diagram.__doc__, str)
    assert xr.Dataset  # the API returns xarray Datasets


SCRIPT_HEAD = '''
import os
import sys

import flax.linen as nn
import numpy as np

from earlytrain import api

rng = np.random.RandomState(0)
X, Y = rng.randn(64, 4, 4, 1).astype(np.float32), rng.randint(0, 3, 64)
SET = {SET!r}


class LNMLP(nn.Module):
    width: int

    @nn.compact
    def __call__(self, x):
        h = nn.relu(nn.LayerNorm()(nn.Dense(self.width)(x.reshape(x.shape[0], -1))))
        return nn.Dense(3)(h)
'''

GUARDED = SCRIPT_HEAD + '''

def main(root):
    os.environ["EARLYTRAIN_RESULTS"] = os.path.join(root, "here")
    here = api.phase_diagram(lambda width: LNMLP(width=width), (X, Y), widths=[4, 8], progress=False, **SET)
    os.environ["EARLYTRAIN_RESULTS"] = os.path.join(root, "there")
    there = api.phase_diagram(lambda width: LNMLP(width=width), (X, Y), widths=[4, 8], progress=False,
                              scheduler="local:2", **SET)
    for name in here.data_vars:
        np.testing.assert_array_equal(here[name].values, there[name].values, err_msg=name)
    print("IDENTICAL", sorted(here.data_vars))


if __name__ == "__main__":
    main(sys.argv[1])
'''

UNGUARDED = "import os\nos.environ['EARLYTRAIN_SCHEDULER'] = 'local:2'\n" + SCRIPT_HEAD + '''
print(api.critical_constants(LNMLP(width=8), (X, Y), **SET))
'''


def _run_script(tmp_path, text, timeout):
    import os
    import subprocess
    script = tmp_path / "user_script.py"
    script.write_text(text.replace("{SET!r}", repr(SET)))
    env = {k: v for k, v in os.environ.items() if k not in ("EARLYTRAIN_SCHEDULER", "EARLYTRAIN_REFRESH")}
    env["EARLYTRAIN_RESULTS"] = str(tmp_path / "results")
    return subprocess.run([sys.executable, str(script), str(tmp_path)], env=env, capture_output=True,
                          text=True, timeout=timeout, cwd=tmp_path)


def test_script_without_main_guard_gets_an_error_that_says_what_to_do(tmp_path):
    out = _run_script(tmp_path, UNGUARDED, timeout=240)
    assert out.returncode != 0
    assert "earlytrain.errors.ConfigError: EARLYTRAIN_SCHEDULER=local:N starts worker processes" in out.stderr
    line = UNGUARDED.splitlines().index("print(api.critical_constants(LNMLP(width=8), (X, Y), **SET))") + 1
    assert 'if __name__ == "__main__":' in out.stderr and f"user_script.py); its line {line} " in out.stderr, out.stderr
    assert out.stderr.count("Traceback") == 1 and "distributed" not in out.stderr  # no cluster started
    assert not (tmp_path / "results").exists()  # nothing computed


def test_user_model_on_local_cluster_is_bit_identical_to_in_process(tmp_path):
    """A model class and a family defined in a user's script (pickled by value by cloudpickle),
    computed in the script's process and on EARLYTRAIN_SCHEDULER-style local:2 workers."""
    out = _run_script(tmp_path, GUARDED, timeout=900)
    assert out.returncode == 0, out.stderr[-3000:]
    assert "IDENTICAL" in out.stdout and "c_loss" in out.stdout
    for where in ("here", "there"):  # each computed its own two points
        assert len(list((tmp_path / where / "sweep.critical_point").glob("*.nc"))) == 2
    there = [json.loads(p.read_text()) for p in (tmp_path / "there" / "sweep.critical_point").glob("*.json")]
    here = [json.loads(p.read_text()) for p in (tmp_path / "here" / "sweep.critical_point").glob("*.json")]
    assert sorted(s["key"] for s in here) == sorted(s["key"] for s in there)  # the same cache keys


def test_source_hash_is_the_same_in_another_process(tmp_path):
    """The key of a result must survive the process: field defaults (dataclasses' MISSING), a
    function as an attribute, a family's lambda and the plain globals it reads are hashed by
    what they are, not by a memory address."""
    import subprocess
    (tmp_path / "user_mod.py").write_text(
        "import flax.linen as nn\n\n\nclass Mine(nn.Module):\n    width: int\n    act: object = nn.relu\n\n"
        "    @nn.compact\n    def __call__(self, x):\n        return nn.Dense(3)(self.act(nn.Dense(self.width)(x)))\n\n\n"
        "DEPTH = 3\nfamily = lambda width: Mine(width=width * DEPTH)\n")
    code = ("import sys; sys.path.insert(0, sys.argv[1]); import user_mod; from earlytrain import models; "
            "print(models.network(user_mod.Mine(width=4)).version, models.network(user_mod.family).version)")
    runs = [subprocess.run([sys.executable, "-c", code, str(tmp_path)], capture_output=True, text=True, timeout=120)
            for _ in range(2)]
    assert all(r.returncode == 0 for r in runs), runs[0].stderr
    assert runs[0].stdout == runs[1].stdout and runs[0].stdout.count("source:") == 2
