"""The library's layering, read statically from the source (no module is imported):

* no import cycle among earlytrain's modules, counting module-level and function-level imports;
* no earlytrain-internal import hidden inside a function (the way cycles get dodged); imports of
  optional third-party packages (dask, tfds, matplotlib, ...) inside functions are lazy imports,
  not cycle dodges, and are not counted;
* no library module imports ``scripts/`` (by module name or by loading a file);
* no private name (leading underscore, not dunder) used across modules, in lib/, bench/,
  scripts/ and the code cells of book/*.md: ``from earlytrain.x import _y`` and ``x._y`` on a
  module bound by an import.

Modules are discovered by walking ``lib/earlytrain`` (any depth), so a module moved into a
subpackage is checked where it lands. Each failure lists every offender with file and line.
"""
from __future__ import annotations

import ast
import re
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
LIB = ROOT / "lib"
PKG = LIB / "earlytrain"

# Known offenders allowed for a while, each with its owner and why (none today: an entry that no
# longer matches anything fails test_allowlists_name_live_offenders). Keys: (importing module, imported module) for imports,
# (file relative to the repository, "module._name") for private names.
CYCLE_EDGES_ALLOWED: set = set()
FUNCTION_IMPORTS_ALLOWED: set = set()
PRIVATE_ALLOWED: set = set()


def _private(name: str) -> bool:
    return name.startswith("_") and not name.startswith("__")


def library_modules() -> dict[str, Path]:
    """{dotted name: file} of every module of the package, found by walking its directory."""
    out = {}
    for path in sorted(PKG.rglob("*.py")):
        parts = list(path.relative_to(LIB).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        out[".".join(parts)] = path
    return out


MODULES = library_modules()


def _package_of(module: str) -> str:
    """The package a module's relative imports start from."""
    return module if MODULES[module].name == "__init__.py" else module.rpartition(".")[0]


@dataclass(frozen=True)
class Import:
    module: str       # the importing module
    target: str       # the earlytrain module or package imported
    name: str | None  # the name taken from it (``from target import name``), None for a module
    line: int
    in_function: bool


def _absolute(module: str, node: ast.ImportFrom) -> str:
    if not node.level:
        return node.module or ""
    base = _package_of(module).split(".")
    base = base[: len(base) - (node.level - 1)]
    return ".".join(base + ([node.module] if node.module else []))


def _imports(module: str, tree: ast.AST) -> list[Import]:
    """Every import of an earlytrain module in ``tree``, with whether it sits inside a function."""
    found = []

    def visit(node, in_function):
        for child in ast.iter_child_nodes(node):
            inner = in_function or isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda))
            if isinstance(child, ast.ImportFrom):
                base = _absolute(module, child)
                if base.split(".")[0] == "earlytrain":
                    for a in child.names:
                        sub = f"{base}.{a.name}"
                        if sub in MODULES:  # from package import module
                            found.append(Import(module, sub, None, child.lineno, in_function))
                        else:
                            found.append(Import(module, base, a.name, child.lineno, in_function))
            elif isinstance(child, ast.Import):
                for a in child.names:
                    if a.name.split(".")[0] == "earlytrain":
                        found.append(Import(module, a.name, None, child.lineno, in_function))
            visit(child, inner)

    visit(tree, False)
    return found


def _trees() -> dict[str, ast.AST]:
    return {m: ast.parse(p.read_text(), filename=str(p)) for m, p in MODULES.items()}


def import_graph() -> dict[str, set[str]]:
    """{module: earlytrain modules it imports (at module level or in a function)}."""
    graph = {m: set() for m in MODULES}
    for m, tree in _trees().items():
        for imp in _imports(m, tree):
            if imp.target in MODULES and imp.target != m:
                graph[m].add(imp.target)
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components with more than one module (Tarjan), each sorted."""
    index, low, stack, on, out = {}, {}, [], set(), []

    def strong(v):
        index[v] = low[v] = len(index)
        stack.append(v)
        on.add(v)
        for w in sorted(graph[v]):
            if w not in index:
                strong(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))

    for v in sorted(graph):
        if v not in index:
            strong(v)
    return out


def _cycle_path(graph, comp) -> str:
    """One cycle through the component's first module, as 'a -> b -> a'."""
    start, comp = comp[0], set(comp)
    paths = {start: [start]}
    todo = [start]
    while todo:
        v = todo.pop(0)
        for w in sorted(graph[v] & comp):
            if w == start:
                return " -> ".join(paths[v] + [start])
            if w not in paths:
                paths[w] = paths[v] + [w]
                todo.append(w)
    return ", ".join(sorted(comp))


