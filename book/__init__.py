"""The companion package of *Executable Deep Learning*.

`import book` gives the few helpers every chapter shares: reproducibility (`seed`, `device`),
claims as checks (`expect`), offline data (`book.data`), one figure style (`book.plot`), a small
training loop (`train`) and explorations (`explore`). A chapter's own from-scratch code stays in
the chapter.
"""

from book import data
from book import plotting as plot
from book.checks import expect
from book.explore import explore
from book.runtime import device, seed
from book.training import History, accuracy, evaluate, train

plot.use_style()


__all__ = ["History", "accuracy", "data", "device", "evaluate", "expect", "explore", "plot", "seed", "train"]
