"""How ``make test`` splits the suite over its workers (tests/conftest.py): a chapter's quick-preset
tests share one work unit, so the chapter runs once; other tests go with their module."""
from conftest import group_of


def test_a_chapters_tests_share_one_unit():
    runs = "tests/test_book_content.py::test_quick_preset_runs_and_records_valid_claims[07_architectures]"
    glues = "tests/test_book_content.py::test_quick_preset_glues_every_key_its_text_uses[07_architectures]"
    preset = "tests/test_book_content.py::test_preset_values_pass_the_library_validation[07_architectures-quick]"
    assert group_of(runs) == group_of(glues) == group_of(preset) == "chapter 07_architectures"
    assert group_of("tests/test_book_content.py::test_uv_exact_checks_below_their_stated_tolerance") == \
        group_of("tests/test_book_content.py::test_quick_preset_runs_and_records_valid_claims[02_uv_model]")


def test_other_tests_go_with_their_module():
    assert group_of("tests/test_cluster.py::test_worker_killed_mid_point_is_retried") == "tests/test_cluster.py"
    assert group_of("tests/test_hessian.py::test_scale_invariance[float32]") == "tests/test_hessian.py"
    assert group_of("tests/test_book_content.py::test_validate_catches_a_bad_value") == "tests/test_book_content.py"


def test_notebook_tests_are_queued_first(request):
    items = request.session.items
    marked = [i for i, item in enumerate(items) if item.get_closest_marker("notebook") is not None]
    assert marked == list(range(len(marked))), "the chapters' quick presets are collected before the rest"


# ----------------------------------------------------------------------------- the book's chapters
# scripts/bookexec.py orders the stale chapters longest first; on a fresh clone (empty jupyter
# cache) the expected times come from the committed cost file book/params/costs.json.
import json
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "scripts"))
import bookexec  # noqa: E402


def test_committed_costs_cover_every_chapter_and_split_two_workers_within_3_percent():
    chapters = [bookexec.docname(REPO, p) for p in bookexec.toc_notebooks(REPO)]
    costs = bookexec.read_costs(REPO)
    missing = [c for c in chapters if c not in ("book/report", "book/build_info") and c not in costs]
    assert not missing, f"{bookexec.COSTS_FILE} has no time for {missing}: a fresh clone would start them first"
    times = [costs[c] for c in chapters if c in costs]
    longest_first = sorted(times, reverse=True)
    perfect = sum(times) / 2
    assert bookexec.makespan(longest_first, 2) <= 1.03 * max(perfect, max(times))


def test_makespan_simulates_the_first_free_worker():
    assert bookexec.makespan([3, 3, 2, 2, 2], 2) == 7      # 3+2+2 | 3+2
    assert bookexec.makespan([1, 1, 4], 2) == 5            # 1+4 | 1: the longest last runs alone
    assert bookexec.makespan([4, 1, 1], 2) == 4            # 4 | 1+1
    assert bookexec.makespan([5, 1], 1) == 6


def _tiny_book(tmp_path, names):
    from test_build import make_book, myst, notebook
    root, _ = make_book(tmp_path, {n: myst(notebook(f"print('{n}')")) for n in names})
    return root


def test_fresh_clone_starts_the_longest_chapters_from_the_cost_file(tmp_path, monkeypatch):
    root = _tiny_book(tmp_path, ["a", "b", "c", "d"])
    monkeypatch.setenv("EARLYTRAIN_CLAIMS", str(tmp_path / "claims"))
    assert [c.name for c in bookexec.plan(root).execute] == ["a", "b", "c", "d"], "no times: the toc's order"
    (root / "book" / "params").mkdir(parents=True)
    (root / bookexec.COSTS_FILE).write_text(json.dumps({"seconds": {"a": 10, "b": 300, "d": 40}}))
    pl = bookexec.plan(root)
    assert [c.name for c in pl.execute] == ["c", "b", "d", "a"], "unknown first, then longest first"
    assert [c.last_seconds for c in pl.execute] == [None, 300, 40, 10]


def test_the_build_refreshes_the_cost_file_beyond_its_tolerance(tmp_path):
    root = tmp_path
    assert bookexec.refresh_costs(root, [], compiles_cold=True) == [], "no book/params: nothing written"
    (root / "book" / "params").mkdir(parents=True)
    path = root / bookexec.COSTS_FILE
    path.write_text(json.dumps({"about": "kept", "seconds": {"a": 100, "b": 100}}))
    ch = lambda name, secs, err=None: bookexec.Chapter(Path(name), name, {}, seconds=secs, error=err)  # noqa: E731
    warm = bookexec.Chapter(Path("a"), "a", {}, seconds=7.0, cached_results=12)
    changed = bookexec.refresh_costs(root, [ch("a", 110.4), ch("b", 160.2), ch("c", 20.0), ch("d", 5.0, "Boom")],
                                     compiles_cold=True)
    assert changed == ["b", "c"]
    assert bookexec.refresh_costs(root, [warm], compiles_cold=True) == [], "a run served by the results cache is not a fresh clone's cost"
    assert bookexec.refresh_costs(root, [ch("a", 900.0)], compiles_cold=False) == [], \
        "a build with a warm compilation cache is not a fresh clone's cost"
    doc = json.loads(path.read_text())
    assert doc["about"] == "kept"
    assert doc["seconds"] == {"a": 100, "b": 160, "c": 20}, "within 15 %: kept; a failed chapter: not recorded"
    assert all(type(v) is int for v in doc["seconds"].values()), "whole seconds, the kept entries too"
    path.write_text("not json")
    assert bookexec.read_costs(root) == {}, "an unreadable file never fails the build"


def test_compilation_cache_cold_is_off_absent_or_empty(tmp_path):
    import jaxcache
    d = tmp_path / "jax"
    assert jaxcache.is_cold({"JAX_COMPILATION_CACHE_DIR": ""}), "off: everything compiles"
    assert jaxcache.is_cold({}), "unset (the cache off): everything compiles"
    assert jaxcache.is_cold({"JAX_COMPILATION_CACHE_DIR": str(d)}), "absent"
    d.mkdir()
    assert jaxcache.is_cold({"JAX_COMPILATION_CACHE_DIR": str(d)}), "empty"
    (d / "jit_step-abc-cache").write_bytes(b"x")
    assert not jaxcache.is_cold({"JAX_COMPILATION_CACHE_DIR": str(d)}), "an entry: warm"


def test_cached_results_read_counts_the_results_log(tmp_path):
    (tmp_path / "01_x.results.jsonl").write_text('{"path": "a", "computed": true}\n{"path": "b", "computed": false}\n'
                                                 '{"path": "c", "computed": false}\nnot json\n')
    assert bookexec.cached_results_read(str(tmp_path), "book/01_x.md") == 2
    assert bookexec.cached_results_read(str(tmp_path), "book/02_y.md") == 0
    assert bookexec.cached_results_read(None, "book/01_x.md") == 0
