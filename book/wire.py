"""What crosses the sandbox boundary when a submission is graded, and how.

Messages are frames: a 4-byte big-endian length, then the body. The grader sends pickles (its
own, trusted data: the arguments its checks build). The sandboxed process answers only in
**plain data**, JSON with tagged tensors and arrays, which `loads_plain` rebuilds without
running any code: no pickle, no import, no attribute lookup on the sender's objects. Whatever
a submission writes on its channel can thus only ever be a value its function could have
returned.
"""

from __future__ import annotations

import base64
import json
import math
import os
import select
import struct
import time
from typing import Any

import numpy as np
import torch

MAX_FRAME = 64 * 2**20  # bytes; a bigger frame is an error, never an allocation
MAX_DEPTH = 64  # nesting of lists, tuples and dicts in plain data
HEADER = struct.Struct(">I")
DTYPES = {str(d).removeprefix("torch."): d for d in (
    torch.bool, torch.uint8, torch.int8, torch.int16, torch.int32, torch.int64, torch.float16,
    torch.bfloat16, torch.float32, torch.float64, torch.complex64, torch.complex128)}
ARRAY_KINDS = "biufc"  # numpy dtype kinds that are plain numbers (no objects, no records)


class WireError(Exception):
    """A damaged frame or a message that is not plain data."""


class NotPlain(TypeError):
    """A value that plain data cannot carry (an object, a generator, a module...)."""


# --- frames --------------------------------------------------------------------------------

def write_frame(fd: int, body: bytes) -> None:
    """Write one frame (length, then body) to the file descriptor `fd`."""
    if len(body) > MAX_FRAME:
        raise WireError(f"a message of {len(body)} bytes (the limit is {MAX_FRAME})")
    view = memoryview(HEADER.pack(len(body)) + body)
    while view:
        view = view[os.write(fd, view):]


def read_frame(fd: int, timeout: float | None = None) -> bytes:
    """Read one frame from `fd`; TimeoutError after `timeout` s, EOFError if the writer is gone."""
    deadline = None if timeout is None else time.monotonic() + timeout
    (size,) = HEADER.unpack(_read_exactly(fd, HEADER.size, deadline))
    if size > MAX_FRAME:
        raise WireError(f"a frame of {size} bytes announced (the limit is {MAX_FRAME})")
    return _read_exactly(fd, size, deadline)


def _read_exactly(fd: int, size: int, deadline: float | None) -> bytes:
    """`size` bytes from `fd`, waiting at most until `deadline` (time.monotonic)."""
    chunks, left = [], size
    while left:
        if deadline is not None:
            wait = deadline - time.monotonic()
            if wait <= 0 or not select.select([fd], [], [], wait)[0]:
                raise TimeoutError("no answer in time")
        chunk = os.read(fd, min(left, 1 << 20))
        if not chunk:
            raise EOFError("the other end closed the channel")
        chunks.append(chunk)
        left -= len(chunk)
    return b"".join(chunks)


# --- plain data ----------------------------------------------------------------------------

def dumps_plain(message: Any) -> bytes:
    """A message of plain data (already through `to_plain`) as JSON bytes."""
    return json.dumps(message, allow_nan=False, separators=(",", ":")).encode()


def loads_plain(body: bytes) -> Any:
    """The JSON object of a frame sent by a sandboxed process; raises WireError if malformed.
    Tagged values inside stay tagged: `from_plain` rebuilds them."""
    try:
        return json.loads(body.decode("utf-8"))
    except (ValueError, RecursionError) as exc:
        raise WireError(f"not a JSON message ({type(exc).__name__})") from None


