"""The companion package of *Executable Deep Learning*.

`import book` gives the few helpers every chapter shares: reproducibility (`seed`, `device`),
claims as checks (`expect`), offline data (`book.data`), one figure style (`book.plot`), a small
training loop (`train`) and explorations (`explore`). A chapter's own from-scratch code stays in
the chapter.

The helpers load on first use, so that tools which need only a corner of the package (the site
build's Sphinx extension, the command line) start without importing torch.
"""

from __future__ import annotations

import importlib
from typing import Any

from book import plotting as plot

plot.use_style()

# public name -> (module, attribute); attribute None means the module itself
_EXPORTS: dict[str, tuple[str, str | None]] = {
    "seed": ("book.runtime", "seed"),
    "device": ("book.runtime", "device"),
    "expect": ("book.checks", "expect"),
    "data": ("book.data", None),
    "train": ("book.training", "train"),
    "evaluate": ("book.training", "evaluate"),
    "accuracy": ("book.training", "accuracy"),
    "History": ("book.training", "History"),
    "explore": ("book.explorations", "explore"),
}


def __getattr__(name: str) -> Any:
    """Import a public helper the first time it is used (PEP 562)."""
    if name not in _EXPORTS:
        raise AttributeError(f"module 'book' has no attribute {name!r}")
    module_name, attribute = _EXPORTS[name]
    module = importlib.import_module(module_name)
    value = module if attribute is None else getattr(module, attribute)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_EXPORTS))


__all__ = ["History", "accuracy", "data", "device", "evaluate", "expect", "explore", "plot", "seed", "train"]
