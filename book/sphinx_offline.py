"""A Sphinx extension that keeps the site self-contained.

Jupyter Book always loads sphinx-thebe, which points pages at a script on unpkg.com (and, on some
pages, declares it twice, a console error). The book has no live-kernel buttons — explorations
are static twins — so its scripts and styles are dropped. The extension also gives the site a
favicon, so that browsers do not log a 404 for /favicon.ico, and offers every notebook page as an
executed `.ipynb` in the page's download menu (the theme does that only when launch buttons are on),
and the whole book as one PDF (`book.pdf` at the site's root, written by `make pdf`).

The execution-statistics table says "succeeded" or "failed" in words: MyST-NB's emoji render as
an empty box where no emoji font is installed, and carry no text for a screen reader.

Hidden tests are the grader's: a solutions page is read, executed, offered and copied to
`_sources` without them (`public_text`), so no page, source copy or download shows one.
"""

from __future__ import annotations

from pathlib import Path

import nbformat
from docutils import nodes
from sphinx.transforms.post_transforms import SphinxPostTransform

ASSETS = Path(__file__).with_name("assets")
FAVICON = ASSETS / "favicon.svg"
STYLESHEET = "book.css"  # in ASSETS/static: code that fits 88 columns at 1280 px
BOOK_PDF = "book.pdf"  # where `make pdf` puts the book's PDF in the site


def public_text(docname: str, text: str) -> str:
    """A page's source as the site shows it: a solutions page loses its hidden-tests regions."""
    if not docname.startswith("solutions/"):
        return text
    from book.assign import strip_hidden

    return strip_hidden(text) + "\n"


def _strip_hidden_tests(app, docname: str, source: list[str]) -> None:
    source[0] = public_text(docname, source[0])


def _strip_copied_sources(app, exception) -> None:
    """Sphinx copies each page's file to `_sources` as it is on disk: copy the public text instead."""
    if exception is not None:
        return
    for copy in (Path(app.outdir) / "_sources" / "solutions").glob("*.md*"):
        docname = f"solutions/{copy.name.split('.md')[0]}"
        copy.write_text(public_text(docname, copy.read_text(encoding="utf-8")), encoding="utf-8")


def _is_thebe(asset) -> bool:
    name = getattr(asset, "filename", None) or str(asset)
    body = getattr(asset, "attributes", {}).get("body", "")
    return "thebe" in name.lower() or "THEBE_JS_URL" in body


def _drop_thebe(app, pagename, templatename, context, doctree) -> None:
    for key in ("script_files", "css_files"):
        if key in context:
            context[key] = [a for a in context[key] if not _is_thebe(a)]


def _offer_notebook(app, pagename, templatename, context, doctree) -> None:
    """Copy a MyST page's executed notebook next to its source, for the theme's download button."""
    executed = Path(app.outdir).parent / "jupyter_execute" / f"{pagename}.ipynb"
    if not str(context.get("sourcename", "")).endswith((".md", ".md.txt")) or not executed.exists():
        return
    target = Path(app.outdir) / "_sources" / f"{pagename}.ipynb"
    target.parent.mkdir(parents=True, exist_ok=True)
    nbformat.write(_with_outputs(app, nbformat.read(executed, as_version=4)), target)
    context["ipynb_source"] = f"{pagename}.ipynb"  # read by sphinx-book-theme's header buttons


def _with_outputs(app, notebook):
    """`notebook` with its outputs: MyST-NB writes a page taken from the execution cache to
    `jupyter_execute` without them, so they are merged in from the cache here."""
    if any(cell.get("outputs") for cell in notebook.cells):
        return notebook
    from jupyter_cache import get_cache

    path = app.env.mystnb_config.execution_cache_path or Path(app.outdir).parent / ".jupyter_cache"
    try:
        return get_cache(str(path)).merge_match_into_notebook(notebook)[1]
    except KeyError:  # never executed (a page without code)
        return notebook


