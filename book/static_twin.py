"""The static twin of an exploration: every frame drawn at build time, swapped in the browser.

`FrameRenderer` draws `plot_fn` frames on ONE reused Agg figure (never registered with pyplot, so
nothing leaks into the notebook) and encodes each as a palette PNG, or SVG when that is smaller.
`twin_html` packs the frames into one self-contained HTML snippet: native, labelled, keyboard
operable controls (range, select, checkbox) and a few lines of inline JavaScript that swap the
image. No kernel, no network, no require.js.
"""

from __future__ import annotations

import html
import io
import itertools
import json
import sys
from base64 import b64encode
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from hashlib import sha1
from typing import Any

from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from PIL import Image

MARKER_CLASS = "book-explore"  # every twin's root element carries it; the site tests look for it
_counter = itertools.count(1)  # makes ids unique when one page shows the same exploration twice


@dataclass(frozen=True)
class Control:
    """One control: its name, the values it steps through, their labels, the default's index."""

    name: str
    kind: str  # "slider" (numbers), "dropdown" (strings) or "toggle" (True/False)
    values: tuple
    labels: tuple[str, ...]
    default: int


class FrameRenderer:
    """One Agg figure, reused for every frame: fresh Axes, call plot_fn, encode."""

    def __init__(self, ncols: int, figsize: tuple[float, float], dpi: float):
        self.ncols = ncols
        self.fig = Figure(figsize=figsize, dpi=dpi, layout="constrained")
        FigureCanvasAgg(self.fig)
        self.axes = self._new_axes()

    def _new_axes(self):
        axes = tuple(self.fig.subplots(1, self.ncols, squeeze=False)[0])
        return axes[0] if self.ncols == 1 else axes

    def _reset(self) -> None:
        # A fresh set of Axes each frame: clearing only the Axes would keep colorbars and twin Axes,
        # and constrained layout starts from the previous frame's positions, so the same combination
        # would come out a pixel different after different neighbours. Costs no more than ax.clear().
        self.fig.clear()
        self.axes = self._new_axes()

    def draw(self, plot_fn: Callable[..., Any], params: dict[str, Any]) -> None:
        """Clear the figure's Axes, call plot_fn(ax, **params) and render the figure."""
        self._reset()
        pyplot = sys.modules.get("matplotlib.pyplot")
        before = set(pyplot.get_fignums()) if pyplot else set()
        try:
            plot_fn(self.axes, **params)
        finally:
            stray = set(pyplot.get_fignums()) - before if pyplot else set()
            for num in stray:  # a figure plot_fn opened by mistake must not show up in the notebook
                pyplot.close(num)
        if stray:
            raise RuntimeError("plot_fn opened a pyplot figure; draw on the Axes it is given (ax.plot, not plt.plot)")
        self.fig.canvas.draw()

    def png(self) -> bytes:
        """The last drawn frame as a 256-colour PNG (about a third of a full-colour one)."""
        canvas = self.fig.canvas
        image = Image.frombuffer("RGBA", canvas.get_width_height(), canvas.buffer_rgba(), "raw", "RGBA", 0, 1)
        if image.getextrema()[3][0] < 255:  # a transparent background would turn black
            image = Image.alpha_composite(Image.new("RGBA", image.size, "white"), image)
        palette = image.convert("RGB").quantize(256, method=Image.Quantize.FASTOCTREE, dither=Image.Dither.NONE)
        colours = palette.getpalette()  # the octree rounds white to (254, 254, 254): a visible box on the page
        palette.putpalette([255 if c >= 252 else c for c in colours])
        buf = io.BytesIO()
        palette.save(buf, format="png", compress_level=9)
        return buf.getvalue()

    def svg(self) -> bytes:
        """The last drawn frame as SVG, without the date so builds are reproducible."""
        buf = io.BytesIO()
        self.fig.savefig(buf, format="svg", metadata={"Date": None})
        return buf.getvalue()

    @property
    def size_px(self) -> tuple[int, int]:
        """Width and height of a frame in pixels."""
        return self.fig.canvas.get_width_height()


def describe(params: dict[str, Any]) -> str:
    """A parameter combination as Python would write it: `lr=0.1, optimizer='adam'`."""
    return ", ".join(f"{name}={value!r}" for name, value in params.items())


def grid_summary(controls: Sequence[Control]) -> str:
    """The grid's shape in words: `lr(5) × optimizer(3) = 15 frames`."""
    total = 1
    for control in controls:
        total *= len(control.values)
    return " × ".join(f"{c.name}({len(c.values)})" for c in controls) + f" = {total} frame{'s' * (total != 1)}"


