"""A chapter parameter that the chapter does not declare fails before any compute, with close
matches: in the kernel (plain papermill, make rerun, the tests) and in scripts/rerun_chapter.py."""
from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

from earlytrain.book import params
from earlytrain.errors import ConfigError

ROOT = Path(__file__).resolve().parent.parent
CHAPTERS = sorted((ROOT / "book").glob("[0-9][0-9]_*.md"))


def test_declared_names():
    src = "a = 1  # c\nb: int = 2\nc, (d, *e) = 3, (4, 5)\nf += 1\nif x:\n    g = 1\nh.i = 2\nj = k = 0\n"
    assert params.declared_names(src) == ["a", "b", "c", "d", "e", "f", "j", "k"]


def test_check_injected_on_a_history():
    declared = "width = 4\nseeds = [1, 2]\n"
    ok = ["", "import numpy", declared, "# Parameters\nwidth = 8\n", "check_injected()"]
    params.check_injected(ok)
    params.check_injected(["", declared, "check_injected()"])  # not run by papermill: nothing to do
    params.check_injected(["", declared, "# Parameters\nPAPERMILL_INPUT_PATH = 'x'\n"])  # --inject-paths
    with pytest.raises(ConfigError) as err:
        params.check_injected(["", declared, "# Parameters\nwidht = 8\nseed = 3\n", ""])
    msg = str(err.value)
    assert msg.startswith("parameters:") and "'widht' (did you mean 'width'?)" in msg
    assert "'seed' (did you mean 'seeds'?)" in msg and "declares: width, seeds" in msg


@pytest.mark.parametrize("nb_path", CHAPTERS, ids=lambda p: p.stem)
def test_every_chapter_checks_its_injected_parameters(nb_path):
    """The cell after the parameters cell starts with check_injected(), imported before."""
    code = [c for c in params.read_notebook(nb_path)["cells"] if c["cell_type"] == "code"]
    i = [k for k, c in enumerate(code) if "parameters" in c["metadata"].get("tags", [])][0]
    before = "".join("".join(c["source"]) for c in code[:i])
    assert "from earlytrain.book.params import check_injected" in before
    assert "".join(code[i + 1]["source"]).startswith("check_injected()")
    assert params.declared_names("".join(code[i]["source"]))  # the cell declares something


def test_check_notebook_for_a_yaml(tmp_path):
    import jupytext
    import yaml
    nb = CHAPTERS[0]
    quick = ROOT / "book" / "params" / nb.stem / "quick.yaml"
    as_ipynb = tmp_path / f"{nb.stem}.ipynb"  # what papermill runs: the same check on either form
    jupytext.write(jupytext.read(nb), as_ipynb, fmt="ipynb")
    for path in (nb, as_ipynb):
        params.check_notebook(path, yaml.safe_load(quick.read_text()))
        with pytest.raises(ConfigError, match=r"'widht' \(did you mean 'widths'"):
            params.check_notebook(path, {"widht": [4]})
    with pytest.raises(ConfigError, match="a mapping"):
        params.check_notebook(nb, [1, 2])


@pytest.mark.parametrize("nb_path", CHAPTERS, ids=lambda p: p.stem)
def test_presets_name_only_declared_parameters(nb_path):
    import yaml
    for preset in ("quick", "paper"):
        params.check_notebook(nb_path, yaml.safe_load((ROOT / "book" / "params" / nb_path.stem /
                                                       f"{preset}.yaml").read_text()) or {})


def test_rerun_rejects_an_unknown_yaml_key_before_papermill(tmp_path, monkeypatch, capsys):
    import rerun_chapter
    calls = []
    monkeypatch.setattr(rerun_chapter.subprocess, "call", lambda *a, **k: calls.append(a) or 0)
    bad = tmp_path / "my.yaml"
    bad.write_text("widht: 4\n")
    assert rerun_chapter.main("08_four_regimes", str(bad)) == 2
    assert not calls
    out = capsys.readouterr().out
    assert "'widht' (did you mean 'width'?)" in out


def test_papermill_run_with_a_typo_fails_before_compute(tmp_path, monkeypatch):
    """Plain papermill (as the tests and make rerun run it: jupytext converts the chapter's .md to
    .ipynb, papermill runs that) on a real chapter with -p widht 4."""
    import jupytext
    import papermill as pm
    results = tmp_path / "results"
    monkeypatch.setenv("EARLYTRAIN_RESULTS", str(results))
    monkeypatch.setenv("PATH", f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}")
    src = tmp_path / "08_four_regimes.ipynb"
    jupytext.write(jupytext.read(ROOT / "book" / "08_four_regimes.md"), src, fmt="ipynb")
    with pytest.raises(pm.PapermillExecutionError) as err:
        pm.execute_notebook(str(src), str(tmp_path / "out.ipynb"),
                            parameters={"widht": 4}, cwd=str(ROOT / "book"), kernel_name="python3",
                            progress_bar=False)
    assert err.value.ename == "ConfigError"
    assert "'widht' (did you mean 'width'?)" in err.value.evalue
    assert not results.exists()  # nothing was computed


