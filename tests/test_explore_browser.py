"""Static twins in headless Chromium: the slider (keyboard), the dropdown and the toggle each change
the displayed frame, with no kernel, no network and no console error — on a page made here from a
twin, and on every chapter page of the built site that carries an exploration.

Uses the `browser`, `built_site` and `site_url` fixtures of tests/conftest.py (Debian's Chromium,
driven by Playwright, which never downloads a browser of its own).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from book.explorations import explore
from book.static_twin import MARKER_CLASS

X = np.linspace(0, 5, 60)
WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"


def curve(ax, lr, optimizer, nesterov):
    """Toy loss curve."""
    ax.plot(X, np.exp(-lr * X * (2 if optimizer == "adam" else 1)), ls="-" if nesterov else "--")


def open_offline(browser, url: str):
    """A new page at url that fails on any request leaving this machine, and collects console errors."""
    page = browser.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(f"page error: {exc}"))
    page.on("console", lambda msg: errors.append(f"console {msg.type}: {msg.text}") if msg.type == "error" else None)

    def guard(route):
        if route.request.url.startswith(("file:", "data:", "http://127.0.0.1", "http://localhost")):
            route.continue_()
        else:
            errors.append(f"network request: {route.request.url}")
            route.abort()

    page.route("**/*", guard)
    page.goto(url)
    return page, errors


def frame(exploration) -> tuple[str, str]:
    img = exploration.locator("img.bx-frame")
    return img.get_attribute("src"), img.get_attribute("alt")


def moves(page, exploration, control, action) -> bool:
    """Whether `action` on `control` changes the exploration's image (its src and its pixels)."""
    before, shot = frame(exploration), exploration.locator("img.bx-frame").screenshot()
    action(control)
    page.wait_for_timeout(50)
    after = frame(exploration)
    return after[0] != before[0] and after[1] != before[1] and exploration.locator("img.bx-frame").screenshot() != shot


def press_right(control):
    """Step a slider one value along from the keyboard (left instead, when it starts at its maximum)."""
    control.focus()
    control.press("ArrowLeft" if control.evaluate("e => e.value === e.max") else "ArrowRight")


def next_option(control):
    options = control.locator("option").all_text_contents()
    current = control.evaluate("e => e.selectedIndex")
    control.select_option(index=(current + 1) % len(options))


def press_space(control):
    control.focus()
    control.press("Space")


def test_twin_moves_in_chromium(browser, tmp_path: Path):
    twin = explore(curve, lr=[0.1, 0.5, 1.0], optimizer=["sgd", "adam"], nesterov=[True, False]).html
    page_file = tmp_path / "twin.html"
    page_file.write_text(f"<!doctype html><html lang=en><meta charset=utf-8><body>{twin}{twin}</body></html>")
    page, errors = open_offline(browser, page_file.as_uri())
    first, second = page.locator(f".{MARKER_CLASS}").all()
    untouched = frame(second)

    slider = first.locator("input[type=range]")
    assert moves(page, first, slider, press_right)
    assert frame(first)[1] == "Toy loss curve: lr = 0.5, optimizer = sgd, nesterov = True"
    assert slider.get_attribute("aria-valuetext") == "0.5"
    assert first.locator("output").text_content() == "0.5"

    dropdown = first.locator("select")
    assert moves(page, first, dropdown, next_option)
    dropdown.focus()
    assert moves(page, first, dropdown, lambda c: c.press("ArrowUp"))  # the keyboard works on the dropdown too
    assert moves(page, first, first.locator("input[type=checkbox]"), press_space)
    assert frame(first)[1] == "Toy loss curve: lr = 0.5, optimizer = sgd, nesterov = False"

    assert frame(second) == untouched  # two twins on one page do not share ids or state
    assert errors == []
    page.close()


def test_explorations_move_on_the_built_site(browser, built_site: Path, site_url: str):
    chapters = sorted((built_site / "chapters").glob("*.html"))
    with_twin = [p for p in chapters if f'class="{MARKER_CLASS}"' in p.read_text(encoding="utf-8")]
    dead = [p.name for p in chapters if f'<script type="{WIDGET_VIEW}"' in p.read_text(encoding="utf-8")]
    assert not dead, (f"{dead} show a dead widget view instead of the static twin: _config.yml needs "
                      f"nb_mime_priority_overrides: [['*', '{WIDGET_VIEW}', null]]")
    assert with_twin, f"no chapter page of the built site carries an exploration (class {MARKER_CLASS})"
    actions = {"input[type=range]": press_right, "select": next_option, "input[type=checkbox]": press_space}
    for path in with_twin:
        page, errors = open_offline(browser, f"{site_url}/chapters/{path.name}")
        for n, exploration in enumerate(page.locator(f".{MARKER_CLASS}").all()):
            exploration.scroll_into_view_if_needed()
            for selector, action in actions.items():
                for i, control in enumerate(exploration.locator(selector).all()):
                    assert moves(page, exploration, control, action), (
                        f"{path.name}: exploration {n + 1}, {selector} #{i + 1} did not change the frame")
        assert errors == [], f"{path.name}: {errors}"
        page.close()


@pytest.mark.parametrize("ncols", [1, 2])
def test_frame_keeps_its_size(browser, tmp_path: Path, ncols: int):
    """Frames of one exploration share one pixel size, so the page does not jump while exploring."""

    def panels(axes, k):
        for ax in axes if ncols > 1 else (axes,):
            ax.plot(X, X**k)
            ax.set_ylabel("a long label" * k)

    twin = explore(panels, ncols=ncols, k=[1, 2, 3]).html
    page_file = tmp_path / "size.html"
    page_file.write_text(f"<!doctype html><html lang=en><meta charset=utf-8><body>{twin}</body></html>")
    page, errors = open_offline(browser, page_file.as_uri())
    img = page.locator("img.bx-frame")
    sizes = set()
    for _ in range(3):
        sizes.add(img.evaluate("e => [e.naturalWidth, e.naturalHeight]").__repr__())
        press_right(page.locator("input[type=range]"))
    assert len(sizes) == 1 and errors == []
    page.close()
