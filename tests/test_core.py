"""Unit tests of the core helpers: seed, device, expect, data, plot, train."""

from __future__ import annotations

import random

import matplotlib
import numpy as np
import pytest
import torch
import torch.nn.functional as F

import book
from book import data

matplotlib.use("Agg")


def test_seed_makes_every_generator_repeat():
    book.seed(3)
    first = (random.random(), np.random.rand(), torch.rand(2))
    book.seed(3)
    again = (random.random(), np.random.rand(), torch.rand(2))
    assert first[0] == again[0] and first[1] == again[1] and torch.equal(first[2], again[2])
    book.seed(4)
    assert random.random() != first[0]


def test_device_prefers_cuda_and_obeys_the_environment(monkeypatch):
    monkeypatch.delenv("BOOK_DEVICE", raising=False)
    assert book.device().type == ("cuda" if torch.cuda.is_available() else "cpu")
    monkeypatch.setenv("BOOK_DEVICE", "cpu")
    assert book.device() == torch.device("cpu")
    if not torch.cuda.is_available():
        monkeypatch.setenv("BOOK_DEVICE", "cuda")
        with pytest.raises(RuntimeError, match="no CUDA"):
            book.device()


def test_expect_prints_one_line_per_passing_claim(capsys):
    assert book.expect("accuracy", 0.97, at_least=0.95) is None
    book.expect("tensors agree", torch.ones(3), close_to=torch.ones(3) + 1e-7, rtol=1e-6, atol=1e-6)
    book.expect("count", 3, equals=3)
    out = capsys.readouterr().out.splitlines()
    assert out[0] == "✓ accuracy: 0.97 ≥ 0.95"
    assert out[1].startswith("✓ tensors agree: max |Δ| = 1.2e-07") and "rtol=1e-06, atol=1e-06" in out[1]
    assert out[2] == "✓ count: 3"


@pytest.mark.parametrize("kwargs, shown", [
    (dict(at_least=0.95), "measured 0.9, expected ≥ 0.95"),
    (dict(below=0.5), "measured 0.9, expected < 0.5"),
    (dict(above=0.1, at_most=0.8), "measured 0.9"),
    (dict(equals=1.0), "measured 0.9, expected exactly 1"),
    (dict(close_to=1.0, rtol=0.0, atol=0.05), "Expected 1.0 but got 0.9. Absolute difference: 0.0999"),
])
def test_expect_raises_with_the_measured_value(kwargs, shown):
    with pytest.raises(AssertionError) as failure:
        book.expect("the claim", 0.9, **kwargs)
    assert str(failure.value).startswith("✗ the claim") and shown in str(failure.value)


def test_expect_refuses_a_claim_without_an_expectation():
    with pytest.raises(ValueError, match="no expectation"):
        book.expect("vacuous", 1.0)
    with pytest.raises(AssertionError):
        book.expect("nan is no number", float("nan"), at_most=1.0)


@pytest.mark.parametrize("name, width, classes", [
    ("digits", 64, 10), ("moons", 2, 2), ("mnist1d", 40, 10), ("swiss_roll", 2, None)])
def test_labelled_data_sets_split_deterministically(name, width, classes):
    a, b = data.load(name), data.load(name)
    assert a.num_classes == classes
    for part_a, part_b in zip((a.train, a.val, a.test), (b.train, b.val, b.test), strict=True):
        X, y = part_a
        assert X.dtype == torch.float32 and X.shape[1] == width and len(X) == len(y)
        assert torch.equal(X, part_b[0]) and torch.equal(y, part_b[1])
    if classes:
        assert a.train[1].dtype == torch.int64 and set(a.train[1].tolist()) == set(range(classes))
    rows = {tuple(r) for r in a.train[0].tolist()}
    assert not rows & {tuple(r) for r in a.test[0].tolist()}, "train and test share examples"
    assert not torch.equal(data.load(name, seed=1).train[0][:5], a.train[0][:5])


