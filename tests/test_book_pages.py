"""How the chapters present themselves to readers and teachers (issue 19), read from their
sources (no execution): analysis code folded, the parameters cell visible, and two to four
exercises per chapter whose solutions are hidden, quote glued values only and link a figure.
That every glue key a solution uses is glued by the chapter is tests/test_book_content.py's.
"""
from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parent.parent
CHAPTERS = sorted((ROOT / "book").glob("[0-9][0-9]_*.md"))
ids = [p.stem for p in CHAPTERS]
TUTORIALS = {"10_your_own_model"}  # a how-to page: its model and API calls are what it shows

FENCE = re.compile(r"^(`{3,})\{(\w[\w:-]*)\}(.*)$")


def blocks(text: str) -> list[dict]:
    """The top-level directives of a MyST text: name, argument, options and body."""
    out, lines, i = [], text.split("\n"), 0
    while i < len(lines):
        m = FENCE.match(lines[i])
        if not m:
            i += 1
            continue
        ticks, name, arg = m.group(1), m.group(2), m.group(3).strip()
        j = i + 1
        while j < len(lines) and lines[j] != ticks:
            j += 1
        body = lines[i + 1:j]
        opts = {}
        while body and body[0].startswith(":"):
            k, _, v = body.pop(0)[1:].partition(":")
            opts[k.strip()] = v.strip()
        out.append({"name": name, "arg": arg, "opts": opts, "body": "\n".join(body), "line": i + 1})
        i = j + 1
    return out


def tags(block: dict) -> set[str]:
    t = block["opts"].get("tags", "")
    return {s.strip() for s in t.strip("[]").split(",") if s.strip()}


def test_blocks_parser():
    text = ("# t\n\n```{code-cell}\n:tags: [hide-input]\n\nx = 1\n```\n\n````{exercise} Title\n"
            ":label: ex-a\n\nBody `make rerun`\n````\n")
    b = blocks(text)
    assert [x["name"] for x in b] == ["code-cell", "exercise"]
    assert tags(b[0]) == {"hide-input"} and b[1]["opts"] == {"label": "ex-a"} and b[1]["arg"] == "Title"


@pytest.mark.parametrize("path", CHAPTERS, ids=ids)
def test_analysis_cells_are_folded_and_the_parameters_cell_is_not(path):
    cells = [b for b in blocks(path.read_text()) if b["name"] == "code-cell"]
    params = [c for c in cells if "parameters" in tags(c)]
    assert len(params) == 1, "one parameters cell: the chapter's interface"
    assert not tags(params[0]) & {"hide-input", "remove-input", "remove-cell", "hide-cell"}
    unfolded = [c for c in cells if c is not params[0]
                and not tags(c) & {"hide-input", "remove-input", "remove-cell", "hide-cell"}]
    if path.stem in TUTORIALS:  # the code is the page's content: the model and the API calls show
        hidden = [c["line"] for c in unfolded if not re.search(r"\bapi\.|^class ", c["body"], re.M)]
        assert hidden == [], f"code cells shown unfolded at lines {hidden} neither define the model nor call the API"
        return
    lines = [c["line"] for c in unfolded]
    assert lines == [], f"code cells shown unfolded at lines {lines}: tag them hide-input"


@pytest.mark.parametrize("path", CHAPTERS, ids=ids)
def test_exercises_predict_then_test_and_hide_glued_solutions(path):
    text = path.read_text()
    bs = blocks(text)
    exercises = [b for b in bs if b["name"] == "exercise"]
    solutions = {b["arg"]: b for b in bs if b["name"] == "solution"}
    assert 2 <= len(exercises) <= 4, f"{len(exercises)} exercises"
    assert "\n## Exercises\n" in text, "an Exercises section"
    heading = text[:text.index("\n## Exercises\n")].count("\n") + 2  # its line number
    assert all(b["line"] > heading for b in exercises + list(solutions.values())), "under that heading"
    figures = set(re.findall(r"^:name: (\S+)", text, re.M))
    for ex in exercises:
        label = ex["opts"].get("label")
        assert label and label.startswith("ex-"), ex
        assert "make rerun" in ex["body"], f"{label}: says how to test the prediction"
        assert re.search(r"predict", ex["body"], re.I), f"{label}: asks for a prediction"
        sol = solutions.get(label)
        assert sol is not None, f"{label} has no solution"
        assert sol["opts"].get("class") == "dropdown", f"{label}: the solution is hidden until toggled"
        assert re.search(r"\{glue:text\}`[^`]+`", sol["body"]), f"{label}: the solution quotes a glued value"
        linked = set(re.findall(r"\{numref\}`([^`<]+)`", sol["body"]))
        assert linked and linked <= figures, f"{label}: links a figure of the chapter ({linked})"
        # numbers come from glue: none written by hand, apart from the parameter values the
        # exercise sets and small integers (step counts, the quadratic value 2)
        prose = re.sub(r"\{[\w:]+\}`[^`]*`|`[^`]*`|\$[^$]*\$", "", sol["body"])
        hand = re.findall(r"(?<![\w.])\d+\.\d+", prose)
        assert hand == [], f"{label}: hand-written decimals {hand} in the solution: glue them"
    assert set(solutions) == {e["opts"]["label"] for e in exercises}


def test_teaching_page_is_in_the_book():
    toc = yaml.safe_load((ROOT / "_toc.yml").read_text())
    files = [c["file"] for part in toc["parts"] for c in part["chapters"]]
    assert "book/teaching" in files
    text = (ROOT / "book" / "teaching.md").read_text()
    for stem in ids:  # every chapter is placed on the page
        assert f"{stem}" in text, stem
    assert "90" in text and "quick" in text
