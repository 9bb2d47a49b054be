"""Grade a folder of submitted exercise notebooks into one CSV row (and feedback file) each.

Trust model: the student's code is hostile. This process reads the notebooks as data and never
runs their code. Parallel grading workers (`book.checker`, one process per job) hold the
chapter's checks; each submission's cells run in their own OS sandbox (`book.sandbox`), and the
checks call its functions across the boundary, receiving only plain data. So no score is
decided where student code ran. One broken, hanging or hostile submission costs only its own
row, and the CSV is always written.
"""

from __future__ import annotations

import csv
import os
import pickle
import queue
import re
import subprocess
import sys
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import nbformat

from book import wire
from book.assign import ExerciseSource, cell_role, parse
from book.checker import MAX_STARTS, Settings
from book.exercises import CHECK_TIME_LIMIT_S
from book.sandbox import PACKAGE, Limits, check_available, close_pipes

MAX_NOTEBOOK_BYTES = 50 * 2**20
PROBE = re.compile(r"^@\w+\.(check|mistake)\(", re.M)


@dataclass
class GradeConfig:
    """How submissions are run."""

    timeout: float = 60.0  # seconds for a submission's own cells, all together
    check_timeout: float = CHECK_TIME_LIMIT_S  # seconds for each check (as in check())
    memory: int = 4 * 2**30  # bytes of address space per sandboxed process
    jobs: int = os.cpu_count() or 1  # submissions graded at once
    sandbox: bool = True  # False only for notebooks you trust (no OS isolation)


@dataclass
class Row:
    """One submission's line in the CSV, and what its feedback file says."""

    submission: str
    scores: dict[str, float]
    errors: list[str] = field(default_factory=list)
    results: dict[str, dict] = field(default_factory=dict)  # qid -> checker.result_record

    def as_dict(self, possible: float) -> dict[str, object]:
        """The CSV columns: submission, one per question, total, max, error."""
        total = round(sum(self.scores.values()), 2)
        return {"submission": self.submission, **self.scores, "total": total,
                "max": possible, "error": " | ".join(self.errors)}

    def record(self, result: dict, points: float) -> None:
        """A question's result from a worker: its score, and a note unless attempted."""
        qid = result["qid"]
        self.results[qid] = result
        self.scores[qid] = round(min(max(float(result["earned"]), 0.0), float(points)), 2)
        if result["status"] == "missing":
            self.errors.append(f"{qid}: no function {result['function']}")
        elif result["status"] != "attempted":
            self.errors.append(f"{qid}: {result['status']}")


def one_line(exc: BaseException | str) -> str:
    """An error as one short line."""
    text = exc if isinstance(exc, str) else f"{type(exc).__name__}: {exc}"
    text = " ".join(text.split())
    return text if len(text) <= 200 else text[:197] + "..."


def read_notebook(path: Path) -> nbformat.NotebookNode:
    """A submission as a notebook; raises on anything that is not a readable notebook."""
    if path.stat().st_size > MAX_NOTEBOOK_BYTES:
        raise ValueError(f"larger than {MAX_NOTEBOOK_BYTES // 2**20} MB")
    nb = nbformat.reads(path.read_bytes().decode("utf-8"), as_version=4)
    if not isinstance(nb.get("cells"), list):
        raise ValueError("no list of cells")
    return nb


def student_cells(nb: nbformat.NotebookNode) -> list[tuple[int, str]]:
    """(number, source) of the submission's code cells, numbered as in the notebook, minus its
    own copies of the tests cells (the grader uses the real ones)."""
    out, number = [], 0
    for cell in nb.cells:
        if not isinstance(cell, dict) or cell.get("cell_type") != "code":
            continue
        number += 1
        source = cell.get("source", "")
        source = "".join(map(str, source)) if isinstance(source, list) else str(source)
        if cell_role(cell) != "tests":
            out.append((number, source))
    return out


def detect_chapter(nb: nbformat.NotebookNode | None, path: Path, topics: list[str]) -> str | None:
    """The chapter of a submission: its notebook metadata, else its file name."""
    if nb is not None:
        book_meta = nb.get("metadata", {}).get("book", {})
        chapter = book_meta.get("chapter") if isinstance(book_meta, dict) else None
        if isinstance(chapter, str) and chapter in topics:
            return chapter
    names = [t for t in topics if t in path.stem]
    return max(names, key=len) if names else None


def _peek(path: Path) -> nbformat.NotebookNode | None:
    """The notebook if it reads, else None (its row will say why)."""
    try:
        return read_notebook(path)
    except Exception:  # noqa: BLE001 - any unreadable file is that row's error
        return None


