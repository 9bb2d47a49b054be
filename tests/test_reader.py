"""What a reader gets: every page passes axe-core's WCAG 2 A and AA rules, code never scrolls
sideways at 1280 px, and code cells stay short (the PDF is tests/test_pdf.py).

The browser checks visit every page of the built site once, in one tab, in sequence (the
`page_reports` fixture); each test then reads the part of the report it is about.
"""

from __future__ import annotations

import functools
import time
from pathlib import Path

import jupytext
import pytest

from tests.conftest import NOTEBOOK_SOURCES, ROOT

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


@functools.cache
def code_cells(path: Path) -> list:
    """The code cells of a MyST notebook source, read once for all the source tests."""
    return [c for c in jupytext.read(path).cells if c.cell_type == "code"]


@pytest.mark.parametrize("path", NOTEBOOK_SOURCES, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_code_cell_lines_fit_in_88_columns(path):
    """The site's code column holds about 88 characters at 1280 px: a longer line scrolls sideways."""
    long = [f"code cell {n}, line {i}: {len(line)} characters: {line.strip()[:60]}…"
            for n, cell in enumerate(code_cells(path), start=1)
            for i, line in enumerate(cell.source.splitlines(), start=1) if len(line) > MAX_COLUMNS]
    assert not long, f"{path.relative_to(ROOT)}: {len(long)} lines over {MAX_COLUMNS} columns:\n" + "\n".join(long)


HIDDEN_INPUT = {"remove-input", "remove-cell", "hide-input", "hide-cell"}
MAX_CELL_LINES = 30


@pytest.mark.parametrize("path", NOTEBOOK_SOURCES, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_visible_code_cells_are_at_most_30_lines(path):
    """House style: one concept per code cell, at most 30 lines for any cell a reader sees."""
    cells = code_cells(path)
    long = [f"code cell {n} ({len(c.source.splitlines())} lines): {c.source.strip()[:60]}…"
            for n, c in enumerate(cells, start=1)
            if len(c.source.splitlines()) > MAX_CELL_LINES
            and not HIDDEN_INPUT & set(c.metadata.get("tags", []))]
    assert not long, f"{path.relative_to(ROOT)}: {len(long)} cells over {MAX_CELL_LINES} lines:\n" + "\n".join(long)
