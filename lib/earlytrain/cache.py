"""Content-addressed, atomic on-disk cache for results (xarray Datasets).

A result is keyed by ``sha256(function name + canonical JSON of its config + code hash)``.
A configuration may hold code or data of the user's (``models.Network``, ``data.Arrays``): they
enter the JSON through their ``cache_json()`` (the source hash of the user's module or its
``version=``, the sha256 of the arrays), so an edit to the user's model recomputes and a re-run
does not.
The code hash of a cached function is that of the source of its module and of every module of
this package it imports, directly or not (read statically from the ``import`` statements:
``module_deps``), so an edit to the physics recomputes exactly the results it can change:
an edit to ``train.py`` recomputes the network sweeps but not the uv model's, and an edit to a
figure (``book/plotting/``, never imported by a computing module) recomputes nothing. jupyter-cache
only hashes notebook cells; this closes that gap. ``CODE_HASH`` hashes every computing module.

Layout: ``<root>/<name>/<key16>.nc`` (netCDF via h5netcdf; the config and the full key are also
stored as the attributes ``config`` and ``cache_key``) and ``<key16>.json`` (config, code hash,
versions, device, wall time). Both files are written to a temporary name and renamed, so an
interrupted write never leaves a truncated result that a later run would trust.

The cache heals (each case warns with a ``CacheWarning`` naming the file):

* a result that cannot be read is moved aside to ``<key16>.nc.unreadable-<time>`` and recomputed;
* a result whose stored key, configuration or code hash differs from the request (a file copied
  over another, a collision of the 16-character name) is a miss: recomputed and overwritten;
* temporary files left by a killed writer (``.<key16>.nc.*.tmp``) are removed;
* a result without its JSON sidecar (killed between the two renames) gets one;
* a point is computed under an exclusive lock on ``.<key16>.lock`` (``fcntl.flock``, released
  by the OS even on kill -9; the file is removed on release), so two processes asking for the
  same point at once compute it once: the second waits and loads the first's file.

Environment: ``EARLYTRAIN_RESULTS`` moves the root (default ``<repo>/results``);
``EARLYTRAIN_REFRESH=1`` recomputes and overwrites. Neither changes any parameter.

Provenance: every result a cached function returns is noted (``SERVED``, in this process: its
file, whether it was computed or read, its compute time) and, with ``EARLYTRAIN_RESULTS_LOG`` set
to a file, appended to it as one JSON line (the book build gives each chapter its log:
``earlytrain.book.provenance``, ``scripts/bookexec.py``).
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
import warnings
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Callable

import numpy as np
import xarray as xr

from . import __version__

_PKG = Path(__file__).resolve().parent
REPO_ROOT = _PKG.parent.parent


class CacheWarning(UserWarning):
    """The results cache found a damaged, foreign or incomplete entry and repaired it."""


def _code_hash() -> str:
    h = hashlib.sha256()
    for path in sorted(_PKG.rglob("*.py")):
        rel = path.relative_to(_PKG).as_posix()
        if rel.startswith("book/plotting/"):
            continue
        h.update(rel.encode())
        h.update(path.read_bytes())
    return h.hexdigest()


CODE_HASH = _code_hash()


def _module_path(mod: str) -> Path:
    return _PKG / (mod.replace(".", "/") + ".py")


# Modules that decide where a point is computed, never what it computes (``cluster``: the
# in-process and the cluster runs are bit-identical, tests/test_cluster.py): not followed when
# hashing, so an edit to them recomputes nothing.
NOT_HASHED = frozenset({"cluster"})


@functools.lru_cache(maxsize=None)
def _direct_deps(mod: str) -> frozenset:
    """Modules of this package (dotted names below ``earlytrain``) that ``mod`` imports
    (except ``NOT_HASHED``)."""
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
    return frozenset(out - NOT_HASHED)


def module_deps(mod: str) -> tuple:
    """``mod`` (e.g. "saturation" or "earlytrain.analyses.saturation") and every module of this package it
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


def code_hash_for(fn: Callable) -> str:
    """The code hash of a result of ``fn``: ``code_hash_of`` its module if it is one of this
    package's, else ``CODE_HASH``."""
    mod = fn.__module__
    return code_hash_of(mod) if mod.split(".")[0] == "earlytrain" else CODE_HASH


