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

from ..errors import ConfigError, close_matches

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


# ----------------------------------------------------------------------------- the printed configuration
def _plain(v):
    """A parameter value in plain Python (tuples as lists, numpy scalars/arrays as numbers/lists)."""
    if hasattr(v, "tolist") and not isinstance(v, (str, bytes)):
        return _plain(v.tolist())
    if isinstance(v, Mapping):
        return {k: _plain(x) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return [_plain(x) for x in v]
    return v


def same_value(a, b) -> bool:
    """Whether two parameter values are the same (``[1, 2] == (1, 2)``, ``2 == 2.0``, ``None``)."""
    a, b = _plain(a), _plain(b)
    if isinstance(a, bool) or isinstance(b, bool):
        return type(a) is type(b) and a == b
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(same_value(x, y) for x, y in zip(a, b))
    if isinstance(a, Mapping) and isinstance(b, Mapping):
        return a.keys() == b.keys() and all(same_value(a[k], b[k]) for k in a)
    try:
        return bool(a == b)
    except Exception:
        return False


def differences(values: Mapping, reference: Mapping) -> dict[str, tuple]:
    """``{name: (value, reference value)}`` for every name of ``reference`` (a preset) whose value
    in ``values`` (a chapter's parameters) differs; a name the preset does not set is not compared
    (the preset does not state it: the chapter's default is the SPEC's)."""
    return {k: (values[k], ref) for k, ref in reference.items()
            if k in values and not same_value(values[k], ref)}


def fmt_value(v, max_items: int = 8) -> str:
    """A parameter value as short text: long lists as ``2, 4, ..., 1024 (10 values)``."""
    v = _plain(v)
    if isinstance(v, list) and len(v) > max_items:
        head = ", ".join(fmt_value(x) for x in v[:3])
        return f"[{head}, ..., {fmt_value(v[-1])}] ({len(v)} values)"
    return repr(v) if isinstance(v, (str, float)) else str(v)


def parameter_comments(source: str) -> dict[str, str]:
    """The trailing comment (``# ...``) of each top-level assignment of a parameters cell."""
    import io
    import tokenize
    comments: dict[int, str] = {}
    try:
        for tok in tokenize.generate_tokens(io.StringIO(source).readline):
            if tok.type == tokenize.COMMENT:
                comments[tok.start[0]] = tok.string.lstrip("#").strip()
    except (tokenize.TokenError, SyntaxError):
        return {}
    out: dict[str, str] = {}
    for node in ast.parse(source).body:
        if isinstance(node, (ast.Assign, ast.AnnAssign)):
            end = getattr(node, "end_lineno", node.lineno)
            text = comments.get(end) or comments.get(node.lineno)
            for name in declared_names(ast.unparse(node)):
                if text:
                    out.setdefault(name, text)
    return out


class ConfigTable:
    """A chapter's configuration for its page: a small table of the parameters that differ from a
    preset (the paper's), then everything (every parameter with its comment, and the derived
    configuration the chapter passes as ``details``) folded away in a ``<details>`` block.
    Jupyter and the book render the HTML; ``str()`` / the plain-text repr give the same as text."""

    def __init__(self, chapter: str, values: Mapping, reference: Mapping, comments: Mapping | None = None,
                 details: Iterable[str] = (), preset: str = "paper", note: str = ""):
        self.chapter, self.values, self.reference = chapter, dict(values), dict(reference)
        self.comments, self.details = dict(comments or {}), [d for d in details if d]
        self.preset, self.note = preset, note
        self.diff = differences(self.values, self.reference)

    @property
    def preset_path(self) -> str:
        return f"book/params/{self.chapter}/{self.preset}.yaml"

    def _head(self) -> str:
        n = len(self.diff)
        about = f"{self.preset_path}: {self.note}" if self.note else self.preset_path
        return (f"Parameters of this run that differ from the {self.preset} preset ({about}): "
                f"{n or 'none'} of {len(self.values)}; the others equal it or it does not set them")

    def _dump(self) -> str:
        width = max((len(k) for k in self.values), default=0)
        lines = [f"{k:<{width}} = {fmt_value(v, max_items=10**6)}"
                 + (f"  # {self.comments[k]}" if self.comments.get(k) else "") for k, v in self.values.items()]
        return "\n".join(lines + [""] + self.details if self.details else lines)

    def __str__(self) -> str:
        rows = [f"  {k} = {fmt_value(v)}   ({self.preset}: {fmt_value(ref)})" for k, (v, ref) in self.diff.items()]
        return "\n".join([self._head() + (":" if rows else "."), *rows, "", "All parameters:", self._dump()])

    def _repr_pretty_(self, p, cycle):
        p.text(str(self))

    def _repr_html_(self) -> str:
        import html
        e = html.escape
        if self.diff:
            rows = "".join(f"<tr><td><code>{e(k)}</code></td><td>{e(fmt_value(v))}</td><td>{e(fmt_value(ref))}</td>"
                           f"<td><small>{e(self.comments.get(k, ''))}</small></td></tr>"
                           for k, (v, ref) in self.diff.items())
            table = (f'<table class="config-diff"><tr><th>parameter</th><th>this run</th>'
                     f"<th>{e(self.preset)} preset</th><th></th></tr>{rows}</table>")
        else:
            table = ""
        return (f'<div class="config"><p><small>{e(self._head())}{":" if self.diff else "."}</small></p>'
                f"{table}"
                f'<details class="toggle-details"><summary class="toggle-details__summary">'
                f'<span class="toggle-details__summary-text">&#9656; All {len(self.values)} parameters '
                f"and the configuration they give</span></summary>"
                f"<pre>{e(self._dump())}</pre></details></div>")


def chapter_source(chapter: str, where: str | Path | None = None) -> Path | None:
    """A chapter's notebook (``<chapter>.md`` or ``.ipynb``) in ``where`` (default: the working
    directory, ``book/`` for every way the chapters run) or in its ``book/`` subdirectory."""
    base = Path(where) if where is not None else Path.cwd()
    for d in (base, base / "book"):
        for suffix in (".md", ".ipynb"):
            if (d / f"{chapter}{suffix}").is_file():
                return d / f"{chapter}{suffix}"
    return None


def config_table(chapter: str, namespace: Mapping, *details: str, preset: str = "paper",
                 book_dir: str | Path | None = None) -> ConfigTable:
    """The configuration a chapter prints (see :class:`ConfigTable`): its parameters (the names its
    parameters cell declares, valued from ``namespace``, the kernel's ``globals()``) against the
    preset ``book/params/<chapter>/<preset>.yaml``; ``details``: text of the derived configuration
    (e.g. ``sweep.summary(cfg)``), shown folded with every parameter."""
    import yaml
    src = chapter_source(chapter, book_dir)
    base = src.parent if src is not None else Path(book_dir) if book_dir is not None else Path.cwd()
    preset_file = base / "params" / chapter / f"{preset}.yaml"
    text = preset_file.read_text() if preset_file.is_file() else ""
    reference = yaml.safe_load(text) or {}
    lead = []  # the preset's leading comment block: what it is
    for ln in text.splitlines():
        if not ln.startswith("#"):
            break
        lead.append(ln.lstrip("#").strip())
    comment = " ".join(s for s in lead if s)
    if src is not None:
        cell = parameters_source(read_notebook(src))
        names, comments = declared_names(cell), parameter_comments(cell)
    else:  # no source beside the kernel: at least the preset's names
        names, comments = list(reference), {}
    values = {n: namespace[n] for n in names if n in namespace}
    return ConfigTable(chapter, values, reference, comments, details, preset, note=comment)
