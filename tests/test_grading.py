"""`python -m book grade` on one batch of honest, broken and hostile optimizers submissions,
graded two at a time in sandboxes: every row gets exactly the points its functions earn (no
attack earns one more), a clear error, and no row harms another, the submissions, the output or
the machine. The planted mistakes score as they do in-process, with the same hints."""

from __future__ import annotations

import csv
import hashlib
import os
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest

from book import exercises as ex
from book.assign import BEGIN_HIDDEN, END_HIDDEN, between, handed_in, parse
from book.checker import hidden_lines
from book.grading import GradeConfig, grade, write_csv
from tests.system import ensure_tool

ROOT = Path(__file__).resolve().parents[1]
SOURCE = parse(ROOT / "solutions" / "optimizers.md")
POSSIBLE = sum(q.points for q in SOURCE.questions)
ALL = {q.qid for q in SOURCE.questions}
MARKS = ("outlives-row", "sleep 3601", "sleep 3603")  # processes that must not outlive the batch


def learner(solved: set[str] = frozenset()) -> nbformat.NotebookNode:
    """The exercise notebook, with the solutions of the questions in `solved` filled in."""
    return handed_in(SOURCE, set(solved))


def with_cell(nb: nbformat.NotebookNode, code: str, at: int | None = None) -> nbformat.NotebookNode:
    """`nb` plus one code cell (at the end by default)."""
    nb.cells.insert(len(nb.cells) if at is None else at, nbformat.v4.new_code_cell(code))
    return nb


def garbage(value: str = '"forged"') -> str:
    """Definitions of the questions' functions, all returning `value`."""
    return "\n".join(f"def {q.function}(*args, **kwargs):\n    return {value}\n"
                     for q in SOURCE.questions)


