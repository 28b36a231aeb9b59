"""Content-addressed, atomic on-disk cache for results (xarray Datasets).

A result is keyed by ``sha256(function name + canonical JSON of its config + CODE_HASH)``.
``CODE_HASH`` hashes the source of every computing module of this package (everything but
``plotting/``), so an edit to the physics recomputes exactly the results it can change, while
an edit to a figure does not. jupyter-cache only hashes notebook cells; this closes that gap.

Layout: ``<root>/<name>/<key16>.nc`` (netCDF via h5netcdf; the config is also stored as the
JSON attribute ``config``) and ``<key16>.json`` (config, code hash, versions, device, wall
time). Both files are written to a temporary name and renamed, so an interrupted write never
leaves a truncated result that a later run would trust.

Environment: ``EARLYTRAIN_RESULTS`` moves the root (default ``<repo>/results``);
``EARLYTRAIN_REFRESH=1`` recomputes and overwrites. Neither changes any parameter.
"""
from __future__ import annotations

import dataclasses
import functools
import hashlib
import json
import os
import platform
import tempfile
import time
from pathlib import Path
from typing import Any, Callable

import numpy as np
import xarray as xr

_PKG = Path(__file__).resolve().parent
REPO_ROOT = _PKG.parent.parent


def _code_hash() -> str:
    h = hashlib.sha256()
    for path in sorted(_PKG.rglob("*.py")):
        rel = path.relative_to(_PKG).as_posix()
        if rel.startswith("plotting/"):
            continue
        h.update(rel.encode())
        h.update(path.read_bytes())
    return h.hexdigest()


CODE_HASH = _code_hash()


def _jsonable(obj: Any) -> Any:
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return {f.name: _jsonable(getattr(obj, f.name)) for f in dataclasses.fields(obj)}
    if isinstance(obj, dict):
        return {str(k): _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_jsonable(v) for v in obj]
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, float) and obj.is_integer() and abs(obj) < 2**53:
        return int(obj)  # 0 and 0.0 are the same configuration, so they get the same key
    return obj


def canonical_json(cfg: Any) -> str:
    """JSON of a config, independent of dict order and of list/tuple spelling."""
    return json.dumps(_jsonable(cfg), sort_keys=True, separators=(",", ":"))


def cache_key(name: str, cfg: Any, code_hash: str | None = None) -> str:
    h = hashlib.sha256()
    for part in (name, canonical_json(cfg), code_hash or CODE_HASH):
        h.update(part.encode())
        h.update(b"\0")
    return h.hexdigest()


def results_root() -> Path:
    return Path(os.environ.get("EARLYTRAIN_RESULTS", REPO_ROOT / "results"))


def _atomic_write(path: Path, write: Callable[[str], None]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix="." + path.name + ".", suffix=".tmp", dir=path.parent)
    os.close(fd)
    try:
        write(tmp)
        os.chmod(tmp, 0o644)  # mkstemp creates 0600; results are meant to be shared
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.remove(tmp)
        raise


def _versions() -> dict:
    import jax, jaxlib, flax, optax  # noqa: E401  (heavy imports only when writing)
    from . import __version__
    return {"earlytrain": __version__, "python": platform.python_version(), "jax": jax.__version__,
            "jaxlib": jaxlib.__version__, "flax": flax.__version__, "optax": optax.__version__,
            "numpy": np.__version__, "xarray": xr.__version__}


def _device() -> dict:
    import jax
    devs = jax.devices()
    return {"platform": devs[0].platform, "kind": devs[0].device_kind, "count": len(devs),
            "machine": platform.machine()}


def save(ds: xr.Dataset, path: Path, sidecar: dict) -> None:
    """Write ``ds`` to ``path`` (.nc) and ``sidecar`` to the .json beside it, atomically."""
    ds = ds.copy()
    ds.attrs["config"] = json.dumps(sidecar.get("config"), sort_keys=True)
    _atomic_write(path, lambda tmp: ds.to_netcdf(tmp, engine="h5netcdf"))
    text = json.dumps(sidecar, indent=2, sort_keys=True)
    _atomic_write(path.with_suffix(".json"), lambda tmp: Path(tmp).write_text(text))


def load(path: Path) -> xr.Dataset:
    with xr.open_dataset(path, engine="h5netcdf") as ds:
        return ds.load()


def cached(fn: Callable[[Any], xr.Dataset], name: str | None = None) -> Callable[[Any], xr.Dataset]:
    """Wrap ``fn(cfg) -> xr.Dataset`` so its result is computed once per (cfg, code).

    ``cfg`` must be a dataclass, dict or other JSON-able value. Returns the loaded Dataset,
    whose ``attrs['cache_path']`` says where it lives.
    """
    name = name or f"{fn.__module__.rsplit('.', 1)[-1]}.{fn.__qualname__}"

    @functools.wraps(fn)
    def wrapper(cfg: Any) -> xr.Dataset:
        key = cache_key(name, cfg)
        path = results_root() / name / f"{key[:16]}.nc"
        if path.exists() and os.environ.get("EARLYTRAIN_REFRESH", "0") != "1":
            ds = load(path)
        else:
            start = time.perf_counter()
            ds = fn(cfg)
            wall = time.perf_counter() - start
            sidecar = {"function": name, "key": key, "config": _jsonable(cfg), "code_hash": CODE_HASH,
                       "versions": _versions(), "device": _device(), "wall_time_s": round(wall, 3),
                       "created": time.strftime("%Y-%m-%dT%H:%M:%S%z")}
            save(ds, path, sidecar)
            ds = load(path)  # what later runs will see, so first and cached runs agree exactly
        ds.attrs["cache_path"] = str(path)
        return ds

    wrapper.cache_name = name
    return wrapper
