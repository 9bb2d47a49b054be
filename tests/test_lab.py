"""JupyterLab as `make lab` sets it up: text notebooks open as notebooks, explorations are live widgets."""

from __future__ import annotations

import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import pytest

from tests.conftest import ROOT

DEMO = """---
jupytext:
  text_representation:
    extension: .md
    format_name: myst
kernelspec:
  display_name: Python 3
  language: python
  name: python3
---
# Live exploration

```{code-cell} ipython3
import book

def plot(ax, scale, shape):
    \"\"\"A line whose slope and marker follow the controls.\"\"\"
    ax.plot([0, 1, 2], [0, scale, 2 * scale], "o-" if shape == "dots" else "-")

book.explore(plot, scale=[1.0, 2.0, 3.0], shape=["dots", "line"])
```
"""


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    """A JupyterLab server of this environment (with the settings `make setup` writes) on a copy of a chapter."""
    overrides = Path(sys.prefix, "share", "jupyter", "lab", "settings", "overrides.json")
    assert overrides.exists(), "make setup writes JupyterLab's overrides.json into the environment"
    folder = tmp_path_factory.mktemp("lab")
    shutil.copy(ROOT / "chapters" / "optimizers.md", folder)
    (folder / "demo.md").write_text(DEMO)
    port = _free_port()
    server = subprocess.Popen(
        [str(Path(sys.executable).with_name("jupyter")), "lab", "--no-browser", f"--port={port}",
         "--ServerApp.ip=127.0.0.1", "--IdentityProvider.token=", "--ServerApp.password=", "--allow-root",
         f"--notebook-dir={folder}"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    for _ in range(120):
        try:
            urllib.request.urlopen(f"{url}/lab", timeout=1)
            break
        except OSError:
            time.sleep(0.5)
    yield url
    server.terminate()
    try:
        server.wait(timeout=10)
    except subprocess.TimeoutExpired:
        server.kill()


def test_a_chapter_opens_as_a_notebook_not_as_text(browser, lab):
    page = browser.new_page()
    page.goto(f"{lab}/lab/workspaces/chapter/tree/optimizers.md?reset")
    page.wait_for_selector(".jp-NotebookPanel .jp-Cell", timeout=90_000)
    assert page.locator(".jp-FileEditor").count() == 0
    # the notebook asks for its kernel (cells themselves render only as they scroll into view)
    page.wait_for_function("() => [...document.querySelectorAll('.jp-NotebookPanel .jp-KernelName')]"
                           ".some(e => e.textContent.includes('Python 3'))", timeout=90_000)
    page.close()


def test_an_exploration_is_a_live_widget_that_redraws(browser, lab):
    page = browser.new_page()
    page.goto(f"{lab}/lab/workspaces/demo/tree/demo.md?reset")  # a fresh workspace: only this notebook
    page.wait_for_selector(".jp-NotebookPanel .jp-CodeCell", timeout=90_000)
    # run the cell once the kernel is up (it starts with the notebook; a busy machine makes that slow)
    page.wait_for_selector(".jp-Notebook-ExecutionIndicator[data-status='idle']", timeout=120_000)
    # on a loaded machine a run request sent just as the kernel connects can be dropped (the
    # cell stays at `[ ]:`, the kernel idle): ask a second time before calling it a failure
    for attempt, wait_ms in enumerate((60_000, 120_000)):
        page.locator(".jp-NotebookPanel .jp-CodeCell .jp-InputArea-editor").first.click()
        page.keyboard.press("Shift+Enter")
        try:
            page.wait_for_selector(".jupyter-widgets select", timeout=wait_ms)
            break
        except Exception:
            if attempt == 1:
                shot = Path(tempfile.gettempdir()) / "book-lab-failure.png"
                page.screenshot(path=str(shot))
                raise AssertionError(f"no live exploration appeared; screenshot: {shot}") from None
    assert page.locator(".book-explore").count() == 0, "JupyterLab showed the static twin, not the widget"
    image = page.locator(".jp-OutputArea-output img").last
    before = image.get_attribute("src")
    page.locator(".jupyter-widgets select").first.select_option(index=1)
    page.wait_for_function("src => { const imgs = document.querySelectorAll('.jp-OutputArea-output img');"
                           " return imgs.length && imgs[imgs.length - 1].src !== src; }", arg=before, timeout=30_000)
    page.close()
