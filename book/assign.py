"""Read `solutions/<topic>.md` (the one source of a chapter's exercises) and write the learner's
`exercises/<topic>.ipynb`: solutions replaced by stubs, hidden tests removed, no outputs."""

from __future__ import annotations

import ast
import re
import textwrap
from dataclasses import dataclass
from pathlib import Path

import jupytext
import nbformat

BEGIN_SOLUTION, END_SOLUTION = "### BEGIN SOLUTION", "### END SOLUTION"
BEGIN_HIDDEN, END_HIDDEN = "### BEGIN HIDDEN TESTS", "### END HIDDEN TESTS"
SITE_ONLY_TAGS = {"hide-input", "hide-output", "hide-cell", "remove-input"}
CODE_WIDTH = 88  # columns of the learner's code (STYLE.md)
HOW_TO = """\
**How this notebook works.** Run the first code cell once. For each question, replace the line
`raise NotImplementedError(...)` with your code and run the cell, then run the check cell under
it: `check("q1")` prints each check ✓/✗, your points, and a hint when your answer looks like a
common mistake. Re-run both cells as often as you like. An instructor grading this notebook adds
hidden tests, so make the function right, not just the checks green."""


class SourceError(ValueError):
    """A solutions file that breaks the format of exercises/README.md."""


@dataclass
class QuestionSource:
    """Where one question lives in a solutions notebook."""

    qid: str
    function: str
    points: float
    docstring: str
    solution_cell: int
    tests_cell: int


@dataclass
class ExerciseSource:
    """A parsed `solutions/<topic>.md`: the notebook and its questions in order."""

    topic: str
    path: Path
    notebook: nbformat.NotebookNode
    questions: list[QuestionSource]

    def cells_with(self, role: str) -> list[int]:
        """Indices of the code cells whose role is "setup", "solution" or "tests"."""
        return [i for i, c in enumerate(self.notebook.cells) if cell_role(c) == role]


def cell_role(cell: nbformat.NotebookNode) -> str | None:
    """ "setup", "solution", "tests" (from the nbgrader metadata) or None."""
    meta = cell.get("metadata", {}).get("nbgrader", {})
    if cell.get("cell_type") != "code" or not meta:
        return None
    if meta.get("solution"):
        return "solution"
    if meta.get("grade"):
        return "tests"
    return "setup" if meta.get("grade_id") == "setup" else None


def between(source: str, begin: str, end: str) -> list[str]:
    """The lines strictly between each `begin` and `end` marker line."""
    inside, lines = False, []
    for line in source.splitlines():
        if line.strip() == begin:
            inside = True
        elif line.strip() == end:
            inside = False
        elif inside:
            lines.append(line)
    return lines


def strip_hidden(source: str) -> str:
    """`source` without its hidden-tests regions (markers included)."""
    out, inside = [], False
    for line in source.splitlines():
        if line.strip() == BEGIN_HIDDEN:
            inside = True
        elif line.strip() == END_HIDDEN:
            inside = False
        elif not inside:
            out.append(line)
    return re.sub(r"\n{3,}", "\n\n\n", "\n".join(out)).strip("\n")


def stub(source: str, q: QuestionSource) -> str:
    """`source` with each solution region replaced by a helpful `raise NotImplementedError`."""
    message = f"{q.qid}: write {q.function}(). {q.docstring} Then run check('{q.qid}')."
    out, inside = [], False
    for line in source.splitlines():
        if line.strip() == BEGIN_SOLUTION:
            inside = True
            indent = line[: len(line) - len(line.lstrip())]
            out += raise_lines(indent, message)
        elif line.strip() == END_SOLUTION:
            inside = False
        elif not inside:
            out.append(line)
    return "\n".join(out)


def raise_lines(indent: str, message: str) -> list[str]:
    """`raise NotImplementedError(message)` at `indent`, its message split over lines (implicit
    concatenation) so that no line passes CODE_WIDTH columns."""
    one = f"{indent}raise NotImplementedError({message!r})"
    inner = indent + "    "
    chunks = textwrap.wrap(message, CODE_WIDTH - len(inner) - 2, drop_whitespace=False,
                           break_long_words=True, break_on_hyphens=False)
    if len(one) <= CODE_WIDTH or "".join(chunks) != message:
        return [one]
    return [f"{indent}raise NotImplementedError(", *[f"{inner}{c!r}" for c in chunks], f"{indent})"]


def parse(path: Path) -> ExerciseSource:
    """Read and validate a solutions file; raise SourceError naming the first problem."""
    path = Path(path)
    nb = jupytext.read(path)
    source = ExerciseSource(path.stem, path, nb, [])
    solutions, tests = source.cells_with("solution"), source.cells_with("tests")
    if len(source.cells_with("setup")) != 1:
        raise SourceError(f"{path}: needs exactly one setup cell (grade_id: setup)")
    if not tests or len(solutions) != len(tests):
        raise SourceError(f"{path}: {len(solutions)} solution cells but {len(tests)} tests cells")
    for n, (s, t) in enumerate(zip(solutions, tests, strict=True), start=1):
        source.questions.append(_question(path, nb, n, s, t))
    return source


