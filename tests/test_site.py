"""The site: builds offline with warnings as errors, serves every asset itself, typesets math."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import urlparse

import pytest

from book.execution import toc_notebooks
from book.site import build, read_toc, toc_files, toc_without_solutions
from tests.conftest import ROOT, site_build

PARTS = ["Foundations", "Training deep networks", "Vision", "Sequences and language", "Generative models",
         "Beyond"]
FRONT_AND_BACK = ["Getting started", "About this book"]
CSS_URL = re.compile(r"(?:url\(\s*[\"']?|@import\s+[\"'])([^\"')]+)")


def _toc_notebook_names(toc: dict) -> list[str]:
    """The notebooks `_toc.yml` names, as its entries spell them (e.g. `chapters/optimizers`)."""
    return [str(p.relative_to(ROOT).with_suffix("")) for p in toc_notebooks(ROOT, toc)]


def _is_remote(url: str) -> bool:
    return url.startswith("//") or urlparse(url).scheme in ("http", "https", "ftp", "ws", "wss")


def test_site_builds_offline_with_warnings_as_errors(built_site):
    report = site_build(True).report
    assert "network cut" in report and "NETWORK REACHABLE" not in report, report[:500]
    assert (built_site / "chapters" / "preface.html").exists()
    assert (built_site / "index.html").exists()


class _FetchedURLs(HTMLParser):
    """Collects the URLs a browser fetches to render a page (not the links a reader may follow)."""

    LINK_RELS = {"stylesheet", "icon", "preload", "modulepreload", "manifest", "prefetch", "font"}

    def __init__(self):
        super().__init__()
        self.urls: list[str] = []

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag in ("script", "img", "iframe", "source", "video", "audio", "embed") and a.get("src"):
            self.urls.append(a["src"])
        if tag == "link" and set((a.get("rel") or "").split()) & self.LINK_RELS and a.get("href"):
            self.urls.append(a["href"])
        if tag == "object" and a.get("data"):
            self.urls.append(a["data"])


def test_no_page_loads_anything_from_another_host(built_site):
    remote = []
    for page in built_site.rglob("*.html"):
        parser = _FetchedURLs()
        parser.feed(page.read_text(errors="replace"))
        remote += [f"{page.relative_to(built_site)}: {u}" for u in parser.urls if _is_remote(u)]
    for sheet in built_site.rglob("*.css"):
        remote += [f"{sheet.relative_to(built_site)}: {u}" for u in CSS_URL.findall(sheet.read_text(errors="replace"))
                   if _is_remote(u)]
    assert not remote, "assets from other hosts:\n" + "\n".join(remote[:20])


def test_toc_lists_only_written_chapters_in_the_books_parts():
    toc = read_toc(ROOT / "_toc.yml")
    captions = [p["caption"] for p in toc["parts"]]
    assert set(captions) <= set(PARTS + FRONT_AND_BACK), captions
    topic_parts = [c for c in captions if c in PARTS]
    assert topic_parts == [p for p in PARTS if p in topic_parts], "parts out of reading order"
    for part in toc["parts"]:
        assert part["chapters"], f"empty part {part['caption']}"
        for name in toc_files(part["chapters"]):
            source = next((ROOT / f"{name}{e}" for e in (".md", ".ipynb") if (ROOT / f"{name}{e}").exists()), None)
            assert source is not None, f"_toc.yml lists {name}, which does not exist"
            body = re.sub(r"^---.*?---", "", source.read_text(), flags=re.S).strip()
            assert len(body.splitlines()) > 5, f"{name} is an empty page"


def test_toc_without_solutions_drops_every_solutions_entry():
    toc = {"root": "chapters/preface", "parts": [{"caption": "Training deep networks", "chapters": [
        {"file": "chapters/optimizers", "sections": [{"file": "solutions/optimizers"}]},
        {"file": "solutions/stray"}]}]}
    stripped = toc_without_solutions(toc)
    assert stripped["parts"][0]["chapters"] == [{"file": "chapters/optimizers"}]
    assert "solutions/" in str(toc), "the input must not be modified"


def test_execution_statistics_page_lists_every_executed_notebook(built_site):
    page = (built_site / "chapters" / "execution-statistics.html").read_text()
    toc = read_toc(ROOT / "_toc.yml")
    notebooks = _toc_notebook_names(toc)
    for name in notebooks:
        assert name.split("/")[-1] in page, f"{name} missing from the execution statistics"


def test_every_chapter_page_offers_its_executed_notebook(built_site):
    import nbformat

    toc = read_toc(ROOT / "_toc.yml")
    pages = _toc_notebook_names(toc)
    assert pages
    for name in pages:
        html = (built_site / f"{name}.html").read_text()
        link = f"_sources/{name}.ipynb"
        assert link in html, f"{name}.html has no .ipynb download"
        notebook = nbformat.read(built_site / link, as_version=4)
        outputs = [o for c in notebook.cells if c.cell_type == "code" for o in c.get("outputs", [])]
        assert outputs, f"{link} carries no outputs"


def test_every_image_on_the_site_has_alt_text(built_site):
    missing = []
    for page in built_site.rglob("*.html"):
        for tag in re.findall(r"<img\b[^>]*>", page.read_text(errors="replace")):
            if not re.search(r"\balt=\"[^\"]+\"", tag):
                missing.append(f"{page.relative_to(built_site)}: {tag[:120]}")
    assert not missing, "images without alt text:\n" + "\n".join(missing[:20])


def _minibook(tmp_path: Path, cells: list[str]) -> Path:
    (tmp_path / "chapters").mkdir()
    config = (ROOT / "_config.yml").read_text().replace("html_static_path: [_vendor]", "html_static_path: []")
    (tmp_path / "_config.yml").write_text(config)
    (tmp_path / "_toc.yml").write_text("format: jb-book\nroot: chapters/broken\n")
    header = ("---\njupytext:\n  text_representation:\n    extension: .md\n    format_name: myst\n"
              "kernelspec:\n  display_name: Python 3\n  language: python\n  name: python3\n---\n# Broken\n\n")
    body = "".join(f"```{{code-cell}} ipython3\n{c}\n```\n\n" for c in cells)
    (tmp_path / "chapters" / "broken.md").write_text(header + body)
    return tmp_path


def test_a_cell_that_raises_fails_the_build_naming_notebook_and_cell(tmp_path, capfd):
    book_dir = _minibook(tmp_path, ["x = 1", "raise ValueError('planted failure')"])
    for attempt in ("first build", "unchanged rebuild"):
        assert build(root=book_dir) != 0, attempt
        err = capfd.readouterr().err
        assert "chapters/broken.md, code cell 2 (`raise ValueError('planted failure')`)" in err, err[-2000:]
        assert "ValueError: planted failure" in err


def test_a_kernel_that_dies_while_starting_is_started_again_but_a_failing_cell_is_not(
        tmp_path, monkeypatch):
    """On a busy machine a kernel can die before it answers (a TCP port taken between choosing
    and binding it): no cell ran, so the notebook gets a fresh kernel; a cell's error does not."""
    from types import SimpleNamespace

    import jupyter_cache.executors.utils as utils

    import book.execution as execution

    book_dir = _minibook(tmp_path, ["x = 1"])
    calls = []

    def flaky(notebook, **kwargs):
        calls.append(1)
        if len(calls) == 1:
            return SimpleNamespace(err=RuntimeError(), exc_string=f"RuntimeError: {execution.KERNEL_NEVER_STARTED}",
                                   time=0.0)
        return SimpleNamespace(err=None, exc_string="", time=0.5)

    monkeypatch.setattr(utils, "single_nb_execution", flaky)
    _, seconds, error = execution._execute(str(book_dir / "chapters" / "broken.md"))
    assert (error, seconds, len(calls)) == (None, 0.5, 2)

    calls.clear()
    monkeypatch.setattr(utils, "single_nb_execution", lambda notebook, **kwargs: calls.append(1) or
                        SimpleNamespace(err=ValueError(), exc_string="ValueError: planted", time=0.1))
    _, _, error = execution._execute(str(book_dir / "chapters" / "broken.md"))
    assert error == "ValueError: planted" and len(calls) == 1


