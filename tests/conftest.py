"""Shared fixtures: the site built once per test run (offline), a local server for it, a browser."""

from __future__ import annotations

import functools
import http.server
import os
import shlex
import shutil
import subprocess
import sys
import tempfile
import threading
from pathlib import Path

import pytest
from filelock import FileLock

from book.site import COURSE_OUT

ROOT = Path(__file__).resolve().parent.parent
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-quic"]
# reaching a public address must fail inside the build's namespace; 1.1.1.1 is only dialled, never used
PROBE = ("import socket; s = socket.socket(); s.settimeout(3)\n"
         "try:\n    s.connect(('1.1.1.1', 443)); print('NETWORK REACHABLE')\n"
         "except OSError as e:\n    print('network cut:', e)\n")


def offline(command: list[str]) -> list[str]:
    """`command` wrapped to run in a new network namespace that has only loopback (up)."""
    inner = "ip link set lo up && exec " + shlex.join(command)
    return ["unshare", "--net", "sh", "-c", inner]


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
    class QuietHandler(http.server.SimpleHTTPRequestHandler):
        def log_message(self, *args):
            pass

    handler = functools.partial(QuietHandler, directory=str(built_site))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()


def ensure_chromium() -> str:
    """Path of Debian's Chromium, installing the package first if it is missing."""
    if not Path(CHROMIUM).exists():
        with FileLock(os.path.join(tempfile.gettempdir(), "book-chromium-install.lock")):
            if not Path(CHROMIUM).exists():
                env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
                subprocess.run(["apt-get", "update", "-q"], check=True, env=env)
                subprocess.run(["apt-get", "install", "-y", "-q", "chromium"], check=True, env=env)
    return CHROMIUM


@pytest.fixture(scope="session")
def browser():
    """A headless Debian Chromium driven by Playwright (which never downloads a browser of its own)."""
    from playwright.sync_api import sync_playwright

    profile = tempfile.mkdtemp(prefix="book-chromium-")
    with sync_playwright() as p:
        context = p.chromium.launch_persistent_context(
            profile, executable_path=ensure_chromium(), headless=True, args=CHROMIUM_ARGS)
        yield context
        context.close()
    shutil.rmtree(profile, ignore_errors=True)