def grade(submissions: Path, root: Path, chapter: str | None = None,
          config: GradeConfig | None = None) -> tuple[ExerciseSource, list[Row]]:
    """Grade every `.ipynb` under `submissions` (or that one file), in parallel workers."""
    config = config or GradeConfig()
    if config.sandbox:
        check_available()
    submissions = Path(submissions)
    paths = sorted(submissions.rglob("*.ipynb")) if submissions.is_dir() else [submissions]
    paths = [p for p in paths if ".ipynb_checkpoints" not in p.parts]
    topics = [p.stem for p in sorted((Path(root) / "solutions").glob("*.md"))]
    notebooks = {p: _peek(p) for p in paths}
    detected = {p: detect_chapter(nb, p, topics) for p, nb in notebooks.items()}
    if chapter is None:
        found = Counter(c for c in detected.values() if c)
        if not found:
            raise ValueError("cannot tell the chapter of these notebooks: pass --chapter")
        chapter = found.most_common(1)[0][0]
    if chapter not in topics:
        raise ValueError(f"no exercises for chapter {chapter!r}; known: {', '.join(topics)}")
    source = parse(Path(root) / "solutions" / f"{chapter}.md")
    rows, jobs = [], []
    for path in paths:
        label = path.relative_to(submissions).as_posix() if submissions.is_dir() else path.name
        row = Row(label, {q.qid: 0.0 for q in source.questions})
        rows.append(row)
        if notebooks[path] is None:
            row.errors.append(f"not a readable notebook ({_why_unreadable(path)})")
        elif detected[path] not in (None, chapter):
            row.errors.append(f"this is a {detected[path]} notebook: grade it with "
                              f"--chapter {detected[path]}")
        else:
            jobs.append((row, student_cells(notebooks[path])))
    Pool(source, config).run(jobs)
    return source, rows


def _why_unreadable(path: Path) -> str:
    try:
        read_notebook(path)
    except Exception as exc:  # noqa: BLE001
        return one_line(exc)
    return "unknown reason"


class WorkerLost(Exception):
    """A grading worker died, hung, or could not start."""


class Worker:
    """One `book.checker` process: the chapter's checks, ready for one submission at a time."""

    def __init__(self, source: ExerciseSource, settings: Settings) -> None:
        env = {**os.environ, "PYTHONPATH": str(PACKAGE.parent), "MPLBACKEND": "Agg",
               "OMP_NUM_THREADS": "1", "BOOK_PROGRESS": "0"}
        self.popen = subprocess.Popen([sys.executable, "-m", "book.checker"], env=env,
                                      stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                      stderr=subprocess.DEVNULL)
        self.send({"source": str(source.path), "settings": settings})
        started = self.receive(time.monotonic() + 600)
        if "fatal" in started:
            self.close()
            raise WorkerLost(started["fatal"])

    def send(self, message: dict) -> None:
        wire.write_frame(self.popen.stdin.fileno(), pickle.dumps(message))

    def receive(self, deadline: float) -> dict:
        wait = max(0.0, deadline - time.monotonic())
        try:
            body = wire.read_frame(self.popen.stdout.fileno(), wait)
        except (EOFError, TimeoutError, OSError, wire.WireError) as exc:
            self.close()
            raise WorkerLost("it stopped" if isinstance(exc, EOFError) else "time limit") from None
        return pickle.loads(body)

    def grade(self, cells: list[tuple[int, str]], row: Row, source: ExerciseSource,
              limit: float) -> bool:
        """Grade one submission into `row` (WorkerLost keeps what arrived before); True when
        the worker should be replaced before the next one."""
        points = {q.qid: q.points for q in source.questions}
        self.send({"cells": cells})
        deadline = time.monotonic() + limit
        while True:
            message = self.receive(deadline)
            if "question" in message:
                row.record(message["question"], points[message["question"]["qid"]])
            else:
                row.errors[:0] = message["done"]
                return bool(message.get("restart"))

    def close(self) -> None:
        """Close the channel (the worker exits, and its sandbox with it); kill it if it hangs."""
        close_pipes(self.popen)
        try:
            self.popen.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.popen.kill()
            self.popen.wait()


class Pool:
    """`config.jobs` threads, each driving one worker process through a shared queue."""

    def __init__(self, source: ExerciseSource, config: GradeConfig) -> None:
        self.source, self.config = source, config
        tests = "\n".join(source.notebook.cells[q.tests_cell].source for q in source.questions)
        probes = len(PROBE.findall(tests)) + len(source.questions)
        self.limit = MAX_STARTS * (config.timeout + 180) + (config.check_timeout + 5) * probes
        self.limits = Limits(memory=config.memory, cpu=int(self.limit))

    def run(self, jobs: list[tuple[Row, list[tuple[int, str]]]]) -> None:
        todo: queue.Queue = queue.Queue()
        for job in jobs:
            todo.put(job)
        threads = [threading.Thread(target=self._slot, args=(todo,), daemon=True)
                   for _ in range(max(1, min(self.config.jobs, len(jobs))))]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()

    def _slot(self, todo: queue.Queue) -> None:
        """Grade jobs until none is left; a lost worker costs its row and is replaced."""
        settings = Settings(self.config.timeout, self.config.check_timeout, self.limits,
                            self.config.sandbox)
        worker = None
        while True:
            try:
                row, cells = todo.get_nowait()
            except queue.Empty:
                break
            try:
                worker = worker or Worker(self.source, settings)
                if worker.grade(cells, row, self.source, self.limit):
                    worker.close()
                    worker = None
            except WorkerLost as exc:
                worker = None
                row.errors.append(f"grading stopped ({exc}): graded what finished before")
            except Exception as exc:  # noqa: BLE001 - a grader bug costs this row only
                row.errors.append(f"grader error: {one_line(exc)}")
        if worker is not None:
            worker.close()


def write_csv(source: ExerciseSource, rows: list[Row], out: Path) -> None:
    """One row per submission: submission, q1…qN, total, max, error."""
    possible = sum(q.points for q in source.questions)
    columns = ["submission", *[q.qid for q in source.questions], "total", "max", "error"]
    with open(out, "w", newline="", encoding="utf-8") as f:
        writer = csv.DictWriter(f, fieldnames=columns)
        writer.writeheader()
        writer.writerows(row.as_dict(possible) for row in rows)
