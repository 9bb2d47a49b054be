"""Graded exercises in a notebook: declare questions, their checks and mistakes, run `check("q1")`.

Used by the tests cells of `solutions/<topic>.md` (format in `exercises/README.md`). The
learner's function is looked up by name each time a question is evaluated, so redefining it
and checking again works. The grader (`book.grading`) runs these same checks outside the
learner's process, on a stand-in that calls the function inside a sandbox.
"""

from __future__ import annotations

import contextlib
import functools
import inspect
import linecache
import os
import random
import signal
import threading
import traceback
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

CHECK_TIME_LIMIT_S = 10  # a live check slower than this is stopped: most likely an infinite loop


class CheckTimeout(Exception):
    """A check ran past CHECK_TIME_LIMIT_S."""


@dataclass
class Check:
    """One check: `run(fn)` raises when the learner's function `fn` is wrong."""

    description: str
    run: Callable[[Callable], Any]
    weight: float = 1.0
    hidden: bool = False  # between the hidden-tests markers: the grader's feedback names it not


@dataclass
class Mistake:
    """A common mistake: `symptom(fn)` is True when `fn` behaves like it; `plants` reproduce it."""

    hint: str
    symptom: Callable[[Callable], bool]
    plants: list[Callable] = field(default_factory=list)

    def planted(self, fn: Callable) -> Callable:
        """Register `fn` as an implementation that makes this mistake (hidden tests only)."""
        self.plants.append(fn)
        return fn


@dataclass
class Outcome:
    """How one check went: passed, or why not in one line."""

    description: str
    passed: bool
    message: str = ""
    hidden: bool = False


@dataclass
class Result:
    """A question's score for one function, with per-check outcomes and recognised hints."""

    qid: str
    function: str
    possible: float
    earned: float = 0.0
    status: str = "attempted"  # "attempted" | "not attempted" | "missing" | "not graded"
    outcomes: list[Outcome] = field(default_factory=list)
    hints: list[str] = field(default_factory=list)

    @property
    def full(self) -> bool:
        """True when every check passed."""
        return self.status == "attempted" and all(o.passed for o in self.outcomes)

    def report(self) -> str:
        """The text `check()` prints."""
        head = f"{self.qid} · {self.function}"
        score = f"{_num(self.earned)}/{_num(self.possible)} points"
        if self.status == "missing":
            return (f"{head} — {score}: there is no function called {self.function} here. "
                    f"Run the cell that defines it (and keep the name {self.function}).")
        if self.status == "not attempted":
            return (f"{head} — not attempted yet ({score}): write the body of "
                    f"{self.function}(), run its cell, then run this one again.")
        lines = [f"{head} — {score}"]
        lines += [f"  {'✓' if o.passed else '✗'} {o.description}"
                  + ("" if o.passed else f": {o.message}") for o in self.outcomes]
        lines += [f"  hint: {hint}" for hint in self.hints]
        return "\n".join(lines)


class Question:
    """A graded question: the name of the learner's function, its points, checks and mistakes."""

    def __init__(self, qid: str, function: str, points: float) -> None:
        self.qid, self.function, self.points = qid, function, points
        self.checks: list[Check] = []
        self.mistakes: list[Mistake] = []

    def check(self, description: str, *, weight: float = 1.0) -> Callable[[Callable], Check]:
        """Decorator: register `run(fn)` as a check that raises when `fn` is wrong."""
        def register(run: Callable) -> Check:
            self.checks.append(Check(description, run, weight))
            return self.checks[-1]
        return register

    def mistake(self, hint: str) -> Callable[[Callable], Mistake]:
        """Decorator: register `symptom(fn) -> bool` for a common mistake and its hint."""
        def register(symptom: Callable) -> Mistake:
            self.mistakes.append(Mistake(hint, symptom))
            return self.mistakes[-1]
        return register

    def evaluate(self, fn: Callable | None) -> Result:
        """Run every check (and mistake symptom) on `fn`; a missing `fn` scores 0."""
        result = Result(self.qid, self.function, self.points)
        if not callable(fn):
            result.status = "missing"
            return result
        result.outcomes = [_run_check(check, fn) for check in self.checks]
        if any(o.message == _NOT_ATTEMPTED for o in result.outcomes):
            result.status, result.outcomes = "not attempted", []
            return result
        total = sum(c.weight for c in self.checks) or 1.0
        outcomes = zip(self.checks, result.outcomes, strict=True)
        passed = sum(c.weight for c, o in outcomes if o.passed)
        result.earned = round(self.points * passed / total, 2)
        result.hints = [m.hint for m in self.mistakes if _shows(m, fn)]
        return result


# The questions declared in this process, by id; re-running a tests cell replaces its question.
QUESTIONS: dict[str, Question] = {}
_NOT_ATTEMPTED = "not attempted"


def question(qid: str, function: str, *, points: float) -> Question:
    """Declare question `qid`, answered by the notebook's function named `function`."""
    QUESTIONS[qid] = Question(qid, function, points)
    return QUESTIONS[qid]


def evaluate(qid: str, namespace: dict[str, Any]) -> Result:
    """Score question `qid` with the function of that name found in `namespace`."""
    q = QUESTIONS[qid]
    return q.evaluate(namespace.get(q.function))


