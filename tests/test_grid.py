"""earlytrain.grid: the c = 2^x grid shared by the network sweeps and the uv model.

The grid was built twice before (sweep.SweepConfig rounded x to 10 decimals, uv_phases to 6): the
shared construction must give bit-identical grids for every grid the book builds, so that no
glued number moves."""
import dataclasses
import itertools
import re
from pathlib import Path

import numpy as np
import pytest

from earlytrain import grid, sweep
from earlytrain.analyses import saturation
from earlytrain.uv import phases as uv_phases
from earlytrain.errors import ConfigError

ROOT = Path(__file__).resolve().parent.parent
GRID_VALUE = re.compile(r"\b[a-z_]*x_(min|max|step)\s*[:=]\s*(-?\d+(?:\.\d+)?)\b")


def _old_grid(x_min, x_max, x_step, decimals):
    """The two constructions grid.x_grid replaced (sweep: 10 decimals, uv_phases: 6)."""
    n = int(np.floor((x_max - x_min) / x_step + 1e-9)) + 1
    return np.round(x_min + x_step * np.arange(n), decimals)


def book_grid_values() -> dict[str, set]:
    """Every x_min, x_max, x_step the book uses: its chapters' sources (parameters cells and code
    cells), its presets (book/params/*/*.yaml) and the config classes' defaults."""
    vals = {"min": set(), "max": set(), "step": set()}
    files = sorted((ROOT / "book").glob("*.md")) + sorted((ROOT / "book" / "params").glob("*/*.yaml"))
    for f in files:
        for kind, v in GRID_VALUE.findall(f.read_text()):
            vals[kind].add(float(v))
    for cls in (sweep.SweepConfig, uv_phases.EarlyConfig, uv_phases.UVSaturationConfig):
        defaults = {f.name: f.default for f in dataclasses.fields(cls)}
        for kind in vals:
            vals[kind].add(float(defaults[f"x_{kind}"]))
    sat = saturation.SaturationConfig().sweep
    vals["min"].add(sat.x_min), vals["max"].add(sat.x_max), vals["step"].add(sat.x_step)
    return vals


def test_book_grids_are_bit_identical_to_both_old_constructions():
    vals = book_grid_values()
    # the book's grids are among these: the chapters' 0.0 .. 8.0 and -1.0 .. 4.5, steps 0.002 .. 0.5
    assert {0.0, -1.0} <= vals["min"] and {3.0, 6.0, 8.0} <= vals["max"] and {0.002, 0.1, 0.5} <= vals["step"]
    n = 0
    for lo, hi, step in itertools.product(sorted(vals["min"]), sorted(vals["max"]), sorted(vals["step"])):
        if hi < lo:
            continue
        new = grid.x_grid(lo, hi, step)
        for decimals in (10, 6):
            old = _old_grid(lo, hi, step, decimals)
            assert new.tobytes() == old.tobytes(), (lo, hi, step, decimals)
        assert (2.0 ** new).tobytes() == grid.c_grid(lo, hi, step).tobytes()
        n += 1
    assert n > 100  # every combination, not a handful


def test_configs_build_their_grids_with_the_shared_module():
    cfg = sweep.SweepConfig(x_min=-1.0, x_max=2.0, x_step=0.25)
    np.testing.assert_array_equal(cfg.x_grid, grid.x_grid(-1.0, 2.0, 0.25))
    np.testing.assert_array_equal(cfg.c_grid, 2.0 ** np.arange(-1.0, 2.01, 0.25))
    early = uv_phases.early_sweep(uv_phases.EarlyConfig(widths=(4,), n_init=2, x_min=0.0, x_max=1.0,
                                                        x_step=0.5, refine=0))
    np.testing.assert_array_equal(early.x.values, [0.0, 0.5, 1.0])


def test_grid_values_are_the_nearest_doubles_to_their_decimals():
    # 0.1 * 3 is 0.30000000000000004 in floats; the grid holds 0.3, computed without a running sum
    x = grid.x_grid(0.0, 6.0, 0.1)
    assert x[3] == 0.3 and x[-1] == 6.0 and len(x) == 61
    assert grid.n_points(0.0, 1.0, 0.3) == 4  # 0, 0.3, 0.6, 0.9: the end is not forced
    assert grid.x_grid(0.0, 1.0, 0.3)[-1] == 0.9


def test_limits_are_named_per_model():
    # a network point is a training run, a uv point a scalar map: a grid of 2e5 points is refused
    # for a network and allowed for the uv model
    big = dict(x_min=0.0, x_max=2.0, x_step=1e-5)
    with pytest.raises(ConfigError, match=f"at most {grid.MAX_POINTS_NETWORK} grid points"):
        sweep.SweepConfig(**big)
    uv_phases.EarlyConfig(**big)
    with pytest.raises(ConfigError, match=f"at most {grid.MAX_POINTS_UV} grid points"):
        uv_phases.EarlyConfig(x_min=0.0, x_max=20.0, x_step=1e-5)
    assert grid.MAX_POINTS_NETWORK < grid.MAX_POINTS_UV


@pytest.mark.parametrize("args,name", [
    ((0.0, 2000.0, 0.1), "x_max"), ((-1001.0, 1.0, 0.1), "x_min"), ((0.0, 1.0, 0.0), "x_step"),
    ((1.0, 0.0, 0.1), "x_max"), ((1.0, 1.0, 0.1), "x_max"),
])
def test_check_grid_names_the_parameter(args, name):
    with pytest.raises(ConfigError, match=name):
        grid.check_grid(*args, max_points=grid.MAX_POINTS_UV)


def test_single_point_grid_only_where_allowed():
    grid.check_grid(1.0, 1.0, 0.1, grid.MAX_POINTS_NETWORK, single_point=True)
    assert len(sweep.SweepConfig(x_min=1.0, x_max=1.0).c_grid) == 1  # a network sweep at one c
    with pytest.raises(ConfigError, match="x_max"):
        uv_phases.EarlyConfig(x_min=1.0, x_max=1.0)  # the uv configs ask for x_max > x_min, as before
