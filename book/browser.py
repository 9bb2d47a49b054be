"""Headless Chromium for the book's PDF and the browser tests: where it is, how it starts, and a
local web server for a built site, so that a page is read as a reader's browser reads it.

Playwright drives the Chromium already on the machine (Debian's `chromium`, or BOOK_CHROMIUM);
it never downloads a browser of its own.
"""

from __future__ import annotations

import functools
import http.server
import os
import shutil
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

DEBIAN_CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-quic"]
INSTALL_HINT = ("install Debian's Chromium (`sudo apt-get install chromium`), "
                "or point BOOK_CHROMIUM at a Chromium or Chrome binary")


class ChromiumMissing(RuntimeError):
    """No Chromium on this machine: the message says how to get one."""


def chromium_path() -> str | None:
    """The Chromium binary to drive: BOOK_CHROMIUM, else Debian's, else `chromium` on PATH; None if none."""
    candidates = [os.environ.get("BOOK_CHROMIUM"), DEBIAN_CHROMIUM, shutil.which("chromium")]
    return next((c for c in candidates if c and Path(c).is_file()), None)


def require_chromium() -> str:
    """chromium_path(), or ChromiumMissing with what to install."""
    path = chromium_path()
    if path is None:
        raise ChromiumMissing(f"no Chromium found: {INSTALL_HINT}")
    return path


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    """Serves a folder, plus in-memory pages (path -> HTML), without logging each request."""

    extra: dict[str, bytes] = {}

    def do_GET(self):  # noqa: N802 (http.server's naming)
        body = self.extra.get(self.path.split("?")[0])
        if body is None:
            return super().do_GET()
        self.send_response(200)
        self.send_header("Content-Type", "text/html; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


@contextmanager
def serve(folder: Path, extra: dict[str, str] | None = None) -> Iterator[str]:
    """Serve `folder` (and `extra` pages, by URL path) on 127.0.0.1; yield the base URL."""
    handler_class = type("Handler", (_QuietHandler,), {"extra": {k: v.encode() for k, v in (extra or {}).items()}})
    handler = functools.partial(handler_class, directory=str(folder))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def launch(playwright, profile: Path):
    """A headless Chromium context (a persistent profile in `profile`) driven by `playwright`."""
    return playwright.chromium.launch_persistent_context(
        str(profile), executable_path=require_chromium(), headless=True, args=CHROMIUM_ARGS)