def test_modules_found_by_walking_the_package():
    # the walk finds the package's modules at any depth (subpackages included)
    assert {"earlytrain", "earlytrain.sweep", "earlytrain.uv.phases", "earlytrain.grid"} <= set(MODULES)
    assert any(m.count(".") >= 2 for m in MODULES), "no module of a subpackage found"


def test_no_import_cycle():
    graph = import_graph()
    for a, b in CYCLE_EDGES_ALLOWED:
        graph[a].discard(b)
    found = cycles(graph)
    assert not found, "import cycles among earlytrain's modules (module-level and function-level " \
        "imports):\n  " + "\n  ".join(_cycle_path(graph, c) for c in found)


def test_cycle_detection_sees_a_cycle():
    # the checker itself: a -> b -> c -> a is found, a -> b -> c is not
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == [["a", "b", "c"]]
    assert cycles({"a": {"b"}, "b": {"c"}, "c": set()}) == []


def test_no_internal_import_inside_a_function():
    offenders = []
    for m, tree in _trees().items():
        for imp in _imports(m, tree):
            if imp.in_function and (m, imp.target) not in FUNCTION_IMPORTS_ALLOWED:
                offenders.append(f"{MODULES[m].relative_to(ROOT)}:{imp.line}: {m} imports {imp.target}"
                                 + (f" ({imp.name})" if imp.name else "") + " inside a function")
    assert not offenders, ("earlytrain-internal imports hidden inside functions (import at module "
                           "level; if that makes a cycle, move the shared piece down a layer):\n  "
                           + "\n  ".join(offenders))


SCRIPT_MODULES = {p.stem for p in (ROOT / "scripts").glob("*.py")} | {"scripts"}
FILE_LOADERS = {"spec_from_file_location", "run_path", "SourceFileLoader"}


def test_library_does_not_import_scripts():
    offenders = []
    for m, tree in _trees().items():
        where = MODULES[m].relative_to(ROOT)
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and not node.level:
                names = [node.module or ""]
            else:
                names = []
            for n in names:
                if n.split(".")[0] in SCRIPT_MODULES:
                    offenders.append(f"{where}:{node.lineno}: imports {n} (a module of scripts/)")
            if isinstance(node, ast.Call):
                f = node.func
                fname = f.attr if isinstance(f, ast.Attribute) else getattr(f, "id", "")
                if fname in FILE_LOADERS:
                    offenders.append(f"{where}:{node.lineno}: loads a module from a file ({fname})")
                if (isinstance(f, ast.Attribute) and f.attr in ("insert", "append")
                        and ast.unparse(f.value) == "sys.path"):
                    offenders.append(f"{where}:{node.lineno}: changes sys.path")
    assert not offenders, "the library reaches into scripts/ (scripts import the library, never the " \
        "reverse):\n  " + "\n  ".join(offenders)


# --------------------------------------------------------------------------- private names
def _md_code(path: Path) -> str:
    """The code cells of a MyST notebook as one Python source, lines kept in place (other lines
    blank), IPython magics and shell lines blanked."""
    lines = path.read_text().splitlines()
    out = [""] * len(lines)
    i = 0
    while i < len(lines):
        if re.match(r"^```\{code-cell\}", lines[i]):
            i += 1
            if i < len(lines) and lines[i].strip() == "---":  # cell options as YAML
                i += 1
                while i < len(lines) and lines[i].strip() != "---":
                    i += 1
                i += 1
            while i < len(lines) and lines[i].startswith(":"):  # cell options as :key: value
                i += 1
            while i < len(lines) and not lines[i].startswith("```"):
                if not lines[i].lstrip().startswith(("%", "!")):
                    out[i] = lines[i]
                i += 1
        i += 1
    return "\n".join(out)


def _sources() -> list[tuple[Path, str, str | None]]:
    """(file, source, its module name if it is one of earlytrain's) for lib/, bench/, scripts/
    and the book's chapters."""
    out = [(p, p.read_text(), m) for m, p in MODULES.items()]
    out += [(p, p.read_text(), None) for d in ("bench", "scripts") for p in sorted((ROOT / d).glob("*.py"))]
    out += [(p, _md_code(p), None) for p in sorted((ROOT / "book").glob("*.md"))]
    return out


