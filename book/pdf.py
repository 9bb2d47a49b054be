"""The whole book as one PDF, printed by headless Chromium from the built site (`make pdf`).

Nothing is executed again: the pages of the built site (`_build/html`, or the course site) are
joined in the order of `_toc.yml` into one HTML document — a title page, the contents, every page
with its typeset math, figures and each exploration's default frame — which Chromium prints
after MathJax has typeset it. Ids that two pages share are made unique and links between pages
become links inside the PDF. Run as `python -m book.pdf [--site DIR] [--out FILE]`.
"""

from __future__ import annotations

import argparse
import re
import shutil
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urljoin, urlparse

import yaml
from bs4 import BeautifulSoup

from book.browser import ChromiumMissing, launch, serve
from book.site import ROOT, read_toc

VIRTUAL_PAGE = "/chapters/__book__.html"  # every page lives one folder deep, so relative URLs still work
TYPESET_TIMEOUT_MS = 120_000
PRINT_CSS = """
@page { size: A4; margin: 16mm 14mm 18mm 14mm; }
html, body { background: white; }
.pdf-cover, .pdf-toc, .pdf-part, .pdf-page { break-before: page; }
.pdf-cover { padding-top: 30vh; text-align: center; }
.pdf-cover h1 { font-size: 2.6rem; } .pdf-cover p { font-size: 1.2rem; }
.pdf-toc a { display: block; text-decoration: none; color: inherit; margin: .15em 0; }
.pdf-toc .toc-section { padding-left: 1.5em; font-size: .95em; }
.pdf-toc .toc-part { font-weight: 600; margin-top: 1em; }
.pdf-part h1 { margin-top: 35vh; text-align: center; font-size: 2.2rem; }
.headerlink, button, .toggle-button, details > summary { display: none !important; }
pre { white-space: pre-wrap; overflow-wrap: anywhere; }
img, svg, figure { max-width: 100%; break-inside: avoid; }
h1, h2, h3, h4 { break-after: avoid; }
"""


@dataclass
class Page:
    """One page of the site, as it goes into the PDF."""

    docname: str  # e.g. chapters/optimizers
    part: str | None  # the toc caption it sits under
    level: int  # 0 for a chapter, 1 for one of its sections
    title: str = ""
    body: str = ""

    @property
    def anchor(self) -> str:
        return "page-" + self.docname.replace("/", "-")


def reading_order(toc: dict) -> list[Page]:
    """Every page of a `_toc.yml` mapping, root first, in reading order."""
    pages = [Page(toc["root"], None, 0)]

    def walk(entries: list, part: str | None, level: int) -> None:
        for entry in entries:
            if "file" in entry:
                pages.append(Page(str(entry["file"]), part, level))
            walk(entry.get("sections", []) + entry.get("chapters", []), part, level + 1)

    for part in toc.get("parts", []):
        walk(part.get("chapters", []), part.get("caption"), 0)
    walk(toc.get("chapters", []), None, 0)
    return pages


def _article(path: Path):
    """A built page's <article>, parsed, without the frames of its explorations (the PDF shows the
    default one, which is the <img> itself)."""
    text = path.read_text(encoding="utf-8")
    start, end = text.find('<article class="bd-article"'), text.rfind("</article>")
    text = re.sub(r'<script type="application/json" class="bx-data">.*?</script>', "",
                  text[start:end + len("</article>")], flags=re.S)
    return BeautifulSoup(text, "lxml").article


def _head(path: Path):
    """A built page's <head>, parsed."""
    text = path.read_text(encoding="utf-8")
    return BeautifulSoup(text[:text.find("</head>") + len("</head>")], "lxml").head


def _ids(article) -> set[str]:
    return {tag["id"] for tag in article.find_all(id=True)}


def _target(href: str, page: Page, anchors: dict[str, Page], shared: set[str]) -> str | None:
    """Where a link of `page` points inside the PDF: '#id', or None when it leaves the book."""
    url = urlparse(urljoin(f"http://book/{page.docname}.html", href))
    if url.netloc != "book":
        return href  # another site: keep the link
    docname = url.path.lstrip("/").removesuffix(".html")
    target = anchors.get(docname)
    if target is None:
        return None
    if not url.fragment:
        return f"#{target.anchor}"
    return f"#{_unique(target, url.fragment, shared)}"


def _unique(page: Page, element_id: str, shared: set[str]) -> str:
    """An element id made unique across the book (ids that several pages use get the page's name)."""
    return f"{page.anchor}--{element_id}" if element_id in shared else element_id


def _clean(article, page: Page, anchors: dict[str, Page], shared: set[str]) -> None:
    """Make one page's article printable in the book: no scripts or buttons, solutions open, unique ids."""
    for tag in article.find_all(["script", "button"]):
        tag.decompose()
    for tag in article.select("a.headerlink"):
        tag.decompose()
    for details in article.find_all("details"):
        details["open"] = ""
    for tag in article.find_all(id=True):
        tag["id"] = _unique(page, tag["id"], shared)
    for link in article.find_all("a", href=True):
        target = _target(link["href"], page, anchors, shared)
        if target is None:
            del link["href"]
        else:
            link["href"] = target


