"""Every question of every solutions/*.md: the stub scores 0, the solution scores full marks,
each planted mistake loses points and shows its hint; exercises/ is in sync; check() speaks
one clear line per problem."""

from __future__ import annotations

import linecache
import re
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

from book import exercises as ex
from book.assign import (
    BEGIN_HIDDEN,
    BEGIN_SOLUTION,
    END_HIDDEN,
    END_SOLUTION,
    between,
    parse,
    render,
    sources,
    stale,
    strip_hidden,
    stub,
)

ROOT = Path(__file__).resolve().parents[1]
SOURCES = sources(ROOT)
CHECK = re.compile(r"^@\w+\.check\(", re.M)


def run_cells(cells: list[str]) -> tuple[dict, dict[str, ex.Question]]:
    """Execute code cells in one fresh namespace (one file name per cell, as in a kernel)."""
    ex.QUESTIONS.clear()
    namespace: dict = {"__name__": "__main__"}
    for i, code in enumerate(cells):
        exec(compile(code, f"<cell {i}>", "exec"), namespace)  # noqa: S102 - the notebook itself
    return namespace, dict(ex.QUESTIONS)


def solved(path: Path) -> tuple[dict, dict[str, ex.Question]]:
    """The solutions notebook run top to bottom (checks print as they would in a kernel)."""
    nb = parse(path).notebook
    return run_cells([c.source for c in nb.cells if c.cell_type == "code"])


@pytest.fixture(scope="module", params=SOURCES, ids=[p.stem for p in SOURCES])
def chapter(request):
    """(source, namespace, questions) for one solutions file, run once per module."""
    namespace, questions = solved(request.param)
    return parse(request.param), namespace, questions


def test_there_is_at_least_one_chapter_of_exercises():
    assert SOURCES, "no solutions/*.md"


def test_each_question_has_public_and_hidden_checks_and_mistakes(chapter):
    source, _, questions = chapter
    assert [q.qid for q in source.questions] == list(questions)
    for q in source.questions:
        tests = source.notebook.cells[q.tests_cell].source
        hidden = "\n".join(between(tests, BEGIN_HIDDEN, END_HIDDEN))
        assert CHECK.search(strip_hidden(tests)), f"{q.qid}: no public check"
        assert CHECK.search(hidden), f"{q.qid}: no hidden check"
        assert questions[q.qid].mistakes, f"{q.qid}: no common mistake"
        for m in questions[q.qid].mistakes:
            assert m.plants, f"{q.qid}: mistake without a planted implementation: {m.hint}"


def test_solution_scores_full_points_with_no_hint(chapter):
    _, namespace, questions = chapter
    for q in questions.values():
        result = q.evaluate(namespace[q.function])
        assert result.full and result.earned == q.points, result.report()
        assert not result.hints, result.report()


def test_each_planted_mistake_loses_points_and_shows_its_hint(chapter):
    _, _, questions = chapter
    for q in questions.values():
        for mistake in q.mistakes:
            for plant in mistake.plants:
                result = q.evaluate(plant)
                assert result.earned < q.points, f"{q.qid}: planted mistake passes\n{result.report()}"
                assert mistake.hint in result.hints, result.report()
                assert f"hint: {mistake.hint}" in result.report()


def learner_cells(source) -> list[str]:
    """The code cells of the learner's notebook, as `assign` writes it."""
    nb = nbformat.reads(render(source), as_version=4)
    return [c.source for c in nb.cells if c.cell_type == "code"]


@pytest.mark.parametrize("path", SOURCES, ids=[p.stem for p in SOURCES])
def test_stub_scores_zero_and_reads_not_attempted(path, capsys):
    source = parse(path)
    namespace, questions = run_cells(learner_cells(source))
    printed = capsys.readouterr().out
    for q in questions.values():
        result = q.evaluate(namespace[q.function])
        assert result.status == "not attempted" and result.earned == 0, result.report()
        assert f"{q.qid} · {q.function} — not attempted yet" in printed


@pytest.mark.parametrize("path", SOURCES, ids=[p.stem for p in SOURCES])
def test_learner_notebook_has_no_solution_no_hidden_test_no_output(path):
    source = parse(path)
    text = render(source)
    assert render(parse(path)) == text, "assign is not deterministic"
    for marker in (BEGIN_SOLUTION, END_SOLUTION, BEGIN_HIDDEN, END_HIDDEN):
        assert marker not in text
    nb = nbformat.reads(text, as_version=4)
    assert all(not c.get("outputs") and c.get("execution_count") is None
               for c in nb.cells if c.cell_type == "code")
    learner = "\n".join(c.source for c in nb.cells)
    for line in secret_lines(source):
        assert line not in learner, f"leaked: {line}"


def secret_lines(source) -> set[str]:
    """Solution and hidden-test lines that appear nowhere else in the source (so must not leak)."""
    secret, public = set(), set()
    for cell in source.notebook.cells:
        inside = between(cell.source, BEGIN_SOLUTION, END_SOLUTION)
        inside += between(cell.source, BEGIN_HIDDEN, END_HIDDEN)
        secret |= {line.strip() for line in inside if len(line.strip()) > 12}
        outside = strip_hidden(cell.source)
        for q in source.questions:
            outside = stub(outside, q)
        public |= {line.strip() for line in outside.splitlines()}
    return secret - public


