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