def check(qid: str, namespace: dict[str, Any] | None = None) -> None:
    """Run the checks of question `qid` on the caller's function and print the report."""
    if qid not in QUESTIONS:
        print(f"{qid}: no such question here — run the cell above first.")
        return
    if namespace is None:
        namespace = inspect.currentframe().f_back.f_globals
    result = evaluate(qid, namespace)
    print(result.report())
    if os.environ.get("NBGRADER_EXECUTION") == "autograde" and not result.full:
        raise AssertionError(f"{qid}: {_num(result.earned)}/{_num(result.possible)} points")


def assert_near(actual: Any, expected: Any, *, rtol: float = 1e-6, atol: float = 1e-8,
                what: str = "output") -> None:
    """Raise AssertionError with one readable line unless `actual` ≈ `expected` (any shapes)."""
    want = _float64(expected)
    try:
        if actual is None:
            raise TypeError
        got = _float64(actual)
    except (TypeError, ValueError, RuntimeError):
        raise AssertionError(f"{what}: expected a number or tensor, got {actual!r:.80}") from None
    if got.shape != want.shape:
        raise AssertionError(f"{what}: expected shape {tuple(want.shape)}, got {tuple(got.shape)}")
    bad = ~torch.isclose(got, want, rtol=rtol, atol=atol, equal_nan=True)
    if bad.any():
        i = tuple(int(k) for k in bad.nonzero()[0])
        where = f" at index {i}" if i else ""
        delta = (got - want).abs().max().item()
        raise AssertionError(f"{what}{where}: expected {want[i].item():.8g}, got "
                             f"{got[i].item():.8g} (max |Δ| = {delta:.2g})")


def _float64(x: Any) -> torch.Tensor:
    """`x` (tensor, array, number or nested list) as a float64 tensor, without a float32 detour."""
    if torch.is_tensor(x):
        return x.detach().to("cpu", torch.float64)
    return torch.as_tensor(np.asarray(x, dtype=np.float64))


def _num(x: float) -> str:
    return f"{x:g}"


def _seed() -> None:
    random.seed(0)
    np.random.seed(0)
    torch.manual_seed(0)


@contextlib.contextmanager
def _time_limit(seconds: float) -> Iterator[None]:
    """Raise CheckTimeout after `seconds` (main thread on Unix only; elsewhere no limit)."""
    if threading.current_thread() is not threading.main_thread() or not hasattr(signal, "SIGALRM"):
        yield
        return

    def stop(signum: int, frame: Any) -> None:
        raise CheckTimeout(f"took longer than {seconds:g} s (an infinite loop?)")

    previous = signal.signal(signal.SIGALRM, stop)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def _run_check(check: Check, fn: Callable) -> Outcome:
    """Run one check; turn any failure into a one-line message."""
    _seed()
    try:
        with _time_limit(CHECK_TIME_LIMIT_S):
            check.run(_rng_neutral(fn))
    except NotImplementedError:
        return Outcome(check.description, False, _NOT_ATTEMPTED, check.hidden)
    except Exception as exc:  # noqa: BLE001 - any learner error becomes a message
        return Outcome(check.description, False, _explain(exc, fn, check.run), check.hidden)
    return Outcome(check.description, True, hidden=check.hidden)


def _shows(mistake: Mistake, fn: Callable) -> bool:
    """True when `fn` shows the mistake's symptom; a symptom that raises counts as absent."""
    _seed()
    try:
        with _time_limit(CHECK_TIME_LIMIT_S):
            return bool(mistake.symptom(_rng_neutral(fn)))
    except Exception:  # noqa: BLE001 - a crashing probe says nothing about the mistake
        return False


def _rng_neutral(fn: Callable) -> Callable:
    """`fn` seeing the check's random state, without moving it: the check's next random
    inputs never depend on what the learner's function drew (as when the grader runs it)."""
    if getattr(fn, "rng_neutral", False):
        return fn

    @functools.wraps(fn)
    def call(*args: Any, **kwargs: Any) -> Any:
        states = torch.get_rng_state(), np.random.get_state(), random.getstate()
        try:
            return fn(*args, **kwargs)
        finally:
            torch.set_rng_state(states[0])
            np.random.set_state(states[1])
            random.setstate(states[2])
    return call


def _explain(exc: BaseException, fn: Callable, check: Callable) -> str:
    """One line: the error, and the line of the learner's code that raised it if any."""
    if isinstance(getattr(exc, "learner_message", None), str):  # explained in the sandbox
        return exc.learner_message
    text = " ".join(str(exc).split())
    if len(text) > 160:
        text = text[:157] + "..."
    code = getattr(fn, "__code__", None)
    tests_file = getattr(getattr(check, "__code__", None), "co_filename", None)
    mine = [(frame, n) for frame, n in traceback.walk_tb(exc.__traceback__)
            if code is not None and (frame.f_code is code
                                     or frame.f_code.co_filename == code.co_filename != tests_file)]
    name = getattr(fn, "__name__", "your function")
    if isinstance(exc, AssertionError) and not mine:
        return text or "assertion failed"
    if isinstance(exc, CheckTimeout):
        return f"{name} {text}"
    if not mine:
        return f"{type(exc).__name__}: {text} (check what {name} returns)"
    frame, lineno = mine[-1]
    line = linecache.getline(frame.f_code.co_filename, lineno).strip()
    where = f"line {lineno}: {line}" if line else f"line {lineno}"
    return f"{name} raised {type(exc).__name__}: {text} ({where})"
