"""Compare two results caches point by point: did a library change move any critical constant?

Matches the cached results of two directories (``EARLYTRAIN_RESULTS`` of two builds) by function
and configuration, ignoring the configuration fields named with --ignore (by default the
sharpness tolerances, which the adaptive engine introduced or changed), and prints, per matched
point, every critical constant (variables named ``c_*``) that differs, per initialisation, with
its distance in grid steps, and the largest relative change of the other numeric variables.

Run:  .venv/bin/python bench/compare_results.py BEFORE_DIR AFTER_DIR [--ignore sharpness_tol lambda0_tol]
Exit status 1 if any critical constant differs.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
import xarray as xr


def _strip(cfg, ignore):
    if isinstance(cfg, dict):
        return {k: _strip(v, ignore) for k, v in cfg.items() if k not in ignore}
    if isinstance(cfg, list):
        return [_strip(v, ignore) for v in cfg]
    return cfg


def index(root: Path, ignore) -> dict:
    out = {}
    for side in root.glob("*/*.json"):
        meta = json.loads(side.read_text())
        key = (meta["function"], json.dumps(_strip(meta["config"], ignore), sort_keys=True))
        out[key] = side.with_suffix(".nc")
    return out


def grid_steps(a, b):
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.round(np.log2(b / a) / 0.1, 2)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("before", type=Path)
    ap.add_argument("after", type=Path)
    ap.add_argument("--ignore", nargs="*", default=["sharpness_tol", "lambda0_tol"])
    args = ap.parse_args(argv)
    before, after = index(args.before, set(args.ignore)), index(args.after, set(args.ignore))
    common = sorted(set(before) & set(after))
    print(f"{len(before)} results before, {len(after)} after, {len(common)} matched by configuration")
    n_const = n_diff = 0
    for fn, cfg in common:
        a, b = xr.load_dataset(before[(fn, cfg)]), xr.load_dataset(after[(fn, cfg)])
        c = json.loads(cfg)
        where = {k: c.get("sweep", c).get(k) for k in ("dataset", "depths", "widths")} if isinstance(c, dict) else {}
        lines = []
        for name in sorted(set(a.data_vars) & set(b.data_vars)):
            x, y = a[name].values, b[name].values
            if x.shape != y.shape or not np.issubdtype(x.dtype, np.number):
                continue
            if name.startswith("c_") and x.dtype.kind == "f":
                same = (x == y) | (np.isnan(x) & np.isnan(y))
                n_const += same.size
                if not same.all():
                    n_diff += int((~same).sum())
                    lines.append(f"    {name}: {x[~same]} -> {y[~same]} ({grid_steps(x[~same], y[~same])} grid steps)")
            elif x.dtype.kind == "f":
                with np.errstate(divide="ignore", invalid="ignore"):
                    r = np.nanmax(np.abs(y - x) / np.maximum(np.abs(x), 1e-30)) if np.isfinite(x).any() else 0.0
                if r > 1e-6:
                    lines.append(f"    {name}: max relative change {r:.1e}")
        print(f"{fn} {where}" + ("" if lines else ": identical constants"))
        for ln in lines:
            print(ln)
    print(f"\ncritical constants compared: {n_const}; different: {n_diff}")
    return 1 if n_diff else 0


if __name__ == "__main__":
    sys.exit(main())
