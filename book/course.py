"""An instructor's course from chosen chapters: a student bundle without any solution or hidden
test, an instructor key, and a `_toc.yml` for a course site of only those chapters."""

from __future__ import annotations

import shutil
from pathlib import Path

import jupytext
import nbformat

from book.assign import parse, render, sources
from book.site import read_toc, toc_without_solutions, write_toc

# maintainer and instructor tools: not shipped to students (bench, the Sphinx extension and the PDF
# need site.py; the PDF's browser is site tooling too)
INSTRUCTOR_ONLY = ("assign.py", "grading.py", "course.py", "cli.py", "__main__.py", "site.py", "execution.py",
                   "bench.py", "sphinx_offline.py", "pdf.py", "browser.py",
                   # the grader: its workers, their sandboxed runners and the feedback files
                   "checker.py", "sandbox.py", "remote.py", "runner.py", "wire.py",
                   "feedback.py")
STUDENT_README = """\
# {title}: exercises

Chapters: {chapters}.

## Set up (once)

    python3 -m venv .venv
    .venv/bin/python -m pip install -r requirements.txt
    echo "$PWD" > "$(.venv/bin/python -c 'import site; print(site.getsitepackages()[0])')/course.pth"
    .venv/bin/jupyter lab

(The third line lets every notebook `import book` from this folder.)

## Work

Open `exercises/<chapter>.ipynb` (and the chapter itself in `chapters/`, where present). Run the
first code cell once. For each question, replace `raise NotImplementedError(...)` with your code,
run the cell, then run the check cell under it: `check("q1")` shows each check ✓/✗, your points,
and a hint when your answer looks like a common mistake. Your instructor adds hidden tests when
grading, so make your functions right, not only the checks green.

## Hand in

Save and hand in the notebook file `exercises/<chapter>.ipynb` itself. Keep the function names
and signatures as given; you may add cells of your own.
"""
INSTRUCTOR_README = """\
# Instructor key

* `solutions/<chapter>.md` — the solutions, public checks and hidden tests (MyST notebooks).
* `key/<chapter>.ipynb` — the same as plain notebooks.
* `../student/` — what to give students (no solutions, no hidden tests).
* `../_toc.yml` — a table of contents for a course site of these chapters only, e.g.
  `jupyter-book build <book repository> --toc {toc}`.

Grade a folder of submitted notebooks: each submission's code runs in its own bubblewrap
sandbox (no network, no files but its own /tmp, time and memory limits), and the hidden tests
call its functions from outside it. Install bubblewrap first (`sudo apt-get install bubblewrap`).

    python -m book --root {root} grade SUBMISSIONS/ --out grades.csv

This writes one CSV row per submission (a column per question, total, max, error) and, beside
it, `grades-feedback/<submission>.md`: each question's public checks, its hints, and how many
hidden checks passed (never what they test).
"""


def _has_exercises(entries: list) -> bool:
    """True when any entry (at any depth) is a solutions page."""
    return any(str(e.get("file", "")).startswith("solutions/") or _has_exercises(e.get("sections", []))
               for e in entries)


def select_toc(toc: dict, chapters: list[str] | None, solutions: bool = True) -> dict:
    """`toc` keeping only `chapters` in the parts that hold exercises (all if None), with or
    without their solutions pages; parts without exercises (preface, help pages) stay."""
    out = dict(toc)
    if chapters is not None and "parts" in out:
        keep = {f"chapters/{c}" for c in chapters} | {f"solutions/{c}" for c in chapters}
        parts = []
        for part in out["parts"]:
            if _has_exercises(part.get("chapters", [])):
                part = dict(part, chapters=[e for e in part["chapters"] if e.get("file") in keep])
            if part["chapters"]:
                parts.append(part)
        out["parts"] = parts
    return out if solutions else toc_without_solutions(out)


def check_chapters(chapters: list[str], root: Path) -> None:
    """Raise ValueError naming any chapter that has no `solutions/<chapter>.md`."""
    known = [p.stem for p in sources(root)]
    missing = [c for c in chapters if c not in known]
    if missing:
        raise ValueError(f"no exercises for {', '.join(missing)}: there is no "
                         f"{', '.join(f'solutions/{c}.md' for c in missing)}. "
                         f"Chapters with exercises: {', '.join(known) or 'none'}")


def build_course(chapters: list[str], out: Path, root: Path, site_solutions: bool = False) -> Path:
    """Write `out/student/`, `out/instructor/` and `out/_toc.yml`; return `out`."""
    root, out = Path(root), Path(out)
    check_chapters(chapters, root)
    student, instructor = out / "student", out / "instructor"
    for folder in (student, instructor):
        shutil.rmtree(folder, ignore_errors=True)
    shutil.copytree(root / "book", student / "book",
                    ignore=shutil.ignore_patterns("__pycache__", *INSTRUCTOR_ONLY))
    shutil.copy(root / "requirements.txt", student / "requirements.txt")
    for chapter in chapters:
        source = parse(root / "solutions" / f"{chapter}.md")
        (student / "exercises").mkdir(parents=True, exist_ok=True)
        (student / "exercises" / f"{chapter}.ipynb").write_text(render(source), encoding="utf-8")
        if (root / "chapters" / f"{chapter}.md").exists():
            (student / "chapters").mkdir(exist_ok=True)
            shutil.copy(root / "chapters" / f"{chapter}.md", student / "chapters" / f"{chapter}.md")
        (instructor / "solutions").mkdir(parents=True, exist_ok=True)
        (instructor / "key").mkdir(exist_ok=True)
        shutil.copy(source.path, instructor / "solutions" / f"{chapter}.md")
        nbformat.write(jupytext.read(source.path), instructor / "key" / f"{chapter}.ipynb")
    (student / "README.md").write_text(STUDENT_README.format(
        title="Executable Deep Learning", chapters=", ".join(chapters)), encoding="utf-8")
    (instructor / "README.md").write_text(INSTRUCTOR_README.format(
        toc=out / "_toc.yml", root=instructor), encoding="utf-8")
    toc = root / "_toc.yml"
    if toc.exists():
        write_toc(select_toc(read_toc(toc), chapters, solutions=site_solutions), out / "_toc.yml")
    return out
