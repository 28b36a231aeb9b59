"""Build the book (Jupyter Book 1.x) and, if anything fails, say which chapter, which cell, with
which parameters, and print the traceback.

Usage: python scripts/build_book.py [BOOK_ROOT]   (default: the repository root)
Any execution error or Sphinx warning fails the build (-n -W --keep-going).
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(sys.argv[1] if len(sys.argv) > 1 else Path(__file__).resolve().parent.parent).resolve()


def parameters_of(nb_path: Path) -> str:
    """The source of the cells tagged 'parameters' / 'injected-parameters' of a notebook."""
    try:
        nb = json.loads(nb_path.read_text())
    except (OSError, ValueError):
        return "(notebook not readable)"
    srcs = ["".join(c["source"]) for c in nb["cells"]
            if {"parameters", "injected-parameters"} & set(c.get("metadata", {}).get("tags", []))]
    return "\n".join(srcs) or "(no parameters cell)"


def report_failures() -> None:
    reports = sorted((ROOT / "_build" / "html" / "reports").rglob("*.err.log"))
    for log in reports:
        rel = log.relative_to(ROOT / "_build" / "html" / "reports")
        nb = (ROOT / rel).with_name(rel.name.replace(".err.log", ".ipynb"))
        bar = "=" * 78
        print(f"\n{bar}\nFAILED CHAPTER: {nb.relative_to(ROOT) if nb.exists() else rel}\n{bar}")
        print("Parameters it ran with:\n" + parameters_of(nb))
        print("\nFailing cell and traceback:\n" + log.read_text())


def main() -> int:
    env = dict(os.environ)
    # the kernel must be this interpreter's (the project venv), whatever PATH says
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    cmd = [str(Path(sys.executable).parent / "jupyter-book"), "build", str(ROOT), "-n", "-W", "--keep-going"]
    print("+", " ".join(cmd), flush=True)
    rc = subprocess.call(cmd, env=env)
    if rc != 0:
        report_failures()
        print(f"\nBook build FAILED (exit {rc}). Logs: {ROOT / '_build' / 'html' / 'reports'}")
    else:
        print(f"\nBook built: {ROOT / '_build' / 'html' / 'index.html'}")
    return rc


if __name__ == "__main__":
    sys.exit(main())