STREAMS = '''\
import os, struct, sys
class Forged:
    def __init__(self, stream):
        self.stream = stream
    def write(self, text):
        return self.stream.write(text.replace("0/", "12/").replace("✗", "✓"))
    def __getattr__(self, name):
        return getattr(self.stream, name)
sys.stdout, sys.stderr = Forged(sys.stdout), Forged(sys.stderr)
print('BOOK-GRADE-0000:{"q1": [2, "attempted"]}')
for fd in range(3, 64):  # forged frames into every pipe: the grader's channel is one of them
    for frame in (b'{"op": "done", "re": 1}', b'{"op": "return", "re": 7, "value": 1.0}'):
        try:
            os.write(fd, struct.pack(">I", len(frame)) + frame)
        except OSError:
            pass
'''
PATCHES = '''\
import builtins, math, numpy as np, torch
always = lambda *args, **kwargs: True
torch.allclose = torch.equal = math.isclose = np.allclose = np.array_equal = always
torch.isclose = lambda a, b, *args, **kwargs: torch.ones_like(torch.as_tensor(a), dtype=torch.bool)
np.isclose = lambda a, b, *args, **kwargs: np.ones_like(a, dtype=bool)
torch.Tensor.__eq__ = torch.Tensor.__lt__ = torch.Tensor.__gt__ = always
builtins.abs = lambda x: 0.0
'''
FORGED_MODULE = '''\
import importlib.abc, importlib.machinery, os, sys
os.makedirs("/tmp/fake/book", exist_ok=True)
open("/tmp/fake/book/__init__.py", "w").write("")
open("/tmp/fake/book/exercises.py", "w").write(
    "def question(*a, **k):\\n    return None\\n"
    "def check(*a, **k):\\n    print('all checks pass')\\n"
    "def assert_near(*a, **k):\\n    return None\\n"
    "def evaluate(*a, **k):\\n    raise SystemExit\\n")
sys.path.insert(0, "/tmp/fake")
class Finder(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path, target=None):
        if name == "book" or name.startswith("book."):
            return importlib.machinery.PathFinder.find_spec(name, ["/tmp/fake", "/tmp/fake/book"])
sys.meta_path.insert(0, Finder())
for name in [m for m in sys.modules if m == "book" or m.startswith("book.")]:
    del sys.modules[name]
'''
READ_SOLUTIONS = '''\
import glob, os, pathlib, sys
import book
texts = []
def read(path):
    try:
        text = pathlib.Path(path).read_text(errors="ignore")
    except OSError:
        return
    if "BEGIN SOLUTION" in text or "BEGIN HIDDEN TESTS" in text:
        texts.append(text)
roots = [pathlib.Path(book.__file__).parents[1], pathlib.Path.cwd(), pathlib.Path.home(),
         pathlib.Path(sys.prefix), pathlib.Path(sys.base_prefix), *map(pathlib.Path, sys.path)]
for pth in glob.glob(sys.prefix + "/lib/python*/site-packages/*.pth"):
    roots += [pathlib.Path(line.strip()) for line in open(pth) if line.startswith("/")]
for root in roots:
    for parent in [root, *root.parents]:
        for name in ("solutions/optimizers.md", "optimizers.md", "exercises/optimizers.ipynb"):
            read(parent / name)
for link in glob.glob("/proc/*/cwd") + glob.glob("/proc/*/root"):
    read(os.path.join(link, "solutions/optimizers.md"))
for fd in glob.glob("/proc/*/fd/*"):  # an open file of another process (a pipe would block)
    target = os.readlink(fd) if os.path.islink(fd) else ""
    if target.startswith("/"):
        read(target)
for f in glob.glob("/proc/*/environ") + glob.glob("/proc/*/cmdline") + glob.glob("/proc/*/maps"):
    read(f)
for top, dirs, files in os.walk("/"):
    dirs[:] = [d for d in dirs if os.path.join(top, d) not in ("/proc", "/sys", "/dev")]
    for f in files:
        if f.endswith((".md", ".ipynb")):
            read(os.path.join(top, f))
for text in texts:  # found: run its solutions
    for block in text.split("```{code-cell} ipython3")[1:]:
        exec(block.split("```")[0].split("---", 2)[-1])
'''
OUTLIVES = '''\
import ctypes, os, subprocess, time
subprocess.Popen(["sleep", "3601"], start_new_session=True)
if os.fork() == 0:
    os.setsid()
    if os.fork() == 0:
        ctypes.CDLL(None).prctl(15, b"outlives-row", 0, 0, 0)
        while True:
            for target in TARGETS:
                try:
                    open(target, "a").write("written after its row")
                except OSError:
                    pass
            time.sleep(0.2)
    os._exit(0)
'''
FLOOD = '''\
import subprocess
children = [subprocess.Popen(["sleep", "3603"]) for _ in range(500)]
'''
MALFORMED_ANSWERS = '''\
import os, struct
def ewma(x, beta, bias_correction=True):
    yield x  # a generator is not plain data
def adam_growth_ratio(q, betas=(0.9, 0.999)):
    for fd in range(3, 64):  # damaged frames into every pipe, then a forged answer
        for frame in (struct.pack(">I", 2**32 - 1), b"\\x00\\x00\\x00\\x05{{{{{", b"junk"):
            try:
                os.write(fd, frame)
            except OSError:
                pass
    return 0.2
'''
HANGS = '''\
import time
def adamax_step(param, grad, state, lr=2e-3, betas=(0.9, 0.999), eps=1e-8):
    time.sleep(3600)
'''
SPIN = '''\
import signal
signal.signal(signal.SIGINT, signal.SIG_IGN)
while True:
    pass
'''


def chapter_cells() -> list[str]:
    """The setup cell and every tests cell (without its `check(...)` line) of the chapter."""
    cells = [SOURCE.notebook.cells[SOURCE.cells_with("setup")[0]].source]
    return cells + ["\n".join(SOURCE.notebook.cells[q.tests_cell].source.rstrip().splitlines()[:-1])
                    for q in SOURCE.questions]


def in_process(cells: list[str]) -> tuple[dict, dict[str, ex.Question]]:
    """Run cells in one fresh namespace of this (clean) process: (namespace, questions)."""
    namespace: dict = {"__name__": "__main__"}
    ex.QUESTIONS.clear()
    for i, code in enumerate(cells):
        exec(compile(code, f"<cell {i}>", "exec"), namespace)  # noqa: S102 - the chapter's code
    return namespace, dict(ex.QUESTIONS)


def clean_score(cells: list[str]) -> tuple[float, list[str]]:
    """Total points and hints of the functions `cells` define, checked in this clean process."""
    namespace, questions = in_process(cells)
    results = [q.evaluate(namespace.get(q.function)) for q in questions.values()]
    return round(sum(r.earned for r in results), 2), [h for r in results for h in r.hints]