def test_make_says_what_to_install_without_venv(tmp_path):
    fake = tmp_path / "python-without-venv"
    fake.write_text("#!/bin/sh\necho 'No module named venv' >&2\nexit 1\n")
    fake.chmod(0o755)
    run = subprocess.run(["make", "-s", "setup", f"PYTHON={fake}", f"VENV={tmp_path}/venv"], cwd=ROOT,
                         capture_output=True, text=True)
    assert run.returncode != 0
    assert "apt-get install python3-venv" in run.stdout + run.stderr


def test_without_root_the_suite_says_what_to_install(monkeypatch):
    """A contributor without root: the offline build uses a user namespace, and a missing browser
    is named with the command that installs it (`make test` prints this before any test runs)."""
    import tests.system as system

    monkeypatch.setattr(system, "is_root", lambda: False)
    monkeypatch.setattr(system, "chromium_path", lambda: None)
    assert system.offline(["true"])[:4] == ["unshare", "--user", "--map-root-user", "--net"]
    assert any("sudo apt-get install chromium" in problem for problem in system.problems())
    with pytest.raises(RuntimeError, match="BOOK_CHROMIUM"):
        system.ensure_tool("chromium")


def _first_chapter() -> str:
    toc = read_toc(ROOT / "_toc.yml")
    chapters = [c["file"] for p in toc["parts"] if p["caption"] in PARTS for c in p["chapters"]]
    assert chapters, "_toc.yml lists no chapter"
    return f"{chapters[0]}.html"


@pytest.mark.parametrize("page", ["chapters/preface.html", "first chapter"])
def test_browser_renders_math_offline_without_console_errors(browser, site_url, built_site, page):
    page = _first_chapter() if page == "first chapter" else page
    tab = browser.new_page()
    problems, foreign = [], []
    tab.on("console", lambda m: problems.append(f"console {m.type}: {m.text}") if m.type == "error" else None)
    tab.on("pageerror", lambda e: problems.append(f"page error: {e}"))
    tab.on("request", lambda r: foreign.append(r.url) if not r.url.startswith((site_url, "data:", "blob:")) else None)
    tab.goto(f"{site_url}/{page}", wait_until="networkidle")
    tab.wait_for_function("window.MathJax && MathJax.startup && MathJax.startup.promise", timeout=20000)
    tab.evaluate("MathJax.startup.promise")
    typeset = tab.locator("mjx-container").count()
    text = tab.inner_text("main")
    shot = Path(site_build(True).out) / (page.replace("/", "_") + ".png")
    tab.screenshot(path=str(shot), full_page=False)
    tab.close()
    assert typeset > 0, f"no MathJax output on {page} (screenshot {shot})"
    assert "$$" not in text and not re.search(r"\\(frac|mathbb|sum)\b", text), f"raw TeX on {page}"
    assert not problems, "\n".join(problems)
    assert not foreign, f"requests to other hosts: {foreign}"


def test_ruff_is_clean():
    ruff = shutil.which("ruff", path=str(Path(sys.executable).parent))
    run = subprocess.run([ruff, "check", "book", "tests"], cwd=ROOT, capture_output=True, text=True)
    assert run.returncode == 0, run.stdout + run.stderr
