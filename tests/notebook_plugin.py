"""pytest plugin: run each MyST notebook of chapters/ and solutions/ under nbval.

nbval reads `.ipynb` files, so each `.md` notebook is converted with jupytext into a private
temporary folder first; the test keeps the source's name (`chapters/optimizers.md::Cell 3`), and
its cells run in order in one kernel, so run it with `--dist loadfile` under pytest-xdist.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import jupytext
import nbformat
from nbval.plugin import IPyNbFile

from book.site import is_notebook_source

NOTEBOOK_FOLDERS = ("chapters", "solutions")
_WORKDIR = Path(tempfile.mkdtemp(prefix="book-nbval-"))


class MarkdownNotebook(IPyNbFile):
    """An nbval notebook whose cells come from a jupytext-converted copy of a `.md` source."""

    def __init__(self, *args, converted: Path, **kwargs):
        super().__init__(*args, **kwargs)
        self.converted = converted

    def collect(self):
        # nbval reads the notebook from `self.path`: point it at the converted copy meanwhile
        source_path = self.path
        self.path = self.converted
        try:
            yield from super().collect()
        finally:
            self.path = source_path


def pytest_collect_file(file_path: Path, parent):
    """Collect `chapters/*.md` and `solutions/*.md` notebooks as nbval tests."""
    opt = parent.config.option
    if not (opt.nbval or opt.nbval_lax) or file_path.parent.name not in NOTEBOOK_FOLDERS:
        return None
    if not is_notebook_source(file_path):
        return None
    target = _WORKDIR / file_path.parent.name / (file_path.stem + ".ipynb")
    target.parent.mkdir(parents=True, exist_ok=True)
    notebook = jupytext.read(file_path)
    nbformat.write(notebook, target)
    return MarkdownNotebook.from_parent(parent, path=file_path, converted=target)