def render_frames(
    renderer: FrameRenderer,
    plot_fn: Callable[..., Any],
    controls: Sequence[Control],
    max_bytes: int,
    name: str = "plot_fn",
) -> tuple[str, list[bytes]]:
    """Draw plot_fn at every grid point (first control slowest); return the mime type and frames."""
    grid = list(itertools.product(*(c.values for c in controls)))
    frames: list[bytes] = []
    mime, total = "image/png", 0
    for i, values in enumerate(grid):
        params = dict(zip((c.name for c in controls), values, strict=True))
        try:
            renderer.draw(plot_fn, params)
        except Exception as exc:
            raise RuntimeError(
                f"{name} failed at {describe(params)} (frame {i + 1} of {len(grid)}): {type(exc).__name__}: {exc}"
            ) from exc
        frame = renderer.png()
        if i == 0:  # choose the format once, on the first frame: mixed formats would gain little
            svg = renderer.svg()
            if len(svg) < len(frame):
                mime, frame = "image/svg+xml", svg
        elif mime == "image/svg+xml":
            frame = renderer.svg()
        frames.append(frame)
        total += 4 * len(frame) // 3
        if total > max_bytes:  # stop early: the rest would only make it bigger
            estimate = total * len(grid) / (i + 1)
            raise ValueError(too_big_message(controls, estimate, max_bytes, approximate=i + 1 < len(grid)))
    return mime, frames


def too_big_message(controls: Sequence[Control], size: float, max_bytes: int, approximate: bool) -> str:
    """The size-cap error: which grid, how big, what to do."""
    about = "about " if approximate else ""
    return (
        f"exploration grid {grid_summary(controls)} makes {about}{size / 1e6:.2g} MB > {max_bytes / 1e6:g} MB cap; "
        "use fewer values, a smaller figsize, or a larger max_bytes"
    )


def twin_html(
    controls: Sequence[Control],
    mime: str,
    frames: Sequence[bytes],
    alts: Sequence[str],
    size_px: tuple[int, int],
    title: str,
) -> str:
    """One self-contained HTML snippet: the controls, the default frame and the frame-swapping script."""
    uris, index, first_seen = [], [], {}
    for frame in frames:  # identical frames (a control with no visible effect) are stored once
        if frame not in first_seen:
            first_seen[frame] = len(uris)
            uris.append(f"data:{mime};base64,{b64encode(frame).decode('ascii')}")
        index.append(first_seen[frame])
    data = {"sizes": [len(c.values) for c in controls], "labels": [list(c.labels) for c in controls],
            "frame": index, "src": uris, "alt": list(alts)}
    payload = json.dumps(data, separators=(",", ":"), ensure_ascii=True)
    payload = payload.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")
    uid = f"bx-{sha1(payload.encode()).hexdigest()[:10]}-{next(_counter)}"
    k = 0
    for control in controls:  # the default combination's position in the grid
        k = k * len(control.values) + control.default
    width, height = size_px
    return (
        f'<div class="{MARKER_CLASS}" id="{uid}">'
        f"<style>#{uid} .bx-controls{{display:flex;flex-wrap:wrap;gap:.3em 1.5em;align-items:center;margin:.4em 0}}"
        f"#{uid} .bx-control{{display:inline-flex;gap:.4em;align-items:center}}"
        f"#{uid} img{{max-width:100%;height:auto}}</style>"
        f'<div class="bx-controls" role="group" aria-label="controls of {html.escape(title)}">'
        + "".join(_control_html(uid, i, c) for i, c in enumerate(controls))
        + f'</div><img class="bx-frame" src="{uris[index[k]]}" alt="{html.escape(alts[k])}" '
        f'width="{width}" height="{height}">'
        f'<script type="application/json" class="bx-data">{payload}</script>'
        f"<script>{_SCRIPT.replace('UID', json.dumps(uid))}</script></div>"
    )


def _control_html(uid: str, i: int, control: Control) -> str:
    cid, name, j = f"{uid}-{i}", html.escape(control.name), control.default
    label = f'<label for="{cid}">{name}</label>'
    if control.kind == "slider":
        value = html.escape(control.labels[j])
        widget = (f'<input type="range" id="{cid}" min="0" max="{len(control.values) - 1}" step="1" value="{j}" '
                  f'aria-valuetext="{value}" data-bx><output id="{cid}-value" for="{cid}">{value}</output>')
        return f'<span class="bx-control">{label}{widget}</span>'
    if control.kind == "dropdown":
        options = "".join(f'<option value="{n}"{" selected" * (n == j)}>{html.escape(text)}</option>'
                          for n, text in enumerate(control.labels))
        return f'<span class="bx-control">{label}<select id="{cid}" data-bx>{options}</select></span>'
    on, off = control.values.index(True), control.values.index(False)
    checked = " checked" * (control.values[j] is True)
    box = f'<input type="checkbox" id="{cid}" data-on="{on}" data-off="{off}"{checked} data-bx>'
    return f'<span class="bx-control">{box}{label}</span>'


# Frame k of the grid is the mixed-radix number of the controls' positions, first control slowest.
_SCRIPT = """(function(){var r=document.getElementById(UID),
d=JSON.parse(r.querySelector("script.bx-data").textContent),img=r.querySelector("img.bx-frame"),
c=r.querySelectorAll("[data-bx]");
function pos(e){return e.type==="checkbox"?+(e.checked?e.dataset.on:e.dataset.off):+e.value;}
function show(){var k=0;for(var i=0;i<c.length;i++){var j=pos(c[i]);k=k*d.sizes[i]+j;
if(c[i].type==="range"){c[i].setAttribute("aria-valuetext",d.labels[i][j]);
document.getElementById(c[i].id+"-value").textContent=d.labels[i][j];}}
img.src=d.src[d.frame[k]];img.alt=d.alt[k];}
r.addEventListener("input",show);r.addEventListener("change",show);show();})();"""
