"""One figure style for the whole book, and the few plots that every chapter draws."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import matplotlib as mpl

PALETTE = ["#1f5fa8", "#d1495b", "#2e8b57", "#edae49", "#6a4c93", "#00798c", "#8d6a50", "#7f7f7f"]

STYLE = {
    "figure.figsize": (6.0, 3.6),
    "figure.dpi": 100,
    "savefig.dpi": 100,
    "savefig.bbox": "tight",
    "font.size": 10,
    "axes.titlesize": 11,
    "axes.labelsize": 10,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "axes.grid": True,
    "grid.alpha": 0.3,
    "axes.prop_cycle": mpl.cycler(color=PALETTE),
    "legend.frameon": False,
    "lines.linewidth": 1.6,
    "image.cmap": "viridis",
}


def use_style() -> None:
    """Apply the book's figure style to matplotlib (done once by `import book`)."""
    mpl.rcParams.update(STYLE)


def curves(
    series: Mapping[str, Sequence[float]],
    ax=None,
    *,
    xlabel: str = "step",
    ylabel: str = "loss",
    logy: bool = False,
    title: str | None = None,
):
    """Plot one line per named series (e.g. training loss per optimizer) and return the Axes."""
    import matplotlib.pyplot as plt

    if ax is None:
        _, ax = plt.subplots()
    for label, values in series.items():
        ax.plot(range(len(values)), list(values), label=label)
    if logy:
        ax.set_yscale("log")
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    if title:
        ax.set_title(title)
    if len(series) > 1:
        ax.legend()
    return ax
