"""`python -m book course` and the course site: the student bundle holds no solution or hidden
test and works on its own; the instructor key is complete; the tocs keep only what was asked;
the site built without solutions contains no solution text."""

from __future__ import annotations

import html
import os
import re
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

from book.assign import BEGIN_HIDDEN, BEGIN_SOLUTION, END_HIDDEN, between, parse, render, sources, strip_hidden
from book.course import select_toc
from book.site import read_toc
from tests.test_exercises import secret_lines

ROOT = Path(__file__).resolve().parents[1]
CHAPTERS = [p.stem for p in sources(ROOT)]
TOC = {"format": "jb-book", "root": "chapters/preface", "parts": [
    {"caption": "Getting started", "chapters": [{"file": "chapters/using-the-notebooks"}]},
    {"caption": "Foundations", "chapters": [
        {"file": "chapters/foundations", "sections": [{"file": "solutions/foundations"}]},
        {"file": "chapters/optimizers", "sections": [{"file": "solutions/optimizers"}]},
        {"file": "chapters/normalization", "sections": [{"file": "solutions/normalization"}]}]},
]}


@pytest.fixture(scope="module")
def course(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("course")
    run = subprocess.run([sys.executable, "-m", "book", "course", "--chapters", *CHAPTERS,
                          "--out", str(out)], capture_output=True, text=True)
    assert run.returncode == 0, run.stderr
    return out


def bundle_text(folder: Path, skip: str = "") -> str:
    """Every text file of a folder but its subfolder `skip`, concatenated (binary files skipped)."""
    texts = []
    for path in sorted(folder.rglob("*")):
        if path.is_file() and not (skip and path.relative_to(folder).parts[0] == skip):
            try:
                texts.append(path.read_text(encoding="utf-8"))
            except UnicodeDecodeError:
                continue
    return "\n".join(texts)


def test_student_bundle_has_no_solution_and_no_hidden_test(course):
    """Grep everything but the chapters, which are the public chapters unchanged."""
    text = bundle_text(course / "student", skip="chapters")
    for chapter in (course / "student" / "chapters").glob("*.md"):
        assert chapter.read_text() == (ROOT / "chapters" / chapter.name).read_text()
    for marker in (BEGIN_SOLUTION, BEGIN_HIDDEN):
        assert marker not in text
    # a line one chapter hides may be public in another's notebook (`gen = torch.Generator()...`)
    public = {nb.stem: "\n".join(cell.source for cell in nbformat.read(nb, as_version=4).cells)
              for nb in (ROOT / "exercises").glob("*.ipynb")}
    for chapter in CHAPTERS:
        elsewhere = "\n".join(src for name, src in public.items() if name != chapter)
        for line in secret_lines(parse(ROOT / "solutions" / f"{chapter}.md")):
            assert line in elsewhere or line not in text, \
                f"{chapter}: leaked into the student bundle: {line}"


def test_student_bundle_has_notebooks_package_requirements_readme(course):
    student = course / "student"
    for chapter in CHAPTERS:
        written = (student / "exercises" / f"{chapter}.ipynb").read_text(encoding="utf-8")
        assert written == render(parse(ROOT / "solutions" / f"{chapter}.md"))
    assert (student / "book" / "exercises.py").exists() and (student / "book" / "__init__.py").exists()
    assert not (student / "book" / "grading.py").exists(), "instructor-only code in the student bundle"
    assert (student / "requirements.txt").read_text() == (ROOT / "requirements.txt").read_text()
    assert "check(\"q1\")" in (student / "README.md").read_text()


def test_student_notebook_runs_from_the_bundle_alone(course, tmp_path):
    student = course / "student"
    chapter = CHAPTERS[0]
    nb = nbformat.read(student / "exercises" / f"{chapter}.ipynb", as_version=4)
    nb.cells.append(nbformat.v4.new_code_cell("import book\nprint('BOOK FROM', book.__file__)"))
    env = {**os.environ, "PYTHONPATH": str(student)}
    client = NotebookClient(nb, timeout=120, resources={"metadata": {"path": str(student / "exercises")}})
    with client.setup_kernel(env=env, cwd=str(student / "exercises")):
        for i, cell in enumerate(nb.cells):
            client.execute_cell(cell, i)
    out = "".join(o.get("text", "") for c in nb.cells for o in c.get("outputs", []))
    assert f"BOOK FROM {student / 'book' / '__init__.py'}" in out
    assert out.count("not attempted yet") == len(parse(ROOT / "solutions" / f"{chapter}.md").questions)


def test_instructor_key_holds_the_solutions(course):
    for chapter in CHAPTERS:
        source = ROOT / "solutions" / f"{chapter}.md"
        assert (course / "instructor" / "solutions" / f"{chapter}.md").read_text() == source.read_text()
        key = nbformat.read(course / "instructor" / "key" / f"{chapter}.ipynb", as_version=4)
        assert any(BEGIN_SOLUTION in c.source for c in key.cells)
    assert "python -m book --root" in (course / "instructor" / "README.md").read_text()


def test_course_toc_keeps_only_the_chosen_chapters_with_or_without_solutions():
    files = lambda toc: re.findall(r"'file': '([^']+)'", str(toc))  # noqa: E731
    with_solutions = select_toc(TOC, ["optimizers"], solutions=True)
    assert files(with_solutions) == ["chapters/using-the-notebooks", "chapters/optimizers",
                                     "solutions/optimizers"]
    without = select_toc(TOC, ["optimizers"], solutions=False)
    assert files(without) == ["chapters/using-the-notebooks", "chapters/optimizers"]
    assert "solutions/" in str(TOC), "the input must not change"


def test_course_with_an_unwritten_chapter_fails_with_a_clear_message(tmp_path):
    run = subprocess.run([sys.executable, "-m", "book", "course", "--chapters", *CHAPTERS,
                          "no-such-chapter", "--out", str(tmp_path)], capture_output=True, text=True)
    assert run.returncode == 2
    assert "no exercises for no-such-chapter: there is no solutions/no-such-chapter.md" in run.stderr
    assert f"Chapters with exercises: {', '.join(CHAPTERS)}" in run.stderr
    assert not (tmp_path / "student").exists()


def test_toc_command_strips_solutions(tmp_path):
    out = tmp_path / "toc.yml"
    run = subprocess.run([sys.executable, "-m", "book", "toc", "--no-solutions", "--out", str(out)],
                         capture_output=True, text=True, cwd=ROOT)
    assert run.returncode == 0, run.stderr
    assert "solutions/" not in out.read_text()
    assert read_toc(out)["root"] == read_toc(ROOT / "_toc.yml")["root"]


def page_text(path: Path) -> str:
    """The visible text of an html page (tags removed, so highlighted code reads as written)."""
    return html.unescape(re.sub(r"<[^>]+>", "", path.read_text(encoding="utf-8", errors="replace")))


def test_site_without_solutions_contains_no_solution_text():
    from tests.conftest import site_build

    build = site_build(False)
    assert build.status == 0, build.report[-6000:]
    assert not list(build.html.rglob("solutions/*")), "a solutions page was built"
    pages = [p for p in build.html.rglob("*") if p.is_file() and p.suffix in (".html", ".ipynb", ".md", ".txt")]
    text = "\n".join(page_text(p) if p.suffix == ".html" else p.read_text(errors="replace") for p in pages)
    # a chapter may show the same code (`return out`, or the chapter's own im2col): that is no leak
    chapters = "\n".join(md.read_text() for md in (ROOT / "chapters").glob("*.md"))
    # ... and another chapter's exercise notebook may show a line this one hides
    learner = {path: "\n".join(c.source for c in nbformat.reads(render(parse(path)), as_version=4).cells)
               for path in sources(ROOT)}
    for path in sources(ROOT):
        elsewhere = "\n".join(src for other, src in learner.items() if other != path)
        for line in secret_lines(parse(path)):
            assert line in chapters or line in elsewhere or line not in text, \
                f"{path.name}: solution text in the site: {line}"


def test_course_site_has_a_folder_of_its_own_beside_the_full_site(built_site):
    from tests.conftest import site_build

    course = site_build(False)
    assert course.status == 0, course.report[-6000:]
    assert list(built_site.glob("solutions/*.html")), "the full site of the same output has solutions pages"
    assert not course.html.resolve().is_relative_to(built_site.resolve())
    assert f"The course site (no solutions, no hidden tests) is in {course.build_dir / 'html'}" in course.report


def test_public_site_shows_solutions_but_no_hidden_test(built_site):
    """Hidden tests are the grader's: not on a page, not in `_sources`, not in a download."""
    files = [p for p in built_site.rglob("*") if p.is_file() and p.suffix in (".html", ".ipynb", ".md", ".txt")]
    text = "\n".join(page_text(p) if p.suffix == ".html" else p.read_text(errors="replace") for p in files)
    assert BEGIN_HIDDEN not in text
    notebooks = [nbformat.read(p, as_version=4) for p in files if p.suffix == ".ipynb"]
    text += "\n".join(c.source for nb in notebooks for c in nb.cells)
    site_lines = {line.strip() for line in text.splitlines()}
    listed = str(read_toc(ROOT / "_toc.yml"))
    chapters = "\n".join(md.read_text() for md in (ROOT / "chapters").glob("*.md"))
    for path in sources(ROOT):
        if f"solutions/{path.stem}" not in listed:
            continue
        public = strip_hidden(path.read_text(encoding="utf-8"))
        hidden = {line.strip() for cell in parse(path).notebook.cells
                  for line in between(cell.source, BEGIN_HIDDEN, END_HIDDEN) if len(line.strip()) > 12}
        # a line another solutions page shows (its solution or public checks) is no leak of this one's
        elsewhere = {line.strip() for other in sources(ROOT) if other != path
                     for line in strip_hidden(other.read_text(encoding="utf-8")).splitlines()}
        for line in hidden - {line.strip() for line in public.splitlines()} - elsewhere:
            assert line in chapters or line not in site_lines, f"{path.name}: a hidden test is on the site: {line}"


def test_site_with_solutions_folds_each_solution_under_its_question(built_site):
    listed = str(read_toc(ROOT / "_toc.yml"))
    pages = [path for path in sources(ROOT) if f"solutions/{path.stem}" in listed]
    if not pages:
        pytest.skip("no solutions page is in _toc.yml yet")
    for path in pages:
        page = (built_site / "solutions" / f"{path.stem}.html").read_text(encoding="utf-8")
        folded = re.findall(r"<details class=\"[^\"]*hide above-input[^\"]*\">(.*?)</details>", page, re.S)
        for q in parse(path).questions:
            assert any(f"def {q.function}" in html.unescape(re.sub(r"<[^>]+>", "", f)) for f in folded), \
                f"{q.qid}: solution not folded"
