"""Every exercise in the registry is complete: a stub with the reference's signature that raises
NotImplementedError, a check file that names it, and a notebook exercise that points the reader at both.

The stub tests read the stub as committed (tests/committed_stubs.py), so they stay green for a reader who has
filled it in; they skip in a checkout without git history."""
import inspect
import json
import pathlib

import pytest

from committed_stubs import committed_function, skip_without_history
from minilib.exercises import EXERCISES
from minilib.exercises.registry import ROOT, lookup

NAMES = list(EXERCISES)
NOTEBOOKS = {path.name[:2]: path for path in (ROOT / "notebooks").glob("*.ipynb")}
HELPER_MODULES = {"__init__", "__main__", "registry", "check"}


def cell_sources(path):
    return ["".join(cell["source"]) for cell in json.loads(path.read_text())["cells"]]


def test_every_chapter_with_code_exercises_has_one():
    assert {e.chapter for e in EXERCISES.values()} >= {"01", "02", "03", "04", "06", "08"}


def test_every_stub_module_and_check_file_is_registered():
    stubs = {p.stem for p in (ROOT / "minilib" / "exercises").glob("*.py")} - HELPER_MODULES
    checks = {p.stem.removeprefix("test_exercise_") for p in (ROOT / "tests" / "exercises").glob("test_*.py")}
    assert stubs == set(NAMES), f"stub modules {sorted(stubs)} vs registry {NAMES}"
    assert checks == set(NAMES), f"check files {sorted(checks)} vs registry {NAMES}"


@pytest.mark.parametrize("name", NAMES)
def test_stub_raises_not_implemented(name):
    skip_without_history()
    stub = committed_function(name)
    required = [p for p in inspect.signature(stub).parameters.values() if p.default is inspect.Parameter.empty]
    with pytest.raises(NotImplementedError, match=f"minilib/exercises/{name}.py"):
        stub(*[None] * len(required))


@pytest.mark.parametrize("name", NAMES)
def test_stub_has_the_signature_of_the_reference(name):
    skip_without_history()
    stub, reference = committed_function(name), lookup(name).function("reference")
    assert stub.__name__ == reference.__name__

    def plain(function):
        return [(p.name, p.kind, p.default) for p in inspect.signature(function).parameters.values()]

    assert plain(stub) == plain(reference)
    assert len(inspect.getdoc(stub).splitlines()) >= 5, "the stub's docstring is the exercise's statement"


@pytest.mark.parametrize("name", NAMES)
def test_check_file_names_its_exercise(name):
    assert f'EXERCISE = "{name}"' in lookup(name).test_file.read_text()


@pytest.mark.parametrize("name", NAMES)
def test_a_notebook_exercise_points_at_the_stub(name):
    exercise = lookup(name)
    sources = cell_sources(NOTEBOOKS[exercise.chapter])
    cell = next((s for s in sources if f":label: {exercise.label}" in s), None)
    assert cell is not None, f"notebook {exercise.chapter} has no exercise labelled {exercise.label}"
    statement = cell[cell.index(f":label: {exercise.label}"):]
    statement = statement[:statement.index("```")]
    assert exercise.stub_file in statement, f"exercise {exercise.label} does not name {exercise.stub_file}"
    assert f"make check-exercise NAME={name}" in statement, f"exercise {exercise.label} does not show the command"


def test_readme_explains_the_check():
    readme = (ROOT / "README.md").read_text()
    assert "make check-exercise NAME=" in readme
    assert pathlib.Path(ROOT / "Makefile").read_text().count("check-exercise") >= 3
