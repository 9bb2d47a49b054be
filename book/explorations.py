"""Explorations: one plotting function, live ipywidgets in JupyterLab, a moving static twin on the site.

    def plot(ax, lr, optimizer):
        ax.plot(losses[lr, optimizer])

    book.explore(plot, lr=[0.001, 0.01, 0.1], optimizer=["sgd", "adam"])

Numbers become a slider over exactly the given values, strings a dropdown, [True, False] a toggle.
The returned `Exploration` displays as one bundle: the live widget (JupyterLab prefers it) and a
`text/html` static twin with every frame precomputed (the site build renders that one). Both are
built when `explore` is called, so a failing `plot_fn` fails the cell rather than the display.
"""

from __future__ import annotations

import base64
import inspect
import itertools
import math
import numbers
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import matplotlib as mpl

from book.static_twin import Control, FrameRenderer, describe, grid_summary, render_frames, too_big_message, twin_html

__all__ = ["Control", "Exploration", "explore"]

MAX_BYTES = 2_000_000  # per exploration, all frames included: a chapter page stays light
MAX_FRAMES = 100  # at ~0.1 s a frame on 2 cores, more would eat a chapter's 60 s budget
DPI = 100  # the book's static figures use 100 dpi too


def _label(value: Any) -> str:
    if isinstance(value, bool) or isinstance(value, str):
        return str(value)
    if isinstance(value, numbers.Integral):
        return str(int(value))
    return format(float(value), "g")


def _kind(name: str, values: list) -> str:
    """'slider', 'dropdown' or 'toggle' for a control's values, or a ValueError naming the control."""
    if all(isinstance(v, bool) for v in values):
        if sorted(values) != [False, True]:
            raise ValueError(f"toggle {name!r} needs exactly the values [True, False], got {values!r}")
        return "toggle"
    if all(isinstance(v, numbers.Real) and not isinstance(v, bool) for v in values):
        return "slider"
    if all(isinstance(v, str) for v in values):
        return "dropdown"
    types = ", ".join(sorted({type(v).__name__ for v in values}))
    raise ValueError(
        f"control {name!r} mixes or uses unsupported types ({types}): {values!r}; a slider takes numbers only, "
        "a dropdown strings only, a toggle [True, False]"
    )


def parse_controls(controls: Mapping[str, Any], defaults: Mapping[str, Any] | None = None) -> list[Control]:
    """Check each control's values and pick its kind and default; errors name the control."""
    if not controls:
        raise ValueError("book.explore needs at least one control, e.g. lr=[0.01, 0.1, 1.0]")
    defaults = dict(defaults or {})
    unknown = sorted(set(defaults) - set(controls))
    if unknown:
        raise ValueError(f"defaults name no control: {unknown}; the controls are {list(controls)}")
    parsed = []
    for name, raw in controls.items():
        if isinstance(raw, (str, bytes, Mapping)) or not isinstance(raw, Sequence) and not hasattr(raw, "tolist"):
            raise ValueError(f"control {name!r} must be a list of values, e.g. {name}=[...], got {raw!r}")
        values = raw.tolist() if hasattr(raw, "tolist") else [getattr(v, "item", lambda v=v: v)() for v in raw]
        if not values:
            raise ValueError(f"control {name!r} has no values; give at least one")
        kind = _kind(name, values)
        if len(set(values)) < len(values):
            raise ValueError(f"control {name!r} repeats a value: {values!r}")
        labels = [_label(v) for v in values]
        if len(set(labels)) < len(labels):  # e.g. 0.1 and 0.10000001 both print as 0.1
            labels = [repr(v) for v in values]
        default = defaults.get(name, values[0])
        if default not in values or isinstance(default, bool) != isinstance(values[0], bool):
            raise ValueError(f"default {name}={default!r} is not one of the control's values {values!r}")
        parsed.append(Control(name, kind, tuple(values), tuple(labels), values.index(default)))
    return parsed


def _check_signature(plot_fn: Callable[..., Any], controls: Sequence[Control]) -> None:
    try:
        signature = inspect.signature(plot_fn)
    except (TypeError, ValueError):  # some builtins and C functions have none; calling them will tell
        return
    try:
        signature.bind(None, **{c.name: c.values[c.default] for c in controls})
    except TypeError as exc:
        name = getattr(plot_fn, "__name__", "plot_fn")
        raise TypeError(f"{name}(ax, {', '.join(c.name for c in controls)}) cannot be called: {exc}") from exc


