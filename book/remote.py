"""The grader's end of a sandboxed runner: requests and replies, callbacks, remote autograd.

The checks of a chapter run here, in the grader's own (trusted) process, exactly as they run in
a learner's notebook, but the learner's function they receive is a `Remote`: calling it sends
the arguments into the sandbox and rebuilds the plain-data answer. Functions of the checks that
the arguments contain stay here as callbacks, and a tensor answer that depends on an argument
that requires grad comes back wired into autograd, its backward pass computed in the sandbox.
"""

from __future__ import annotations

import io
import itertools
import os
import random
import sys
import time
import types
from collections import OrderedDict
from typing import Any

import cloudpickle
import numpy as np
import torch

from book import wire
from book.sandbox import PACKAGE, Process

GRACE_S = 3.0  # how long an interrupted runner has to answer before it is killed
KEPT_CALLS = 64  # callback tables kept for the most recent calls


class RunnerGone(Exception):
    """The sandboxed process died, or broke the protocol, and was stopped."""

    @property
    def learner_message(self) -> str:  # what a check that met it reports
        return f"the notebook's process stopped ({self})"


class Pickler(cloudpickle.Pickler):
    """Pickles the checks' arguments: functions of the checks become callbacks, the learner's
    functions become their names, tensors travel detached (keeping `requires_grad`)."""

    def __init__(self, file: io.BytesIO, call: int, callbacks: list) -> None:
        super().__init__(file)
        self.call, self.callbacks = call, callbacks

    def persistent_id(self, obj: Any) -> Any:
        if isinstance(obj, Remote):
            return ("function", obj.__name__)
        if _stays_here(obj):
            self.callbacks.append(obj)
            return ("callback", self.call, len(self.callbacks) - 1)
        return None

    def reducer_override(self, obj: Any) -> Any:
        if torch.is_tensor(obj) and obj.grad_fn is not None:
            return _leaf, (obj.detach(), True)
        if isinstance(obj, torch.Generator):  # a copy in its current state
            return _generator, (obj.get_state(), str(obj.device))
        return super().reducer_override(obj)


def _leaf(tensor: torch.Tensor, requires_grad: bool) -> torch.Tensor:
    return tensor.requires_grad_(requires_grad)


def _generator(state: torch.Tensor, device: str) -> torch.Generator:
    generator = torch.Generator(device)
    generator.set_state(state)
    return generator


def _stays_here(obj: Any) -> bool:
    """True for a function of the checks (a lambda, a helper, a bound method) handed to the
    learner's code: it runs here when called. Functions of torch, numpy or math travel by
    name, and methods inside a class of the checks travel with their class (cloudpickle)."""
    if isinstance(obj, types.MethodType):
        return not _importable(obj.__func__)
    if not isinstance(obj, types.FunctionType) or _importable(obj):
        return False
    parts = obj.__qualname__.split(".")
    return len(parts) == 1 or parts[-2] == "<locals>"


def _importable(fn: Any) -> bool:
    """True for a function the sandbox imports by name: one of a module of the Python
    environment or of the `book` package (the sandbox sees both), not of the checks."""
    module = sys.modules.get(getattr(fn, "__module__", None) or "")
    path = str(getattr(module, "__file__", None) or "")
    roots = tuple(os.path.join(p, "") for p in (sys.prefix, sys.base_prefix, str(PACKAGE)))
    return "<" not in fn.__qualname__ and bool(path) and path.startswith(roots)


class Link:
    """Framed requests to one runner, with the callbacks it makes while answering."""

    def __init__(self, process: Process) -> None:
        self.process = process
        self.ids = itertools.count(1)
        self.callbacks: OrderedDict[int, list] = OrderedDict()

    def send(self, message: dict, callbacks: list | None = None) -> int:
        """Pickle and send a request (or a reply, which carries "re"); return its id."""
        number = message.setdefault("id", next(self.ids))
        buffer = io.BytesIO()
        table = self.callbacks.setdefault(number, []) if callbacks is None else callbacks
        Pickler(buffer, number, table).dump(message)
        while len(self.callbacks) > KEPT_CALLS:
            self.callbacks.popitem(last=False)
        wire.write_frame(self.process.fd_in, buffer.getvalue())
        return number

    def receive(self, timeout: float | None) -> dict:
        message = wire.loads_plain(wire.read_frame(self.process.fd_out, timeout))
        if not (isinstance(message, dict) and isinstance(message.get("op"), str)):
            raise wire.WireError("a message without an op")
        return message

    def request(self, message: dict, timeout: float | None = None) -> dict:
        """Send `message`, answer callbacks, return the reply. On any exception (a check's
        time limit included) the runner is interrupted, or stopped, before it propagates."""
        number = self.send(message)
        deadline = None if timeout is None else time.monotonic() + timeout
        try:
            while True:
                wait = None if deadline is None else max(0.0, deadline - time.monotonic())
                reply = self.receive(wait)
                if reply.get("re") == number:
                    return reply
                self.answer_callback(reply)
        except BaseException:
            self.abandon(number)
            raise

    def answer_callback(self, message: dict) -> None:
        """Run a function of the checks on the arguments the student's code passed it."""
        from book.exercises import CheckTimeout

        if message["op"] != "callback":
            raise wire.WireError(f"an unexpected {message['op'][:20]!r} message")
        try:
            target = self.callbacks[message["call"]][message["target"]]
            args, kwargs = wire.from_plain(message["args"])
        except (KeyError, IndexError, TypeError, ValueError) as exc:
            raise wire.WireError("a malformed callback") from exc
        reply = {"op": "return", "re": message["id"]}
        try:
            reply["value"] = target(*args, **kwargs)
        except CheckTimeout:
            raise
        except Exception as exc:  # noqa: BLE001 - the checks' function failed on those arguments
            reply = {"op": "raise", "re": message["id"], "message": str(exc),
                     "types": [c.__name__ for c in type(exc).__mro__]}
        self.send({**reply, "id": -1}, self.callbacks.get(message["call"], []))

    def abandon(self, number: int) -> None:
        """Interrupt the runner and wait (briefly) for its reply to `number`; else stop it."""
        if not self.process.alive:
            return
        self.process.interrupt()
        deadline = time.monotonic() + GRACE_S
        try:
            while True:
                reply = self.receive(max(0.0, deadline - time.monotonic()))
                if reply.get("re") == number:
                    return
                if reply.get("op") == "callback":
                    self.send({"op": "raise", "re": reply["id"], "id": -1,
                               "types": ["RuntimeError"], "message": "the check was stopped"})
        except (TimeoutError, EOFError, OSError, wire.WireError, KeyError, TypeError):
            self.process.kill()


