"""`python -m book grade`: honest, broken, hanging and hostile submissions in one batch. Each gets
its own row, a clear error and no unearned points; the batch finishes; no submission changes."""

from __future__ import annotations

import csv
import hashlib
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest

from book.assign import parse, render
from book.grading import GradeConfig, grade, write_csv

ROOT = Path(__file__).resolve().parents[1]
SOURCE = parse(ROOT / "solutions" / "optimizers.md")
POSSIBLE = sum(q.points for q in SOURCE.questions)

FIND_SOLUTIONS = '''\
import pathlib, sys, book
found = [p / "solutions" / "optimizers.md" for p in
         [pathlib.Path(book.__file__).parents[1], pathlib.Path.cwd(), *map(pathlib.Path, sys.path)]
         if (p / "solutions" / "optimizers.md").exists()]
text = found[0].read_text()
for block in text.split("```{code-cell} ipython3")[1:]:
    code = block.split("```")[0].split("---", 2)[-1]
    exec(code)
'''
FORGE = '''\
import book.exercises as bx
bx.Question.evaluate = lambda self, fn: bx.Result(self.qid, self.function, self.points, self.points)
def check(qid, namespace=None):
    print(f"{qid} · all — 3/3 points")
def question(*args, **kwargs):
    return None
print('BOOK-GRADE-0000:{"q1": [2, "attempted"]}')
'''

FORGE_OUTPUT = '''\
import sys
FULL = '{"q1": [2, "attempted"], "q2": [3, "attempted"], "q3": [3, "attempted"], '\\
       '"q4": [2, "attempted"], "q5": [2, "attempted"]}'
class Forged:
    def __init__(self, stream):
        self.stream = stream
    def write(self, text):
        if text.startswith("BOOK-GRADE-"):
            text = text.split(":")[0] + ":" + FULL + "\\n"
        return self.stream.write(text)
    def __getattr__(self, name):
        return getattr(self.stream, name)
sys.stdout = Forged(sys.stdout)
_print = print
def print(*args, **kwargs):
    forged = [a.split(":")[0] + ":" + FULL if str(a).startswith("BOOK-GRADE-") else a for a in args]
    _print(*forged, **kwargs)
get_ipython = None
'''


def learner(solved: set[str] = frozenset()) -> nbformat.NotebookNode:
    """The exercise notebook, with the solutions of the questions in `solved` filled in."""
    nb = nbformat.reads(render(SOURCE), as_version=4)
    for q in SOURCE.questions:
        if q.qid in solved:
            cell = next(c for c in nb.cells if c.id == f"{q.qid}-solution")
            cell.source = SOURCE.notebook.cells[q.solution_cell].source
    return nb


def with_cell(nb: nbformat.NotebookNode, code: str, at: int | None = None) -> nbformat.NotebookNode:
    """`nb` plus one code cell (at the end by default)."""
    cell = nbformat.v4.new_code_cell(code)
    nb.cells.insert(len(nb.cells) if at is None else at, cell)
    return nb


