"""Shared test set-up.

* JAX's persistent compilation cache (<repo>/.cache/jax) for the tests and the notebook kernels
  they launch, set before anything imports jax (scripts/jaxcache.py).
* Fast compiles. The suite compiles far more than it computes (hundreds of programs, most run for
  milliseconds), so it asks XLA's CPU backend for its cheapest code generation (``FAST_COMPILE``:
  LLVM optimisation level 0, expensive passes off), in this process and every process it starts
  (notebook kernels, cluster workers). Measured: chapter 07's quick preset 71 s -> 46 s, a set
  of CNN, Hessian and robustness tests 64 s -> 43 s. The programs are the same (XLA's HLO passes,
  fusion included, still run; only the machine code is less optimised), so values differ only by
  rounding (measured on a critical point at the book's settings: the same constants, lambda_0 to
  4e-7, 10-step losses to 7e-5, sharpness to 7e-4, inside its 1e-3 tolerance): every check that
  compares two computations runs both under the same flags, and every check against an exact
  answer has a stated tolerance far above rounding. The book builds with XLA's defaults;
  ``EARLYTRAIN_TEST_FAST_COMPILE=0`` runs the suite with them too.
* How ``make test`` spreads the suite over the cores (pytest-xdist, ``-n 2 --dist loadscope``,
  with the work units of ``group_of``): a module's tests go to one worker, so its expensive
  module-scoped fixtures (a LocalCluster, the tfds virtualenv's data, a CNN's statistics) are
  built once; a chapter's quick-preset run (tests/test_book_content.py, the suite's longest units,
  10-70 s each) is a unit of its own, so the chapters spread over the workers; they are queued
  first and the longest modules next, so no long unit starts last while the other worker idles.
  A plain ``pytest`` runs the same tests in the same order in one process.
"""
import os
import re
import sys
from pathlib import Path

import pytest

FAST_COMPILE = "--xla_backend_optimization_level=0 --xla_llvm_disable_expensive_passes=true"
if os.environ.get("EARLYTRAIN_TEST_FAST_COMPILE", "1") != "0":
    assert "jax" not in sys.modules, "XLA_FLAGS must be set before jax is imported"
    os.environ["XLA_FLAGS"] = f"{FAST_COMPILE} {os.environ.get('XLA_FLAGS', '')}".strip()

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "scripts"))
import jaxcache  # noqa: E402

jaxcache.enable()


@pytest.fixture
def x64():
    """Float64 inside the test only (a ``jax.enable_x64`` context, never globally): for checks
    against exact answers whose tolerances are below float32 round-off. jax is imported here, not
    at the top, because XLA_FLAGS above must be set before anything imports it."""
    import jax
    with jax.enable_x64(True):
        yield


CHAPTER_ID = re.compile(r"\[(\d\d_[a-z0-9_]+?)(?:-[^\]]*)?\]$")


def group_of(nodeid: str) -> str:
    """The work unit of a test id for ``make test``'s workers: a test of test_book_content.py that
    names a chapter (``...[07_architectures]``, ``...[02_uv_model-quick]``; the uv exact checks use
    chapter 02's run) goes with that chapter, so the chapter's quick preset runs once, on one
    worker; any other test goes with its module, whose module-scoped fixtures are then built once."""
    module, _, name = nodeid.partition("::")
    if module.endswith("test_book_content.py"):
        m = CHAPTER_ID.search(name)
        if m or name.startswith("test_uv_exact"):
            return f"chapter {m.group(1) if m else '02_uv_model'}"
    return module


# The modules whose tests take longest in all (20 s to 2 min, measured with `--durations`): queued
# right after the chapters, so that the last work units are short ones and no worker idles while
# another finishes a long module. Only the order depends on this list; any other module runs later.
LONG_MODULES = ("test_tfds.py", "test_sweep.py", "test_cnn.py", "test_hessian.py", "test_cluster.py",
                "test_report_build.py", "test_build.py")


def _queue_rank(item) -> tuple:
    module = item.path.name
    return (item.get_closest_marker("notebook") is None,
            LONG_MODULES.index(module) if module in LONG_MODULES else len(LONG_MODULES))


def pytest_collection_modifyitems(config, items):
    items.sort(key=_queue_rank)  # stable: the chapters' quick presets, the long modules, the rest


def pytest_xdist_make_scheduler(config, log):
    """Under ``--dist loadscope``: whole work units of ``group_of``, queued in collection order
    (chapters first) rather than by size. (xdist's own ``--dist loadgroup`` would need
    ``xdist_group`` marks, which pytest-xdist 3.8 cannot read into the test ids under pytest 9.)"""
    if config.getvalue("dist") != "loadscope":
        return None
    from xdist.scheduler import LoadScopeScheduling

    class ByGroup(LoadScopeScheduling):
        def _split_scope(self, nodeid: str) -> str:
            return group_of(nodeid)

    config.option.loadscopereorder = False
    return ByGroup(config, log)
