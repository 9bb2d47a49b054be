"""A Sphinx extension that keeps the site self-contained.

Jupyter Book always loads sphinx-thebe, which points pages at a script on unpkg.com (and, on some
pages, declares it twice, a console error). The book has no live-kernel buttons — explorations
are static twins — so its scripts and styles are dropped. The extension also gives the site a
favicon, so that browsers do not log a 404 for /favicon.ico, and offers every notebook page as an
executed `.ipynb` in the page's download menu (the theme does that only when launch buttons are on).
"""

from __future__ import annotations

import shutil
from pathlib import Path

FAVICON = Path(__file__).with_name("assets") / "favicon.svg"


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
    shutil.copy2(executed, target)
    context["ipynb_source"] = f"{pagename}.ipynb"  # read by sphinx-book-theme's header buttons


def _set_favicon(app, config) -> None:
    if not config.html_favicon:
        config.html_favicon = str(FAVICON)


def setup(app) -> dict:
    """Register the handlers (Sphinx entry point)."""
    app.connect("config-inited", _set_favicon)
    app.connect("html-page-context", _drop_thebe, priority=900)
    app.connect("html-page-context", _offer_notebook, priority=500)  # before the theme's buttons (501)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