class Remote:
    """A learner's function as the checks see it: each call runs in the sandbox, by name."""

    rng_neutral = True  # the check's random state goes with each call and never comes back

    def __init__(self, submission: Any, name: str) -> None:
        self.submission = submission
        self.__name__ = self.__qualname__ = name

    def __repr__(self) -> str:
        return f"<function {self.__name__} (in the sandbox)>"

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return self.submission.call(self.__name__, args, kwargs)


def call(link: Link, name: str, args: tuple, kwargs: dict) -> Any:
    """Call the runner's function `name`; its answer, wired into autograd if it depends on
    arguments that require grad. Raises what the function raised (as a built-in class)."""
    rng = (torch.get_rng_state(), np.random.get_state(), random.getstate())
    reply = link.request({"op": "call", "name": name, "args": args, "kwargs": kwargs, "rng": rng})
    if reply["op"] == "raise":
        raise learner_error(reply)
    if reply["op"] != "return":
        raise wire.WireError(f"an unexpected {reply['op'][:20]!r} reply")
    outputs: list = []
    value = wire.from_plain(reply.get("value"), outputs)
    _apply_mutations(args, kwargs, reply.get("mutated", []))
    leaves = wire.grad_leaves([args, kwargs])
    if reply.get("graph") and outputs and leaves:
        value = _wire_autograd(link, reply["re"], value, outputs, leaves)
    return value


def learner_error(reply: dict) -> Exception:
    """The exception a learner's function raised, rebuilt as the nearest built-in class."""
    import builtins

    message = str(reply.get("message", ""))[:500]
    for name in reply.get("types", []):
        cls = getattr(builtins, str(name), None)
        if isinstance(cls, type) and issubclass(cls, Exception):
            try:
                exc = cls(message)
            except TypeError:  # a class whose constructor needs more
                continue
            exc.learner_message = message
            return exc
    exc = RuntimeError(message)
    exc.learner_message = message
    return exc


def _apply_mutations(args: tuple, kwargs: dict, mutated: Any) -> None:
    """Give back, in place, what the function changed in its dict, list, tensor or module
    arguments."""
    try:
        for key, plain in mutated:
            _apply_mutation(args, kwargs, key, plain)
    except (KeyError, IndexError, TypeError, ValueError, RuntimeError) as exc:
        raise wire.WireError(f"a malformed change of an argument ({type(exc).__name__})") from None


def _apply_mutation(args: tuple, kwargs: dict, key: Any, plain: Any) -> None:
    target = args[key] if isinstance(key, int) and not isinstance(key, bool) else kwargs[key]
    value = wire.from_plain(plain)
    if isinstance(target, torch.nn.Module):
        target.load_state_dict(value)
    elif isinstance(target, dict) and isinstance(value, dict):
        target.clear()
        target.update(value)
    elif isinstance(target, list) and isinstance(value, list):
        target[:] = value
    elif torch.is_tensor(target) and torch.is_tensor(value):
        with torch.no_grad():
            target.copy_(value.reshape(target.shape))
    else:
        raise TypeError("not the argument's type")


class _RemoteBackward(torch.autograd.Function):
    """Outputs computed in the sandbox; their backward pass asks the sandbox for the VJP."""

    @staticmethod
    def forward(ctx: Any, link: Link, call: int, n_out: int, *inputs: torch.Tensor) -> Any:
        ctx.link, ctx.call, ctx.n_in = link, call, len(inputs) - n_out
        return tuple(t.clone() for t in inputs[ctx.n_in:])

    @staticmethod
    def backward(ctx: Any, *grads: torch.Tensor) -> Any:
        reply = ctx.link.request({"op": "vjp", "call": ctx.call, "grads": list(grads)})
        if reply["op"] != "return":
            raise learner_error(reply)
        leaf_grads = wire.from_plain(reply["value"])
        if not (isinstance(leaf_grads, list) and len(leaf_grads) == ctx.n_in):
            raise wire.WireError("a malformed gradient")
        return (None, None, None, *leaf_grads, *[None] * (len(grads)))


def _wire_autograd(link: Link, call: int, value: Any, outputs: list, leaves: list) -> Any:
    """`value` with each differentiable output replaced by one connected to `leaves`."""
    wired = _RemoteBackward.apply(link, call, len(outputs), *leaves, *outputs)
    swap = {id(old): new for old, new in zip(outputs, wired, strict=True)}
    return _replace(value, swap)


def _replace(value: Any, swap: dict[int, torch.Tensor]) -> Any:
    if id(value) in swap:
        return swap[id(value)]
    if isinstance(value, (list, tuple)):
        return type(value)(_replace(v, swap) for v in value)
    if isinstance(value, dict):
        return {k: _replace(v, swap) for k, v in value.items()}
    return value