class Exploration:
    """What `book.explore` returns: displays as live widgets in a kernel and as a static twin on the site."""

    def __init__(
        self,
        plot_fn: Callable[..., Any],
        controls: list[Control],
        *,
        ncols: int,
        figsize: tuple[float, float],
        dpi: float,
        max_bytes: int,
        title: str,
    ):
        self.plot_fn, self.controls, self.title, self.max_bytes = plot_fn, controls, title, max_bytes
        self.calls = 0  # plot_fn calls so far: one per grid point, then one per live change
        self.renderer = FrameRenderer(ncols, figsize, dpi)
        name = getattr(plot_fn, "__name__", "plot_fn")
        mime, frames = render_frames(self.renderer, self._counted, controls, max_bytes, name=name)
        combos = itertools.product(*(c.labels for c in controls))
        alts = [f"{title}: " + ", ".join(f"{c.name} = {v}" for c, v in zip(controls, combo, strict=True))
                for combo in combos]
        self.html = twin_html(controls, mime, frames, alts, self.renderer.size_px, title)
        if len(self.html) > max_bytes:
            raise ValueError(too_big_message(controls, len(self.html), max_bytes, approximate=False))
        self.frame_count = len(frames)
        k = 0
        for c in controls:  # the default combination's frame starts the live view: no need to draw it again
            k = k * len(c.values) + c.default
        self.widget = self._build_widget(frames[k] if mime == "image/png" else None)

    def _counted(self, ax: Any, **params: Any) -> Any:
        self.calls += 1
        return self.plot_fn(ax, **params)

    @property
    def params(self) -> dict[str, Any]:
        """The live controls' current values."""
        return {c.name: w.value for c, w in zip(self.controls, self._inputs, strict=True)}

    def _build_widget(self, first_png: bytes | None):
        import ipywidgets as widgets  # only a kernel needs it; importing it costs a third of a second

        style = {"description_width": "initial"}
        self._inputs = []
        for c in self.controls:
            default = c.values[c.default]
            if c.kind == "slider":
                w = widgets.SelectionSlider(options=list(zip(c.labels, c.values, strict=True)), value=default,
                                            description=c.name, style=style)
            elif c.kind == "dropdown":
                w = widgets.Dropdown(options=list(c.values), value=default, description=c.name, style=style)
            else:
                w = widgets.Checkbox(value=default, description=c.name, indent=False)
            w.observe(self._redraw, names="value")
            self._inputs.append(w)
        self.output = widgets.Output()
        if first_png is None:
            self._redraw()
        else:
            self._show(first_png, self.params)
        controls = widgets.HBox(self._inputs, layout=widgets.Layout(flex_flow="row wrap"))
        return widgets.VBox([controls, self.output])

    def _redraw(self, change: Any = None) -> None:
        """Re-run plot_fn at the controls' values and replace the Output's image in place."""
        params = self.params
        try:
            self.renderer.draw(self._counted, params)
            self._show(self.renderer.png(), params)
        except Exception as exc:  # keep the widget alive and say what failed, at which values
            text = f"plot_fn failed at {describe(params)}: {type(exc).__name__}: {exc}\n"
            self.output.outputs = ({"output_type": "stream", "name": "stderr", "text": text},)

    def _show(self, png: bytes, params: dict[str, Any]) -> None:
        data = {"image/png": base64.b64encode(png).decode("ascii"), "text/plain": f"{self.title}: {describe(params)}"}
        self.output.outputs = ({"output_type": "display_data", "data": data, "metadata": {}},)

    def __repr__(self) -> str:
        return f"<exploration of {self.title}: {grid_summary(self.controls)}, {len(self.html) / 1e3:.0f} kB>"

    def _repr_mimebundle_(self, include: Any = None, exclude: Any = None) -> dict[str, Any]:
        bundle = self.widget._repr_mimebundle_()  # text/plain + application/vnd.jupyter.widget-view+json
        bundle["text/plain"] = repr(self)
        bundle["text/html"] = self.html
        return bundle


def explore(
    plot_fn: Callable[..., Any],
    *,
    ncols: int = 1,
    figsize: tuple[float, float] | None = None,
    defaults: Mapping[str, Any] | None = None,
    max_bytes: int = MAX_BYTES,
    max_frames: int = MAX_FRAMES,
    dpi: float = DPI,
    title: str | None = None,
    **controls: Sequence[Any],
) -> Exploration:
    """Explore plot_fn(ax, **params) over every combination of the controls' values (see module doc)."""
    if not callable(plot_fn):
        raise TypeError(f"plot_fn must be callable, got {plot_fn!r}")
    if not isinstance(ncols, int) or ncols < 1:
        raise ValueError(f"ncols must be a positive int, got {ncols!r}")
    parsed = parse_controls(controls, defaults)
    _check_signature(plot_fn, parsed)
    if math.prod(len(c.values) for c in parsed) > max_frames:
        raise ValueError(f"exploration grid {grid_summary(parsed)} > {max_frames} frame cap; use fewer values "
                         "(or a larger max_frames, if the chapter's time budget allows)")
    if figsize is None:
        width, height = mpl.rcParams["figure.figsize"]
        figsize = (width, height) if ncols == 1 else (min(0.7 * width * ncols, 2 * width), height)
    if title is None:  # the docstring's first line names the figure in every frame's alt text
        doc = inspect.getdoc(plot_fn)
        name = getattr(plot_fn, "__name__", "<")
        title = doc.splitlines()[0].rstrip(".") if doc else "figure" if name.startswith("<") else name.replace("_", " ")
    return Exploration(plot_fn, parsed, ncols=ncols, figsize=figsize, dpi=dpi, max_bytes=max_bytes, title=title)
