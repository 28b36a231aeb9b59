"""Content-addressed, atomic on-disk cache for results (xarray Datasets).

A result is keyed by ``sha256(function name + canonical JSON of its config + code hash)``.
The code hash of a cached function is that of the source of its module and of every module of
this package it imports, directly or not (read statically from the ``import`` statements:
``module_deps``), so an edit to the physics recomputes exactly the results it can change:
an edit to ``train.py`` recomputes the network sweeps but not the uv model's, and an edit to a
figure (``plotting/``, never imported by a computing module) recomputes nothing. jupyter-cache
only hashes notebook cells; this closes that gap. ``CODE_HASH`` hashes every computing module.

Layout: ``<root>/<name>/<key16>.nc`` (netCDF via h5netcdf; the config is also stored as the
JSON attribute ``config``) and ``<key16>.json`` (config, code hash, versions, device, wall
time). Both files are written to a temporary name and renamed, so an interrupted write never
leaves a truncated result that a later run would trust.

Environment: ``EARLYTRAIN_RESULTS`` moves the root (default ``<repo>/results``);
``EARLYTRAIN_REFRESH=1`` recomputes and overwrites. Neither changes any parameter.
"""
from __future__ import annotations

import ast
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


def _module_path(mod: str) -> Path:
    return _PKG / (mod.replace(".", "/") + ".py")


@functools.lru_cache(maxsize=None)
def _direct_deps(mod: str) -> frozenset:
    """Modules of this package (dotted names below ``earlytrain``) that ``mod`` imports."""
    tree = ast.parse(_module_path(mod).read_text())
    parts = mod.split(".")[:-1]  # the package of mod, relative to earlytrain
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            if node.level:  # relative: from . import a / from .a import b / from .. import c
                if node.level - 1 > len(parts):
                    continue
                base = parts[: len(parts) - (node.level - 1)]
                stem = ".".join(base + ([node.module] if node.module else []))
            elif node.module and node.module.split(".")[0] == "earlytrain":
                stem = node.module.partition(".")[2]
            else:
                continue
            for a in node.names:  # "from . import x": x may be a module
                sub = f"{stem}.{a.name}" if stem else a.name
                names.add(sub if _module_path(sub).exists() else stem)
        elif isinstance(node, ast.Import):
            names.update(a.name.partition(".")[2] for a in node.names
                         if a.name.split(".")[0] == "earlytrain" and "." in a.name)
    out = set()
    for n in names:
        if not n:
            out.add("__init__")
        elif _module_path(n).exists():
            out.add(n)
        elif (_PKG / n.replace(".", "/") / "__init__.py").exists():
            out.add(n + ".__init__")
    return frozenset(out)


def module_deps(mod: str) -> tuple:
    """``mod`` (e.g. "saturation" or "earlytrain.saturation") and every module of this package it
    imports, directly or not: sorted dotted names relative to the package."""
    mod = mod.partition(".")[2] if mod.split(".")[0] == "earlytrain" else mod
    seen, todo = set(), [mod]
    while todo:
        m = todo.pop()
        if m not in seen:
            seen.add(m)
            todo.extend(_direct_deps(m) - seen)
    return tuple(sorted(seen))


@functools.lru_cache(maxsize=None)
def code_hash_of(mod: str) -> str:
    """sha256 of the source of ``module_deps(mod)`` (read once per process)."""
    h = hashlib.sha256()
    for m in module_deps(mod):
        h.update(m.encode())
        h.update(_module_path(m).read_bytes())
    return h.hexdigest()


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
    in_pkg = fn.__module__.split(".")[0] == "earlytrain"

    @functools.wraps(fn)
    def wrapper(cfg: Any) -> xr.Dataset:
        code = code_hash_of(fn.__module__) if in_pkg else CODE_HASH
        key = cache_key(name, cfg, code)
        path = results_root() / name / f"{key[:16]}.nc"
        if path.exists() and os.environ.get("EARLYTRAIN_REFRESH", "0") != "1":
            ds = load(path)
        else:
            start = time.perf_counter()
            ds = fn(cfg)
            wall = time.perf_counter() - start
            sidecar = {"function": name, "key": key, "config": _jsonable(cfg), "code_hash": code,
                       "code_modules": list(module_deps(fn.__module__)) if in_pkg else ["*"],
                       "versions": _versions(), "device": _device(), "wall_time_s": round(wall, 3),
                       "created": time.strftime("%Y-%m-%dT%H:%M:%S%z")}
            save(ds, path, sidecar)
            ds = load(path)  # what later runs will see, so first and cached runs agree exactly
        ds.attrs["cache_path"] = str(path)
        return ds

    wrapper.cache_name = name
    return wrapper
