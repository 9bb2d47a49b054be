"""Grade a folder of submitted exercise notebooks: each in its own kernel, hidden tests added,
one CSV row per submission. One broken, hanging or hostile notebook costs only its own row."""

from __future__ import annotations

import ast
import csv
import hashlib
import json
import os
import resource
import secrets
import shutil
import signal
import subprocess
import tempfile
import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import nbformat
from nbclient import NotebookClient

from book.assign import ExerciseSource, cell_role, parse

PACKAGE = Path(__file__).resolve().parent
# Trusted cells around the student's. The real output stream is kept before any student code
# runs; names in the notebook (print, get_ipython, check...) are never relied on.
GUARD = """\
import os as _os, sys as _sys, types as _types
_sys.path[:] = [p for p in _sys.path if not _os.path.isdir(_os.path.join(p or ".", "solutions"))]
_sys.modules["_book_guard"] = _types.SimpleNamespace(stdout=_sys.stdout, stderr=_sys.stderr)"""
RESET = """\
import sys as _sys
import IPython as _ipython
import _book_guard
_sys.settrace(None)
_sys.setprofile(None)
_sys.stdout, _sys.stderr = _book_guard.stdout, _book_guard.stderr
for _module in [m for m in _sys.modules if m == "book" or m.startswith("book.")]:
    del _sys.modules[_module]
for _event in list(_ipython.get_ipython().events.callbacks):
    _ipython.get_ipython().events.callbacks[_event] = []"""
REPORT = """\
import json as _json
import _book_guard
import book.exercises as _bx
_results = {{q: _bx.evaluate(q, globals()) for q in {qids!r}}}
_book_guard.stdout.write({marker!r} + _json.dumps({{q: [r.earned, r.status] for q, r in _results.items()}}) + "\\n")
_book_guard.stdout.flush()"""


@dataclass
class GradeConfig:
    """Limits for one submission."""

    timeout: float = 60.0  # seconds for the student's own cells, all together
    tests_timeout: float = 60.0  # seconds for each injected cell (setup, tests, report)
    memory: int = 4 * 2**30  # bytes of address space for the kernel process (RLIMIT_AS)
    jobs: int = os.cpu_count() or 1  # submissions graded at once


@dataclass
class Row:
    """One submission's line in the CSV."""

    submission: str
    scores: dict[str, float]
    errors: list[str] = field(default_factory=list)

    def as_dict(self, possible: float) -> dict[str, object]:
        """The CSV columns: submission, one per question, total, max, error."""
        total = round(sum(self.scores.values()), 2)
        return {"submission": self.submission, **self.scores, "total": total,
                "max": possible, "error": " | ".join(self.errors)}


def one_line(exc: BaseException | str) -> str:
    """An error as one short line."""
    text = exc if isinstance(exc, str) else f"{type(exc).__name__}: {exc}"
    text = " ".join(text.split())
    return text if len(text) <= 200 else text[:197] + "..."


def detect_chapter(nb: nbformat.NotebookNode | None, path: Path, topics: list[str]) -> str | None:
    """The chapter of a submission: its notebook metadata, else its file name."""
    if nb is not None:
        chapter = nb.get("metadata", {}).get("book", {}).get("chapter")
        if chapter in topics:
            return chapter
    names = [t for t in topics if t in path.stem]
    return max(names, key=len) if names else None


def read_notebook(path: Path) -> nbformat.NotebookNode:
    """A submission as a notebook; raises on anything that is not a readable notebook."""
    nb = nbformat.reads(path.read_bytes().decode("utf-8"), as_version=4)
    if not isinstance(nb.get("cells"), list):
        raise ValueError("no list of cells")
    return nb


def student_cells(nb: nbformat.NotebookNode) -> list[str]:
    """The submission's code cells, minus its own copies of the tests cells."""
    out = []
    for cell in nb.cells:
        source = cell.get("source", "") if isinstance(cell, dict) else ""
        source = "".join(source) if isinstance(source, list) else str(source)
        if cell.get("cell_type") == "code" and cell_role(cell) != "tests":
            out.append(source)
    return out


def protected_names(source: ExerciseSource) -> dict[str, str]:
    """Names the checks rely on (setup imports, what the tests cells define), with their origin."""
    cells = [source.notebook.cells[i].source for i in source.cells_with("setup")]
    cells += [source.notebook.cells[q.tests_cell].source for q in source.questions]
    names = {k: v for cell in cells for k, v in bound_names(cell).items()}
    names.pop("_", None)
    return names


