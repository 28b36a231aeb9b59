"""Chapter parameters: a name the chapter does not declare is an error, not a silent default.

A chapter (``book/NN_*.md``, a MyST Markdown notebook; papermill runs the ``.ipynb`` that jupytext
converts it to) declares its parameters as top-level assignments in its one cell tagged
``parameters``. papermill injects the values of ``-p name value`` / ``-f params.yaml`` as a
cell of assignments after it, the ``injected-parameters`` cell, whose source starts with
``# Parameters``, and only warns about a name that the parameters cell does not assign: the
chapter then runs with its defaults. Two checks close that gap, both listing close matches:

* ``check_injected()``, the first line of the cell after each chapter's parameters cell, runs in
  the kernel: it reads the kernel's input history (IPython's ``_ih``), takes the last injected
  cell and the cell before it (the parameters cell) and raises ``ConfigError`` for any injected
  name that cell does not assign. This holds for every way of running a chapter with
  parameters (``make rerun``, plain papermill, the tests) and fails before any compute. Without
  an injected cell (the book build, an interactive session) it does nothing.
* ``check_notebook(path, params)`` does the same from outside, on the notebook file, so that
  ``scripts/rerun_chapter.py`` fails before it starts a kernel.
"""
from __future__ import annotations

import ast
import json
from pathlib import Path
from typing import Iterable, Mapping

from .errors import ConfigError, close_matches

INJECTED_MARKER = "# Parameters"  # first line of papermill's injected cell (its Python translator)
PAPERMILL_NAMES = "PAPERMILL_"    # papermill's own (--inject-paths: PAPERMILL_INPUT_PATH, ...)


def declared_names(source: str) -> list[str]:
    """Names assigned at the top level of ``source`` (x = ..., x: T = ..., a, b = ..., x += ...)."""
    names: list[str] = []

    def targets(node):
        if isinstance(node, ast.Name):
            names.append(node.id)
        elif isinstance(node, (ast.Tuple, ast.List)):
            for elt in node.elts:
                targets(elt)
        elif isinstance(node, ast.Starred):
            targets(node.value)

    for node in ast.parse(source).body:
        if isinstance(node, ast.Assign):
            for t in node.targets:
                targets(t)
        elif isinstance(node, (ast.AnnAssign, ast.AugAssign)):
            targets(node.target)
    return list(dict.fromkeys(names))


def check_declared(given: Iterable[str], declared: Iterable[str], where: str = "this chapter") -> None:
    """ConfigError for every name of ``given`` that is not in ``declared``, with close matches."""
    declared = list(declared)
    unknown = [n for n in given if n not in set(declared)]
    if unknown:
        s = "s" if len(unknown) > 1 else ""
        raise ConfigError(
            f"parameters: {where} has no parameter{s} {close_matches(unknown, declared)}; "
            f"its parameters cell declares: {', '.join(declared)}")


def parameters_source(nb: Mapping) -> str:
    """Source of the one code cell tagged ``parameters`` of a notebook (as JSON)."""
    cells = [c for c in nb["cells"] if c["cell_type"] == "code"
             and "parameters" in c.get("metadata", {}).get("tags", [])]
    if len(cells) != 1:
        raise ConfigError(f"parameters: expected one cell tagged 'parameters', found {len(cells)}")
    src = cells[0]["source"]
    return src if isinstance(src, str) else "".join(src)


def read_notebook(path: str | Path) -> Mapping:
    """A chapter as a notebook: ``.ipynb`` as JSON, any other (``.md``, MyST) read by jupytext."""
    path = Path(path)
    if path.suffix == ".ipynb":
        return json.loads(path.read_text())
    import jupytext  # the book's requirement, not the library's: only text notebooks need it
    return jupytext.read(path)


def check_notebook(path: str | Path, params: Mapping) -> None:
    """ConfigError if ``params`` (a YAML file's mapping, papermill's -p values) has a name that
    the notebook's parameters cell does not declare (``path``: ``.md`` or ``.ipynb``)."""
    path = Path(path)
    if not isinstance(params, Mapping):
        raise ConfigError(f"parameters: expected a mapping of names to values, got {params!r}")
    declared = declared_names(parameters_source(read_notebook(path)))
    check_declared(params, declared, f"{path.stem}")


def check_injected(history: list[str] | None = None) -> None:
    """In a chapter's kernel: ConfigError if papermill injected a name that the parameters cell
    (the cell run just before the injected one) does not declare. ``history``: the kernel's
    input history (default: IPython's ``_ih``); nothing to check without an injected cell."""
    if history is None:
        try:
            from IPython import get_ipython
        except ImportError:
            return
        ip = get_ipython()
        if ip is None:
            return
        history = ip.user_ns.get("_ih", [])
    injected = [i for i, src in enumerate(history) if src.lstrip().startswith(INJECTED_MARKER)]
    if not injected or injected[-1] == 0:
        return
    i = injected[-1]
    given = [n for n in declared_names(history[i]) if not n.startswith(PAPERMILL_NAMES)]
    check_declared(given, declared_names(history[i - 1]))
