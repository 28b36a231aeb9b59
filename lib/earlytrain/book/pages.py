"""A Sphinx extension for what the book's pages offer a reader (issue 19).

1. Every notebook page written as MyST Markdown offers its ``.ipynb`` in the theme's download
   button, next to the ``.md`` source.
2. A script a page would load twice is loaded once: sphinx-thebe (loaded by Jupyter Book on every
   page) registers its inline configuration script (``const THEBE_JS_URL = ...``) twice, and the
   second copy is a SyntaxError in the console of every page.
3. MathJax is loaded on every page, not only on pages with math of their own: the navigation
   sidebar shows the chapter titles, some with math (``$c_{crit}$``), on every page.

On 1:
sphinx-book-theme adds the ``.ipynb`` entry only when launch buttons are configured (it copies
myst-nb's executed notebook, ``_build/jupyter_execute/<page>.ipynb``, into ``_sources``). The
book's launch buttons are off by default (they need a public repository), so this extension does
the same for every notebook page, before the theme builds its buttons. myst-nb writes that
notebook without the outputs it took from the jupyter cache, so the outputs are merged back from
the book's cache when it holds them (else the notebook is offered without outputs). Either way
it keeps its ``parameters`` cell, so papermill runs it as the README describes.

Enabled in _config.yml (``sphinx.extra_extensions: [..., earlytrain.book.pages]``).
"""
from __future__ import annotations

import shutil
from pathlib import Path


def add_ipynb_source(app, pagename, templatename, context, doctree):
    if doctree is None or context.get("ipynb_source"):
        return
    if "kernelspec" not in app.env.metadata.get(pagename, {}):  # not a notebook
        return
    if not context.get("sourcename", "").endswith((".md", ".md.txt")):
        return  # an .ipynb source is its own download
    executed = Path(app.outdir).parent / "jupyter_execute" / f"{pagename}.ipynb"
    if not executed.is_file():
        return
    target = Path(app.outdir) / "_sources" / f"{pagename}.ipynb"
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.copy2(executed, target)
    try:  # the outputs, from the jupyter cache the build used
        import nbformat
        from jupyter_cache import get_cache
        cache_path = getattr(app.config, "nb_execution_cache_path", "") or \
            Path(app.outdir).parent / ".jupyter_cache"
        if Path(cache_path).is_dir():
            nb = nbformat.read(executed, as_version=4)
            _, merged = get_cache(cache_path).merge_match_into_notebook(nb)
            nbformat.write(merged, target)
    except Exception:  # not in the cache (e.g. execution off): the notebook as written
        pass
    context["ipynb_source"] = f"{pagename}.ipynb"


def drop_duplicate_scripts(app, pagename, templatename, context, doctree):
    seen, kept = set(), []
    for js in context.get("script_files", []):
        # an inline script's filename is None or "" depending on who added it
        key = (getattr(js, "filename", str(js)) or "", repr(sorted(getattr(js, "attributes", {}).items())))
        if key not in seen:
            seen.add(key)
            kept.append(js)
    if "script_files" in context:  # in place: other handlers hold the same list
        context["script_files"][:] = kept


def setup(app):
    app.set_html_assets_policy("always")  # MathJax (and every asset) on every page
    app.connect("html-page-context", drop_duplicate_scripts, priority=999)  # after the others add theirs
    # sphinx-book-theme builds its header buttons at priority 501
    app.connect("html-page-context", add_ipynb_source, priority=450)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