def bound_names(code: str) -> dict[str, str]:
    """Top-level names a cell binds, each with its origin ("module.name" for imports, else "")."""
    try:
        tree = ast.parse(code)
    except SyntaxError:
        return {}
    names: dict[str, str] = {}
    for node in tree.body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            names[node.name] = ""
        elif isinstance(node, ast.Import):
            names.update({a.asname: a.name for a in node.names if a.asname})
            names.update({a.name.split(".")[0]: a.name.split(".")[0] for a in node.names if not a.asname})
        elif isinstance(node, ast.ImportFrom):
            names.update({a.asname or a.name: f"{node.module}.{a.name}" for a in node.names})
        elif isinstance(node, (ast.Assign, ast.AnnAssign, ast.AugAssign)):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            names.update({n.id: "" for t in targets for n in ast.walk(t) if isinstance(n, ast.Name)})
    return names


def redefined(cells: list[str], source: ExerciseSource) -> list[str]:
    """Protected names the student's cells bind to something else."""
    protected = protected_names(source)
    return sorted({name for cell in cells for name, origin in bound_names(cell).items()
                   if name in protected and not (origin and origin == protected[name])})


def tests_cells(source: ExerciseSource) -> list[str]:
    """The full tests cells (public and hidden), without their `check(...)` call."""
    out = []
    for q in source.questions:
        lines = source.notebook.cells[q.tests_cell].source.rstrip().splitlines()
        out.append("\n".join(lines[:-1]))
    return out


def tree_digest(folder: Path) -> dict[str, str]:
    """sha256 of every file under `folder`, by relative path."""
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


def grade_one(path: Path, source: ExerciseSource, config: GradeConfig, label: str = "") -> Row:
    """Grade one submission in a fresh kernel; never raises. `label` names its row."""
    row = Row(label or path.name, {q.qid: 0.0 for q in source.questions})
    try:
        nb = read_notebook(path)
        cells = student_cells(nb)
    except Exception as exc:  # noqa: BLE001 - any unreadable file is that row's error
        row.errors.append(f"not a readable notebook ({one_line(exc)})")
        return row
    clash = redefined(cells, source)
    if clash:
        row.errors.append(f"redefines {', '.join(clash)} (ignored: graded with the real tests)")
    with tempfile.TemporaryDirectory(prefix="grade-") as tmp:
        work = Path(tmp)
        shutil.copytree(PACKAGE, work / "book", ignore=shutil.ignore_patterns("__pycache__"))
        shutil.copy(path, work / path.name)
        before = tree_digest(work / "book")
        results = _execute(work, cells, source, config, row)
        if tree_digest(work / "book") != before:
            row.errors.append("changed the grader's files: no points")
            return row
    if results is None:
        return row
    for q in source.questions:
        earned, status = results.get(q.qid, (0.0, "missing"))
        row.scores[q.qid] = round(min(max(float(earned), 0.0), float(q.points)), 2)
        if status != "attempted":
            row.errors.append(f"{q.qid}: {'no function ' + q.function if status == 'missing' else status}")
    return row


def _execute(work: Path, cells: list[str], source: ExerciseSource, config: GradeConfig,
             row: Row) -> dict[str, list] | None:
    """Run guard, setup, the student's cells, then the real tests; return {qid: [earned, status]}."""
    marker = f"BOOK-GRADE-{secrets.token_hex(16)}:"
    setup = source.notebook.cells[source.cells_with("setup")[0]].source
    report = REPORT.format(qids=[q.qid for q in source.questions], marker=marker)
    trusted_after = [RESET + "\n" + setup, *tests_cells(source), report]
    code = [GUARD, setup, *cells, *trusted_after]
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(c) for c in code])
    first_trusted = len(code) - len(trusted_after)
    client = NotebookClient(
        nb, kernel_name="python3", allow_errors=True, interrupt_on_timeout=True,
        error_on_timeout={"ename": "TimeoutError", "evalue": "time limit", "traceback": []})
    env = {**os.environ, "PYTHONPATH": str(work), "PYTHONDONTWRITEBYTECODE": "1",
           "MPLBACKEND": "Agg", "OMP_NUM_THREADS": "1"}
    env.pop("PYTHONSTARTUP", None)
    killed = threading.Event()
    try:
        with client.setup_kernel(cwd=str(work), env=env, stderr=subprocess.DEVNULL):
            pid = client.km.provisioner.pid
            resource.prlimit(pid, resource.RLIMIT_AS, (config.memory, config.memory))
            hard = config.timeout + config.tests_timeout * (len(trusted_after) + 2)
            watchdog = threading.Timer(hard, lambda: (killed.set(), os.kill(pid, signal.SIGKILL)))
            watchdog.start()
            try:
                _run_cells(client, nb, first_trusted, config, row)
            finally:
                watchdog.cancel()
    except Exception as exc:  # noqa: BLE001 - a dead or broken kernel is this row's error
        reason = "hard time limit" if killed.is_set() else one_line(exc)
        row.errors.append(f"kernel stopped ({reason}; os._exit, a crash or the memory limit?): "
                          "no points")
        return None
    for out in nb.cells[-1].get("outputs", []):
        for line in out.get("text", "").splitlines():
            if line.startswith(marker):
                return json.loads(line[len(marker):])
    row.errors.append("the tests could not run to the end: no points")
    return None