def test_digits_are_scaled_pixels():
    X, _ = data.load("digits").train
    assert X.min() == 0 and X.max() == 1 and len(X) + len(data.load("digits").test[0]) <= 1797


def test_loaded_tensors_are_copies():
    data.load("digits").train[0].zero_()
    assert data.load("digits").train[0].sum() > 0


def test_english_corpus_is_offline_text():
    english = data.load("english")
    assert all(isinstance(p, str) for p in (english.train, english.val, english.test))
    assert len(english.train) > 300_000 and " the " in english.train
    assert english.train[:1000] != data.load("english", seed=1).train[:1000]


def test_unknown_data_set_lists_the_known_ones():
    with pytest.raises(ValueError) as err:
        data.load("cifar10")
    for name in ("digits", "moons", "swiss_roll", "mnist1d", "english"):
        assert name in str(err.value)
    assert data.names() == sorted(data.names())


def test_plot_style_is_applied_and_curves_draw_every_series():
    assert matplotlib.rcParams["axes.spines.top"] is False
    ax = book.plot.curves({"sgd": [3, 2, 1], "adam": [3, 1, 0.5]}, logy=True)
    assert [line.get_label() for line in ax.get_lines()] == ["sgd", "adam"]
    assert ax.get_yscale() == "log" and ax.get_legend() is not None


def _problem():
    book.seed(0)
    X = torch.randn(256, 2)
    y = (X[:, 0] + X[:, 1] > 0).long()
    return X, y


def test_train_learns_and_returns_its_history(capsys, monkeypatch):
    monkeypatch.setenv("BOOK_PROGRESS", "0")
    X, y = _problem()
    model = torch.nn.Linear(2, 2)
    history = book.train(model, torch.optim.SGD(model.parameters(), lr=0.5), X, y, epochs=5, batch_size=32,
                         X_val=X, y_val=y)
    assert len(history.step_loss) == 5 * 8 and len(history.train_loss) == 5 == len(history.val_acc)
    assert history.train_loss[-1] < 0.5 * history.train_loss[0]
    assert history.val_acc[-1] >= 0.95 and book.accuracy(model, X, y) == history.val_acc[-1]
    captured = capsys.readouterr()
    assert captured.out == "" and captured.err == "", "the build must stay silent"


def test_train_is_deterministic_and_shows_progress_when_asked(capsys, monkeypatch):
    X, y = _problem()
    losses = []
    for progress in ("0", "1"):
        monkeypatch.setenv("BOOK_PROGRESS", progress)
        book.seed(1)
        model = torch.nn.Linear(2, 2)
        losses.append(book.train(model, torch.optim.Adam(model.parameters()), X, y, epochs=2).step_loss)
    assert losses[0] == losses[1]
    assert "Adam" in capsys.readouterr().err, "a progress bar names the optimizer"


def test_train_can_drop_the_last_short_batch_for_batch_norm(monkeypatch):
    monkeypatch.setenv("BOOK_PROGRESS", "0")
    X, y = _problem()
    model = torch.nn.Sequential(torch.nn.Linear(2, 4), torch.nn.BatchNorm1d(4), torch.nn.Linear(4, 2))
    with pytest.raises(ValueError, match="more than 1 value per channel"):
        book.train(model, torch.optim.SGD(model.parameters(), lr=0.1), X[:33], y[:33], epochs=1, batch_size=2)
    history = book.train(model, torch.optim.SGD(model.parameters(), lr=0.1), X[:33], y[:33], epochs=2,
                         batch_size=2, drop_last=True)
    assert len(history.step_loss) == 2 * 16


def test_evaluate_restores_training_mode():
    X, y = _problem()
    model = torch.nn.Sequential(torch.nn.Linear(2, 2), torch.nn.Dropout(0.5))
    model.train()
    loss, acc = book.evaluate(model, X, y, F.cross_entropy)
    assert model.training and 0 <= acc <= 1 and loss > 0
