"""A grading worker: the chapter's checks, loaded once, scoring one submission at a time.

`python -m book.checker` is started by `book.grading`, one per parallel job. It runs no student
code: each submission's cells run in a sandboxed `book.runner` (see `book.sandbox`), and the
checks here call its functions through `book.remote`. It reads jobs and writes results as
pickled `book.wire` frames (both ends are the grader's own code).
"""

from __future__ import annotations

import contextlib
import os
import pickle
import signal
import sys
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from book import exercises, wire
from book.assign import BEGIN_HIDDEN, END_HIDDEN, ExerciseSource, parse
from book.remote import Link, Remote, RunnerGone, call
from book.sandbox import Limits, Process

MAX_STARTS = 6  # runners started for one submission, at most
MAX_STOPS = 2  # a function whose calls stopped its runner this often is not called again


@dataclass
class Settings:
    """What a worker needs to know about every job."""

    timeout: float = 60.0  # seconds for a submission's cells, all together
    check_timeout: float = exercises.CHECK_TIME_LIMIT_S  # seconds for each check
    limits: Limits = field(default_factory=Limits)
    sandboxed: bool = True


class Chapter:
    """A chapter's questions with their checks, defined once by running its trusted cells."""

    def __init__(self, source: ExerciseSource) -> None:
        from IPython.core.interactiveshell import InteractiveShell
        from traitlets.config import Config

        config = Config()
        config.HistoryManager.enabled = False
        self.source = source
        self.shell = InteractiveShell.instance(config=config)
        self.setup = source.notebook.cells[source.cells_with("setup")[0]].source
        exercises.QUESTIONS.clear()
        self._run(self.setup, "the setup cell")
        for q in source.questions:
            self._run_tests(q.qid, source.notebook.cells[q.tests_cell].source)
        self.questions = [exercises.QUESTIONS[q.qid] for q in source.questions]
        self._warm_up()

    def _warm_up(self) -> None:
        """Run every check and mistake once on the reference solution, with no time limit:
        lazy imports (torch's sympy, dynamo...) happen now, not under a submission's time
        limit (which could leave a half-imported module behind), and a broken chapter shows."""
        for q in self.source.questions:
            solution = self.source.notebook.cells[q.solution_cell].source
            self._run(solution, f"the solution of {q.qid}")
        limit, exercises.CHECK_TIME_LIMIT_S = exercises.CHECK_TIME_LIMIT_S, 3600
        try:
            for q in self.questions:
                result = q.evaluate(self.shell.user_ns.get(q.function))
                if not result.full or result.hints:
                    raise RuntimeError(f"the solution of {q.qid} does not pass its own checks:\n"
                                       + result.report())
        finally:
            exercises.CHECK_TIME_LIMIT_S = limit

    def _run(self, code: str, what: str) -> None:
        result = self.shell.run_cell(code, store_history=False)
        error = result.error_before_exec or result.error_in_exec
        if error is not None:
            raise RuntimeError(f"{what} of solutions/{self.source.topic}.md raised "
                               f"{type(error).__name__}: {error}")

    def _run_tests(self, qid: str, code: str) -> None:
        """Run a tests cell (without its `check(...)` line); mark the checks it hides."""
        code = "\n".join(code.rstrip().splitlines()[:-1])
        before = {id(c) for q in exercises.QUESTIONS.values() for c in q.checks}
        self._run(code, f"the tests of {qid}")
        hidden = hidden_lines(self.shell.transform_cell(code))
        for q in exercises.QUESTIONS.values():
            for check in q.checks:
                if id(check) not in before:
                    check.hidden = check.run.__code__.co_firstlineno in hidden

    def grade(self, cells: list[tuple[int, str]], settings: Settings, report: Any) -> list[str]:
        """Score one submission's cells; `report(result)` after each question; its notes."""
        submission = Submission(self.setup, cells, settings)
        try:
            submission.start()
            present = submission.names([q.function for q in self.questions])
        except RunnerGone as exc:
            submission.close()
            submission.note(f"the sandbox stopped ({exc}): nothing could be graded")
            for q in self.questions:
                report(exercises.Result(q.qid, q.function, q.points, status="not graded"))
            return submission.notes
        try:
            for q in self.questions:
                fn = Remote(submission, q.function) if q.function in present else None
                self.shell.user_ns[q.function] = fn  # checks may call it by name, too
                report(q.evaluate(fn))
        finally:
            submission.close()
        return submission.notes


