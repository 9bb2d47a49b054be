"""A Sphinx extension that keeps the site self-contained.

Jupyter Book always loads sphinx-thebe, which points pages at a script on unpkg.com (and, on some
pages, declares it twice, a console error). The book has no live-kernel buttons — explorations
are static twins — so its scripts and styles are dropped. The extension also gives the site a
favicon, so that browsers do not log a 404 for /favicon.ico, and offers every notebook page as an
executed `.ipynb` in the page's download menu (the theme does that only when launch buttons are on).

Hidden tests are the grader's: a solutions page is read, executed, offered and copied to
`_sources` without them (`public_text`), so no page, source copy or download shows one.
"""

from __future__ import annotations

from pathlib import Path

import nbformat

FAVICON = Path(__file__).with_name("assets") / "favicon.svg"


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


def _set_favicon(app, config) -> None:
    if not config.html_favicon:
        config.html_favicon = str(FAVICON)


def setup(app) -> dict:
    """Register the handlers (Sphinx entry point)."""
    app.connect("config-inited", _set_favicon)
    app.connect("source-read", _strip_hidden_tests)
    app.connect("build-finished", _strip_copied_sources)
    app.connect("html-page-context", _drop_thebe, priority=900)
    app.connect("html-page-context", _offer_notebook, priority=500)  # before the theme's buttons (501)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