def _question(path: Path, nb: nbformat.NotebookNode, n: int, s: int, t: int) -> QuestionSource:
    """Validate question number `n` (solution cell `s`, tests cell `t`)."""
    qid, where = f"q{n}", f"{path}: q{n}"
    sol, tests = nb.cells[s], nb.cells[t]
    if sol.metadata["nbgrader"].get("grade_id") != f"{qid}-solution" or s > t:
        raise SourceError(f"{where}: expected a solution cell with grade_id {qid}-solution "
                          "before its tests cell")
    if tests.metadata["nbgrader"].get("grade_id") != qid:
        raise SourceError(f"{where}: the tests cell needs grade_id {qid}")
    if s == 0 or nb.cells[s - 1].cell_type != "markdown":
        raise SourceError(f"{where}: put the prompt (markdown) right before the solution cell")
    call = _question_call(tests.source, where)
    if call["qid"] != qid or call["points"] != tests.metadata["nbgrader"].get("points"):
        raise SourceError(f"{where}: question() id/points disagree with the cell metadata")
    for marker in (BEGIN_SOLUTION, END_SOLUTION):
        if marker not in sol.source:
            raise SourceError(f"{where}: the solution cell lacks {marker}")
    if not between(tests.source, BEGIN_HIDDEN, END_HIDDEN):
        raise SourceError(f"{where}: the tests cell has no hidden tests")
    if not tests.source.rstrip().endswith(f'check("{qid}")'):
        raise SourceError(f'{where}: the tests cell must end with check("{qid}")')
    doc = _docstring(sol.source, call["function"], where)
    return QuestionSource(qid, call["function"], call["points"], doc, s, t)


def _question_call(source: str, where: str) -> dict:
    """The literal arguments of the `question(...)` call in a tests cell."""
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Call) and getattr(node.func, "id", None) == "question":
            args = [ast.literal_eval(a) for a in node.args]
            kwargs = {k.arg: ast.literal_eval(k.value) for k in node.keywords}
            if len(args) == 2 and "points" in kwargs:
                return {"qid": args[0], "function": args[1], "points": kwargs["points"]}
    raise SourceError(f'{where}: no question("qN", "function", points=P) call in the tests cell')


def _docstring(source: str, function: str, where: str) -> str:
    """The first docstring line of `function` in the solution cell (markers inside it)."""
    for node in ast.parse(source).body:
        if isinstance(node, ast.FunctionDef) and node.name == function:
            doc = ast.get_docstring(node)
            lines = source.splitlines()
            inside = [i + 1 for i, line in enumerate(lines) if line.strip() == BEGIN_SOLUTION]
            if not doc:
                raise SourceError(f"{where}: {function}() needs a docstring (it becomes the stub)")
            if not all(node.lineno < i <= node.end_lineno for i in inside):
                raise SourceError(f"{where}: put the solution markers inside {function}()")
            return doc.splitlines()[0].strip()
    raise SourceError(f"{where}: the solution cell does not define {function}()")


def exercise_notebook(source: ExerciseSource) -> nbformat.NotebookNode:
    """The learner's notebook: stubs instead of solutions, no hidden tests, no outputs."""
    by_cell = {q.solution_cell: q for q in source.questions}
    cells = []
    for i, cell in enumerate(source.notebook.cells):
        text = cell.source
        if i in by_cell:
            text = stub(text, by_cell[i])
        elif cell_role(cell) == "tests":
            text = strip_hidden(text)
        meta = {k: v for k, v in cell.metadata.items() if k in ("nbgrader", "tags")}
        meta["tags"] = [t for t in meta.get("tags", []) if t not in SITE_ONLY_TAGS]
        if not meta["tags"]:
            del meta["tags"]
        if cell_role(cell) == "tests":  # JupyterLab opens it folded: prompt, function, report
            meta["jupyter"] = {"source_hidden": True}
        grade_id = meta.get("nbgrader", {}).get("grade_id")
        new = (nbformat.v4.new_code_cell if cell.cell_type == "code"
               else nbformat.v4.new_markdown_cell)(text, metadata=meta)
        new.id = grade_id or f"cell-{i}"
        cells.append(new)
    cells.insert(1, nbformat.v4.new_markdown_cell(HOW_TO, id="how-to"))
    nb = nbformat.v4.new_notebook(cells=cells, metadata={
        "kernelspec": {"display_name": "Python 3", "language": "python", "name": "python3"},
        "language_info": {"name": "python"},
        "book": {"chapter": source.topic},
    })
    nbformat.validate(nb)
    return nb


def handed_in(source: ExerciseSource, solved: set[str] | None = None) -> nbformat.NotebookNode:
    """The learner's notebook as handed in by a learner who solved the questions in `solved` (all
    when None) with the reference solutions; the other questions stay stubs."""
    nb = exercise_notebook(source)
    for q in source.questions:
        if solved is None or q.qid in solved:
            cell = next(c for c in nb.cells if c.id == f"{q.qid}-solution")
            cell.source = source.notebook.cells[q.solution_cell].source
    return nb


def render(source: ExerciseSource) -> str:
    """The exact text of `exercises/<topic>.ipynb`."""
    return nbformat.writes(exercise_notebook(source)) + "\n"


def sources(root: Path) -> list[Path]:
    """Every `solutions/*.md` under the repository `root`, sorted."""
    return sorted((Path(root) / "solutions").glob("*.md"))


def assign(root: Path) -> list[Path]:
    """Write `exercises/<topic>.ipynb` for every solutions file; return the files that changed."""
    changed = []
    for path in sources(root):
        target = Path(root) / "exercises" / f"{path.stem}.ipynb"
        text = render(parse(path))
        if not target.exists() or target.read_text(encoding="utf-8") != text:
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(text, encoding="utf-8")
            changed.append(target)
    return changed


def stale(root: Path) -> list[Path]:
    """Exercise notebooks that differ from what `assign` would write now."""
    out = []
    for path in sources(root):
        target = Path(root) / "exercises" / f"{path.stem}.ipynb"
        if not target.exists() or target.read_text(encoding="utf-8") != render(parse(path)):
            out.append(target)
    return out