def _jsonable(obj: Any) -> Any:
    if hasattr(obj, "cache_json") and not isinstance(obj, type):
        # what a value that holds code or arrays is keyed on: a network of one's own
        # (models.Network: name, source hash or the user's version, point) or arrays of one's own
        # (data.Arrays: name, sha256 of the bytes)
        return _jsonable(obj.cache_json())
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return {f.name: _jsonable(getattr(obj, f.name)) for f in dataclasses.fields(obj)}
    if isinstance(obj, dict):
        return {str(k): _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_jsonable(v) for v in obj]
    if isinstance(obj, np.generic):
        return _jsonable(obj.item())  # np.float64(2.0) -> 2, as 2.0
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
    if "key" in sidecar:
        ds.attrs["cache_key"] = sidecar["key"]
    _atomic_write(path, lambda tmp: ds.to_netcdf(tmp, engine="h5netcdf"))
    write_sidecar(path, sidecar)


def write_sidecar(path: Path, sidecar: dict) -> None:
    text = json.dumps(sidecar, indent=2, sort_keys=True)
    _atomic_write(path.with_suffix(".json"), lambda tmp: Path(tmp).write_text(text))


def load(path: Path) -> xr.Dataset:
    with xr.open_dataset(path, engine="h5netcdf") as ds:
        return ds.load()


@contextmanager
def _lock(path: Path):
    """Exclusive lock on ``.<key16>.lock`` beside ``path`` for the duration (no-op without fcntl).

    The lock file is removed on release (while still held); a waiter that then wakes up on the
    removed file sees that the path no longer names its file and locks afresh."""
    try:
        import fcntl
    except ImportError:  # not POSIX: concurrent writers still leave one valid file (atomic rename)
        yield
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    lock_path = path.parent / f".{path.stem}.lock"
    while True:
        f = open(lock_path, "a")
        fcntl.flock(f.fileno(), fcntl.LOCK_EX)
        try:
            if os.stat(lock_path).st_ino == os.fstat(f.fileno()).st_ino:
                break
        except FileNotFoundError:
            pass
        f.close()
    try:
        yield
    finally:
        try:
            os.unlink(lock_path)
        finally:
            f.close()  # releases the lock


SERVED: list[dict] = []  # every result returned in this process, in order (see the module doc)
RESULTS_LOG_ENV = "EARLYTRAIN_RESULTS_LOG"


def _note_served(name: str, path: Path, computed: bool, wall: float | None) -> None:
    """Note a returned result (``SERVED``; a line of $EARLYTRAIN_RESULTS_LOG if set)."""
    entry = {"function": name, "path": str(path), "computed": computed, "wall_time_s": wall}
    SERVED.append(entry)
    log = os.environ.get(RESULTS_LOG_ENV)
    if log:
        try:
            Path(log).parent.mkdir(parents=True, exist_ok=True)
            with open(log, "a") as f:
                f.write(json.dumps(entry) + "\n")
        except OSError as err:  # a provenance log never fails a computation
            warnings.warn(f"results cache: could not append to {log} ({err})", CacheWarning, stacklevel=3)


STALE_TMP_S = 24 * 3600  # a temporary file of another key older than this is an orphan


def _clean_tmp(path: Path) -> None:
    """Remove temporary files of this key (the caller holds its lock, so no writer owns them) and
    of any key in the directory that are older than ``STALE_TMP_S`` (killed writers)."""
    now = time.time()
    mine = (f".{path.name}.", f".{path.with_suffix('.json').name}.")
    for tmp in path.parent.glob(".*.tmp"):
        try:
            if tmp.name.startswith(mine) or now - tmp.stat().st_mtime > STALE_TMP_S:
                tmp.unlink()
                warnings.warn(f"results cache: removed the temporary file {tmp} left by an "
                              "interrupted write", CacheWarning, stacklevel=4)
        except FileNotFoundError:
            pass


def _check_entry(ds: xr.Dataset, path: Path, key: str, cfg: Any, code: str) -> str | None:
    """Why the loaded entry is not the requested result (None: it is)."""
    stored_key = ds.attrs.get("cache_key")
    if stored_key is not None and stored_key != key:
        return f"its key {stored_key[:16]}... is not the requested {key[:16]}..."
    try:
        stored_cfg = canonical_json(json.loads(ds.attrs.get("config", "null")))
    except (TypeError, ValueError):
        stored_cfg = None
    if stored_cfg != canonical_json(cfg):
        return f"its stored configuration {ds.attrs.get('config')!r} is not the requested {canonical_json(cfg)}"
    side = path.with_suffix(".json")
    if stored_key is None and side.exists():  # results written before keys were stored
        try:
            stored_code = json.loads(side.read_text()).get("code_hash")
        except (OSError, ValueError, AttributeError):
            stored_code = None
        if stored_code is not None and stored_code != code:
            return f"its code hash {stored_code[:12]}... is not the current {code[:12]}..."
    return None