def _run_cells(client: NotebookClient, nb: nbformat.NotebookNode, first_trusted: int,
               config: GradeConfig, row: Row) -> None:
    """Execute the cells in order: student cells share one deadline, trusted ones have their own."""
    deadline = time.monotonic() + config.timeout
    for i, cell in enumerate(nb.cells):
        student = 2 <= i < first_trusted
        if student and time.monotonic() >= deadline:
            continue  # out of time: the tests still run on what is defined
        client.timeout = max(1, int(deadline - time.monotonic())) if student else int(config.tests_timeout)
        started = time.monotonic()
        client.execute_cell(cell, i)
        if student and time.monotonic() - started >= client.timeout:
            row.errors.append(f"time limit of {config.timeout:g} s reached in your cell {i - 1}; "
                              "later cells not run")
            continue
        for out in cell.get("outputs", []):
            if out.get("output_type") == "error":
                what = f"your cell {i - 1}" if student else "the tests"
                row.errors.append(f"{what} raised {one_line(out['ename'] + ': ' + out['evalue']).rstrip(': ')}")


def grade(submissions: Path, root: Path, chapter: str | None = None,
          config: GradeConfig | None = None) -> tuple[ExerciseSource, list[Row]]:
    """Grade every `.ipynb` under `submissions` (or that one file), in parallel."""
    config = config or GradeConfig()
    submissions = Path(submissions)
    paths = sorted(submissions.rglob("*.ipynb")) if submissions.is_dir() else [submissions]
    paths = [p for p in paths if ".ipynb_checkpoints" not in p.parts]
    topics = [p.stem for p in sorted((Path(root) / "solutions").glob("*.md"))]
    detected = {p: detect_chapter(_peek(p), p, topics) for p in paths}
    if chapter is None:
        found = Counter(c for c in detected.values() if c)
        if not found:
            raise ValueError("cannot tell the chapter of these notebooks: pass --chapter")
        chapter = found.most_common(1)[0][0]
    if chapter not in topics:
        raise ValueError(f"no exercises for chapter {chapter!r}; known: {', '.join(topics)}")
    source = parse(Path(root) / "solutions" / f"{chapter}.md")

    def one(path: Path) -> Row:
        label = path.relative_to(submissions).as_posix() if submissions.is_dir() else path.name
        if detected[path] not in (None, chapter):
            row = Row(label, {q.qid: 0.0 for q in source.questions})
            row.errors.append(f"this is a {detected[path]} notebook: grade it with "
                              f"--chapter {detected[path]}")
            return row
        return grade_one(path, source, config, label)

    with ThreadPoolExecutor(max_workers=max(1, config.jobs)) as pool:
        rows = list(pool.map(one, paths))
    return source, rows


def _peek(path: Path) -> nbformat.NotebookNode | None:
    """The notebook if it reads, else None (its row will say why)."""
    try:
        return read_notebook(path)
    except Exception:  # noqa: BLE001
        return None


def write_csv(source: ExerciseSource, rows: list[Row], out: Path) -> None:
    """One row per submission: submission, q1…qN, total, max, error."""
    possible = sum(q.points for q in source.questions)
    columns = ["submission", *[q.qid for q in source.questions], "total", "max", "error"]
    with open(out, "w", newline="", encoding="utf-8") as f:
        writer = csv.DictWriter(f, fieldnames=columns)
        writer.writeheader()
        writer.writerows(row.as_dict(possible) for row in rows)