def plants(k: int) -> list[str]:
    """Cells whose functions are the k-th planted mistakes of the chapter's questions."""
    _, questions = in_process(chapter_cells())
    binds = [f"{q.function} = [p for m in QUESTIONS[{q.qid!r}].mistakes for p in m.plants][{k}]"
             for q in questions.values() if k < sum(len(m.plants) for m in q.mistakes)]
    return [*chapter_cells(), "from book.exercises import QUESTIONS\n" + "\n".join(binds)]


def hidden_descriptions() -> list[str]:
    """What the hidden checks of the chapter say they check."""
    cells = chapter_cells()
    _, questions = in_process(cells)
    found = []
    for q in questions.values():
        for check in q.checks:
            code = check.run.__code__
            cell = int(code.co_filename.strip("<>").split()[1])
            if code.co_firstlineno in hidden_lines(cells[cell]):
                found.append(check.description)
    return found


def notebook(cells: list[str]) -> nbformat.NotebookNode:
    return nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(c) for c in cells],
                                    metadata={"book": {"chapter": "optimizers"}})


def submissions(folder: Path, out: Path, host: Path) -> dict[str, tuple[float, str]]:
    """Write the batch; return {file: (expected total, expected text in the error column)}."""
    renamed = learner(ALL)
    cell = next(c for c in renamed.cells if c.id == "q1-solution")
    cell.source = cell.source.replace("def ewma(", "def my_ewma(")
    shuffled = learner(ALL)  # setup and a solution deleted, cells reversed, one duplicated
    shuffled.cells = [c for c in shuffled.cells if c.id not in ("setup", "q2-solution")][::-1]
    shuffled.cells.append(nbformat.v4.new_code_cell(
        "import math, torch\n" + SOURCE.notebook.cells[SOURCE.questions[1].solution_cell].source))
    shuffled.cells.append(nbformat.v4.new_code_cell(
        SOURCE.notebook.cells[SOURCE.questions[3].solution_cell].source))
    targets = [str(folder / "honest_a.ipynb"), str(folder / "pwned.txt"), str(out),
               str(out.with_name("grades-feedback") / "honest_a.md"), str(host / "pwned"),
               str(ROOT / "solutions" / "pwned.md"), "/opt/book/book/exercises.py"]
    writes = (f"import os\nTARGETS = {targets!r}\nfor target in TARGETS:\n    try:\n"
              "        os.makedirs(os.path.dirname(target), exist_ok=True)\n"
              "        open(target, 'a').write('pwned')\n    except OSError:\n        pass\n")
    cases = {
        "honest_a.ipynb": (learner(ALL), POSSIBLE, ""),
        "honest_z.ipynb": (learner(ALL), POSSIBLE, ""),
        "partial.ipynb": (learner({"q1", "q5"}), 4.0, "q2: not attempted"),
        "stub.ipynb": (learner(), 0.0, "q1: not attempted"),
        "renamed.ipynb": (renamed, POSSIBLE - 2, "q1: no function ewma"),
        "shuffled.ipynb": (shuffled, POSSIBLE, ""),
        "infinite_loop.ipynb": (with_cell(learner({"q1"}), SPIN), 2.0,
                                "reached in your code cell 14, which ignored the interrupt"),
        "os_exit.ipynb": (with_cell(learner(ALL), "import os\nos._exit(0)", at=3), POSSIBLE,
                          "your code cell 2 stopped Python"),
        "memory_bomb.ipynb": (with_cell(learner({"q5"}), "x = bytearray(64 * 2**30)"), 2.0,
                              "raised MemoryError"),
        "hangs_in_check.ipynb": (with_cell(learner(ALL - {"q4"}), HANGS), POSSIBLE - 2, ""),
        "forges_streams.ipynb": (with_cell(learner(), STREAMS), 0.0, "q1: not attempted"),
        "patches_comparisons.ipynb": (with_cell(learner(), PATCHES + garbage()),
                                      clean_score([*chapter_cells(), garbage()])[0], ""),
        "forged_module.ipynb": (with_cell(learner(), FORGED_MODULE + garbage("0.1")),
                                clean_score([*chapter_cells(), garbage("0.1")])[0], ""),
        "reads_solutions.ipynb": (with_cell(learner(), READ_SOLUTIONS), 0.0, "q1: not attempted"),
        "writes_elsewhere.ipynb": (with_cell(learner(), writes), 0.0, "q1: not attempted"),
        "outlives_row.ipynb": (with_cell(learner(), f"TARGETS = {targets!r}\n" + OUTLIVES), 0.0,
                               "q1: not attempted"),
        "process_flood.ipynb": (with_cell(learner({"q1"}), FLOOD), 2.0, "raised BlockingIOError"),
        "malformed_answers.ipynb": (with_cell(learner({"q2", "q3", "q4"}), MALFORMED_ANSWERS),
                                    8.0, "the sandbox stopped during a call of adam_growth_ratio"),
        "edits_grader.ipynb": (with_cell(learner(ALL), "import book.exercises as bx\n"
                                         "open(bx.__file__, 'a').write('# edited')"),
                               POSSIBLE, "your code cell 14 raised"),
    }
    for k in range(3):
        cases[f"plants{k}.ipynb"] = (notebook(plants(k)), clean_score(plants(k))[0], "")
    for name, (nb, _, _) in cases.items():
        nbformat.write(nb, folder / name)
    (folder / "bad_json.ipynb").write_text('{"cells": [', encoding="utf-8")
    (folder / "not_a_notebook.ipynb").write_bytes(b"\xff\xfe binary")
    expected = {name: (total, error) for name, (_, total, error) in cases.items()}
    expected["bad_json.ipynb"] = (0.0, "not a readable notebook")
    expected["not_a_notebook.ipynb"] = (0.0, "not a readable notebook")
    return expected


