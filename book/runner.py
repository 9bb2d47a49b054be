"""Inside the sandbox: run one submission's cells, then answer the grader's calls of its functions.

`python -m book.runner`, started by `book.sandbox`. It speaks `book.wire` frames on the stdin and
stdout it was started with, then points file descriptors 0-2 at /dev/null, so nothing the
notebook prints reaches the grader. It answers only in plain data. The grader trusts nothing
here: this process runs the student's code, which may rewrite any of it, and the worst it can
do is answer a call with a value — what the function could have returned anyway.
"""

from __future__ import annotations

import contextlib
import io
import os
import pickle
import signal
from collections import OrderedDict
from collections.abc import Iterator
from typing import Any

from book import wire

KEPT_GRAPHS = 8  # autograd graphs kept for the grader's backward passes, most recent calls


class Unpickler(pickle.Unpickler):
    """The grader's pickles: callables of its checks become callbacks, names become functions."""

    def __init__(self, body: bytes, runner: Runner) -> None:
        super().__init__(io.BytesIO(body))
        self.runner = runner

    def persistent_load(self, pid: Any) -> Any:
        kind, *rest = pid
        if kind == "callback":
            return Callback(self.runner, *rest)
        return self.runner.shell.user_ns.get(rest[0])  # "function": one of the notebook's


class Callback:
    """A function of the grader's checks handed to the student's code: calling it asks the
    grader to run it (with plain-data arguments) and returns its answer."""

    def __init__(self, runner: Runner, call: int, index: int) -> None:
        self.runner, self.call, self.index = runner, call, index

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        reply = self.runner.request({"op": "callback", "call": self.call, "target": self.index,
                                     "args": wire.to_plain([list(args), kwargs])})
        if reply["op"] == "raise":
            raise _builtin(reply["types"])(reply["message"])
        return reply["value"]


class Runner:
    """Runs cells in an IPython shell and serves requests until the grader says goodbye."""

    def __init__(self, fd_in: int, fd_out: int) -> None:
        from IPython.core.interactiveshell import InteractiveShell
        from traitlets.config import Config

        config = Config()
        config.HistoryManager.enabled = False
        self.shell = InteractiveShell.instance(config=config)
        self.fd_in, self.fd_out, self.ids = fd_in, fd_out, 0
        self.graphs: OrderedDict[int, tuple[list, list]] = OrderedDict()
        self.in_student_code = False
        signal.signal(signal.SIGINT, self.on_interrupt)

    def on_interrupt(self, signum: int, frame: Any) -> None:
        """The grader's time limit: stop the student's code, never the runner's own."""
        if self.in_student_code:
            raise KeyboardInterrupt

    @contextlib.contextmanager
    def student_code(self) -> Iterator[None]:
        self.in_student_code = True
        try:
            yield
        finally:
            self.in_student_code = False

    def send(self, message: dict) -> None:
        wire.write_frame(self.fd_out, wire.dumps_plain(message))

    def receive(self) -> dict:
        return Unpickler(wire.read_frame(self.fd_in), self).load()

    def serve(self) -> None:
        """Answer requests until "bye" (or until the grader closes the channel)."""
        while True:
            try:
                message = self.receive()
            except (EOFError, KeyboardInterrupt):
                return
            if message["op"] == "bye":
                return
            self.send(self.handle(message))

    def request(self, message: dict) -> dict:
        """Send a callback request; serve the grader's nested requests until its reply."""
        self.ids += 1
        self.send({**message, "id": self.ids})
        while True:
            reply = self.receive()
            if reply.get("re") == self.ids:
                return reply
            self.send(self.handle(reply))

    def handle(self, message: dict) -> dict:
        """The reply to one request of the grader."""
        handler = {"cell": self.run_cell, "names": self.names, "call": self.call,
                   "vjp": self.vjp}[message["op"]]
        try:
            reply = handler(message)
        except BaseException as exc:  # noqa: BLE001 - the student's code may raise anything
            reply = {"op": "raise", "types": _builtin_names(exc), "message": _one_line(exc)}
        return {**reply, "re": message["id"]}

    def run_cell(self, message: dict) -> dict:
        """Run one cell; report its error (or the interrupt) in one line."""
        with self.student_code():
            result = self.shell.run_cell(message["code"], store_history=False)
        error = result.error_before_exec or result.error_in_exec
        return {"op": "done", "interrupted": isinstance(error, KeyboardInterrupt),
                "error": None if error is None else _one_line(error)}

    def names(self, message: dict) -> dict:
        """Which of the asked names are functions (callables) in the notebook now."""
        return {"op": "names",
                "callable": [n for n in message["names"] if callable(self.shell.user_ns.get(n))]}

    def call(self, message: dict) -> dict:
        """Call a function of the notebook by name on the grader's arguments."""
        from book import exercises

        fn = self.shell.user_ns.get(message["name"])
        args, kwargs = message["args"], message["kwargs"]
        _set_rng(message["rng"])
        before = _mutable_args(args, kwargs)
        try:
            with self.student_code():
                value = fn(*args, **kwargs)
        except BaseException as exc:  # noqa: BLE001
            return {"op": "raise", "types": _builtin_names(exc),
                    "message": exercises._explain(exc, fn, None)}
        outputs: list = []
        plain = wire.to_plain(value, outputs)
        leaves = wire.grad_leaves([args, kwargs])
        if outputs and leaves:
            self.graphs[message["id"]] = (outputs, leaves)
            while len(self.graphs) > KEPT_GRAPHS:
                self.graphs.popitem(last=False)
        changed = [[key, after] for key, after in _mutable_args(args, kwargs).items()
                   if after != before.get(key)]
        return {"op": "return", "value": plain, "mutated": changed,
                "graph": bool(outputs and leaves)}

    def vjp(self, message: dict) -> dict:
        """Gradients of an earlier call's outputs with respect to its arguments' leaves."""
        import torch

        outputs, leaves = self.graphs[message["call"]]
        with self.student_code():
            grads = torch.autograd.grad(outputs, leaves, message["grads"], allow_unused=True,
                                        retain_graph=True)
        return {"op": "return", "value": wire.to_plain(list(grads))}


