"""book.explore: every grid point drawn, one frame per combination, accessible markup, size cap,
errors that name the control or the combination, and live widgets that redraw when a value changes."""

from __future__ import annotations

import base64
import itertools
import json
import re

import matplotlib.pyplot as plt
import numpy as np
import pytest
from bs4 import BeautifulSoup

import book.static_twin
from book.explorations import explore

LR = [0.01, 0.1, 0.5]
OPTIMIZER = ["sgd", "adam"]
NESTEROV = [True, False]
X = np.linspace(0, 5, 50)


def curve(ax, lr, optimizer, nesterov):
    """Toy loss curve."""
    ax.plot(X, np.exp(-lr * X * (2 if optimizer == "adam" else 1)), ls="-" if nesterov else "--")
    ax.set_title(f"{optimizer} lr={lr} nesterov={nesterov}")


def small(ax, lr, optimizer):
    """Small frame."""
    ax.plot(X, np.exp(-lr * X) + len(optimizer))


def data_of(html: str) -> dict:
    """The JSON payload the twin's script reads."""
    soup = BeautifulSoup(html, "html.parser")
    return json.loads(soup.select_one("script.bx-data").string)


def decode(uri: str) -> bytes:
    return base64.b64decode(uri.split(",", 1)[1])


@pytest.fixture(scope="module")
def exploration():
    return explore(curve, lr=LR, optimizer=OPTIMIZER, nesterov=NESTEROV, figsize=(3, 2), dpi=50)


def test_plot_fn_called_once_for_every_grid_point():
    seen = []

    def record(ax, lr, optimizer, nesterov):
        seen.append((lr, optimizer, nesterov))
        ax.plot([0, 1], [lr, lr])

    e = explore(record, lr=LR, optimizer=OPTIMIZER, nesterov=NESTEROV, figsize=(2, 1.5), dpi=40)
    grid = list(itertools.product(LR, OPTIMIZER, NESTEROV))
    assert seen == grid  # in order, first control slowest; the live view starts from the twin's frame
    assert e.calls == len(grid)


def test_static_html_has_exactly_one_frame_per_combination(exploration):
    data = data_of(exploration.html)
    n = len(LR) * len(OPTIMIZER) * len(NESTEROV)
    assert data["sizes"] == [3, 2, 2]
    assert len(data["frame"]) == len(data["alt"]) == n
    assert len(data["src"]) == n  # every combination draws a different picture here
    assert sorted(data["frame"]) == list(range(n))
    for uri in data["src"]:
        assert uri.startswith("data:image/png;base64,")
        assert decode(uri).startswith(b"\x89PNG")
    assert exploration.html.count("<img") == 1


def test_each_frame_shows_its_own_combination(exploration):
    """Frame k of the twin is exactly what plot_fn draws alone for combination k (no state leaks)."""
    data = data_of(exploration.html)
    grid = list(itertools.product(LR, OPTIMIZER, NESTEROV))
    for k in (0, 5, len(grid) - 1):
        lr, optimizer, nesterov = grid[k]
        alone = explore(curve, lr=[lr], optimizer=[optimizer], nesterov=[True, False],
                        defaults={"nesterov": nesterov}, figsize=(3, 2), dpi=50)
        solo = data_of(alone.html)
        assert data["src"][data["frame"][k]] == solo["src"][solo["frame"][NESTEROV.index(nesterov)]]
        assert data["alt"][k] == f"Toy loss curve: lr = {lr}, optimizer = {optimizer}, nesterov = {nesterov}"


def test_identical_frames_are_stored_once():
    e = explore(lambda ax, a, b: ax.plot([0, a]), a=[1, 2], b=["x", "y", "z"], figsize=(2, 1.5), dpi=40)
    data = data_of(e.html)
    assert len(data["frame"]) == 6 and len(data["src"]) == 2
    assert data["frame"] == [0, 0, 0, 1, 1, 1]


