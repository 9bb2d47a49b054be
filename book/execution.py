"""Execute the book's notebooks once, in parallel, into the site build's execution cache.

Jupyter Book runs notebooks one after another while Sphinx reads the pages. Run first, this step
executes every notebook of the table of contents that the cache does not yet hold, `jobs` at a
time, and stores each executed notebook exactly where MyST-NB looks for it, so the build that
follows executes nothing. The test suite reads the same record (`outcome`): every notebook is
executed once per test run, for its test and its page alike.
"""

from __future__ import annotations

import json
import os
import re
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path

TIMEOUT_S = 300  # per cell, as `execute.timeout` in _config.yml


@dataclass
class Outcome:
    """How one notebook's execution went: `error` is None on success, else the traceback."""

    notebook: str  # path relative to the book's root
    seconds: float
    error: str | None = None
    cached: bool = False  # True when the cache already held it and nothing ran


def read_notebook(path: Path):
    """The notebook of a MyST `.md` (or an `.ipynb`) exactly as MyST-NB reads it for the build."""
    import nbformat
    from myst_nb.core.read import read_myst_markdown_notebook
    from myst_parser.config.main import MdParserConfig

    from book.sphinx_offline import public_text

    text = path.read_text(encoding="utf-8")
    if path.parent.name == "solutions":  # as the site reads it: without the hidden tests
        text = public_text(f"solutions/{path.stem}", text)
    if path.suffix == ".ipynb":
        return nbformat.reads(text, as_version=4)
    return read_myst_markdown_notebook(text, config=MdParserConfig(), add_source_map=True,
                                       path=str(path))


def toc_notebooks(root: Path, toc: dict) -> list[Path]:
    """The notebook sources (MyST `.md` with a kernel, or `.ipynb`) named in a `_toc.yml` mapping."""
    from book.site import is_notebook_source, toc_files

    files = toc_files(toc)
    paths = []
    for name in files:
        for suffix in (".md", ".ipynb"):
            path = root / f"{name}{suffix}"
            if path.exists() and (suffix == ".ipynb" or is_notebook_source(path)):
                paths.append(path)
                break
    return paths


KERNEL_NEVER_STARTED = "Kernel died before replying to kernel_info"
KERNEL_START_RETRIES = 2


def _execute(path: str) -> tuple:
    """Worker: execute one notebook in a fresh kernel; (executed notebook JSON, seconds, error)."""
    import nbformat
    from jupyter_cache.executors.utils import single_nb_execution

    for attempt in range(1 + KERNEL_START_RETRIES):
        notebook = read_notebook(Path(path))
        result = single_nb_execution(notebook, cwd=str(Path(path).parent), allow_errors=False,
                                     timeout=TIMEOUT_S, meta_override=True)
        # the traceback names the failing cell's source and the error; colour codes are noise
        error = re.sub(r"\x1b\[[0-9;]*m", "", result.exc_string) if result.err is not None else None
        if error is None or KERNEL_NEVER_STARTED not in error:
            break
        # no cell ran: the kernel process exited while starting (on a busy machine, e.g. when
        # another process took one of the TCP ports chosen for it), so a fresh kernel is fair
        print(f"  {path}: the kernel died while starting; starting another "
              f"({attempt + 1} of {KERNEL_START_RETRIES})", flush=True)
    return nbformat.writes(notebook), result.time, error


def execute_into_cache(root: Path, paths: list[Path], cache_path: Path, jobs: int) -> list[Outcome]:
    """Execute each notebook the cache lacks, `jobs` at a time; cache successes, log failures."""
    import nbformat
    from jupyter_cache import get_cache
    from jupyter_cache.base import CacheBundleIn

    cache = get_cache(str(cache_path))
    outcomes, todo = [], []
    for path in paths:
        try:
            cache.match_cache_notebook(read_notebook(path))
            outcomes.append(Outcome(str(path.relative_to(root)), 0.0, cached=True))
        except KeyError:
            todo.append(path)
    if not todo:
        return outcomes
    print(f"executing {len(todo)} notebook(s), {jobs} at a time", flush=True)
    with ProcessPoolExecutor(max_workers=max(1, min(jobs, len(todo)))) as pool:
        futures = {pool.submit(_execute, str(p)): p for p in todo}
        for future, path in futures.items():
            name = str(path.relative_to(root))
            try:
                text, seconds, error = future.result()
            except Exception as exc:  # the worker itself died: still one outcome per notebook
                text, seconds, error = None, 0.0, f"{type(exc).__name__}: {exc}"
            if error is None:
                cache.cache_notebook_bundle(
                    CacheBundleIn(nbformat.reads(text, as_version=4), str(path),
                                  data={"execution_seconds": seconds}),
                    check_validity=False, overwrite=True)
            outcomes.append(Outcome(name, round(seconds, 1), error))
            print(f"  {name}: {'ok' if error is None else 'FAILED'} in {seconds:.1f} s", flush=True)
    return outcomes


def write_outcomes(outcomes: list[Outcome], path: Path) -> None:
    """Record the outcomes as JSON (what the tests read): one object per notebook."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps([o.__dict__ for o in outcomes], indent=1), encoding="utf-8")


def read_outcomes(path: Path) -> dict[str, Outcome]:
    """The outcomes written by `write_outcomes`, by notebook path."""
    return {o["notebook"]: Outcome(**o) for o in json.loads(path.read_text(encoding="utf-8"))}


def default_jobs() -> int:
    """Notebooks at once: BOOK_JOBS if set, else the number of usable cores."""
    if os.environ.get("BOOK_JOBS"):
        return max(1, int(os.environ["BOOK_JOBS"]))
    return max(1, len(os.sched_getaffinity(0)))