def to_plain(value: Any, differentiable: list | None = None, depth: int = 0) -> Any:
    """`value` (numbers, strings, tensors, arrays, and lists/tuples/sets/dicts of them) as
    JSON-ready data with tags; raises NotPlain for anything else. Tensors that require grad
    are appended to `differentiable`, in the order `from_plain` will meet them."""
    if depth > MAX_DEPTH:
        raise NotPlain(f"data nested more than {MAX_DEPTH} levels deep")
    if value is None or isinstance(value, (bool, str)):
        return value
    if isinstance(value, (int, float, complex, np.generic)):
        return _number(value)
    if torch.is_tensor(value):
        if value.requires_grad and differentiable is not None:
            differentiable.append(value)
        return _tensor(value)
    if isinstance(value, np.ndarray):
        return _array(value)
    if isinstance(value, (list, tuple, set, frozenset)):
        items = [to_plain(v, differentiable, depth + 1) for v in value]
        tag = {list: None, set: "$set", frozenset: "$frozenset"}.get(type(value), "$tuple")
        return items if tag is None else {tag: items}
    if isinstance(value, dict):
        if all(isinstance(k, str) and not k.startswith("$") for k in value):
            return {k: to_plain(v, differentiable, depth + 1) for k, v in value.items()}
        return {"$dict": [to_plain(pair, differentiable, depth + 1) for pair in value.items()]}
    if isinstance(value, torch.dtype):
        return {"$dtype": str(value).removeprefix("torch.")}
    raise NotPlain(f"a {type(value).__name__} is not plain data")


def grad_leaves(value: Any) -> list[torch.Tensor]:
    """The tensors of `value` that require grad, and the parameters of its modules that do,
    depth first and each once: the same list on both sides of the boundary."""
    found: dict[int, torch.Tensor] = {}
    _collect_leaves(value, found)
    return list(found.values())


def _collect_leaves(value: Any, found: dict[int, torch.Tensor]) -> None:
    if torch.is_tensor(value):
        if value.requires_grad:
            found.setdefault(id(value), value)
    elif isinstance(value, torch.nn.Module):
        for p in value.parameters():
            _collect_leaves(p, found)
    elif isinstance(value, (list, tuple)):
        for v in value:
            _collect_leaves(v, found)
    elif isinstance(value, dict):
        for v in value.values():
            _collect_leaves(v, found)


def _number(x: Any) -> Any:
    """A Python or numpy scalar: JSON numbers where exact, tags for complex, nan and infinities."""
    x = x.item() if isinstance(x, np.generic) else x
    if isinstance(x, bool) or isinstance(x, int):
        return x
    if isinstance(x, complex):
        return {"$complex": [_number(x.real), _number(x.imag)]}
    x = float(x)
    return x if math.isfinite(x) else {"$float": repr(x)}


def _tensor(t: torch.Tensor) -> dict:
    """A tensor's dtype, shape and bytes; `grad` marks one that requires grad."""
    if t.layout != torch.strided or t.device.type == "meta" or t.dtype not in DTYPES.values():
        raise NotPlain(f"a {t.layout} {t.dtype} tensor on {t.device} is not plain data")
    flat = t.detach().to("cpu").reshape(-1).contiguous()
    raw = flat.view(torch.uint8).numpy().tobytes() if flat.numel() else b""
    out = {"$tensor": [str(t.dtype).removeprefix("torch."), list(t.shape),
                       base64.b64encode(raw).decode()]}
    if t.requires_grad:
        out["grad"] = True
    return out


def _array(a: np.ndarray) -> dict:
    """A numpy array of numbers: dtype, shape and bytes."""
    if a.dtype.kind not in ARRAY_KINDS or a.dtype.fields is not None:
        raise NotPlain(f"a numpy array of {a.dtype} is not plain data")
    raw = np.ascontiguousarray(a).tobytes()
    return {"$array": [a.dtype.str, list(a.shape), base64.b64encode(raw).decode()]}


def from_plain(obj: Any, differentiable: list | None = None) -> Any:
    """Rebuild the value `to_plain` wrote; raises WireError for anything it would not write.
    Tensors that required grad on the sender's side are appended to `differentiable`."""
    return PlainDecoder(differentiable).decode(obj, 0)


