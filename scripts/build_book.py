"""Build the book (Jupyter Book 1.x) and, if anything fails, say which chapter, which cell, with
which parameters, and print the traceback.

Usage: python scripts/build_book.py [BOOK_ROOT]   (default: the repository root)

1. The stale chapters are executed first, in parallel, into the book's jupyter cache
   (``scripts/bookexec.py``): a chapter is stale when its code cells changed, or any library
   module it imports (its import closure, plus ``earlytrain/book/plotting/``) changed since it was last
   executed. Progress (running / done / cached, with elapsed times) is printed as it goes.
   The chapters are MyST Markdown notebooks (``book/*.md``, jupytext's ``myst`` format), which
   myst-nb reads and executes as they are; ``.ipynb`` files work too (``make rerun``'s copy).
   The reproduction report (book/report.md) reads the claims the chapters record
   (earlytrain.book.claims, in $EARLYTRAIN_CLAIMS or <root>/_build/claims): it executes after them,
   whenever a chapter executed or a claims file changed.
   ``BOOK_JOBS=n`` sets the number of chapters executed at once (default: the CPU count, at most 2).
   The longest chapters start first: their last execution time in the jupyter cache, else the
   committed ``book/params/costs.json``, which every build refreshes with the times it measured
   (commit it when it changed: a fresh clone then schedules as well as a warm one).
2. ``jupyter-book build`` then finds every chapter cached and executes nothing. Any execution
   error or Sphinx warning fails the build (-n -W --keep-going); a chapter that failed in step 1
   is not executed again (its page is built without outputs) and the build exits non-zero.

The build's start time goes to the kernels and to Sphinx as ``EARLYTRAIN_BUILD_T0``: the
execution page (book/build_info.md) states the total build time.

JAX's persistent compilation cache (``<repo>/.cache/jax``, ``scripts/jaxcache.py``) is passed
to the kernels.
"""
from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import yaml

import bookexec
import jaxcache

ROOT = Path(sys.argv[1] if len(sys.argv) > 1 else Path(__file__).resolve().parent.parent).resolve()


def parameters_of(nb_path: Path) -> str:
    """The source of the cells tagged 'parameters' / 'injected-parameters' of a notebook."""
    try:
        nb = bookexec.read_notebook(nb_path, ROOT)
    except Exception:
        return "(notebook not readable)"
    srcs = ["".join(c["source"]) for c in nb["cells"]
            if {"parameters", "injected-parameters"} & set(c.get("metadata", {}).get("tags", []))]
    return "\n".join(srcs) or "(no parameters cell)"


def report_failures() -> None:
    reports = sorted((ROOT / "_build" / "html" / "reports").rglob("*.err.log"))
    for log in reports:
        rel = log.relative_to(ROOT / "_build" / "html" / "reports")
        nb = bookexec.source_of(ROOT, (rel.parent / rel.name.replace(".err.log", "")).as_posix())
        nb = nb or (ROOT / rel).with_name(rel.name.replace(".err.log", ".ipynb"))
        bar = "=" * 78
        print(f"\n{bar}\nFAILED CHAPTER: {nb.relative_to(ROOT) if nb.exists() else rel}\n{bar}")
        print("Parameters it ran with:\n" + parameters_of(nb))
        print("\nFailing cell and traceback:\n" + log.read_text())


def config_excluding(failed: list[str]) -> Path:
    """A copy of _config.yml that does not execute the chapters that failed in the pre-execution
    (Jupyter Book would run them again, for up to the timeout each, to fail the same way)."""
    config = bookexec.book_config(ROOT)
    ex = config.setdefault("execute", {})
    paths = [bookexec.source_of(ROOT, d) for d in failed]
    ex["exclude_patterns"] = list(ex.get("exclude_patterns") or []) + [
        (p.relative_to(ROOT).as_posix() if p else f"{d}.ipynb") for d, p in zip(failed, paths)]
    path = ROOT / "_build" / "config_without_failed.yml"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return path


def main() -> int:
    # the kernels must be this interpreter's (the project venv), whatever PATH says
    os.environ["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"
    print(f"JAX compilation cache: {jaxcache.enable() or '(off)'}", flush=True)
    jobs = int(os.environ.get("BOOK_JOBS") or min(2, os.cpu_count() or 1))
    os.environ["EARLYTRAIN_BUILD_T0"] = str(time.time())  # the execution page's total build time
    t0 = time.perf_counter()
    plan = bookexec.execute_stale(ROOT, jobs=jobs)
    failed = [c.name for c in plan.execute if c.error]
    if plan.execute:
        print(f"Executed {len(plan.execute) - len(failed)} chapter(s) in {time.perf_counter() - t0:.0f} s"
              f" ({min(jobs, len(plan.execute))} at a time), {len(failed)} failed, {len(plan.cached)} cached",
              flush=True)
    cmd = [str(Path(sys.executable).parent / "jupyter-book"), "build", str(ROOT), "-n", "-W", "--keep-going"]
    if failed:
        cmd += ["--config", str(config_excluding(failed))]
    print("+", " ".join(cmd), flush=True)
    rc = subprocess.call(cmd, env=dict(os.environ))
    if failed and rc == 0:
        rc = 1
    if rc != 0:
        report_failures()
        print(f"\nBook build FAILED (exit {rc}). Logs: {ROOT / '_build' / 'html' / 'reports'}")
    else:
        print(f"\nBook built in {time.perf_counter() - t0:.0f} s: {ROOT / '_build' / 'html' / 'index.html'}")
    return rc


if __name__ == "__main__":
    sys.exit(main())