def _mutable_args(args: tuple, kwargs: dict) -> dict[Any, Any]:
    """The plain form of each argument the function could change in place (dicts, lists,
    tensors, modules' state), by position or keyword."""
    import torch

    out = {}
    for key, value in [*enumerate(args), *kwargs.items()]:
        if isinstance(value, torch.nn.Module):
            value = value.state_dict()
        if isinstance(value, (dict, list)) or torch.is_tensor(value):
            with contextlib.suppress(wire.NotPlain):
                out[key] = wire.to_plain(value)
    return out


def _set_rng(states: tuple) -> None:
    """Start from the random state the check had when it called the function."""
    import random

    import numpy as np
    import torch

    torch_state, numpy_state, python_state = states
    torch.set_rng_state(torch_state)
    np.random.set_state(numpy_state)
    random.setstate(python_state)


def _builtin_names(exc: BaseException) -> list[str]:
    """The built-in exception classes `exc` is an instance of, most specific first."""
    return [c.__name__ for c in type(exc).__mro__ if c.__module__ == "builtins"]


def _builtin(names: list[str]) -> type[Exception]:
    """The first built-in Exception class among `names` (RuntimeError if none)."""
    import builtins

    for name in names:
        cls = getattr(builtins, str(name), None)
        if isinstance(cls, type) and issubclass(cls, Exception):
            return cls
    return RuntimeError


def _one_line(exc: BaseException) -> str:
    text = " ".join(f"{type(exc).__name__}: {exc}".split()).rstrip(": ")
    return text if len(text) <= 200 else text[:197] + "..."


def main() -> None:
    """Take the channel off fds 0 and 1, silence 0-2, serve."""
    fd_in, fd_out = os.dup(0), os.dup(1)
    null = os.open(os.devnull, os.O_RDWR)
    for fd in (0, 1, 2):
        os.dup2(null, fd)
    Runner(fd_in, fd_out).serve()


if __name__ == "__main__":
    main()