def _load_checked(path: Path, key: str, cfg: Any, code: str, heal: bool) -> xr.Dataset | None:
    """The entry at ``path`` if it exists, is readable and is the requested result; else None.
    With ``heal`` (the caller holds the key's lock), an unreadable file is moved aside."""
    if not path.exists():
        return None
    try:
        ds = load(path)
    except Exception as err:  # noqa: BLE001  (h5py/xarray raise OSError, ValueError, KeyError, ...)
        if not heal:
            return None
        stamp, n = time.strftime("%Y%m%dT%H%M%S"), 0
        while (aside := path.with_name(f"{path.name}.unreadable-{stamp}" + (f"-{n}" if n else ""))).exists():
            n += 1
        os.replace(path, aside)
        warnings.warn(f"results cache: {path} could not be read ({type(err).__name__}: {err}); "
                      f"moved it to {aside.name} and recomputing it", CacheWarning, stacklevel=4)
        return None
    why = _check_entry(ds, path, key, cfg, code)
    if why is not None:
        if heal:
            warnings.warn(f"results cache: {path} is not this result ({why}); recomputing it",
                          CacheWarning, stacklevel=4)
        return None
    return ds


def _short_module(module: str) -> str:
    """The default result name's module part: the path below earlytrain (``uv.phases``), else the
    last component (a user's module)."""
    head, _, rest = module.partition(".")
    return rest if head == "earlytrain" and rest else module.rsplit(".", 1)[-1]


def cached(fn: Callable[[Any], xr.Dataset], name: str | None = None) -> Callable[[Any], xr.Dataset]:
    """Wrap ``fn(cfg) -> xr.Dataset`` so its result is computed once per (cfg, code).

    ``cfg`` must be a dataclass, dict or other JSON-able value. Returns the loaded Dataset,
    whose ``attrs['cache_path']`` says where it lives. See the module docstring for how a
    damaged, foreign or incomplete entry is healed and how concurrent callers share one compute.
    """
    name = name or f"{_short_module(fn.__module__)}.{fn.__qualname__}"
    in_pkg = fn.__module__.split(".")[0] == "earlytrain"

    def sidecar_for(cfg, key, code, wall, created):
        return {"function": name, "key": key, "config": _jsonable(cfg), "code_hash": code,
                "code_modules": list(module_deps(fn.__module__)) if in_pkg else ["*"],
                "versions": _versions(), "device": _device(), "wall_time_s": wall, "created": created}

    def locate(cfg: Any) -> tuple[str, str, Path]:
        code = code_hash_for(fn)
        key = cache_key(name, cfg, code)
        return code, key, results_root() / name / f"{key[:16]}.nc"

    def lookup(cfg: Any) -> xr.Dataset | None:
        """The cached result of ``cfg`` if there is a valid one (never computes, locks or heals)."""
        code, key, path = locate(cfg)
        if os.environ.get("EARLYTRAIN_REFRESH", "0") == "1" or not path.with_suffix(".json").exists():
            return None
        ds = _load_checked(path, key, cfg, code, heal=False)
        if ds is not None:
            ds.attrs["cache_path"] = str(path)
            _note_served(name, path, False, None)
        return ds

    @functools.wraps(fn)
    def wrapper(cfg: Any) -> xr.Dataset:
        code, key, path = locate(cfg)
        refresh = os.environ.get("EARLYTRAIN_REFRESH", "0") == "1"
        wall = None  # set when this call computes the result
        ds = None if refresh else _load_checked(path, key, cfg, code, heal=False)
        if ds is None or not path.with_suffix(".json").exists():
            with _lock(path):  # one process computes (or heals) a key at a time
                _clean_tmp(path)
                if not refresh:  # another process may have written it while we waited
                    ds = _load_checked(path, key, cfg, code, heal=True)
                if ds is None:
                    start = time.perf_counter()
                    ds = fn(cfg)
                    wall = round(time.perf_counter() - start, 3)
                    save(ds, path, sidecar_for(cfg, key, code, wall, time.strftime("%Y-%m-%dT%H:%M:%S%z")))
                    ds = load(path)  # what later runs will see, so first and cached runs agree exactly
                elif not path.with_suffix(".json").exists():
                    created = time.strftime("%Y-%m-%dT%H:%M:%S%z", time.localtime(path.stat().st_mtime))
                    side = sidecar_for(cfg, key, code, None, created)
                    side["note"] = "sidecar rebuilt on load (the result was written without it)"
                    write_sidecar(path, side)
                    warnings.warn(f"results cache: {path} had no sidecar; wrote "
                                  f"{path.with_suffix('.json').name}", CacheWarning, stacklevel=2)
        ds.attrs["cache_path"] = str(path)
        _note_served(name, path, wall is not None, wall)
        return ds

    wrapper.cache_name = name
    wrapper.cache_path = lambda cfg: locate(cfg)[2]
    wrapper.lookup = lookup
    return wrapper
