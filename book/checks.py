"""`expect`: a chapter's claim as a check that prints one line and raises when it fails."""

from __future__ import annotations

import math
from numbers import Real
from typing import Any

import torch

TICK, CROSS = "✓", "✗"


def _as_tensor(x: Any) -> torch.Tensor:
    if isinstance(x, torch.Tensor):
        return x.detach().cpu()
    if isinstance(x, float) or (isinstance(x, (list, tuple)) and any(isinstance(v, float) for v in x)):
        return torch.as_tensor(x, dtype=torch.float64)  # a Python float is a double: keep its digits
    return torch.as_tensor(x)


def _fmt(x: Any) -> str:
    if isinstance(x, torch.Tensor) and x.numel() == 1:
        x = x.item()
    if isinstance(x, bool) or not isinstance(x, Real):
        return repr(x)
    return f"{x:.4g}"


def _close(claim: str, measured: Any, expected: Any, rtol: float | None, atol: float | None) -> str:
    actual, wanted = _as_tensor(measured), _as_tensor(expected)
    if actual.is_floating_point() and not wanted.is_floating_point():
        wanted = wanted.to(actual.dtype)
    if wanted.is_floating_point() and not actual.is_floating_point():
        actual = actual.to(wanted.dtype)
    if (rtol is None) != (atol is None):
        raise ValueError("give both rtol and atol, or neither (torch's defaults for the dtype)")
    try:
        torch.testing.assert_close(actual, wanted, rtol=rtol, atol=atol, check_dtype=False)
    except AssertionError as error:
        detail = str(error).strip().splitlines()
        raise AssertionError(f"{CROSS} {claim}: " + " ".join(s.strip() for s in detail)) from None
    gap = (actual.to(torch.float64) - wanted.to(torch.float64)).abs().max().item() if actual.numel() else 0.0
    tol = "torch defaults" if rtol is None else f"rtol={rtol:g}, atol={atol:g}"
    return f"{TICK} {claim}: max |Δ| = {gap:.1e} ({tol})"


_COMPARISONS = {
    "above": (">", lambda m, b: m > b),
    "below": ("<", lambda m, b: m < b),
    "at_least": ("≥", lambda m, b: m >= b),
    "at_most": ("≤", lambda m, b: m <= b),
}


def expect(
    claim: str,
    measured: Any,
    *,
    close_to: Any = None,
    rtol: float | None = None,
    atol: float | None = None,
    above: float | None = None,
    below: float | None = None,
    at_least: float | None = None,
    at_most: float | None = None,
    equals: Any = None,
) -> None:
    """Check `measured` against every bound given, print one ✓ line, raise AssertionError if not.

    `close_to` compares tensors or numbers with `torch.testing.assert_close` (tolerances `rtol`
    and `atol`, or torch's defaults for the dtype); `above`/`below`/`at_least`/`at_most` bound a
    number; `equals` demands exact equality. Returns nothing, so a cell that ends with a check
    shows only its ✓ line.
    """
    bounds = {k: v for k, v in dict(above=above, below=below, at_least=at_least, at_most=at_most).items()
              if v is not None}
    if close_to is None and equals is None and not bounds:
        raise ValueError(f"expect({claim!r}) states no expectation: give close_to, equals or a bound")
    lines = []
    if close_to is not None:
        lines.append(_close(claim, measured, close_to, rtol, atol))
    if equals is not None:
        same = bool(torch.equal(_as_tensor(measured), _as_tensor(equals))) \
            if isinstance(measured, torch.Tensor) or isinstance(equals, torch.Tensor) else measured == equals
        if not same:
            raise AssertionError(f"{CROSS} {claim}: measured {_fmt(measured)}, expected exactly {_fmt(equals)}")
        lines.append(f"{TICK} {claim}: {_fmt(measured)}")
    if bounds:
        value = float(_as_tensor(measured).item())
        held = [f"{sign} {_fmt(b)}" for name, b in bounds.items()
                for sign, ok in [_COMPARISONS[name]] if ok(value, b) and not math.isnan(value)]
        if len(held) != len(bounds):
            wanted = ", ".join(f"{_COMPARISONS[n][0]} {_fmt(b)}" for n, b in bounds.items())
            raise AssertionError(f"{CROSS} {claim}: measured {_fmt(value)}, expected {wanted}")
        lines.append(f"{TICK} {claim}: {_fmt(value)} {' and '.join(held)}")
    print("\n".join(lines))
