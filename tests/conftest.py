"""Shared fixtures: the site built once per test run (offline), a local server for it, a browser.

What they need from the machine (Chromium, a network namespace, ...) is in tests/system.py.
"""

from __future__ import annotations

import functools
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest
from filelock import FileLock

from book.browser import chromium_path, launch, serve
from book.site import COURSE_OUT, is_notebook_source
from tests.system import ensure_tool, offline

ROOT = Path(__file__).resolve().parent.parent
# every MyST notebook in chapters/ and solutions/ (what the site executes and the tests read)
NOTEBOOK_SOURCES = [p for folder in ("chapters", "solutions") for p in sorted((ROOT / folder).glob("*.md"))
                    if is_notebook_source(p)]
# reaching a public address must fail inside the build's namespace; 1.1.1.1 is only dialled, never used
PROBE = ("import socket; s = socket.socket(); s.settimeout(3)\n"
         "try:\n    s.connect(('1.1.1.1', 443)); print('NETWORK REACHABLE')\n"
         "except OSError as e:\n    print('network cut:', e)\n")


def _run_id() -> str:
    return os.environ.get("PYTEST_XDIST_TESTRUNUID", str(os.getpid()))


class SiteBuild:
    """A full (`--all`, warnings as errors) offline build of the book, shared by all workers of a run.

    Both builds of a run write into the same output folder, as `make book` and `make book
    SOLUTIONS=0` do in one checkout: the course site must land in its own folder."""

    def __init__(self, out: Path, solutions: bool):
        self.out, self.solutions = out, solutions
        kind = "with" if solutions else "without"
        self.html = out / "_build" / "html" if solutions else out / COURSE_OUT / "_build" / "html"
        self.build_dir = self.html.parent
        self.log = out / f"build-{kind}-solutions.log"

    def ensure(self) -> SiteBuild:
        if not self.solutions:
            site_build(True)  # the course site follows the full one and reuses its executions
        with FileLock(str(self.log) + ".lock"):
            if not self.log.exists():
                self.out.mkdir(parents=True, exist_ok=True)
                build = [sys.executable, "-m", "book.site", "--all", "--out", str(self.out),
                         "--solutions", str(int(self.solutions))]
                probe = subprocess.run(offline([sys.executable, "-c", PROBE]), capture_output=True, text=True)
                run = subprocess.run(offline(build), cwd=ROOT, capture_output=True, text=True,
                                     env=dict(os.environ, BOOK_PROGRESS="0"))
                self.log.write_text(f"{probe.stdout}{probe.stderr}\nexit status {run.returncode}\n"
                                    f"{run.stdout}\n{run.stderr}")
        return self

    @property
    def report(self) -> str:
        return self.log.read_text()

    @property
    def status(self) -> int:
        return int(self.report.split("exit status ", 1)[1].split("\n", 1)[0])


@functools.cache
def site_build(solutions: bool = True) -> SiteBuild:
    """The run's offline site build (with or without solutions), built on first use."""
    return SiteBuild(Path(tempfile.gettempdir()) / f"book-site-{_run_id()}", solutions).ensure()


@pytest.fixture(scope="session")
def built_site() -> Path:
    """The html folder of this run's full offline build; fails the test if the build failed."""
    build = site_build(True)
    if build.status != 0:
        pytest.fail(f"the site did not build (exit status {build.status}):\n{build.report[-6000:]}")
    return build.html


@pytest.fixture(scope="session")
def site_url(built_site: Path):
    """Base URL of the built site served on localhost."""
    with serve(built_site) as url:
        yield url


def ensure_chromium() -> str:
    """Path of the Chromium to drive, installing Debian's first if it is missing (as root)."""
    try:
        ensure_tool("chromium")
    except RuntimeError as exc:
        pytest.fail(str(exc))
    return chromium_path()


@pytest.fixture(scope="session")
def browser():
    """A headless Chromium driven by Playwright (which never downloads a browser of its own)."""
    from playwright.sync_api import sync_playwright

    ensure_chromium()
    profile = tempfile.mkdtemp(prefix="book-chromium-")
    with sync_playwright() as p:
        context = launch(p, Path(profile))
        yield context
        context.close()
    shutil.rmtree(profile, ignore_errors=True)