@contextlib.contextmanager
def _alarm_paused() -> Iterator[None]:
    """No SIGALRM (a check's time limit) inside the block; the rest of it resumes after."""
    remaining, interval = signal.setitimer(signal.ITIMER_REAL, 0)
    try:
        yield
    finally:
        if remaining:
            signal.setitimer(signal.ITIMER_REAL, remaining, interval)


def hidden_lines(code: str) -> set[int]:
    """1-based numbers of the lines between the hidden-tests markers."""
    inside, lines = False, set()
    for number, line in enumerate(code.splitlines(), start=1):
        if line.strip() in (BEGIN_HIDDEN, END_HIDDEN):
            inside = line.strip() == BEGIN_HIDDEN
        elif inside:
            lines.add(number)
    return lines


class Submission:
    """One submission's runner: its cells run under one time limit, then its functions are
    called by name. A runner that dies is restarted without the cell that killed it."""

    def __init__(self, setup: str, cells: list[tuple[int, str]], settings: Settings) -> None:
        self.setup, self.cells, self.settings = setup, cells, settings
        self.skip: set[int] = set()
        self.notes: list[str] = []
        self.link: Link | None = None
        self.starts = 0
        self.stops: Counter[str] = Counter()  # function -> calls of it that stopped the runner

    def note(self, text: str) -> None:
        if text not in self.notes:
            self.notes.append(text)

    @property
    def running(self) -> bool:
        return self.link is not None and self.link.process.alive

    def start(self) -> None:
        """(Re)start the runner and run the setup and the student's cells, outside any check's
        time limit (a restart can happen in the middle of a check)."""
        with _alarm_paused():
            while True:
                if self.starts >= MAX_STARTS:
                    raise RunnerGone(f"stopped {self.starts} times")
                self.starts += 1
                self.close()
                self.link = Link(Process(self.settings.limits, self.settings.sandboxed))
                try:
                    if self._run_cells():
                        return
                except BaseException:
                    self.close()
                    raise

    def _run_cells(self) -> bool:
        """Run the cells in order until the time limit; False when the runner died (retry)."""
        try:
            reply = self._request({"op": "cell", "code": self.setup}, 120 + self.settings.timeout)
        except TimeoutError:
            raise RunnerGone("the sandbox did not start in time") from None
        if reply.get("error"):
            self.note(f"the setup cell raised {str(reply['error'])[:200]}")
        deadline = time.monotonic() + self.settings.timeout
        todo = [(n, code) for n, code in self.cells if n not in self.skip]
        for i, (n, code) in enumerate(todo):
            try:
                reply = self._request({"op": "cell", "code": code},
                                      max(0.0, deadline - time.monotonic()))
            except TimeoutError:
                return self._timed_out(n, [m for m, _ in todo[i + 1:]])
            except RunnerGone:
                self.note(f"your code cell {n} stopped Python (os._exit, a crash, the memory or "
                          "CPU limit, or writing into the grader's channel): graded without it")
                self.skip.add(n)
                return False
            if reply.get("error"):
                self.note(f"your code cell {n} raised {str(reply['error'])[:200]}")
        return True

    def _timed_out(self, n: int, later: list[int]) -> bool:
        """The cells ran past the time limit in cell `n`; skip the rest, keep what ran."""
        limit = f"time limit of {self.settings.timeout:g} s reached in your code cell {n}"
        rest = (f"; cells {later[0]}–{later[-1]} not run" if len(later) > 1
                else f"; cell {later[0]} not run" if later else "")
        self.skip.update(later)
        if self.running:
            self.note(f"{limit} (interrupted{rest}): graded what ran before it")
            return True
        self.note(f"{limit}, which ignored the interrupt{rest}: graded without it")
        self.skip.add(n)
        return False

    def _request(self, message: dict, timeout: float | None = None) -> dict:
        """A request to the runner; RunnerGone if it died or broke the protocol."""
        if not self.running:
            raise RunnerGone("not running")
        try:
            return self.link.request(message, timeout)
        except TimeoutError:
            raise
        except (EOFError, OSError, wire.WireError, KeyError, TypeError, ValueError) as exc:
            self.link.process.kill()
            raise RunnerGone(f"no valid answer: {type(exc).__name__}") from None

    def names(self, names: list[str]) -> set[str]:
        """Which of `names` the notebook defines as functions."""
        reply = self._request({"op": "names", "names": names}, timeout=30)
        return {n for n in reply.get("callable", []) if n in names}

    def call(self, name: str, args: tuple, kwargs: dict) -> Any:
        """Call the notebook's function `name`, in a restarted runner if the last one stopped.
        A function that stopped its runner MAX_STOPS times is not called again."""
        if self.stops[name] >= MAX_STOPS:
            raise RunnerGone(f"{name} stopped it in {MAX_STOPS} earlier checks")
        if not self.running:
            self.start()
        try:
            return call(self.link, name, args, kwargs)
        except Exception as exc:
            if isinstance(exc, (EOFError, OSError, wire.WireError)) \
                    and not hasattr(exc, "learner_message"):
                self.link.process.kill()
                raise RunnerGone(f"no valid answer from {name}: {type(exc).__name__}") from None
            raise
        finally:
            if not self.running:
                self.stops[name] += 1
                self.note(f"the sandbox stopped during a call of {name} (os._exit, a crash, a "
                          "limit, a damaged answer, or a time limit it ignored) and was restarted;"
                          f" after {MAX_STOPS} such calls, {name}'s later checks fail")

    def close(self) -> None:
        if self.link is not None:
            self.link.process.stop()


