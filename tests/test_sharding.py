"""With several devices the sweep spreads the seeds over them and gets the same numbers.

Runs in a subprocess with XLA_FLAGS=--xla_force_host_platform_device_count=2 (two CPU devices),
because the device count is fixed when JAX starts."""
from __future__ import annotations

import json
import os
import subprocess
import sys

SCRIPT = r"""
import json, sys, jax, numpy as np, jax.numpy as jnp
from earlytrain import sweep
cfg = sweep.from_params(dataset="mnist", depths=[2], widths=[16], seeds=[1, 2], n_train=512,
                        n_measure=128, batch_size=128, num_steps=4, T1=4, x_max=4.0, x_step=1.0,
                        sharpness_iters=6)
pt = sweep.Point(cfg, 2, 16)
c = np.array([[1.0, 8.0], [2.0, 4.0]])
sharded = sweep.shard_seeds((jnp.asarray(c),))[0]
tr = pt.run(c, True, 2)
print(json.dumps({"devices": len(jax.devices()), "n_shards": len(sharded.sharding.device_set),
                  "loss": np.asarray(tr.loss).tolist(), "sharp": np.asarray(tr.sharpness).tolist()}))
"""


def _run(n_devices: int) -> dict:
    flags = f"{os.environ.get('XLA_FLAGS', '')} --xla_force_host_platform_device_count={n_devices}".strip()
    env = dict(os.environ, XLA_FLAGS=flags, JAX_PLATFORMS="cpu")  # keeps the suite's (conftest)
    out = subprocess.run([sys.executable, "-c", SCRIPT], env=env, capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_seeds_sharded_over_two_devices_give_the_same_runs():
    one, two = _run(1), _run(2)
    assert (one["devices"], one["n_shards"]) == (1, 1)
    assert (two["devices"], two["n_shards"]) == (2, 2)
    import numpy as np
    # same program, partitioned: float32 results agree to round-off
    np.testing.assert_allclose(np.array(two["loss"], float), np.array(one["loss"], float), rtol=1e-5)
    np.testing.assert_allclose(np.array(two["sharp"], float), np.array(one["sharp"], float), rtol=1e-4)