def _local_modules(path: Path) -> set[str]:
    """Modules a script imports by bare name from its own folder (bench/timing.py, ...)."""
    return {p.stem for p in path.parent.glob("*.py")} if path.parent.name in ("bench", "scripts") else set()


def private_uses(path: Path, source: str, module: str | None) -> list[tuple[int, str]]:
    """(line, "module._name") for every private name of another module used in ``source``."""
    tree = ast.parse(source, filename=str(path))
    local = _local_modules(path) - {path.stem}
    bound = {}  # local name -> the module it is bound to
    uses = []

    def owner(base: str) -> bool:
        return base.split(".")[0] == "earlytrain" or base.split(".")[0] in local

    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            base = _absolute(module, node) if module else (node.module or "")
            if not owner(base):
                continue
            for a in node.names:
                if f"{base}.{a.name}" in MODULES or (not module and a.name in local):
                    bound[a.asname or a.name] = f"{base}.{a.name}"
                elif _private(a.name) and base != module:
                    uses.append((node.lineno, f"{base}.{a.name}"))
        elif isinstance(node, ast.Import):
            for a in node.names:
                if owner(a.name):
                    if a.asname:
                        bound[a.asname] = a.name
                    else:
                        bound[a.name.split(".")[0]] = a.name.split(".")[0]
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute) and _private(node.attr):
            try:
                dotted = ast.unparse(node.value)
            except Exception:  # noqa: BLE001
                continue
            head, _, rest = dotted.partition(".")
            if head in bound:
                target = bound[head] + (f".{rest}" if rest else "")
                if (target in MODULES or target.split(".")[0] in local) and target != module:
                    uses.append((node.lineno, f"{target}.{node.attr}"))
    return uses


def test_no_private_name_across_modules():
    offenders = []
    for path, source, module in _sources():
        rel = path.relative_to(ROOT).as_posix()
        for line, name in private_uses(path, source, module):
            if (rel, name) not in PRIVATE_ALLOWED:
                offenders.append(f"{rel}:{line}: {name}")
    assert not offenders, ("private names (leading underscore) used outside their module: make "
                           "them public and documented, or move the code to where it is used:\n  "
                           + "\n  ".join(offenders))


@pytest.mark.parametrize("source,module,expected", [
    ("from earlytrain import sweep\nsweep._train_data(1)", None, ["earlytrain.sweep._train_data"]),
    ("import earlytrain.sweep as s\ns._x", None, ["earlytrain.sweep._x"]),
    ("from earlytrain.uv.model import _fn_map", None, ["earlytrain.uv.model._fn_map"]),
    ("from . import model as uv\nuv._fn_map(1)", "earlytrain.uv.phases", ["earlytrain.uv.model._fn_map"]),
    ("from .book.claims.rules import _stat", "earlytrain.cache", ["earlytrain.book.claims.rules._stat"]),
    ("from earlytrain import sweep\nsweep.train_data(1); self._x; sweep.__name__", None, []),
])
def test_private_use_detection(source, module, expected):
    # the checker itself, on snippets: module-attribute and from-imports, relative and absolute
    path = ROOT / "lib" / "earlytrain" / "snippet.py" if module else ROOT / "tests" / "snippet.py"
    assert [n for _, n in private_uses(path, source, module)] == expected


def test_allowlists_name_live_offenders():
    # an allowlist entry that no longer matches anything must go (its owner fixed it)
    graph = import_graph()
    stale = [f"cycle edge {a} -> {b}" for a, b in CYCLE_EDGES_ALLOWED if b not in graph[a]]
    fn_imports = {(m, i.target) for m, t in _trees().items() for i in _imports(m, t) if i.in_function}
    stale += [f"function import {a} -> {b}" for a, b in FUNCTION_IMPORTS_ALLOWED if (a, b) not in fn_imports]
    used = {(p.relative_to(ROOT).as_posix(), n) for p, s, m in _sources() for _, n in private_uses(p, s, m)}
    stale += [f"private {f}: {n}" for f, n in PRIVATE_ALLOWED if (f, n) not in used]
    assert not stale, "allowlist entries with nothing left to allow (remove them):\n  " + "\n  ".join(stale)
