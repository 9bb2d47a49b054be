"""The grader's parts: the plain-data wire, a learner's function called across the sandbox
(callbacks, autograd, changed arguments, errors, random state, time limits), the feedback
files, and the learner's notebook (checks cells folded, stubs within 88 columns)."""

from __future__ import annotations

import io
import math
import os
import pickle
import random
import struct
import subprocess
import sys
from pathlib import Path

import nbformat
import numpy as np
import pytest
import torch

from book import exercises as ex
from book import wire
from book.assign import CODE_WIDTH, cell_role, parse
from book.checker import Settings, Submission
from book.feedback import file_name, markdown
from book.grading import Row
from book.remote import Pickler, Remote
from tests.system import ensure_tool

ROOT = Path(__file__).resolve().parents[1]
CHAPTERS = sorted(p.stem for p in (ROOT / "solutions").glob("*.md"))


# --- the wire -----------------------------------------------------------------------------

@pytest.mark.parametrize("value", [
    0, -3, 2**70, 0.1, float("nan"), float("-inf"), 1 + 2j, "s", None, True, [1, (2, "x")],
    {"a": 1}, {"$a": 1, 2: 3, (4, 5): 6}, {1, 2}, frozenset({3}), torch.float64,
    np.arange(6, dtype=np.int16).reshape(2, 3), np.float32(1.5), torch.Size([2, 3])])
def test_plain_data_round_trips(value):
    back = wire.from_plain(wire.loads_plain(wire.dumps_plain(wire.to_plain(value))))
    if isinstance(value, np.ndarray):
        assert back.dtype == value.dtype and np.array_equal(back, value)
    elif isinstance(value, float) and math.isnan(value):
        assert math.isnan(back)
    else:
        assert back == (tuple(value) if isinstance(value, torch.Size) else value)


@pytest.mark.parametrize("tensor", [torch.arange(6.0).reshape(2, 3), torch.tensor([True, False]),
                                    torch.zeros(0, 4), torch.ones(2, dtype=torch.bfloat16),
                                    torch.tensor(3, dtype=torch.int64), torch.randn(3).t()])
def test_tensors_round_trip_with_dtype_and_shape(tensor):
    back = wire.from_plain(wire.loads_plain(wire.dumps_plain(wire.to_plain(tensor))))
    assert back.dtype == tensor.dtype and back.shape == tensor.shape and torch.equal(back, tensor)


@pytest.mark.parametrize("frame", [
    b'{"$tensor": ["float32", [1000000000], ""]}', b'{"$tensor": ["object", [1], "AA=="]}',
    b'{"$array": ["O", [1], "AAAAAAAAAAA="]}', b'{"$evil": "os.system"}', b'{"$dict": [[[1], 2]]}',
    b'{"$tensor": ["float32", [-1], ""]}', b'{"$float": "1e999"}', b"[" * 100_000, b"\xff",
    b'{"$complex": ["a", 1]}', b'{"$tensor": ["float32", [2], "not base64!"]}'])
def test_malformed_plain_data_is_an_error_never_an_object(frame):
    with pytest.raises(wire.WireError):
        wire.from_plain(wire.loads_plain(frame))


@pytest.mark.parametrize("value", [(x for x in []), torch.nn.Linear(1, 1), object(), print,
                                   np.array([object()]), torch.empty(2, device="meta")])
def test_values_that_are_not_plain_data_are_refused(value):
    with pytest.raises(wire.NotPlain):
        wire.to_plain(value)


def test_frames_are_bounded_and_time_out():
    read, write = os.pipe()
    try:
        os.write(write, struct.pack(">I", wire.MAX_FRAME + 1))
        with pytest.raises(wire.WireError):
            wire.read_frame(read, timeout=1)
        with pytest.raises(TimeoutError):
            wire.read_frame(read, timeout=0.05)
        wire.write_frame(write, b"hello")
        assert wire.read_frame(read, timeout=1) == b"hello"
    finally:
        os.close(write)
    with pytest.raises(EOFError):
        wire.read_frame(read, timeout=1)
    os.close(read)


