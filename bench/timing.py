"""Timing helpers shared by the benchmarks (run as scripts, so this directory is on sys.path).

Importing it turns on JAX's persistent compilation cache (<repo>/.cache/jax, earlytrain.jaxcache):
with a warm cache, the compile times the benches print are cache reads. Run a bench with
JAX_COMPILATION_CACHE_DIR= (empty) to measure real compiles.
"""
from __future__ import annotations

import statistics
import sys
import time
from pathlib import Path

import jax

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "scripts"))
import jaxcache  # noqa: E402

jaxcache.enable()


def block(tree):
    """Wait for every array of ``tree`` (JAX dispatch is asynchronous)."""
    return jax.tree.map(lambda a: a.block_until_ready(), tree)


def timed(fn, repeats):
    """Median wall time of ``repeats`` calls of fn() (result blocked on), all times, last result."""
    times, out = [], None
    for _ in range(repeats):
        t0 = time.perf_counter()
        out = block(fn())
        times.append(time.perf_counter() - t0)
    return statistics.median(times), times, out
