"""Timing helpers shared by the benchmarks (run as scripts, so this directory is on sys.path)."""
from __future__ import annotations

import statistics
import time

import jax


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