def test_exercises_folder_is_in_sync_with_solutions():
    assert stale(ROOT) == [], "exercises/ is stale: run `python -m book assign`"


@pytest.mark.parametrize("path", SOURCES, ids=[p.stem for p in SOURCES])
def test_learner_notebook_runs_in_a_kernel(path, tmp_path):
    """As learners run it: no cell raises; each stub reads 'not attempted yet'."""
    learner = nbformat.read(ROOT / "exercises" / f"{path.stem}.ipynb", as_version=4)
    NotebookClient(learner, timeout=120, resources={"metadata": {"path": tmp_path}}).execute()
    out = "".join(o.get("text", "") for c in learner.cells for o in c.get("outputs", []))
    assert out.count("not attempted yet") == len(parse(path).questions)
    # the solutions notebook runs once per test run, in the site build: tests/test_notebooks.py


# --- check() itself, on a toy question ------------------------------------------------------

def toy(namespace: dict) -> ex.Question:
    """A one-check question about `double(x)`; its mistake is returning x + 2."""
    q = ex.question("t1", "double", points=2)

    @q.check("doubles 3")
    def _(double):
        ex.assert_near(double(3.0), 6.0, what="double(3)")

    @q.check("doubles a tensor")
    def _(double):
        ex.assert_near(double(ex.torch.tensor([1.0, 2.0])), [2.0, 4.0])

    q.mistake("You added 2 instead of multiplying by 2.")(lambda double: double(10.0) == 12.0)
    return q


def define(code: str, namespace: dict) -> None:
    """Run a learner's cell; like IPython, keep its text in linecache for tracebacks."""
    name = f"<learner cell {len(linecache.cache)}>"
    linecache.cache[name] = (len(code), None, code.splitlines(True), name)
    exec(compile(code, name, "exec"), namespace)  # noqa: S102


def test_check_reports_each_check_points_and_hint(capsys):
    ns: dict = {}
    toy(ns)
    define("def double(x):\n    return x + 2\n", ns)
    ex.check("t1", ns)
    out = capsys.readouterr().out
    assert "t1 · double — 0/2 points" in out and out.count("✗") == 2
    assert "double(3): expected 6, got 5" in out
    assert "hint: You added 2 instead of multiplying by 2." in out
    define("def double(x):\n    return 2 * x\n", ns)  # redefined: looked up again by name
    ex.check("t1", ns)
    out = capsys.readouterr().out
    assert "t1 · double — 2/2 points" in out and out.count("✓") == 2 and "hint" not in out


def test_check_reports_learner_errors_in_one_line_with_the_line(capsys):
    ns: dict = {}
    toy(ns)
    define("def double(x):\n    y = x * 2\n    return y / 0\n", ns)
    ex.check("t1", ns)
    out = capsys.readouterr().out
    assert "double raised ZeroDivisionError: float division by zero (line 3: return y / 0)" in out
    assert "Traceback" not in out


def test_check_says_missing_not_attempted_and_unknown(capsys):
    ns: dict = {}
    toy(ns)
    ex.check("t1", ns)
    define("def double(x):\n    raise NotImplementedError('t1: write double()')\n", ns)
    ex.check("t1", ns)
    ex.check("t9", ns)
    out = capsys.readouterr().out
    assert "there is no function called double" in out
    assert "t1 · double — not attempted yet (0/2 points)" in out
    assert "t9: no such question here" in out


def test_check_stops_an_infinite_loop(capsys, monkeypatch):
    monkeypatch.setattr(ex, "CHECK_TIME_LIMIT_S", 0.2)
    ns: dict = {}
    toy(ns)
    define("def double(x):\n    while True:\n        pass\n", ns)
    ex.check("t1", ns)
    assert "took longer than 0.2 s (an infinite loop?)" in capsys.readouterr().out


def test_check_raises_only_under_the_nbgrader_autograder(monkeypatch, capsys):
    ns: dict = {}
    toy(ns)
    define("def double(x):\n    return x + 2\n", ns)
    ex.check("t1", ns)
    monkeypatch.setenv("NBGRADER_EXECUTION", "autograde")
    with pytest.raises(AssertionError, match="t1: 0/2 points"):
        ex.check("t1", ns)


def test_assert_near_messages():
    with pytest.raises(AssertionError, match=r"expected shape \(3,\), got \(2,\)"):
        ex.assert_near([1.0, 2.0], [1.0, 2.0, 3.0])
    with pytest.raises(AssertionError, match="expected a number or tensor, got None"):
        ex.assert_near(None, 1.0)
    with pytest.raises(AssertionError, match=r"at index \(1,\): expected 2, got 2.5"):
        ex.assert_near([1.0, 2.5], [1.0, 2.0])
    ex.assert_near(0.1 + 0.2, 0.3, rtol=1e-15, atol=0)  # float64 all the way


def test_check_blames_the_returned_value_when_the_check_itself_trips(capsys):
    ns: dict = {}
    q = ex.question("t2", "shape_of", points=1)

    @q.check("returns a tensor")
    def _(shape_of):
        assert shape_of(3).ndim == 0

    define("def shape_of(x):\n    return [x]\n", ns)
    ex.check("t2", ns)
    out = capsys.readouterr().out
    assert "AttributeError: 'list' object has no attribute 'ndim' (check what shape_of returns)" in out
