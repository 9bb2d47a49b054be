"""A feedback file per graded submission: each question's points, each public check ✓/✗ with
its message, the hints of recognised mistakes, and the notes of the CSV's error column. Hidden
checks appear only as a count: neither their code nor their descriptions are shown."""

from __future__ import annotations

import re
from pathlib import Path

from book.assign import ExerciseSource
from book.grading import Row


def _num(x: float) -> str:
    return f"{x:g}"


def markdown(source: ExerciseSource, row: Row) -> str:
    """The feedback of one row, as Markdown."""
    possible = sum(q.points for q in source.questions)
    total = round(sum(row.scores.values()), 2)
    lines = [f"# Feedback: {row.submission}", "",
             f"Exercises: {source.topic}. **Total: {_num(total)} / {_num(possible)} points.**", ""]
    if row.errors:
        lines += ["Notes:", "", *[f"* {e}" for e in row.errors], ""]
    for q in source.questions:
        lines += [f"## {q.qid} · {q.function} — {_num(row.scores[q.qid])}/{_num(q.points)} points",
                  "", *_question_lines(row.results.get(q.qid)), ""]
    return "\n".join(lines).rstrip() + "\n"


def _question_lines(result: dict | None) -> list[str]:
    """The public checks, the hidden checks' count and the hints of one question."""
    if result is None or result["status"] == "not graded":
        return ["Not graded (see the notes above)."]
    if result["status"] == "missing":
        return [f"There is no function called `{result['function']}` in the notebook."]
    if result["status"] != "attempted":
        return ["Not attempted."]
    public = [o for o in result["outcomes"] if not o["hidden"]]
    hidden = [o for o in result["outcomes"] if o["hidden"]]
    lines = [f"* {'✓' if o['passed'] else '✗'} {o['description']}"
             + ("" if o["passed"] else f": {o['message']}") for o in public]
    if hidden:
        passed = sum(o["passed"] for o in hidden)
        lines.append(f"* hidden checks: {passed} of {len(hidden)} passed")
    lines += [f"* hint: {hint}" for hint in result["hints"]]
    return lines


def file_name(label: str, taken: set[str]) -> str:
    """A safe, unique `.md` file name for the submission `label`."""
    stem = re.sub(r"\.ipynb$", "", label)
    stem = re.sub(r"[^A-Za-z0-9._-]+", "_", stem.replace("/", "__")).strip("._") or "submission"
    name, n = f"{stem}.md", 1
    while name in taken:
        n += 1
        name = f"{stem}-{n}.md"
    taken.add(name)
    return name


def write_feedback(source: ExerciseSource, rows: list[Row], folder: Path) -> list[Path]:
    """One Markdown file per row in `folder`; return their paths."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    taken: set[str] = set()
    paths = []
    for row in rows:
        path = folder / file_name(row.submission, taken)
        path.write_text(markdown(source, row), encoding="utf-8")
        paths.append(path)
    return paths