def _offer_book_pdf(app, pagename, templatename, context, doctree) -> None:
    """Add the whole book's PDF to the theme's download menu (after the theme has built it)."""
    for button in context.get("header_buttons", []):
        if button.get("label") == "download-buttons":
            for item in button["buttons"]:
                if item.get("label") == "download-pdf-button":
                    item["text"] = "this page (.pdf)"
            button["buttons"].append({
                "type": "link", "url": context["pathto"](BOOK_PDF, 1), "text": "the book (.pdf)",
                "tooltip": "Download the whole book as one PDF", "icon": "fas fa-book",
                "label": "download-book-pdf-button"})


class StatusInWords(SphinxPostTransform):
    """The execution-statistics table's status column in words, not emoji."""

    default_priority = 9  # after MyST-NB builds the table (8), before references resolve (10)
    WORDS = {"✅": "succeeded", "❌": "failed"}

    def run(self, **kwargs) -> None:
        for table in self.document.findall(nodes.table):
            for text in list(table.findall(nodes.Text)):
                if text.astext().strip() in self.WORDS:
                    text.parent.replace(text, nodes.Text(self.WORDS[text.astext().strip()]))


def _visit_folded_cell(self, node) -> None:
    """MyST-NB's folded cell (`hide-input`: solutions, checks, plotting code), whose <summary> is
    named by what it shows ("Show the solution"); MyST-NB names it "Toggle hidden content", which
    does not contain the visible words (WCAG 2.5.3)."""
    from html import escape

    self.body.append(f'<details class="admonition hide {" ".join(node["classes"])}">\n<summary>\n')
    self.body.append(f'<p class="collapsed admonition-title">{escape(node["prompt_show"])}</p>\n')
    self.body.append(f'<p class="expanded admonition-title">{escape(node["prompt_hide"])}</p>\n</summary>\n')


def _set_favicon(app, config) -> None:
    if not config.html_favicon:
        config.html_favicon = str(FAVICON)


def _add_assets(app, config) -> None:
    """The book's stylesheet, and its versions of two theme templates (named for screen readers)."""
    config.html_static_path = [*config.html_static_path, str(ASSETS / "static")]
    config.templates_path = [*config.templates_path, str(ASSETS / "templates")]
    app.add_css_file(STYLESHEET)


def _name_section_toggles(app, pagename, templatename, context, doctree) -> None:
    """Give each chevron that folds a chapter's sections in the sidebar a name ("Sections of X"):
    the theme's <summary> holds only an icon, which a screen reader announces as nothing."""
    make = context.get("generate_toctree_html")
    if make is not None:
        context["generate_toctree_html"] = lambda *args, **kwargs: _named_summaries(make(*args, **kwargs))


def _named_summaries(html):
    """The theme's navigation (a BeautifulSoup, or its HTML) with aria-label="Sections of <title>"
    on each <summary> that folds the sections under a chapter's link."""
    from bs4 import BeautifulSoup
    from markupsafe import Markup

    soup = html if isinstance(html, BeautifulSoup) else BeautifulSoup(str(html), "html.parser")
    for summary in soup.find_all("summary"):
        link = summary.parent.find_previous_sibling("a") if summary.parent else None
        if link is not None and not summary.has_attr("aria-label"):
            summary["aria-label"] = f"Sections of {link.get_text(' ', strip=True)}"
    return soup if isinstance(html, BeautifulSoup) else Markup(str(soup))


def setup(app) -> dict:
    """Register the handlers (Sphinx entry point)."""
    app.connect("config-inited", _set_favicon)
    app.connect("config-inited", _add_assets)
    app.connect("source-read", _strip_hidden_tests)
    app.connect("build-finished", _strip_copied_sources)
    app.connect("html-page-context", _drop_thebe, priority=900)
    app.connect("html-page-context", _offer_notebook, priority=500)  # before the theme's buttons (501)
    app.connect("html-page-context", _offer_book_pdf, priority=502)  # after them
    app.connect("html-page-context", _name_section_toggles, priority=600)  # after the theme's toctree
    app.add_post_transform(StatusInWords)
    from myst_nb.sphinx_ import HideCodeCellNode, depart_HideCellInput

    app.add_node(HideCodeCellNode, override=True, html=(_visit_folded_cell, depart_HideCellInput))
    return {"parallel_read_safe": True, "parallel_write_safe": True}