# ----------------------------------------------------------------------------- the printed configuration
def test_same_value_and_differences():
    import numpy as np
    assert params.same_value([1, 2], (1, 2)) and params.same_value(2, 2.0)
    assert params.same_value(np.array([1, 2]), [1, 2]) and params.same_value(np.float32(0.5), 0.5)
    assert params.same_value(None, None) and not params.same_value(None, 0)
    assert not params.same_value(True, 1) and not params.same_value([1, 2], [1, 2, 3])
    assert not params.same_value("grid", "bisect")
    values = {"widths": [32, 64], "seeds": (1, 2), "search": "bisect", "x_step": 0.1}
    paper = {"widths": [256, 512], "seeds": [1, 2], "search": "grid", "not_here": 3}
    assert params.differences(values, paper) == {"widths": ([32, 64], [256, 512]), "search": ("bisect", "grid")}


def test_fmt_value_and_comments():
    assert params.fmt_value(list(range(12))) == "[0, 1, 2, ..., 11] (12 values)"
    assert params.fmt_value([1, 2]) == "[1, 2]" and params.fmt_value("a") == "'a'" and params.fmt_value(6.0) == "6.0"
    src = "a = 1  # the a\nb = [1,\n     2]  # the b\nc = 3\n"
    assert params.parameter_comments(src) == {"a": "the a", "b": "the b"}


CHAPTER_MD = """---
jupytext:
  text_representation:
    extension: .md
    format_name: myst
    format_version: 0.13
kernelspec:
  display_name: Python 3
  language: python
  name: python3
---

# A chapter

```{code-cell}
:tags: [parameters]

widths = [32, 64]  # widths w
seeds = [1, 2]     # initialisations
search = "bisect"  # how c is searched
```
"""


def test_config_table_of_a_chapter(tmp_path):
    (tmp_path / "ch.md").write_text(CHAPTER_MD)
    (tmp_path / "params" / "ch").mkdir(parents=True)
    (tmp_path / "params" / "ch" / "paper.yaml").write_text(
        "# The paper's sizes.\n# For a GPU.\nwidths: [256, 512]\nseeds: [1, 2]\n")
    ns = {"widths": [32, 64], "seeds": [1, 2], "search": "bisect", "other": "not a parameter"}
    t = params.config_table("ch", ns, "Sweep: derived line 1\nline 2", book_dir=tmp_path)
    assert t.diff == {"widths": ([32, 64], [256, 512])} and list(t.values) == ["widths", "seeds", "search"]
    html = t._repr_html_()
    table, folded = html.split("<details", 1)
    assert "<code>widths</code></td><td>[32, 64]</td><td>[256, 512]</td>" in table and "seeds" not in table
    assert "1 of 3" in table and "The paper&#x27;s sizes. For a GPU." in table
    assert "widths w" in table, "the parameter's comment in the parameters cell"
    assert "search = &#x27;bisect&#x27;  # how c is searched" in folded and "Sweep: derived line 1\nline 2" in folded
    text = str(t)
    assert "widths = [32, 64]   (paper: [256, 512])" in text and "All parameters:" in text
    same = params.config_table("ch", {**ns, "widths": (256, 512)}, book_dir=tmp_path)
    assert not same.diff and "none of 3" in same._repr_html_() and "<table" not in same._repr_html_()


@pytest.mark.parametrize("nb_path", CHAPTERS, ids=lambda p: p.stem)
def test_every_chapter_prints_its_config_as_a_table(nb_path):
    """The cell after the parameters cell ends with config_table(CH, globals(), ...) and prints
    nothing itself (the full configuration goes to the table's folded part)."""
    import ast
    code = [c for c in params.read_notebook(nb_path)["cells"] if c["cell_type"] == "code"]
    i = [k for k, c in enumerate(code) if "parameters" in c["metadata"].get("tags", [])][0]
    src = "".join(code[i + 1]["source"])
    last = ast.parse(src).body[-1]
    assert isinstance(last, ast.Expr) and isinstance(last.value, ast.Call)
    assert ast.unparse(last.value).startswith("config_table(CH, globals()")
    assert "print(" not in src
    assert f'CH = "{nb_path.stem}"' in src
