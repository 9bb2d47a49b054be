"""Every chapter's exercises through the real grader, sandboxed: the reference solutions, handed
in as a learner's notebook, earn every point with no error and no hint; the untouched exercise
notebook earns none and reads "not attempted". (tests/test_exercises.py proves the same with the
in-notebook `check()`; this proves that the checks also work across the sandbox, where a learner's
function can return only plain data and a check cannot patch the learner's torch.)"""

from __future__ import annotations

from pathlib import Path

import nbformat
import pytest

from book.assign import handed_in, parse
from book.grading import GradeConfig, grade
from tests.system import ensure_tool

ROOT = Path(__file__).resolve().parents[1]
CHAPTERS = sorted(p.stem for p in (ROOT / "solutions").glob("*.md"))


@pytest.mark.parametrize("chapter", CHAPTERS)
def test_solutions_earn_every_point_and_stubs_none_in_the_sandbox(chapter, tmp_path):
    ensure_tool("bwrap")
    source = parse(ROOT / "solutions" / f"{chapter}.md")
    nbformat.write(handed_in(source), tmp_path / "solved.ipynb")
    nbformat.write(handed_in(source, solved=set()), tmp_path / "stub.ipynb")
    _, rows = grade(tmp_path, ROOT, chapter, GradeConfig(jobs=1))
    rows = {r.submission: r for r in rows}
    full = {q.qid: float(q.points) for q in source.questions}
    assert rows["solved.ipynb"].scores == full, rows["solved.ipynb"].errors
    assert rows["solved.ipynb"].errors == []
    hints = {qid: r["hints"] for qid, r in rows["solved.ipynb"].results.items() if r["hints"]}
    assert hints == {}
    assert set(rows["stub.ipynb"].scores.values()) == {0.0}
    assert rows["stub.ipynb"].errors == [f"{q.qid}: not attempted" for q in source.questions]