def checks_module() -> torch.nn.Module:
    """A module of a class defined as a tests cell defines it (in __main__)."""
    class Net(torch.nn.Module):
        def forward(self, x):
            return x + 1

    Net.__module__ = "__main__"
    return Net()


def helper(x):
    return x


def test_the_graders_pickles_keep_the_checks_functions_home_and_send_the_rest():
    callbacks: list = []
    buffer = io.BytesIO()
    x = torch.ones(2, requires_grad=True) * 2
    message = {"fns": [lambda v: v, helper, torch.tanh, math.exp, ex.assert_near], "x": x,
               "net": checks_module(), "generator": torch.Generator().manual_seed(1)}
    Pickler(buffer, 7, callbacks).dump(message)
    assert callbacks == message["fns"][:2]

    class Loader(pickle.Unpickler):
        def persistent_load(self, pid):
            return pid

    back = Loader(io.BytesIO(buffer.getvalue())).load()
    assert back["fns"][:2] == [("callback", 7, 0), ("callback", 7, 1)]
    assert back["fns"][2:] == message["fns"][2:]
    assert back["x"].requires_grad and back["x"].grad_fn is None and torch.equal(back["x"], x)
    assert torch.equal(back["net"](torch.zeros(1)), torch.ones(1))
    elsewhere = subprocess.run(  # a process that never saw the class rebuilds it from its code
        [sys.executable, "-c", "import io, pickle, sys\n"
         "class L(pickle.Unpickler):\n    persistent_load = staticmethod(lambda pid: pid)\n"
         "print(L(io.BytesIO(sys.stdin.buffer.read())).load()['net'](1))"],
        input=buffer.getvalue(), capture_output=True)
    assert elsewhere.stdout.strip() == b"2", elsewhere.stderr
    generators = back["generator"], message["generator"]
    assert torch.rand(1, generator=generators[0]) == torch.rand(1, generator=generators[1])


# --- a learner's function across the sandbox ----------------------------------------------

FUNCTIONS = '''\
import random
import numpy as np
def apply(f, x):
    return f(x) + 1
def square(x):
    return x ** 2
def forward(layer, x):
    return layer(x)
def bump(state, t):
    state["n"] = state.get("n", 0) + 1
    t.add_(1)
def stub():
    raise NotImplementedError("t1: write stub()")
def oops(x):
    y = x * 2
    return y / 0
def gen():
    yield 1
def draw():
    return torch.rand(3), float(np.random.rand()), random.random()
def spin():
    while True:
        pass
'''


@pytest.fixture(scope="module")
def sandboxed():
    """One sandboxed runner holding FUNCTIONS; {name: Remote}."""
    ensure_tool("bwrap")
    submission = Submission("import torch", [(1, FUNCTIONS)], Settings(timeout=60))
    submission.start()
    names = ["apply", "square", "forward", "bump", "stub", "oops", "gen", "draw", "spin"]
    assert submission.names(names) == set(names)
    yield {name: Remote(submission, name) for name in names}
    submission.close()


def test_functions_of_the_checks_run_in_the_grader_as_callbacks(sandboxed):
    calls = []
    assert sandboxed["apply"](lambda v: calls.append(v) or v * 10, 2.0) == 21.0
    assert calls == [2.0]
    with pytest.raises(ZeroDivisionError):
        sandboxed["apply"](lambda v: v / 0, 1.0)


def test_autograd_reaches_the_checks_inputs_and_module_parameters(sandboxed):
    x = torch.randn(3, dtype=torch.float64, requires_grad=True)
    sandboxed["square"](x + 1).sum().backward()
    assert torch.allclose(x.grad, 2 * (x.detach() + 1))
    layer = torch.nn.Linear(3, 2).double()
    out = sandboxed["forward"](layer, x.detach())
    assert torch.allclose(out, layer(x.detach()))
    out.sum().backward()
    assert torch.allclose(layer.weight.grad, x.detach().expand(2, 3))


def test_arguments_changed_in_place_come_back(sandboxed):
    state, t = {}, torch.zeros(2)
    assert sandboxed["bump"](state, t) is None
    assert state == {"n": 1} and torch.equal(t, torch.ones(2))