def test_controls_are_labelled_and_native(exploration):
    soup = BeautifulSoup(exploration.html, "html.parser")
    root = soup.select_one("div.book-explore")
    assert root is not None and root["id"]
    slider = root.select_one("input[type=range]")
    assert (slider["min"], slider["max"], slider["step"], slider["value"]) == ("0", "2", "1", "0")
    assert slider["aria-valuetext"] == "0.01"
    select = root.select_one("select")
    assert [o.string for o in select.select("option")] == OPTIMIZER
    box = root.select_one("input[type=checkbox]")
    assert box.has_attr("checked")
    for control, name in zip((slider, select, box), ("lr", "optimizer", "nesterov"), strict=True):
        label = root.select_one(f'label[for="{control["id"]}"]')
        assert label is not None and label.string == name
    img = root.select_one("img.bx-frame")
    assert img["alt"] == "Toy loss curve: lr = 0.01, optimizer = sgd, nesterov = True"
    assert img["src"] == data_of(exploration.html)["src"][0]
    assert "require" not in exploration.html and "http" not in exploration.html.replace("data:", "")


def test_defaults_pick_the_first_frame_and_controls():
    e = explore(small, lr=LR, optimizer=OPTIMIZER, defaults={"lr": 0.5, "optimizer": "adam"}, figsize=(2, 1.5), dpi=40)
    soup = BeautifulSoup(e.html, "html.parser")
    assert soup.select_one("input[type=range]")["value"] == "2"
    assert soup.select_one("option[selected]").string == "adam"
    assert soup.select_one("img")["alt"].endswith("lr = 0.5, optimizer = adam")
    assert e.params == {"lr": 0.5, "optimizer": "adam"}


def test_ids_are_unique_per_exploration():
    a = explore(small, lr=LR, optimizer=OPTIMIZER, figsize=(2, 1.5), dpi=40)
    b = explore(small, lr=LR, optimizer=OPTIMIZER, figsize=(2, 1.5), dpi=40)
    ids_a = set(re.findall(r'id="([^"]+)"', a.html))
    ids_b = set(re.findall(r'id="([^"]+)"', b.html))
    assert ids_a and not ids_a & ids_b


def test_mimebundle_offers_widget_and_static_twin(exploration):
    bundle = exploration._repr_mimebundle_()
    assert bundle["text/html"] == exploration.html
    view = bundle["application/vnd.jupyter.widget-view+json"]
    assert view["model_id"] == exploration.widget.model_id
    plain = bundle["text/plain"]
    assert "\n" not in plain and len(plain) < 160
    assert "lr(3) × optimizer(2) × nesterov(2) = 12 frames" in plain


def test_one_figure_reused_and_nothing_left_open(monkeypatch):
    made = []

    class CountingFigure(book.static_twin.Figure):
        def __init__(self, *args, **kwargs):
            made.append(self)
            super().__init__(*args, **kwargs)

    monkeypatch.setattr(book.static_twin, "Figure", CountingFigure)
    before = plt.get_fignums()

    def with_colorbar(ax, scale):
        image = ax.imshow(np.outer(X, X) * scale)
        ax.figure.colorbar(image, ax=ax)

    e = explore(with_colorbar, scale=[1, 2, 3, 4], figsize=(3, 2), dpi=40)
    assert len(made) == 1
    assert plt.get_fignums() == before
    assert len(e.renderer.fig.axes) == 2  # the Axes and this frame's colorbar, not one colorbar per frame


def test_ncols_gives_a_tuple_of_axes():
    got = []

    def two(axes, k):
        got.append(axes)
        for ax in axes:
            ax.plot([0, k])

    explore(two, ncols=2, k=[1, 2], figsize=(4, 2), dpi=40)
    assert all(isinstance(axes, tuple) and len(axes) == 2 for axes in got)