def digests(folder: Path) -> dict[str, str]:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(folder.iterdir())}


def marked_processes() -> list[str]:
    """Processes started by submissions that are still alive (there must be none)."""
    alive = []
    for proc in Path("/proc").iterdir():
        try:
            text = (proc / "comm").read_text() + (proc / "cmdline").read_bytes().replace(
                b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        alive += [f"{proc.name}: {mark}" for mark in MARKS if mark in text]
    return alive


@pytest.fixture(scope="module")
def batch(tmp_path_factory):
    """The whole batch graded once through the command line, two at a time."""
    ensure_tool("bwrap")
    folder, host = tmp_path_factory.mktemp("submissions"), tmp_path_factory.mktemp("host")
    out = folder.parent / "grades.csv"
    expected = submissions(folder, out, host)
    before = digests(folder)
    solutions = sorted(p.name for p in (ROOT / "solutions").iterdir())
    command = [sys.executable, "-m", "book", "grade", str(folder), "--out", str(out), "--jobs",
               "2", "--timeout", "10", "--check-timeout", "4", "--memory", "3"]
    run = subprocess.run(command, capture_output=True, text=True, timeout=1500, cwd=ROOT)
    assert run.returncode == 0, run.stderr
    rows = {r["submission"]: r for r in csv.DictReader(out.open(encoding="utf-8"))}
    return {"expected": expected, "rows": rows, "before": before, "after": digests(folder),
            "out": out, "host": host, "solutions": solutions, "alive": marked_processes()}


def test_one_row_per_submission_with_question_total_max_error_columns(batch):
    rows = batch["rows"]
    assert set(rows) == set(batch["expected"])
    columns = list(next(iter(rows.values())))
    assert columns == ["submission", *[q.qid for q in SOURCE.questions], "total", "max", "error"]
    assert all(float(r["max"]) == POSSIBLE for r in rows.values())


CASES = ["honest_a", "honest_z", "partial", "stub", "renamed", "shuffled",
         "infinite_loop", "os_exit", "memory_bomb", "hangs_in_check", "forges_streams",
         "patches_comparisons", "forged_module", "reads_solutions", "writes_elsewhere",
         "outlives_row", "process_flood", "malformed_answers", "edits_grader", "plants0",
         "plants1", "plants2", "bad_json", "not_a_notebook"]


@pytest.mark.parametrize("name", CASES)
def test_each_submission_gets_exactly_its_points_and_a_clear_error(batch, name):
    total, error = batch["expected"][f"{name}.ipynb"]
    row = batch["rows"][f"{name}.ipynb"]
    assert float(row["total"]) == total, row
    assert error in row["error"], row
    if name.startswith("honest") or name == "shuffled":
        assert row["error"] == "", row


def test_planted_mistakes_show_their_hints_in_the_feedback(batch):
    feedback = batch["out"].with_name("grades-feedback")
    for k in range(3):
        hints = clean_score(plants(k))[1]
        assert hints
        text = (feedback / f"plants{k}.md").read_text(encoding="utf-8")
        assert all(f"hint: {h}" in text for h in hints), text


def test_a_function_too_slow_for_a_check_fails_that_check_only(batch):
    text = (batch["out"].with_name("grades-feedback") / "hangs_in_check.md").read_text()
    assert "adamax_step took longer than 4 s (an infinite loop?)" in text
    assert "## q5 · diagnose_adam — 2/2 points" in text


def test_feedback_shows_public_checks_and_never_hidden_tests(batch):
    feedback = batch["out"].with_name("grades-feedback")
    assert sorted(p.stem for p in feedback.iterdir()) == sorted(CASES)
    text = (feedback / "partial.md").read_text(encoding="utf-8")
    assert "**Total: 4 / 14 points.**" in text and "## q2 · adam_step — 0/3 points" in text
    assert "* ✓ returns one average per step" in text and "hidden checks: 1 of 1 passed" in text
    tests = [SOURCE.notebook.cells[q.tests_cell].source for q in SOURCE.questions]
    hidden = {line.strip() for cell in tests for line in between(cell, BEGIN_HIDDEN, END_HIDDEN)
              if len(line.strip()) > 12}
    descriptions = hidden_descriptions()
    everything = "\n".join(p.read_text(encoding="utf-8") for p in feedback.iterdir())
    assert not [line for line in hidden if line in everything]
    assert descriptions and not [d for d in descriptions if d in everything]


def test_no_submission_changed_any_file_or_outlived_its_row(batch):
    assert batch["before"] == batch["after"], "a submission was modified or a file was added"
    assert not list(batch["host"].iterdir()), "a sandbox wrote outside its /tmp"
    assert sorted(p.name for p in (ROOT / "solutions").iterdir()) == batch["solutions"]
    assert "pwned" not in (ROOT / "book" / "exercises.py").read_text()
    assert "pwned" not in batch["out"].read_text()
    assert batch["alive"] == [], "processes of a submission outlived the batch"


def test_grade_detects_the_chapter_and_rejects_unknown_ones(tmp_path):
    (tmp_path / "alice-optimizers.ipynb").write_text("{", encoding="utf-8")
    source, rows = grade(tmp_path, ROOT, config=GradeConfig(jobs=1, sandbox=False))
    assert source.topic == "optimizers" and "not a readable notebook" in rows[0].errors[0]
    with pytest.raises(ValueError, match="no exercises for chapter 'nope'"):
        grade(tmp_path, ROOT, chapter="nope", config=GradeConfig(sandbox=False))
    (tmp_path / "alice-optimizers.ipynb").rename(tmp_path / "alice.ipynb")
    with pytest.raises(ValueError, match="pass --chapter"):
        grade(tmp_path, ROOT, config=GradeConfig(sandbox=False))
    write_csv(source, rows, tmp_path / "g.csv")
    assert (tmp_path / "g.csv").read_text().startswith("submission,q1,")


def test_without_bubblewrap_the_command_stops_with_how_to_install_it(tmp_path):
    (tmp_path / "a.ipynb").write_text("{", encoding="utf-8")
    run = subprocess.run([sys.executable, "-m", "book", "grade", str(tmp_path), "--chapter",
                          "optimizers", "--out", str(tmp_path / "g.csv")], capture_output=True,
                         text=True, cwd=ROOT, env=dict(os.environ, PATH="/nonexistent"))
    assert run.returncode == 2 and not (tmp_path / "g.csv").exists()
    assert len(run.stderr.strip().splitlines()) == 1 and "apt-get install bubblewrap" in run.stderr
    run = subprocess.run([sys.executable, "-m", "book", "grade", str(tmp_path), "--chapter",
                          "optimizers", "--out", str(tmp_path / "g.csv"), "--no-sandbox"],
                         capture_output=True, text=True, cwd=ROOT)
    assert run.returncode == 0 and "warning: --no-sandbox" in run.stderr
    assert (tmp_path / "g.csv").exists() and (tmp_path / "g-feedback" / "a.md").exists()