class PlainDecoder:
    """Rebuilds plain data from parsed JSON, by a fixed table of tags; never runs sent code."""

    def __init__(self, differentiable: list | None = None) -> None:
        self.differentiable = differentiable if differentiable is not None else []

    def decode(self, obj: Any, depth: int) -> Any:
        """The value of one JSON node."""
        if depth > MAX_DEPTH + 2:
            raise WireError("data nested too deep")
        if obj is None or isinstance(obj, (bool, int, float, str)):
            return obj
        if isinstance(obj, list):
            return self.items(obj, depth)
        if not isinstance(obj, dict):
            raise WireError(f"unexpected {type(obj).__name__}")
        tag = next(iter(obj), None)
        if not (isinstance(tag, str) and tag.startswith("$")):
            return {k: self.decode(v, depth + 1) for k, v in obj.items()}
        method = getattr(self, "tag_" + tag[1:], None) if tag[1:].isalpha() else None
        if method is None:
            raise WireError(f"unknown tag {tag[:20]!r}")
        try:
            return method(obj[tag], depth, obj)
        except (TypeError, ValueError, IndexError, KeyError, RuntimeError, OverflowError) as exc:
            raise WireError(f"malformed {tag[:20]} ({type(exc).__name__})") from None

    def items(self, obj: Any, depth: int) -> list:
        if not isinstance(obj, list):
            raise TypeError("not a list")
        return [self.decode(v, depth + 1) for v in obj]

    def tag_tuple(self, v: Any, depth: int, node: dict) -> tuple:
        return tuple(self.items(v, depth))

    def tag_set(self, v: Any, depth: int, node: dict) -> set:
        return {_key(k) for k in self.items(v, depth)}

    def tag_frozenset(self, v: Any, depth: int, node: dict) -> frozenset:
        return frozenset(_key(k) for k in self.items(v, depth))

    def tag_dict(self, v: Any, depth: int, node: dict) -> dict:
        return {_key(k): x for k, x in (_pair(p) for p in self.items(v, depth))}

    def tag_float(self, v: Any, depth: int, node: dict) -> float:
        if v not in ("nan", "inf", "-inf"):
            raise ValueError(v)
        return float(v)

    def tag_complex(self, v: Any, depth: int, node: dict) -> complex:
        re, im = self.items(v, depth)
        if not all(isinstance(p, (int, float)) and not isinstance(p, bool) for p in (re, im)):
            raise TypeError("not a complex")
        return complex(re, im)

    def tag_dtype(self, v: Any, depth: int, node: dict) -> torch.dtype:
        return DTYPES[v]

    def tag_tensor(self, v: Any, depth: int, node: dict) -> torch.Tensor:
        name, shape, data = v
        dtype, shape = DTYPES[name], _shape(shape)
        numel = math.prod(shape)
        raw = _raw(data, numel * torch.empty((), dtype=dtype).element_size())
        if not numel:
            t = torch.empty(shape, dtype=dtype)
        else:
            t = torch.frombuffer(bytearray(raw), dtype=torch.uint8).view(dtype).reshape(shape)
            t = t != 0 if dtype == torch.bool else t
        if node.get("grad") is True:
            self.differentiable.append(t)
        return t

    def tag_array(self, v: Any, depth: int, node: dict) -> np.ndarray:
        name, shape, data = v
        dtype, shape = np.dtype(name), _shape(shape)
        if dtype.kind not in ARRAY_KINDS or dtype.fields is not None:
            raise ValueError("not an array of numbers")
        raw = _raw(data, math.prod(shape) * dtype.itemsize)
        return np.frombuffer(raw, dtype=dtype).reshape(shape).copy()


def _key(k: Any) -> Any:
    hash(k)  # TypeError for an unhashable key
    return k


def _pair(p: Any) -> tuple:
    if not (isinstance(p, (list, tuple)) and len(p) == 2):
        raise TypeError("not a key-value pair")
    return p[0], p[1]


def _shape(shape: Any) -> tuple[int, ...]:
    if not (isinstance(shape, list) and len(shape) <= 32
            and all(type(n) is int and 0 <= n <= MAX_FRAME for n in shape)):
        raise ValueError("bad shape")
    return tuple(shape)


def _raw(data: Any, nbytes: int) -> bytes:
    raw = base64.b64decode(data.encode("ascii"), validate=True)
    if len(raw) != nbytes:
        raise ValueError("size does not match the shape")
    return raw
