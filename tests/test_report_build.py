"""The reproduction report is never stale: it re-executes after the chapters whenever one of them
executed or their recorded claims changed, and `make rerun` of one chapter with new parameters
updates that chapter's rows in the copy of the book it builds (not in the main book).

A tiny book (layout of the real one: _toc.yml at the root, MyST Markdown notebooks in book/) with
one chapter that records one claim from a parameter, and the report; built as a user builds it
(scripts/build_book.py, scripts/rerun_chapter.py)."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from test_build import CONFIG, myst, notebook

REPO = Path(__file__).resolve().parent.parent
SCRIPTS = REPO / "scripts"
CH = "01_phase_diagram"

CHAPTER = myst(notebook(
    "from earlytrain.book import claims\n"
    f"claims.start('{CH}', f'tiny book, c_loss = {{c_loss_wide}}')\n"
    f"claims.record('{CH}', 'kb-closs-wide', measured=c_loss_wide, spread=0.0)",
    f"claims.show('{CH}')",
    params="c_loss_wide = 2.25"))


def report_notebook() -> str:
    nb = json.loads(notebook("from earlytrain.book import claims\nclaims.report()"))
    nb["metadata"]["earlytrain"] = {"report": True}
    nb["metadata"]["jupytext"] = {"notebook_metadata_filter": "earlytrain"}  # as book/report.md keeps it
    return myst(json.dumps(nb))


def make_book(tmp: Path) -> tuple[Path, dict]:
    root = tmp / "bk"
    (root / "book").mkdir(parents=True)
    (root / "_config.yml").write_text(CONFIG.replace('[_build, "**', '[_build, _runs, "**'))
    (root / "_toc.yml").write_text(f"format: jb-book\nroot: book/intro\nchapters:\n  - file: book/{CH}\n"
                                   "  - file: book/report\n")
    (root / "book" / "intro.md").write_text("# Tiny book\n")
    (root / "book" / f"{CH}.md").write_text(CHAPTER)
    (root / "book" / "report.md").write_text(report_notebook())
    env = {k: v for k, v in os.environ.items() if k != "EARLYTRAIN_CLAIMS"}
    env.update(PYTHONPATH=f"{REPO / 'lib'}{os.pathsep}{SCRIPTS}", EARLYTRAIN_RESULTS=str(tmp / "results"),
               PATH=f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}")
    return root, env


def run(args, env, cwd=None):
    r = subprocess.run([sys.executable, *args], env=env, capture_output=True, text=True, timeout=600, cwd=cwd)
    return r


def page(root: Path, name: str) -> str:
    return (root / "_build" / "html" / "book" / f"{name}.html").read_text()


def test_report_follows_the_chapters_and_make_rerun(tmp_path):
    root, env = make_book(tmp_path)
    r = run([str(SCRIPTS / "build_book.py"), str(root)], env)
    assert r.returncode == 0, r.stdout + r.stderr
    assert f"stale: book/{CH} (not executed yet)" in r.stdout
    report = page(root, "report")
    assert "tiny book, c_loss = 2.25" in report and "reproduced" in report and "2.25" in report
    assert f'href="{CH}.html#fig-pd-width"' in report
    assert "kb-closs-wide" in page(root, CH), "the chapter shows its own verdicts"
    claims_file = root / "_build" / "claims" / f"{CH}.json"
    assert json.loads(claims_file.read_text())["claims"][0]["measured"] == 2.25

    r = run([str(SCRIPTS / "build_book.py"), str(root)], env)  # nothing changed: nothing runs
    assert r.returncode == 0 and "stale:" not in r.stdout, r.stdout

    # make rerun with a new parameter: the copy's report has the new row, the main book keeps its own
    params = tmp_path / "p.yaml"
    params.write_text("c_loss_wide: 3.75\n")
    code = ("import sys, pathlib; sys.path.insert(0, sys.argv[1]); import rerun_chapter; "
            "sys.exit(rerun_chapter.main(sys.argv[2], sys.argv[3], root=pathlib.Path(sys.argv[4])))")
    r = run(["-c", code, str(SCRIPTS), CH, str(params), str(root)], env)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "stale: book/report (claims changed)" in r.stdout
    executed = json.loads((root / "_runs" / f"{CH}.ipynb").read_text())  # jupytext, then papermill
    tags = [c["metadata"].get("tags", []) for c in executed["cells"]]
    assert ["parameters"] in tags and ["injected-parameters"] in tags, "the parameters cell is kept"
    runs = root / "_runs" / "book"
    rerun_report = page(runs, "report")
    assert "tiny book, c_loss = 3.75" in rerun_report and "not reproduced" in rerun_report
    assert "2.25" not in rerun_report
    assert "3.75" in page(runs, CH)
    assert json.loads(claims_file.read_text())["claims"][0]["measured"] == 2.25, "main claims untouched"

    dry = run([str(SCRIPTS / "bookexec.py"), str(root), "--dry-run"], env)
    assert f"cached: book/{CH}" in dry.stdout and "cached: book/report" in dry.stdout, dry.stdout

    # a missing claims file: the chapter executes again (so the report never lacks its rows)
    claims_file.unlink()
    dry = run([str(SCRIPTS / "bookexec.py"), str(root), "--dry-run"], env)
    assert f"stale: book/{CH} (claims not recorded" in dry.stdout, dry.stdout
    assert "stale: book/report (" in dry.stdout, dry.stdout
    r = run([str(SCRIPTS / "build_book.py"), str(root)], env)
    assert r.returncode == 0, r.stdout + r.stderr
    starts = [line for line in r.stdout.splitlines() if "running report" in line]
    assert starts and f"done {CH}" in starts[0], "the report starts after the chapter is done"
    assert claims_file.exists() and "2.25" in page(root, "report")

    # the chapter's code changes: it executes, and so does the report after it
    src = root / "book" / f"{CH}.md"
    src.write_text(src.read_text().replace(f"claims.show('{CH}')", f"claims.show('{CH}')\nprint('edited')"))
    dry = run([str(SCRIPTS / "bookexec.py"), str(root), "--dry-run"], env)
    assert f"stale: book/{CH} (notebook changed)" in dry.stdout, dry.stdout
    assert "stale: book/report (chapters executed)" in dry.stdout, dry.stdout