def test_errors_come_back_as_their_builtin_class_with_the_learners_line(sandboxed):
    with pytest.raises(NotImplementedError):
        sandboxed["stub"]()
    with pytest.raises(ZeroDivisionError) as raised:
        sandboxed["oops"](1.0)
    assert raised.value.learner_message == ("oops raised ZeroDivisionError: float division by "
                                            "zero (line 16: return y / 0)")
    with pytest.raises(TypeError, match="a generator is not plain data"):
        sandboxed["gen"]()


def test_the_function_sees_the_checks_random_state_and_leaves_it_alone(sandboxed):
    def seeded() -> None:
        torch.manual_seed(0), np.random.seed(0), random.seed(0)

    def local_draw():
        return torch.rand(3), float(np.random.rand()), random.random()

    seeded()
    expected = ex._rng_neutral(local_draw)()
    after = torch.rand(1)
    seeded()
    got = sandboxed["draw"]()
    assert torch.equal(got[0], expected[0]) and got[1:] == expected[1:]
    assert torch.equal(torch.rand(1), after)


def test_a_check_time_limit_interrupts_the_function_and_the_sandbox_lives_on(sandboxed):
    with pytest.raises(ex.CheckTimeout), ex._time_limit(1):
        sandboxed["spin"]()
    assert sandboxed["square"](3.0) == 9.0


def test_in_process_the_learners_draws_never_move_the_checks_stream():
    q = ex.Question("t9", "f", points=1)
    seen = []

    @q.check("draws after calling f")
    def _(f):
        f()
        seen.append(torch.rand(1).item())

    q.evaluate(lambda: torch.rand(1000))
    q.evaluate(lambda: None)
    assert seen[0] == seen[1]


# --- feedback files -----------------------------------------------------------------------

def test_feedback_lists_public_checks_hints_and_only_a_count_of_hidden_ones():
    source = parse(ROOT / "solutions" / "optimizers.md")
    row = Row("alice/x.ipynb", {q.qid: 0.0 for q in source.questions}, ["q3: not attempted"])
    row.scores["q1"] = 1.0
    row.results["q1"] = {"qid": "q1", "function": "ewma", "possible": 2, "earned": 1.0,
                         "status": "attempted", "hints": ["Divide by 1 - β**t."], "outcomes": [
                             {"description": "shape", "passed": True, "message": "",
                              "hidden": False},
                             {"description": "", "passed": False, "message": "",
                              "hidden": True}]}
    row.results["q2"] = {"qid": "q2", "function": "adam_step", "status": "missing"}
    text = markdown(source, row)
    possible = sum(q.points for q in source.questions)
    assert "# Feedback: alice/x.ipynb" in text and f"**Total: 1 / {possible} points.**" in text
    assert "* q3: not attempted" in text and "## q1 · ewma — 1/2 points" in text
    assert "* ✓ shape\n* hidden checks: 0 of 1 passed\n* hint: Divide by 1 - β**t." in text
    assert "There is no function called `adam_step`" in text


def test_feedback_file_names_are_safe_and_unique():
    taken: set[str] = set()
    names = [file_name(label, taken) for label in
             ["a/b.ipynb", "a__b.ipynb", "../../etc/passwd", "x y.ipynb", ".ipynb"]]
    assert names == ["a__b.md", "a__b-2.md", "etc__passwd.md", "x_y.md", "submission.md"]


# --- the learner's notebook ----------------------------------------------------------------

@pytest.mark.parametrize("chapter", CHAPTERS)
def test_checks_cells_open_folded_and_stub_lines_fit_88_columns(chapter):
    nb = nbformat.read(ROOT / "exercises" / f"{chapter}.ipynb", as_version=4)
    for cell in nb.cells:
        folded = cell.get("metadata", {}).get("jupyter", {}).get("source_hidden", False)
        assert folded == (cell_role(cell) == "tests"), cell.id
        if cell_role(cell) == "solution":
            lines = cell.source.splitlines()
            start = next(i for i, line in enumerate(lines) if "raise NotImplementedError(" in line)
            assert all(len(line) <= CODE_WIDTH for line in lines[start:]), cell.source