def test_svg_frames_when_smaller():
    def line(ax, n):
        ax.axis("off")
        ax.plot([0, n], [0, 1])

    data = data_of(explore(line, n=[1, 2], dpi=300).html)
    assert all(uri.startswith("data:image/svg+xml;base64,") for uri in data["src"])
    assert b"<svg" in decode(data["src"][0])


def test_size_cap_names_the_grid():
    grid = r"exploration grid lr\(3\) × optimizer\(2\) = 6 frames makes about 0\.0\d+ MB > 0\.005 MB cap"
    with pytest.raises(ValueError, match=grid + "; use fewer values"):
        explore(small, lr=LR, optimizer=OPTIMIZER, max_bytes=5_000)


def test_frame_cap_names_the_grid_before_drawing():
    calls = []
    with pytest.raises(ValueError, match=r"grid a\(11\) × b\(10\) = 110 frames > 100 frame cap; use fewer values"):
        explore(lambda ax, a, b: calls.append(1), a=list(range(11)), b=list(range(10)))
    assert calls == []


def test_size_cap_default_is_two_megabytes():
    e = explore(small, lr=LR, optimizer=OPTIMIZER, figsize=(2, 1.5), dpi=40)
    assert e.max_bytes == 2_000_000


@pytest.mark.parametrize(
    ("controls", "message"),
    [
        ({"lr": []}, "control 'lr' has no values"),
        ({"lr": [0.1, "fast"]}, r"control 'lr' mixes .*\(float, str\)"),
        ({"lr": [0.1, None]}, r"control 'lr' mixes .*NoneType"),
        ({"lr": 0.1}, r"control 'lr' must be a list of values"),
        ({"optimizer": "adam"}, r"control 'optimizer' must be a list of values"),
        ({"nesterov": [True]}, r"toggle 'nesterov' needs exactly the values \[True, False\]"),
        ({"lr": [0.1, 0.1]}, r"control 'lr' repeats a value"),
        ({}, "at least one control"),
    ],
)
def test_bad_controls_name_the_control(controls, message):
    with pytest.raises(ValueError, match=message):
        explore(lambda ax, **params: None, **controls)


def test_bad_defaults_are_named():
    with pytest.raises(ValueError, match=r"default lr=0\.3 is not one of"):
        explore(small, lr=LR, optimizer=OPTIMIZER, defaults={"lr": 0.3})
    with pytest.raises(ValueError, match=r"defaults name no control: \['beta'\]"):
        explore(small, lr=LR, optimizer=OPTIMIZER, defaults={"beta": 0.9})


def test_plot_fn_that_cannot_take_the_controls_is_named():
    with pytest.raises(TypeError, match=r"small\(ax, lr, optimizer, beta\) cannot be called"):
        explore(small, lr=LR, optimizer=OPTIMIZER, beta=[0.9])


def test_failure_at_one_grid_point_names_the_combination():
    def fragile(ax, lr, optimizer):
        if lr == 0.5 and optimizer == "adam":
            raise FloatingPointError("loss diverged")
        ax.plot([0, lr])

    with pytest.raises(RuntimeError, match=r"fragile failed at lr=0\.5, optimizer='adam' \(frame 6 of 6\): "
                                           r"FloatingPointError: loss diverged") as info:
        explore(fragile, lr=LR, optimizer=OPTIMIZER, figsize=(2, 1.5), dpi=40)
    assert isinstance(info.value.__cause__, FloatingPointError)


def test_drawing_with_pyplot_is_refused():
    before = plt.get_fignums()
    with pytest.raises(RuntimeError, match="draw on the Axes it is given"):
        explore(lambda ax, k: plt.plot([0, k]), k=[1, 2])
    assert plt.get_fignums() == before


def test_numpy_values_become_python_numbers():
    seen = []
    explore(lambda ax, lr: seen.append(lr), lr=np.array([0.1, 0.2]), figsize=(2, 1.5), dpi=40)
    assert seen[:2] == [0.1, 0.2] and all(type(v) is float for v in seen)