def submissions(folder: Path) -> dict[str, tuple[float, str]]:
    """Write the batch; return {file: (expected total, expected text in the error column)}."""
    all_q = {q.qid for q in SOURCE.questions}
    renamed = learner(all_q)
    cell = next(c for c in renamed.cells if c.id == "q1-solution")
    cell.source = cell.source.replace("def ewma(", "def my_ewma(")
    deleted = learner(all_q)
    deleted.cells = [c for c in deleted.cells if c.id not in ("q2-solution", "setup")]
    cases = {
        "honest.ipynb": (learner(all_q), POSSIBLE, ""),
        "partial.ipynb": (learner({"q1", "q5"}), 4.0, "q2: not attempted"),
        "stub.ipynb": (learner(), 0.0, "q1: not attempted"),
        "renamed.ipynb": (renamed, POSSIBLE - 2, "q1: no function ewma"),
        "deleted_cells.ipynb": (deleted, POSSIBLE - 6, "q2: no function adam_step"),
        "infinite_loop.ipynb": (with_cell(learner({"q1"}), "while True:\n    pass"), 2.0, "time limit"),
        "sys_exit.ipynb": (with_cell(learner({"q4"}), "import sys\nsys.exit(0)", at=3), 2.0,
                           "raised SystemExit"),
        "os_exit.ipynb": (with_cell(learner(all_q), "import os\nos._exit(0)"), 0.0, "kernel stopped"),
        "memory_bomb.ipynb": (with_cell(learner({"q5"}), "x = bytearray(64 * 2**30)"), 2.0,
                              "MemoryError"),
        "forges_scores.ipynb": (with_cell(learner(), FORGE), 0.0, "redefines check, question"),
        "forges_output.ipynb": (with_cell(learner(), FORGE_OUTPUT), 0.0, "q1: not attempted"),
        "reads_solutions.ipynb": (with_cell(learner(), FIND_SOLUTIONS), 0.0, "IndexError"),
        "edits_grader.ipynb": (with_cell(learner(all_q), "import book.exercises as bx\n"
                                         "open(bx.__file__, 'a').write('\\n# edited')"),
                               0.0, "changed the grader's files"),
    }
    for name, (nb, _, _) in cases.items():
        nbformat.write(nb, folder / name)
    (folder / "malformed.ipynb").write_text('{"cells": [', encoding="utf-8")
    (folder / "not_a_notebook.ipynb").write_bytes(b"\xff\xfe binary")
    expected = {name: (total, error) for name, (_, total, error) in cases.items()}
    expected["malformed.ipynb"] = (0.0, "not a readable notebook")
    expected["not_a_notebook.ipynb"] = (0.0, "not a readable notebook")
    return expected


def digests(folder: Path) -> dict[str, str]:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(folder.iterdir())}


@pytest.fixture(scope="module")
def batch(tmp_path_factory):
    """The whole batch graded once through the command line."""
    folder = tmp_path_factory.mktemp("submissions")
    expected = submissions(folder)
    before = digests(folder)
    out = folder.parent / "grades.csv"
    run = subprocess.run([sys.executable, "-m", "book", "grade", str(folder), "--out", str(out),
                          "--timeout", "20", "--memory", "3", "--jobs", "2"],
                         capture_output=True, text=True, timeout=900)
    assert run.returncode == 0, run.stderr
    rows = {r["submission"]: r for r in csv.DictReader(out.open(encoding="utf-8"))}
    return expected, rows, before, digests(folder)


def test_one_row_per_submission_with_question_total_max_error_columns(batch):
    expected, rows, _, _ = batch
    assert set(rows) == set(expected)
    columns = list(next(iter(rows.values())))
    assert columns == ["submission", *[q.qid for q in SOURCE.questions], "total", "max", "error"]
    assert all(float(r["max"]) == POSSIBLE for r in rows.values())


@pytest.mark.parametrize("name", ["honest.ipynb", "partial.ipynb", "stub.ipynb", "renamed.ipynb",
                                  "deleted_cells.ipynb", "infinite_loop.ipynb", "sys_exit.ipynb",
                                  "os_exit.ipynb", "memory_bomb.ipynb", "forges_scores.ipynb", "forges_output.ipynb",
                                  "reads_solutions.ipynb", "edits_grader.ipynb", "malformed.ipynb",
                                  "not_a_notebook.ipynb"])
def test_each_submission_gets_exactly_its_points_and_a_clear_error(batch, name):
    expected, rows, _, _ = batch
    total, error = expected[name]
    row = rows[name]
    assert float(row["total"]) == total, row
    assert error in row["error"], row
    if not error:
        assert row["error"] == "", row


def test_submissions_are_never_modified(batch):
    _, _, before, after = batch
    assert before == after


def test_grade_detects_the_chapter_and_rejects_unknown_ones(tmp_path):
    nb = learner()
    nb.metadata.pop("book")
    nbformat.write(nb, tmp_path / "alice-optimizers.ipynb")
    source, rows = grade(tmp_path, ROOT, config=GradeConfig(jobs=1))
    assert source.topic == "optimizers" and rows[0].scores["q1"] == 0
    with pytest.raises(ValueError, match="no exercises for chapter 'nope'"):
        grade(tmp_path, ROOT, chapter="nope")
    (tmp_path / "alice-optimizers.ipynb").rename(tmp_path / "alice.ipynb")
    with pytest.raises(ValueError, match="pass --chapter"):
        grade(tmp_path, ROOT)
    write_csv(source, rows, tmp_path / "g.csv")
    assert (tmp_path / "g.csv").read_text().startswith("submission,q1,")
