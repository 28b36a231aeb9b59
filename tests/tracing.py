"""Counting how often the library's jitted functions are traced, for tests: through JAX's public
compile log (``jax.log_compiles``), not a counter in the library.

A jitted function is traced when its in-memory cache misses (new shapes or static arguments),
and only then: ``with traces() as n: ...`` leaves ``n["run_grid"]`` the traces of ``run_grid``
inside the block (a persistent compilation cache hit is still a trace).
"""
from __future__ import annotations

import collections
import contextlib
import logging
import re

import jax

_TRACED = re.compile(r"Finished tracing (?:\+ transforming )?(\S+) for (?:p)?jit")


@contextlib.contextmanager
def traces():
    counts: collections.Counter = collections.Counter()

    class Count(logging.Handler):
        def emit(self, record):
            m = _TRACED.match(record.getMessage())
            if m:
                counts[m.group(1)] += 1

    handler, logger = Count(level=logging.DEBUG), logging.getLogger("jax")
    logger.addHandler(handler)
    try:
        with jax.log_compiles():
            yield counts
    finally:
        logger.removeHandler(handler)