def live_image(e) -> bytes:
    (output,) = e.output.outputs
    return base64.b64decode(output["data"]["image/png"])


def twin_frame(e, **params) -> bytes:
    """The static twin's frame for a combination."""
    data = data_of(e.html)
    k = 0
    for control in e.controls:
        k = k * len(control.values) + control.values.index(params[control.name])
    return decode(data["src"][data["frame"][k]])


def test_live_controls_redraw_the_output():
    e = explore(curve, lr=LR, optimizer=OPTIMIZER, nesterov=NESTEROV, figsize=(3, 2), dpi=50)
    slider, dropdown, toggle = e.widget.children[0].children
    assert type(slider).__name__ == "SelectionSlider" and slider.options == (("0.01", 0.01), ("0.1", 0.1), ("0.5", 0.5))
    assert type(dropdown).__name__ == "Dropdown" and type(toggle).__name__ == "Checkbox"
    first, calls = live_image(e), e.calls
    assert first == twin_frame(e, lr=0.01, optimizer="sgd", nesterov=True)
    slider.value = 0.5
    assert e.calls == calls + 1
    assert live_image(e) != first
    assert live_image(e) == twin_frame(e, lr=0.5, optimizer="sgd", nesterov=True)
    dropdown.value = "adam"
    toggle.value = False
    assert e.calls == calls + 3
    assert live_image(e) == twin_frame(e, lr=0.5, optimizer="adam", nesterov=False)
    assert e.output.outputs[0]["data"]["text/plain"].endswith("lr=0.5, optimizer='adam', nesterov=False")


def test_live_failure_shows_in_the_output_not_the_kernel():
    state = {"broken": False}

    def flaky(ax, k):
        if state["broken"]:
            raise ValueError("boom")
        ax.plot([0, k])

    e = explore(flaky, k=[1, 2], figsize=(2, 1.5), dpi=40)
    state["broken"] = True
    e.widget.children[0].children[0].value = 2
    (output,) = e.output.outputs
    assert output["output_type"] == "stream" and "plot_fn failed at k=2: ValueError: boom" in output["text"]


def test_book_explore_works_twice_in_a_row():
    """`book.explore` stays the function after book/explorations.py is imported (chapters call it often)."""
    import book

    for _ in range(2):
        assert type(book.explore(small, lr=LR, optimizer=OPTIMIZER, figsize=(2, 1.5), dpi=40)).__name__ == "Exploration"


def test_in_a_kernel_the_bundle_has_both_views_and_the_output_follows_the_slider():
    """Run in a real IPython kernel (as JupyterLab and the site build do): display, then move the slider."""
    import nbclient
    import nbformat

    show = '''import book

def plot(ax, lr, optimizer):
    """Toy."""
    ax.plot([0, 1], [lr, lr * (2 if optimizer == "adam" else 1)])

e = book.explore(plot, lr=[0.1, 0.5], optimizer=["sgd", "adam"])
e'''
    move = "e.widget.children[0].children[0].value = 0.5\ne.calls"
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(show), nbformat.v4.new_code_cell(move)])
    nbclient.NotebookClient(nb, timeout=120, kernel_name="python3").execute()
    (shown,) = nb.cells[0].outputs
    assert set(shown["data"]) == {"text/plain", "text/html", "application/vnd.jupyter.widget-view+json"}
    assert shown["data"]["text/plain"].startswith("<exploration of Toy: lr(2) × optimizer(2) = 4 frames")
    assert f'class="{book.static_twin.MARKER_CLASS}"' in shown["data"]["text/html"]
    assert nb.cells[1].outputs[0]["data"]["text/plain"] == "5"  # 4 grid frames, then one live move
    state = nb.metadata.widgets["application/vnd.jupyter.widget-state+json"]["state"]
    (output,) = [m["state"]["outputs"] for m in state.values() if m["model_name"] == "OutputModel"]
    assert [o["data"]["text/plain"] for o in output] == ["Toy: lr=0.5, optimizer='sgd'"]
