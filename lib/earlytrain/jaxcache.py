"""JAX's persistent compilation cache, shared by the book build, the tests, the benches and the
workers of a cluster (``cluster.worker_env``). The library owns the setting; scripts/jaxcache.py
re-exports it for the scripts.

``enable()`` sets ``JAX_COMPILATION_CACHE_DIR`` to ``<repo>/.cache/jax`` (ignored by git) and
``JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS`` unless the user already set them; every process
started afterwards (notebook kernels, papermill) inherits them, and JAX reads them at import.
If JAX is already imported in this process, its configuration is updated too (it takes effect
at the first compile). ``JAX_COMPILATION_CACHE_DIR=`` (empty) turns the cache off.

The minimum compile time (0.1 s rather than JAX's default 1 s): most programs of the book
compile in 0.1-1 s (one per network shape, batch shape and measurement), so the default
would keep few of them; a cache entry is read back in milliseconds, and below about 0.1 s
(the many tiny eager-op programs) the lookup would cost what the compile does. Measured on
chapter 01's quick preset: a warm cache takes its 50 s to 15 s with 0.1 s, to 21 s with 1 s
(bench/README.md).

Two chapters executing at once share the directory. JAX writes an entry without a lock (that
needs the `filelock` package and a size limit); a read that meets an entry still being written
fails to decompress, and JAX then warns and compiles instead. Entries are keyed on the program,
the compile options, the JAX version and the device, so the cache is never stale.
"""
from __future__ import annotations

import os
import sys
from pathlib import Path

CACHE_DIR = Path(__file__).resolve().parents[2] / ".cache" / "jax"  # <repo>/.cache/jax
MIN_COMPILE_SECS = "0.1"


def enable(env: dict | None = None) -> str:
    """Set the cache variables in ``env`` (default ``os.environ``) unless set; return the dir."""
    env = os.environ if env is None else env
    env.setdefault("JAX_COMPILATION_CACHE_DIR", str(CACHE_DIR))
    env.setdefault("JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS", MIN_COMPILE_SECS)
    if env is os.environ and "jax" in sys.modules:
        import jax
        jax.config.update("jax_compilation_cache_dir", env["JAX_COMPILATION_CACHE_DIR"] or None)
        jax.config.update("jax_persistent_cache_min_compile_time_secs",
                          float(env["JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS"]))
    return env["JAX_COMPILATION_CACHE_DIR"]


def is_cold(env: dict | None = None) -> bool:
    """Whether the cache in ``env`` (default ``os.environ``) is off (``JAX_COMPILATION_CACHE_DIR``
    unset or empty), absent or empty: every program then compiles, as on a fresh clone. The book's
    build refreshes its committed chapter costs only after such a build (scripts/bookexec.py): with
    the cache warm, chapter 07 took 110 s instead of its 281 s cold (2026-12-04)."""
    d = (os.environ if env is None else env).get("JAX_COMPILATION_CACHE_DIR")
    if not d:
        return True
    p = Path(d)
    return not p.is_dir() or next(p.iterdir(), None) is None
