"""What a reader gets: every page passes axe-core's WCAG 2 A and AA rules, code never scrolls
sideways at 1280 px, and the whole book prints to one PDF.

The browser checks visit every page of the built site once, in one tab, in sequence (the
`page_reports` fixture); each test then reads the part of the report it is about.
"""

from __future__ import annotations

import html
import re
import subprocess
import sys
import time
from pathlib import Path

import jupytext
import pytest
import yaml

from book.site import is_notebook_source
from tests.conftest import ROOT
from tests.system import ensure_tool, offline

AXE = ROOT / "vendor" / "node_modules" / "axe-core" / "axe.min.js"
WCAG_TAGS = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa", "wcag22aa"]
BLOCKING = {"serious", "critical"}
MAX_COLUMNS = 88
VIEWPORT = {"width": 1280, "height": 900}
# every code block whose box scrolls sideways: cell inputs and code in the text (outputs are printed
# text the reader does not have to read to the end)
OVERFLOWING_CODE = """() => {
  document.querySelectorAll('details').forEach(d => d.open = true);
  const blocks = document.querySelectorAll('article pre');
  return Array.from(blocks)
    .filter(pre => !pre.closest('.cell_output') && pre.scrollWidth > pre.clientWidth + 1)
    .map(pre => `${pre.scrollWidth - pre.clientWidth} px too wide: `
                + pre.innerText.split('\\n').reduce((a, b) => b.length > a.length ? b : a, ''));
}"""
RUN_AXE = """async (tags) => {
  const result = await axe.run(document, {runOnly: {type: 'tag', values: tags}, resultTypes: ['violations']});
  return result.violations.map(v => ({id: v.id, impact: v.impact, help: v.help,
                                      targets: v.nodes.slice(0, 3).map(n => n.target.join(' '))}));
}"""


def site_pages(site: Path) -> list[str]:
    """Every HTML page of a built site, relative to it: not assets, source copies or redirects."""
    skip = ("_static", "_sources", "_downloads", "_images")
    pages = [p for p in site.rglob("*.html") if p.relative_to(site).parts[0] not in skip]
    return sorted(p.relative_to(site).as_posix() for p in pages
                  if 'http-equiv="Refresh"' not in p.read_text(encoding="utf-8", errors="replace")[:300])


@pytest.fixture(scope="module")
def page_reports(browser, site_url, built_site) -> dict[str, dict]:
    """Per page: axe's WCAG A/AA violations and the code blocks that overflow, at 1280 px."""
    if not AXE.exists():
        pytest.fail(f"{AXE} is missing: run 'make vendor' (axe-core is pinned in vendor/package.json)")
    tab = browser.new_page()
    tab.set_viewport_size(VIEWPORT)
    reports, start = {}, time.perf_counter()
    for page in site_pages(built_site):
        tab.goto(f"{site_url}/{page}", wait_until="load")
        tab.evaluate("window.MathJax && MathJax.startup ? MathJax.startup.promise : null")
        tab.add_script_tag(path=str(AXE))
        reports[page] = {"axe": tab.evaluate(RUN_AXE, WCAG_TAGS), "overflow": tab.evaluate(OVERFLOWING_CODE)}
    tab.close()
    print(f"checked {len(reports)} pages in {time.perf_counter() - start:.0f} s")
    return reports


def test_every_page_passes_axe_wcag_a_and_aa(page_reports):
    problems = [f"{page}: [{v['impact']}] {v['id']}: {v['help']} — {', '.join(v['targets'])}"
                for page, report in page_reports.items() for v in report["axe"] if v["impact"] in BLOCKING]
    assert not problems, f"{len(problems)} serious or critical WCAG 2 A/AA violations:\n" + "\n".join(problems)


def test_no_code_block_scrolls_sideways_at_1280_px(page_reports):
    wide = [f"{page}: {block}" for page, report in page_reports.items() for block in report["overflow"]]
    assert not wide, "code wider than its box:\n" + "\n".join(wide[:30])


def test_execution_statistics_say_the_status_in_words(built_site):
    page = (built_site / "chapters" / "execution-statistics.html").read_text(encoding="utf-8")
    assert "succeeded" in page
    assert "✅" not in page and "❌" not in page


def notebook_sources() -> list[Path]:
    """Every MyST notebook in chapters/ and solutions/."""
    return [p for folder in ("chapters", "solutions") for p in sorted((ROOT / folder).glob("*.md"))
            if is_notebook_source(p)]


@pytest.mark.parametrize("path", notebook_sources(), ids=lambda p: f"{p.parent.name}/{p.name}")
def test_code_cell_lines_fit_in_88_columns(path):
    """The site's code column holds about 88 characters at 1280 px: a longer line scrolls sideways."""
    long = [f"code cell {n}, line {i}: {len(line)} characters: {line.strip()[:60]}…"
            for n, cell in enumerate((c for c in jupytext.read(path).cells if c.cell_type == "code"), start=1)
            for i, line in enumerate(cell.source.splitlines(), start=1) if len(line) > MAX_COLUMNS]
    assert not long, f"{path.relative_to(ROOT)}: {len(long)} lines over {MAX_COLUMNS} columns:\n" + "\n".join(long)


HIDDEN_INPUT = {"remove-input", "remove-cell", "hide-input", "hide-cell"}
MAX_CELL_LINES = 30


@pytest.mark.parametrize("path", notebook_sources(), ids=lambda p: f"{p.parent.name}/{p.name}")
def test_visible_code_cells_are_at_most_30_lines(path):
    """House style: one concept per code cell, at most 30 lines for any cell a reader sees."""
    cells = [c for c in jupytext.read(path).cells if c.cell_type == "code"]
    long = [f"code cell {n} ({len(c.source.splitlines())} lines): {c.source.strip()[:60]}…"
            for n, c in enumerate(cells, start=1)
            if len(c.source.splitlines()) > MAX_CELL_LINES
            and not HIDDEN_INPUT & set(c.metadata.get("tags", []))]
    assert not long, f"{path.relative_to(ROOT)}: {len(long)} cells over {MAX_CELL_LINES} lines:\n" + "\n".join(long)


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
    toc = yaml.safe_load((ROOT / "_toc.yml").read_text())
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