def read_pages(site: Path, toc: dict) -> list[Page]:
    """The toc's pages, with their titles and cleaned bodies."""
    pages = [p for p in reading_order(toc) if (site / f"{p.docname}.html").exists()]
    articles = {p.docname: _article(site / f"{p.docname}.html") for p in pages}
    counts: dict[str, int] = {}
    for article in articles.values():
        for element_id in _ids(article):
            counts[element_id] = counts.get(element_id, 0) + 1
    shared = {element_id for element_id, n in counts.items() if n > 1}
    anchors = {p.docname: p for p in pages}
    for page in pages:
        article = articles[page.docname]
        heading = article.find("h1")
        page.title = heading.get_text(" ", strip=True).rstrip("#¶ ") if heading else page.docname
        _clean(article, page, anchors, shared)
        page.body = article.decode_contents()
    return pages


def book_head(head, title: str) -> str:
    """The <head> of the book: a page's stylesheets and MathJax (from its <head>), and the print styles."""
    keep = [str(link) for link in head.find_all("link", rel="stylesheet")]
    keep += [str(style) for style in head.find_all("style")]
    for script in head.find_all("script"):
        if "mathjax" in (script.get("src") or "").lower() or "MathJax" in script.get_text():
            keep.append(str(script))
    return (f'<meta charset="utf-8"><title>{title}</title>' + "".join(keep) + f"<style>{PRINT_CSS}</style>")


def _contents(pages: list[Page]) -> str:
    """The table of contents: parts, chapters and their sections, each a link to its page."""
    rows, part = ['<nav class="pdf-toc"><h1>Contents</h1>'], None
    for page in pages:
        if page.part != part and page.part:
            rows.append(f'<div class="toc-part">{page.part}</div>')
        part = page.part
        kind = "toc-section" if page.level else "toc-chapter"
        rows.append(f'<a class="{kind}" href="#{page.anchor}">{page.title}</a>')
    return "".join(rows) + "</nav>"


def compose(pages: list[Page], head, config: dict) -> str:
    """The book as one HTML document: title page, contents, then each part and its pages."""
    title = config.get("title", "The book")
    body = [f'<section class="pdf-cover"><h1>{title}</h1><p>{config.get("author", "")}</p>'
            f'<p>{time.strftime("%B %Y")}</p></section>', _contents(pages)]
    part = None
    for page in pages:
        if page.part and page.part != part:
            body.append(f'<section class="pdf-part"><h1>{page.part}</h1></section>')
        part = page.part
        body.append(f'<section class="pdf-page" id="{page.anchor}">{page.body}</section>')
    return (f'<!DOCTYPE html><html lang="en" data-theme="light" data-mode="light"><head>{book_head(head, title)}'
            # not the theme's .bd-main/.bd-content, whose print styles hide each page's first heading
            '</head><body><main class="bd-article-container"><article class="bd-article">'
            + "".join(body) + "</article></main></body></html>")


def _print_tab(tab, url: str, out: Path) -> None:
    """Open `url` in `tab`, wait for MathJax and the images, and print it to the PDF `out`."""
    tab.goto(url, wait_until="load", timeout=TYPESET_TIMEOUT_MS)
    tab.wait_for_function("window.MathJax && MathJax.startup && MathJax.startup.promise",
                          timeout=TYPESET_TIMEOUT_MS)
    tab.evaluate("MathJax.startup.promise")
    tab.evaluate("Promise.all(Array.from(document.images, i => i.decode().catch(() => null)))")
    out.parent.mkdir(parents=True, exist_ok=True)
    tab.pdf(path=str(out), format="A4", scale=0.8, print_background=True, outline=True, tagged=True,
            display_header_footer=True, header_template="<span></span>",
            footer_template='<div style="font-size:8px;width:100%;text-align:center">'
                            '<span class="pageNumber"></span></div>')


def _print(site: Path, html: str, out: Path) -> None:
    """Print `html`, served beside the site so that its relative URLs resolve, to the PDF `out`."""
    from playwright.sync_api import sync_playwright

    with serve(site, {VIRTUAL_PAGE: html}) as base, sync_playwright() as p, \
            tempfile.TemporaryDirectory(prefix="book-pdf-") as profile:
        context = launch(p, Path(profile))
        _print_tab(context.new_page(), base + VIRTUAL_PAGE, out)
        context.close()


def build(site: Path, out: Path, root: Path = ROOT) -> Path:
    """Print the site built in `site` (its pages in the order of root/_toc.yml) to the PDF `out`."""
    if not (site / "index.html").exists():
        raise FileNotFoundError(f"no site in {site}: run 'make book' first")
    toc = read_toc(root / "_toc.yml")
    config = yaml.safe_load((root / "_config.yml").read_text(encoding="utf-8"))
    pages = read_pages(site, toc)
    _print(site, compose(pages, _head(site / f"{pages[0].docname}.html"), config), out)
    return out


def main(argv: list[str] | None = None) -> int:
    """Command line: `python -m book.pdf --site _build/html --out _build/pdf/book.pdf`."""
    parser = argparse.ArgumentParser(prog="python -m book.pdf", description=__doc__.splitlines()[0])
    parser.add_argument("--site", type=Path, default=ROOT / "_build" / "html", help="the built site")
    parser.add_argument("--out", type=Path, default=None, help="the PDF (default: <site>/../pdf/book.pdf)")
    parser.add_argument("--copy-to-site", action="store_true",
                        help="also put the PDF in the site as book.pdf, where its download menu points")
    args = parser.parse_args(argv)
    out = args.out or args.site.parent / "pdf" / "book.pdf"
    start = time.perf_counter()
    try:
        build(args.site, out)
    except (FileNotFoundError, ChromiumMissing) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    if args.copy_to_site:
        shutil.copyfile(out, args.site / "book.pdf")
    print(f"The book is in {out} ({out.stat().st_size / 2**20:.1f} MiB, {time.perf_counter() - start:.0f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