def result_record(result: exercises.Result) -> dict:
    """A Result as plain data for the grader's process (no hidden check's description)."""
    return {"qid": result.qid, "function": result.function, "possible": result.possible,
            "earned": result.earned, "status": result.status, "hints": list(result.hints),
            "outcomes": [{"description": "" if o.hidden else o.description, "passed": o.passed,
                          "message": "" if o.hidden else o.message, "hidden": o.hidden}
                         for o in result.outcomes]}


def main() -> None:
    """Serve jobs. In: {"source", "settings"} once, then {"cells": [(n, code)...]} per job.
    Out: {"ready"} (or {"fatal"}), then per job {"question": record}... and {"done": notes}."""
    fd_in, fd_out = os.dup(0), os.dup(1)
    os.dup2(2, 1)  # what the checks print goes to stderr, never into the channel

    def send(message: dict) -> None:
        wire.write_frame(fd_out, pickle.dumps(message))

    start = pickle.loads(wire.read_frame(fd_in))
    settings = start["settings"]
    exercises.CHECK_TIME_LIMIT_S = settings.check_timeout
    try:
        chapter = Chapter(parse(Path(start["source"])))
    except Exception as exc:  # noqa: BLE001 - a broken chapter is every row's error
        send({"fatal": f"grader error: {type(exc).__name__}: {str(exc)[:200]}"})
        return
    send({"ready": True})
    while True:
        try:
            job = pickle.loads(wire.read_frame(fd_in))
        except EOFError:
            return
        modules = set(sys.modules)
        notes = _grade_job(chapter, job, settings, send)
        # a module first imported while grading (under a time limit) may be half-imported
        send({"done": notes, "restart": bool(set(sys.modules) - modules)})


def _grade_job(chapter: Chapter, job: dict, settings: Settings, send: Any) -> list[str]:
    """The notes of one job; its question records are sent as they come."""
    try:
        return chapter.grade(job["cells"], settings, lambda r: send({"question": result_record(r)}))
    except RunnerGone as exc:
        return [f"the sandbox stopped ({exc}): graded what ran"]
    except Exception as exc:  # noqa: BLE001 - a grader bug costs this row only
        return [f"grader error: {type(exc).__name__}: {str(exc)[:200]}"]


if __name__ == "__main__":
    main()
