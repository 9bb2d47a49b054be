"""The whole book prints to one PDF, as `make pdf` prints it: every chapter, typeset math, every
figure. (A module of its own, so that printing runs beside the browser pass of
tests/test_reader.py on the other test worker instead of after it.)"""

from __future__ import annotations

import html
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest

from book.site import read_toc
from tests.conftest import ROOT
from tests.system import ensure_tool, offline


@pytest.fixture(scope="module")
def book_pdf(built_site, tmp_path_factory) -> tuple[Path, float]:
    """The book printed from this run's site as `make pdf` prints it, with the network cut off;
    and how long that took."""
    ensure_tool("chromium")
    ensure_tool("pdftotext")
    out = tmp_path_factory.mktemp("pdf") / "book.pdf"
    start = time.perf_counter()
    run = subprocess.run(offline([sys.executable, "-m", "book.pdf", "--site", str(built_site), "--out", str(out)]),
                         cwd=ROOT, capture_output=True, text=True)
    assert run.returncode == 0 and out.exists(), run.stdout + run.stderr
    return out, time.perf_counter() - start


def _pdf_text(pdf: Path) -> str:
    return subprocess.run(["pdftotext", str(pdf), "-"], capture_output=True, text=True, check=True).stdout


def _titles() -> list[str]:
    """The title (first `# ` heading) of every page in _toc.yml's parts."""
    toc = read_toc(ROOT / "_toc.yml")
    titles = []
    for part in toc["parts"]:
        for chapter in part["chapters"]:
            source = (ROOT / f"{chapter['file']}.md").read_text(encoding="utf-8")
            titles.append(re.search(r"^# (.+)$", source, re.M).group(1).strip())
    return titles


def test_pdf_has_contents_every_chapter_and_no_raw_tex(book_pdf):
    pdf, seconds = book_pdf
    text = " ".join(_pdf_text(pdf).split())
    missing = [t for t in _titles() if " ".join(t.split()) not in text]
    assert not missing, f"chapters missing from the PDF: {missing}"
    assert "Contents" in text
    # math left untypeset: display math, environments, inline math in MyST's \( \) delimiters (code
    # cells may hold TeX in strings, e.g. a plot label, so command names alone prove nothing)
    raw = [tex for tex in ("$$", "\\begin{", "\\(", "\\[") if tex in text]
    assert not raw, f"raw TeX in the PDF: {raw}"
    print(f"book.pdf: {pdf.stat().st_size / 2**20:.1f} MiB, printed in {seconds:.0f} s")


def test_pdf_shows_every_figure(book_pdf, built_site):
    """Each figure's caption is in the PDF, and it holds at least as many images as the book has figures."""
    pdf, _ = book_pdf
    text = " ".join(_pdf_text(pdf).split())
    captions = []
    for page in built_site.glob("chapters/*.html"):
        for caption in re.findall(r'<span class="caption-text">(.*?)</span>', page.read_text(), re.S):
            words = html.unescape(re.sub(r"<[^>]+>", "", caption)).split("\\(")[0]  # up to its first math
            captions.append(" ".join(words.split())[:50])
    assert captions, "no figure captions on the site"
    missing = [c for c in captions if c not in text]
    assert not missing, f"figure captions missing from the PDF: {missing[:5]}"
    listing = subprocess.run(["pdfimages", "-list", str(pdf)], capture_output=True, text=True, check=True).stdout
    images = sum(1 for row in listing.splitlines()[2:] if row.split()[2] == "image")
    assert images >= len(captions), f"{images} images in the PDF for {len(captions)} figures"


def test_download_menu_offers_the_book_pdf(built_site):
    page = (built_site / "chapters" / "preface.html").read_text(encoding="utf-8")
    assert 'href="../book.pdf"' in page and "the book (.pdf)" in page
